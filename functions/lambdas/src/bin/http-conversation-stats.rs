//! `GET /v1/conversations/{id}/stats`.
chat::http_function!(|s, request| chat::http::conversation_stats(&s.verifier, &s.store, &request));
