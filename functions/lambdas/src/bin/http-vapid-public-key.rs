//! `GET /v1/push/vapid-public-key` — the key browsers subscribe with.
chat::http_function!(|s, request| chat::http::vapid_public_key(&s.verifier, s.vapid_public_key.as_deref(), &request));
