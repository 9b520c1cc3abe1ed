//! `POST /v1/conversations/{id}/read` — move the read watermark; `read` to the members.
chat::http_function!(|s, request| chat::http::mark_read(&s.verifier, &s.store, &s.pusher, &request));
