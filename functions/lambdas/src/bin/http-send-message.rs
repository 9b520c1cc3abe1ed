//! `POST /v1/conversations/{id}/messages` — store, then push over WebSocket.
chat::http_function!(|s, request| chat::http::send_message(
    &s.verifier,
    &s.store,
    &s.pusher,
    &s.notifications,
    &request
));
