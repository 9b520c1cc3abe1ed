//! WebSocket `typing`: relay to the other members' connections.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_websocket(move |event| async move { chat::ws::typing(&s.store, &s.pusher, &event).await }).await
}
