//! WebSocket `$connect` REQUEST authorizer.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), chat::lambda::Error> {
    let services = chat::lambda::services()?;
    chat::lambda::run_authorizer(&services.verifier).await
}
