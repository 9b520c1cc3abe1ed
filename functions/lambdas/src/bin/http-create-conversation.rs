//! `POST /v1/conversations` — a group or public room; `conversation.created` to its members.
chat::http_function!(|s, request| chat::http::create_conversation(&s.verifier, &s.store, &s.pusher, &request));
