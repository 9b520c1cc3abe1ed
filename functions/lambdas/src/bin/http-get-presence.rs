//! `GET /v1/presence?user_ids=` — online and last seen.
chat::http_function!(|s, request| chat::http::get_presence(&s.verifier, &s.store, &request));
