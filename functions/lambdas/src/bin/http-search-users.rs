//! `GET /v1/users?q=` — people to start a chat with; `?ids=` — profiles by id.
chat::http_function!(|s, request| chat::http::search_users(&s.verifier, &s.store, &request));
