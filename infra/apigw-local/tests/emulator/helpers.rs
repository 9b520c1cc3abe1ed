//! A real emulator on free ports running the echo example as every function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use apigw_local::{Credentials, Emulator, EmulatorConfig, EmulatorStats, RunOptions, WsLimits};
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Region};
use aws_sdk_apigatewaymanagement::{Client, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous bound so a broken emulator fails a test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The directory of the echo example binary. `cargo test` builds examples
/// already; when a filtered run did not, or the binary is older than its
/// source, build it once per test binary.
fn echo_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
        let examples = profile_dir.join("examples");
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/echo_function.rs");
        let binary = modified(&examples.join("echo_function"));
        if binary.is_some() && binary >= modified(&source) {
            return examples;
        }
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "-p",
                "apigw-local",
                "--example",
                "echo_function",
                "--target-dir",
            ])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the echo example failed");
        examples
    })
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The key the test emulators give their functions; `@connections` accepts
/// only requests it signed.
pub fn role_key() -> Credentials {
    Credentials {
        access_key_id: "ASIATESTROLE00000001".into(),
        secret_access_key: "test-role-secret-access-key".into(),
        session_token: Some("test-role-session-token".into()),
    }
}

pub struct TestStack {
    emulator: Option<Emulator>,
    pub record_dir: PathBuf,
}

impl TestStack {
    pub async fn start(template: &str, ws_limits: WsLimits) -> TestStack {
        TestStack::start_with(template, ws_limits, RunOptions::default()).await
    }

    /// With injected faults or one interval for every schedule.
    pub async fn start_with(template: &str, ws_limits: WsLimits, options: RunOptions) -> TestStack {
        let record_dir = std::env::temp_dir().join(format!("apigw-local-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&record_dir).expect("record dir");
        let config = EmulatorConfig {
            template_path: fixture(template),
            bin_dir: echo_bin_dir().to_path_buf(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            ws_addr: "127.0.0.1:0".parse().unwrap(),
            parameter_overrides: BTreeMap::from([("Greeting".to_string(), "hi".to_string())]),
            function_env: BTreeMap::from([
                ("ECHO_RECORD_DIR".to_string(), record_dir.display().to_string()),
                ("EXTRA_FROM_CONFIG".to_string(), "yes".to_string()),
            ]),
            ws_limits,
            default_max_instances: 4,
            region: "us-east-1".into(),
            credentials: role_key(),
            async_retry_delay: std::time::Duration::from_millis(100),
        };
        let emulator = Emulator::start_with(config, options).await.expect("emulator starts");
        TestStack {
            emulator: Some(emulator),
            record_dir,
        }
    }

    pub fn emulator(&self) -> &Emulator {
        self.emulator.as_ref().expect("running")
    }

    /// Shuts the emulator down; records stay readable until the stack drops.
    pub async fn stop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            tokio::time::timeout(PATIENCE, emulator.shutdown())
                .await
                .expect("shutdown in time");
        }
    }

    /// Events the function with this name has received so far.
    pub fn records(&self, function: &str) -> Vec<Value> {
        let path = self.record_dir.join(format!("{function}.jsonl"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Polls the stats until `done` holds for them, and returns them.
    pub async fn wait_stats(&self, what: &str, done: impl Fn(&EmulatorStats) -> bool) -> EmulatorStats {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.emulator().stats();
            if done(&stats) {
                return stats;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {stats:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The id of the connection whose `$connect` the function saw last.
    pub fn last_connection_id(&self) -> String {
        let connects = self.records("ConnectFunction");
        let last = connects.last().expect("a $connect event");
        last["requestContext"]["connectionId"]
            .as_str()
            .expect("connectionId")
            .to_string()
    }

    /// The `$disconnect` event of `connection`, once the function has had it.
    pub async fn wait_disconnect(&self, connection: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let records = self.records("DisconnectFunction");
            if let Some(event) = records
                .into_iter()
                .find(|e| e["requestContext"]["connectionId"] == connection)
            {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no $disconnect for {connection}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // Dropping the emulator kills its processes even when a test failed.
        self.emulator.take();
        let _ = std::fs::remove_dir_all(&self.record_dir);
    }
}

pub async fn ws_connect(url: &str) -> Result<Ws, tungstenite::Error> {
    Ok(ws_connect_with(url, None).await?.0)
}

/// Connects offering `protocol` in `Sec-WebSocket-Protocol`; also returns the
/// handshake response.
pub async fn ws_connect_with(
    url: &str,
    protocol: Option<&str>,
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("user-agent", HeaderValue::from_static("apigw-local-tests"));
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(protocol).unwrap());
    }
    tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
}

/// The HTTP status of a refused handshake.
pub async fn refused_status(url: &str) -> u16 {
    match ws_connect(url).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("handshake unexpectedly succeeded"),
    }
}

pub async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.expect("send");
}

/// The next text message, as JSON.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("message in time")
            .expect("socket open")
            .expect("message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns it.
pub async fn next_close(ws: &mut Ws) -> Option<CloseFrame> {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next()).await.expect("close in time");
        match message {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket error before close: {error}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Sends `{"action": "echo"}` and returns the MESSAGE event the function saw,
/// which it posts back through the Management API.
pub async fn echo_event(ws: &mut Ws) -> Value {
    send_json(ws, serde_json::json!({"action": "echo"})).await;
    let posted = next_json(ws).await;
    posted["event"].clone()
}

/// The next message of any kind.
pub async fn next_message(ws: &mut Ws) -> Message {
    tokio::time::timeout(PATIENCE, ws.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("message")
}

/// The Management API SDK as a function builds it, with the functions' key.
pub fn sdk(endpoint: String) -> Client {
    let key = role_key();
    sdk_with(
        endpoint,
        aws_credential_types::Credentials::new(
            key.access_key_id,
            key.secret_access_key,
            key.session_token,
            None,
            "tests",
        ),
    )
}

pub fn sdk_with(endpoint: String, credentials: aws_credential_types::Credentials) -> Client {
    let config = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        // As the functions send: the SDK is built without an HTTP client of its own.
        .http_client(chat::push::Http1Client::new())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

/// The SDK with the functions' key and `retry` (the default makes 3 attempts).
pub fn sdk_retrying(endpoint: String, retry: RetryConfig) -> Client {
    let config = sdk(endpoint).config().to_builder().retry_config(retry).build();
    Client::from_conf(config)
}

/// A POST to `url` signed with `key` by the emulator's own signer.
pub fn signed_post(url: &str, body: &[u8], key: &Credentials) -> reqwest::RequestBuilder {
    let parsed = reqwest::Url::parse(url).unwrap();
    let host = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap());
    let headers = [("host", host.as_str())];
    let request = apigw_local::sigv4::Request {
        method: "POST",
        path: parsed.path(),
        query: parsed.query().unwrap_or_default(),
        headers: &headers,
        body,
    };
    let mut builder = reqwest::Client::new().post(url).body(body.to_vec());
    for (name, value) in apigw_local::sigv4::sign(&request, key, "us-east-1", "execute-api", chrono::Utc::now()) {
        builder = builder.header(name, value);
    }
    builder
}
