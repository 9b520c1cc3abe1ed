//! `GET /v1/blocks` — the users I block.
chat::http_function!(|s, request| chat::http::list_blocks(&s.verifier, &s.store, &request));
