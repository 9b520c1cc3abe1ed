//! `POST /v1/conversations/direct`.
#[tokio::main]
async fn main() -> Result<(), chat::lambda::Error> {
    let s = chat::lambda::services()?;
    chat::lambda::run_http(move |request| async move {
        chat::http::open_direct_conversation(&s.verifier, &s.store, &request).await
    })
    .await
}
