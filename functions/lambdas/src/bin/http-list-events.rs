//! `GET /v1/conversations/{id}/events?after_seq=` — replay.
chat::http_function!(|s, request| chat::http::list_events(&s.verifier, &s.store, &request));
