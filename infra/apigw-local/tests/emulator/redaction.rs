//! The emulator's own log lines, captured, never show a token, however the
//! client spelled or placed it.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::helpers::{ws_connect, ws_connect_with, TestStack, PATIENCE};
use apigw_local::WsLimits;

/// Everything the emulator logged in this test binary since the first call.
fn captured() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Capture(log))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
        log
    })
}

struct Capture(&'static Mutex<Vec<u8>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&captured().lock().unwrap()).into_owned()
}

/// Looks like a JWT (the echo authorizer allows any token starting "allow").
fn token(tag: &str) -> String {
    format!("allow{tag}.c2VjcmV0LXBheWxvYWQ.{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log() {
    captured();
    let mut stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let url = stack.emulator().websocket_url();

    // A percent-encoded name is `token` to API Gateway: authorised, and redacted.
    let encoded = token("Encoded");
    let ws = ws_connect(&format!("{url}?%74oken={encoded}"))
        .await
        .expect("authorised");
    drop(ws);
    let repeated = [token("First"), token("Second")];
    let ws = ws_connect(&format!("{url}?token={}&token={}", repeated[0], repeated[1]))
        .await
        .expect("authorised by the last one");
    drop(ws);
    // `TOKEN` is another parameter to API Gateway (refused here), still redacted.
    let upper = token("Upper");
    assert!(ws_connect(&format!("{url}?TOKEN={upper}")).await.is_err());
    // In the subprotocols, as browsers send it.
    let offered = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwcm90b2NvbCJ9.{}",
        uuid::Uuid::new_v4().simple()
    );
    let (ws, _) = ws_connect_with(
        &format!("{url}?token={}", token("Query")),
        Some(&format!("chat, {offered}")),
    )
    .await
    .expect("authorised");
    drop(ws);

    // The HTTP API: query and Authorization header.
    let bearer = token("Bearer");
    let in_query = token("HttpQuery");
    let response = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
        .get(format!(
            "{}/v1/items/1?access%5Ftoken={in_query}",
            stack.emulator().http_url()
        ))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stack.stop().await;

    let log = log_text();
    for secret in [
        &encoded,
        &repeated[0],
        &repeated[1],
        &upper,
        &offered,
        &bearer,
        &in_query,
    ] {
        let tail = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(tail), "{secret} is in the log:\n{log}");
    }
    for expected in [
        "?token=[redacted]",
        "?token=[redacted]&token=[redacted]",
        "?TOKEN=[redacted]",
        "chat, [redacted]",
        "Bearer [redacted]",
        "?access_token=[redacted]",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
}
