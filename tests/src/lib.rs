//! End-to-end test harness: one isolated local stack per test binary (fresh
//! database, free ports, the real function binaries behind the API Gateway
//! emulator), and real HTTP and WebSocket clients.
//!
//! The stack is `chat-local up --ephemeral --exit-on-stdin-eof`: it holds the
//! read end of a pipe whose write end lives in this process, so it shuts down
//! (and removes its state) when the test process exits, however that happens.

pub mod ws;

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

pub use ws::WsClient;

/// Generous bound for anything to arrive; a test that waits this long has failed.
pub const ARRIVAL: Duration = Duration::from_secs(10);
/// How long a test watches for something that must NOT arrive.
pub const SILENCE: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub http_url: String,
    pub websocket_url: String,
    pub management_url: String,
    pub postgrest_url: String,
    pub database_url: String,
    pub jwt_secret: String,
    pub anon_key: String,
    pub service_role_key: String,
}

pub struct Stack {
    pub info: StackInfo,
    _process: Mutex<(Child, ChildStdin)>,
}

/// WebSocket limits the test stack runs with, small where a test waits on them.
pub const TEST_IDLE_TIMEOUT_SECS: u64 = 600;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn binaries_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

/// The stack shared by the tests of this binary, started on first use.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(start_stack)
}

fn start_stack() -> Stack {
    let bin_dir = binaries_dir();
    let runner = bin_dir.join("chat-local");
    for needed in [runner.clone(), bin_dir.join("ws-send-message")] {
        assert!(
            needed.exists(),
            "{} is missing: run `cargo build --workspace --bins` first (make test does)",
            needed.display()
        );
    }
    let ready_dir = std::env::temp_dir().join(format!("chat-e2e-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&ready_dir).unwrap();
    let ready_file = ready_dir.join("ready.json");
    let mut child = Command::new(&runner)
        .current_dir(workspace_root())
        .args(["up", "--ephemeral", "--exit-on-stdin-eof", "--ready-file"])
        .arg(&ready_file)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(["--ws-idle-timeout", &TEST_IDLE_TIMEOUT_SECS.to_string()])
        // Function logs only for warnings and errors, unless asked: a failing
        // test's output should show the failure, not every delivery.
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::piped())
        .spawn()
        .expect("start chat-local");
    let stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let info: StackInfo = loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file) {
            break serde_json::from_str(&text).expect("ready file is JSON");
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("chat-local exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "the local stack did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = std::fs::remove_dir_all(&ready_dir);
    Stack {
        info,
        _process: Mutex::new((child, stdin)),
    }
}

/// A user of the test stack with a valid access token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub token: String,
}

impl Stack {
    /// A fresh user, so tests never see each other's conversations or sockets.
    pub async fn new_user(&self, label: &str) -> User {
        let id = Uuid::new_v4();
        let name = format!("{label}_{}", &id.simple().to_string()[..8]);
        let db = self.db().await;
        db.execute(
            "insert into auth.users (id, email, raw_user_meta_data) values ($1, $2, $3)",
            &[&id, &format!("{name}@example.test"), &json!({"username": name, "display_name": label})],
        )
        .await
        .expect("insert user");
        let token = self.token(json!({"sub": id.to_string()}));
        User { id, name, token }
    }

    /// A token signed with the stack's secret: standard claims, overridden by `claims`.
    pub fn token(&self, claims: Value) -> String {
        self.token_signed_with(claims, &self.info.jwt_secret)
    }

    pub fn token_signed_with(&self, claims: Value, secret: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut all = json!({"role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600});
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        encode(&Header::new(Algorithm::HS256), &all, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    /// A superuser connection to the stack's database, to check what was stored.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.info.database_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    pub fn http(&self) -> Http {
        Http {
            base: self.info.http_url.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn connect(&self, user: &User) -> WsClient {
        WsClient::connect(&self.websocket_url_with_token(&user.token)).await.expect("websocket connect")
    }

    pub fn websocket_url_with_token(&self, token: &str) -> String {
        format!("{}?token={}", self.info.websocket_url, token)
    }

    /// The API Gateway Management API client, as a function would build it.
    pub fn management_api(&self) -> aws_sdk_apigatewaymanagement::Client {
        use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.info.management_url)
            .credentials_provider(Credentials::new("local", "local", None, None, "test"))
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// Live connection ids of a user, straight from the database.
    pub async fn connection_ids(&self, user: &User) -> Vec<String> {
        self.db()
            .await
            .query("select connection_id from connections where user_id = $1 order by connected_at", &[&user.id])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// Waits until `check` holds, polling; panics with `what` after [`ARRIVAL`].
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + ARRIVAL;
        while !check().await {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens (or finds) the direct conversation between `a` and `b`, as `a`.
    pub async fn direct_conversation(&self, a: &User, b: &User) -> Uuid {
        let (status, body) = self
            .http()
            .post(a, "/v1/conversations/direct", json!({"user_id": b.id}))
            .await;
        assert!(status == 201 || status == 200, "open direct: {status} {body}");
        Uuid::parse_str(body["conversation"]["id"].as_str().unwrap()).unwrap()
    }

    /// Two fresh users and the direct conversation between them.
    pub async fn direct_pair(&self) -> (User, User, Uuid) {
        let (a, b) = (self.new_user("alice").await, self.new_user("bob").await);
        let conversation = self.direct_conversation(&a, &b).await;
        (a, b, conversation)
    }

    pub async fn message_count(&self, conversation_id: Uuid) -> i64 {
        self.db()
            .await
            .query_one("select count(*) from messages where conversation_id = $1", &[&conversation_id])
            .await
            .unwrap()
            .get(0)
    }
}

/// A small REST client that returns (status, JSON body).
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    pub async fn get(&self, user: &User, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)).bearer_auth(&user.token)).await
    }

    pub async fn get_anonymous(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, user: &User, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(Some(&user.token), path, body.to_string()).await
    }

    pub async fn post_raw(&self, token: Option<&str>, path: &str, body: String) -> (u16, Value) {
        self.request(reqwest::Method::POST, token, path, Some(body)).await
    }

    pub async fn patch(&self, user: &User, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PATCH, Some(&user.token), path, Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, user: &User, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, Some(&user.token), path, None).await
    }

    /// Any method, with or without a token and a (raw) JSON body.
    pub async fn request(&self, method: reqwest::Method, token: Option<&str>, path: &str, body: Option<String>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }
}
