//! `GET /v1/rooms` — public rooms with member and message counts.
chat::http_function!(|s, request| chat::http::list_rooms(&s.verifier, &s.store, &request));
