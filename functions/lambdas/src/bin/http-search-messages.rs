//! `GET /v1/messages/search?q=` — full-text search in my conversations.
chat::http_function!(|s, request| chat::http::search_messages(&s.verifier, &s.store, &request));
