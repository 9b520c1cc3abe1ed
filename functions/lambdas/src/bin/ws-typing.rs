//! WebSocket `typing`: relay to the other members with `expires_at`.
chat::websocket_function!(|s, event| chat::ws::typing(&s.store, &s.pusher, &event));
