//! `POST /v1/conversations/{id}/members` — the owner adds people.
chat::http_function!(|s, request| chat::http::add_members(&s.verifier, &s.store, &s.pusher, &request));
