//! WebSocket `ping`: `pong`, and refresh last seen.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_websocket(move |event| async move { chat::ws::ping(&s.store, &s.pusher, &event).await }).await
}
