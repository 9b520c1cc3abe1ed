//! WebSocket `$connect`: registers the connection.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_websocket(move |event| async move { chat::ws::connect(&s.store, &event).await }).await
}
