//! `PATCH /v1/messages/{id}` — the author edits.
chat::http_function!(|s, request| chat::http::edit_message(&s.verifier, &s.store, &s.pusher, &request));
