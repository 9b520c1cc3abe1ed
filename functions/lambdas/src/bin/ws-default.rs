//! WebSocket `$default`: `unknown_action` / `invalid_json` errors.
chat::websocket_function!(|s, event| chat::ws::default_route(&s.pusher, &event));
