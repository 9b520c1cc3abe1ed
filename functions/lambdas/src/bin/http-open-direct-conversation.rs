//! `POST /v1/conversations/direct` — find or create the 1:1.
chat::http_function!(|s, request| chat::http::open_direct_conversation(&s.verifier, &s.store, &s.pusher, &request));
