//! The isolated stack under test: `chat-local up --ephemeral` from the
//! release build, on free ports with a fresh database, run in the checkout
//! whose template and SQL it serves. It holds the read end
//! of a pipe whose write end lives here, so it stops (and removes its state)
//! when this process exits, however that happens. It is never killed: a
//! killed runner could not stop its Postgres.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use apigw_local::EmulatorStats;
use serde::Deserialize;
use tokio::process::{Child, ChildStdin, Command};

/// Start-up includes creating a Postgres cluster; on a slow disk that is slow.
const READY_WAIT: Duration = Duration::from_secs(180);
/// Stopping closes every socket (running `$disconnect`) and Postgres.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// What `chat-local` writes to its ready file (the fields used here).
#[derive(Debug, Clone, Deserialize)]
pub struct StackInfo {
    pub http_url: String,
    pub websocket_url: String,
    pub database_url: String,
    pub jwt_secret: String,
}

pub struct Stack {
    pub info: StackInfo,
    /// Ready file written → start-up time, as the runner measured nothing itself.
    pub ready_after: Duration,
    child: Child,
    stdin: Option<ChildStdin>,
    http: reqwest::Client,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Writes `template` to `to` with the Defaults of `parameters` replaced: a
/// copy `chat-local up --template` serves (the checkout's own may be an
/// earlier commit's, whose `chat-local` knows no other way).
fn write_template_with(template: &Path, parameters: &[(String, String)], to: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(template).map_err(|e| format!("reading {}: {e}", template.display()))?;
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", template.display()))?;
    for (name, value) in parameters {
        let default = doc
            .get_mut("Parameters")
            .and_then(|p| p.get_mut(name.as_str()))
            .and_then(|p| p.get_mut("Default"))
            .ok_or_else(|| format!("{} has no parameter {name} with a Default", template.display()))?;
        *default = serde_yaml::Value::String(value.clone());
    }
    let text = serde_yaml::to_string(&doc).map_err(|e| e.to_string())?;
    std::fs::write(to, text).map_err(|e| format!("writing {}: {e}", to.display()))
}

/// `target/release` of this workspace, or of `CARGO_TARGET_DIR`.
pub fn default_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release")
}

impl Stack {
    /// `checkout`: where `chat-local` runs, so that it serves that checkout's
    /// `template.yaml` and `sql/`; `parameters` replace the Defaults of the
    /// template's parameters (in a copy). `extra`: more `chat-local up`
    /// options (the chaos scenario's faults).
    pub async fn start(
        bin_dir: &Path,
        checkout: &Path,
        max_instances: Option<usize>,
        parameters: &[(String, String)],
        extra: &[String],
    ) -> Result<Stack, String> {
        let runner = bin_dir.join("chat-local");
        if !runner.is_file() {
            return Err(format!(
                "{} is missing: build with `cargo build --release --workspace --bins` (make bench does)",
                runner.display()
            ));
        }
        let ready_dir = std::env::temp_dir().join(format!("chat-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&ready_dir).map_err(|e| format!("creating {}: {e}", ready_dir.display()))?;
        let ready_file = ready_dir.join("ready.json");
        let mut command = Command::new(&runner);
        command
            .current_dir(checkout)
            .args(["up", "--ephemeral", "--exit-on-stdin-eof", "--ready-file"])
            .arg(&ready_file)
            .arg("--bin-dir")
            .arg(bin_dir)
            // Errors only, unless asked: logging every delivery would cost the
            // functions more than the work measured, and the table must stay readable.
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::piped())
            // The banner would interleave with the table; errors still show on stderr.
            .stdout(Stdio::null());
        if let Some(n) = max_instances {
            command.args(["--max-instances", &n.to_string()]);
        }
        if !parameters.is_empty() {
            let template = ready_dir.join("template.yaml");
            write_template_with(&checkout.join("template.yaml"), parameters, &template)?;
            command.arg("--template").arg(template);
        }
        command.args(extra);
        // Faults come from `extra` alone: none inherited from a shell that
        // set them for `make dev` (chat-local reads CHAT_FAULT_* when no flag
        // says otherwise).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CHAT_FAULT_") {
                command.env_remove(name);
            }
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", runner.display()))?;
        let stdin = child.stdin.take();
        let info = loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file) {
                break serde_json::from_str::<StackInfo>(&text).map_err(|e| format!("the ready file: {e}"))?;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("chat-local exited before it was ready: {status}"));
            }
            if started.elapsed() > READY_WAIT {
                return Err("the local stack did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ready_after = started.elapsed();
        let _ = std::fs::remove_dir_all(&ready_dir);
        Ok(Stack {
            info,
            ready_after,
            child,
            stdin,
            http: reqwest::Client::new(),
        })
    }

    /// The runner's process id: the emulator's, and the parent of every
    /// function instance, Postgres and the PostgREST server.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// How the runner ended, if it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A superuser connection to the stack's database.
    pub async fn db(&self) -> Result<tokio_postgres::Client, String> {
        let (client, connection) = tokio_postgres::connect(&self.info.database_url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to the stack's database: {e}"))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The emulator's per-function counters (`GET /__emulator/stats`).
    pub async fn emulator_stats(&self) -> Result<EmulatorStats, String> {
        serde_json::from_value(self.emulator_stats_json().await?).map_err(|e| format!("emulator stats: {e}"))
    }

    /// The same, as the emulator wrote it (its fault counters included).
    pub async fn emulator_stats_json(&self) -> Result<serde_json::Value, String> {
        let what = "emulator stats";
        let response = self.emulator_call(reqwest::Method::GET, "stats", what).await?;
        response.json().await.map_err(|e| format!("{what}: {e}"))
    }

    /// Stops every idle function instance (`POST /__emulator/reclaim-idle`):
    /// how many, or `None` from an emulator too old to do it.
    pub async fn reclaim_idle(&self) -> Result<Option<u64>, String> {
        let what = "reclaiming idle instances";
        let response = self.emulator_call(reqwest::Method::POST, "reclaim-idle", what).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer: serde_json::Value = response.json().await.map_err(|e| format!("{what}: {e}"))?;
        Ok(answer["reclaimed"].as_u64())
    }

    /// `/__emulator/{path}` on the HTTP port; `what` names it in errors.
    async fn emulator_call(
        &self,
        method: reqwest::Method,
        path: &str,
        what: &str,
    ) -> Result<reqwest::Response, String> {
        let url = format!("{}/__emulator/{path}", self.info.http_url.trim_end_matches('/'));
        self.http
            .request(method, url)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))
    }

    /// Closes the runner's stdin and waits for it to stop everything.
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_WAIT, self.child.wait()).await.is_err() {
            eprintln!("chat-bench: the stack is still stopping; leaving it to finish");
        }
    }
}
