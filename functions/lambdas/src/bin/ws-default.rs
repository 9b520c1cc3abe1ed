//! WebSocket `$default`: an `error` event for frames no route matches.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_websocket(move |event| async move { chat::ws::default_route(&s.pusher, &event).await }).await
}
