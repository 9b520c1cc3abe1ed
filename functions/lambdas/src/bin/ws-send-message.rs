//! WebSocket `sendMessage`: store, ack the sender, push to the members.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_websocket(move |event| async move { chat::ws::send_message(&s.store, &s.pusher, &event).await })
        .await
}
