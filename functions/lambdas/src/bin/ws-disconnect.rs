//! WebSocket `$disconnect`: unregisters; presence offline to contacts.
chat::websocket_function!(|s, event| chat::ws::disconnect(&s.store, &s.pusher, &event));
