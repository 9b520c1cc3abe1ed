//! `DELETE /v1/blocks/{user_id}` — lift a block.
chat::http_function!(|s, request| chat::http::unblock_user(&s.verifier, &s.store, &request));
