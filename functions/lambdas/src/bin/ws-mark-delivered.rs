//! WebSocket `markDelivered`: move the delivered watermark; `delivered` to the senders.
chat::websocket_function!(|s, event| chat::ws::mark_delivered(&s.store, &s.pusher, &event));
