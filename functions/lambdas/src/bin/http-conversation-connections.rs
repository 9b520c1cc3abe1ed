//! `GET /v1/conversations/{id}/connections` — members online now.
chat::http_function!(|s, request| chat::http::conversation_connections(&s.verifier, &s.store, &request));
