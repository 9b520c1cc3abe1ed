//! `PATCH /v1/conversations/{id}` — rename, archive, mute.
chat::http_function!(|s, request| chat::http::update_conversation(&s.verifier, &s.store, &s.pusher, &request));
