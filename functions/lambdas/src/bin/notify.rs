//! The notification function: Web Push and the webhook for users who were
//! offline when a message came (invoked asynchronously by the send functions).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), chat::lambda::Error> {
    chat::notify::run().await
}
