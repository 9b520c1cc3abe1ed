//! WebSocket `markRead`: move the read watermark; `read` to the members.
chat::websocket_function!(|s, event| chat::ws::mark_read(&s.store, &s.pusher, &event));
