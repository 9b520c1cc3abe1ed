//! `GET /v1/conversations/{id}/messages`.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_http(move |request| async move { chat::http::list_messages(&s.verifier, &s.store, &request).await })
        .await
}
