//! WebSocket `$connect`: registers the connection; presence online to contacts.
chat::websocket_function!(|s, event| chat::ws::connect(&s.store, &s.pusher, &event));
