//! `POST /v1/conversations/{id}/leave`.
chat::http_function!(|s, request| chat::http::leave_conversation(&s.verifier, &s.store, &s.pusher, &request));
