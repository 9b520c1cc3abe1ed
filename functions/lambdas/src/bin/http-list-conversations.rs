//! `GET /v1/conversations` — mine, newest first, with unread counts.
chat::http_function!(|s, request| chat::http::list_conversations(&s.verifier, &s.store, &request));
