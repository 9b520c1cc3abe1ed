//! WebSocket `sendMessage`: store, ack the sender, push to the members.
chat::websocket_function!(|s, event| chat::ws::send_message(&s.store, &s.pusher, &s.notifications, &event));
