//! WebSocket `ping`: `pong`, refresh last seen.
chat::websocket_function!(|s, event| chat::ws::ping(&s.store, &s.pusher, &event));
