//! `POST /v1/blocks` — block a user.
chat::http_function!(|s, request| chat::http::block_user(&s.verifier, &s.store, &request));
