//! The stack every test of this binary shares: one isolated local stack per
//! run (fresh database, free ports, the real function binaries behind the API
//! Gateway emulator), started by the first test that asks for it.
//!
//! The stack is `chat-local up --ephemeral --exit-on-stdin-eof`: it holds the
//! read end of a pipe whose write end lives in this process, so it shuts down
//! (and removes its state) when the test process exits, however that happens.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::http::Http;
use super::ws::WsClient;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

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
    /// The functions' AWS key and region: `@connections` takes only requests
    /// signed with them.
    pub aws_region: String,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub aws_session_token: Option<String>,
    /// The local Web Push application server key.
    pub vapid_public_key: String,
    pub vapid_private_key: String,
}

pub struct Stack {
    pub info: StackInfo,
    _process: Mutex<(Child, ChildStdin)>,
}

/// WebSocket limits the test stack runs with, small where a test waits on them.
pub const TEST_IDLE_TIMEOUT_SECS: u64 = 600;

/// template.yaml parameters the test stack runs with instead of their
/// defaults: one user of a test may send a burst of 150 messages (history
/// paging sends 120 in a row). Every test has users of its own, so only a test
/// that floods meets a limit. The sweep leaves live connections alone for a
/// day: tests that backdate a connection's last seen time must not race it
/// (the sweep has stacks of its own, [`Stack::start_with`]).
pub const TEST_PARAMETERS: [(&str, &str); 2] = [("RateLimitMessagesBurst", "150"), ("StaleConnectionSeconds", "86400")];

/// A template parameter's value on the test stack: [`TEST_PARAMETERS`], else
/// its default in template.yaml.
pub fn parameter(name: &str) -> String {
    if let Some((_, value)) = TEST_PARAMETERS.iter().find(|(n, _)| *n == name) {
        return value.to_string();
    }
    let template = super::template::load("template.yaml");
    let default = template["Parameters"][name]
        .get("Default")
        .unwrap_or_else(|| panic!("template.yaml has no parameter {name} with a default"));
    super::template::text(default).unwrap_or_else(|| panic!("{name}'s default is not a scalar"))
}

/// How long the emulator waits before retrying a failed asynchronous
/// invocation (AWS: about a minute), so that a test sees an event through its
/// retries to the failure destination.
pub const TEST_ASYNC_RETRY_DELAY_MS: u64 = 200;

/// template.yaml with these parameters as the defaults, and the webhook
/// pointed at the receiver of this run, written into `dir`.
fn test_template(dir: &Path, parameters: &[(&str, &str)]) -> PathBuf {
    let mut template = super::template::load("template.yaml");
    let webhook_url = super::push_service::push_service().webhook_url();
    let run_parameters = [
        ("WebhookUrl", webhook_url.as_str()),
        ("WebhookSecret", super::push_service::WEBHOOK_SECRET),
    ];
    for &(name, value) in parameters.iter().chain(&run_parameters) {
        let default = template
            .get_mut("Parameters")
            .and_then(|p| p.get_mut(name))
            .and_then(|p| p.get_mut("Default"))
            .unwrap_or_else(|| panic!("template.yaml has no parameter {name} with a default"));
        *default = serde_yaml::Value::String(value.to_owned());
    }
    let path = dir.join("template.yaml");
    std::fs::write(&path, serde_yaml::to_string(&template).unwrap()).unwrap();
    path
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn binaries_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("debug")
}

/// The stack shared by every test of the run, started on first use; tests
/// run in parallel threads against it, each with its own users.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(start_stack)
}

fn start_stack() -> Stack {
    Stack::start(&[], &TEST_PARAMETERS)
}

impl Stack {
    /// A stack of the caller's own, not the shared one: started with extra
    /// `chat-local up` options (fault injection, faster schedules) and
    /// template parameters over [`TEST_PARAMETERS`]. It stops when dropped.
    pub fn start_with(options: &[&str], parameters: &[(&str, &str)]) -> Stack {
        let mut all: Vec<(&str, &str)> = TEST_PARAMETERS
            .iter()
            .copied()
            .filter(|(name, _)| !parameters.iter().any(|(given, _)| given == name))
            .collect();
        all.extend_from_slice(parameters);
        Stack::start(options, &all)
    }

    fn start(options: &[&str], parameters: &[(&str, &str)]) -> Stack {
        let bin_dir = binaries_dir();
        let runner = bin_dir.join("chat-local");
        for needed in [runner.clone(), bin_dir.join("chat-functions")] {
            assert!(
                needed.exists(),
                "{} is missing: run `cargo build --workspace --bins --examples` first (make test does)",
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
            .arg("--template")
            .arg(test_template(&ready_dir, parameters))
            .args(["--ws-idle-timeout", &TEST_IDLE_TIMEOUT_SECS.to_string()])
            .args(["--async-retry-delay-ms", &TEST_ASYNC_RETRY_DELAY_MS.to_string()])
            .args(options)
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
            &[
                &id,
                &format!("{name}@example.test"),
                &json!({"username": name, "display_name": label}),
            ],
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
        encode(
            &Header::new(Algorithm::HS256),
            &all,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
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
        Http::new(&self.info.http_url)
    }

    pub async fn connect(&self, user: &User) -> WsClient {
        WsClient::connect(&self.websocket_url_with_token(&user.token))
            .await
            .expect("websocket connect")
    }

    pub fn websocket_url_with_token(&self, token: &str) -> String {
        format!("{}?token={}", self.info.websocket_url, token)
    }

    /// The API Gateway Management API client, as a function builds it: with
    /// the functions' key.
    pub fn management_api(&self) -> aws_sdk_apigatewaymanagement::Client {
        let info = &self.info;
        self.management_api_signing_with(&info.aws_secret_access_key, info.aws_session_token.clone())
    }

    /// The Management API client with the functions' access key id but this
    /// secret and session token (a forger's guess, when they differ).
    pub fn management_api_signing_with(
        &self,
        secret_access_key: &str,
        session_token: Option<String>,
    ) -> aws_sdk_apigatewaymanagement::Client {
        use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
        let info = &self.info;
        let credentials = Credentials::new(&info.aws_access_key_id, secret_access_key, session_token, None, "test");
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            // As the functions send: the SDK is built without an HTTP client of its own.
            .http_client(chat::push::Http1Client::new())
            .region(Region::new(info.aws_region.clone()))
            .endpoint_url(&info.management_url)
            .credentials_provider(credentials)
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// Live connection ids of a user, straight from the database.
    pub async fn connection_ids(&self, user: &User) -> Vec<String> {
        self.db()
            .await
            .query(
                "select connection_id from connections where user_id = $1 order by connected_at",
                &[&user.id],
            )
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

    pub async fn message_count(&self, conversation_id: Uuid) -> i64 {
        self.db()
            .await
            .query_one(
                "select count(*) from messages where conversation_id = $1",
                &[&conversation_id],
            )
            .await
            .unwrap()
            .get(0)
    }
}
