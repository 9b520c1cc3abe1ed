//! `GET /v1/conversations/{id}` — details and participants.
chat::http_function!(|s, request| chat::http::get_conversation(&s.verifier, &s.store, &request));
