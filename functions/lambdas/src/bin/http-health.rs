//! `GET /v1/health`.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_http(move |_request| async move { chat::http::health(&s.store).await }).await
}
