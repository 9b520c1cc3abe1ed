//! `GET /v1/me` — my profile and presence.
chat::http_function!(|s, request| chat::http::get_me(&s.verifier, &s.store, &request));
