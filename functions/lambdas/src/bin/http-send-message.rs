//! `POST /v1/conversations/{id}/messages`: store, then push over WebSocket.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_http(move |request| async move {
        chat::http::send_message(&s.verifier, &s.store, &s.pusher, &request).await
    })
    .await
}
