//! `POST /v1/conversations/{id}/join` — join a public room.
chat::http_function!(|s, request| chat::http::join_conversation(&s.verifier, &s.store, &s.pusher, &request));
