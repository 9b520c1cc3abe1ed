//! `GET /v1/conversations/{id}/messages` — history.
chat::http_function!(|s, request| chat::http::list_messages(&s.verifier, &s.store, &request));
