//! `GET /v1/unread` — unread counts.
chat::http_function!(|s, request| chat::http::unread_counts(&s.verifier, &s.store, &request));
