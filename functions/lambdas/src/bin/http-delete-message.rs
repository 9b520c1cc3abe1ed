//! `DELETE /v1/messages/{id}` — the author deletes.
chat::http_function!(|s, request| chat::http::delete_message(&s.verifier, &s.store, &s.pusher, &request));
