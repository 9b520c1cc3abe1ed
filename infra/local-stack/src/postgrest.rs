//! PostgREST, served by `postrust` (crate postrust-server) in PostgREST
//! compatibility mode: the REST surface at the root, RPC results unwrapped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::ports;
use crate::process::{self, OutputTail, Readiness};

const BINARY: &str = "postrust";
const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The free port we picked can be taken before postrust binds it.
const PORT_ATTEMPTS: usize = 3;

pub struct PostgrestSettings<'a> {
    /// 0: any free port.
    pub port: u16,
    /// The login role's URL (`authenticator`), not the superuser's.
    pub database_url: String,
    pub jwt_secret: &'a str,
    /// Its working directory: somewhere without stray config files.
    pub work_dir: &'a Path,
}

pub struct Postgrest {
    child: Child,
    url: String,
    output: OutputTail,
}

impl Postgrest {
    /// Port 0 picks a free port, and another one if that is taken before
    /// postrust binds it.
    pub async fn start(settings: PostgrestSettings<'_>) -> Result<Self> {
        let binary = find_binary()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = if settings.port == 0 {
                ports::free_port()?
            } else {
                ports::ensure_free(settings.port, "--postgrest-port")?
            };
            match start_on(&binary, port, &settings).await {
                Ok(postgrest) => return Ok(postgrest),
                Err(failure) if settings.port == 0 && attempt < PORT_ATTEMPTS && failure.lost_port() => {
                    warn!(port, "postgrest could not bind its port; trying another");
                }
                Err(failure) => return Err(Error::Setup(failure.to_string())),
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn exited(&mut self) -> String {
        let status = self.child.wait().await;
        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        format!(
            "postgrest exited unexpectedly ({status}). Its last output:\n{}",
            self.output.text()
        )
    }

    pub async fn stop(mut self) {
        process::stop(&mut self.child, "postgrest", libc::SIGTERM, STOP_GRACE).await;
    }
}

async fn start_on(binary: &Path, port: u16, settings: &PostgrestSettings<'_>) -> Result<Postgrest, StartFailure> {
    let mut command = Command::new(binary);
    // A clean environment: postrust also reads PORT, RUST_LOG and any
    // PGRST_* variable, and the developer's shell may have those set.
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &settings.database_url)
        .env("PGRST_DB_SCHEMAS", "public")
        .env("PGRST_DB_ANON_ROLE", "anon")
        .env("PGRST_JWT_SECRET", settings.jwt_secret)
        .env("PGRST_SERVER_HOST", "127.0.0.1")
        .env("PGRST_SERVER_PORT", port.to_string())
        .env("PGRST_COMPAT_MODE", "true")
        // PostgREST listens for `NOTIFY pgrst, 'reload schema'` by default;
        // postrust only when asked.
        .env("PGRST_DB_CHANNEL_ENABLED", "true")
        .env("PGRST_LOG_LEVEL", "warn")
        .env("NO_COLOR", "1")
        .current_dir(settings.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process::supervise(&mut command).spawn().map_err(|error| StartFailure {
        what: format!("could not start {}: {error}", binary.display()),
        output: String::new(),
    })?;
    let output = process::forward_output(&mut child, "[postgrest]");
    let url = format!("http://127.0.0.1:{port}");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client builds");
    let probe_url = format!("{url}/");
    let readiness = process::wait_until(&mut child, START_DEADLINE, || {
        let request = http.get(&probe_url).send();
        async move { request.await.is_ok() }
    })
    .await;
    let what = match readiness {
        Readiness::Ready => {
            info!(%url, "postgrest is up");
            return Ok(Postgrest { child, url, output });
        }
        Readiness::Exited(status) => format!("postgrest ({}) exited during start-up ({status})", binary.display()),
        Readiness::TimedOut => {
            format!("postgrest did not answer on {url} within {START_DEADLINE:?}")
        }
    };
    process::stop(&mut child, "postgrest", libc::SIGTERM, STOP_GRACE).await;
    // Let the forwarding tasks drain what it printed last.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(StartFailure {
        what,
        output: output.text(),
    })
}

struct StartFailure {
    what: String,
    output: String,
}

impl StartFailure {
    fn lost_port(&self) -> bool {
        self.output.contains("Address already in use") || self.output.contains("os error 98")
    }
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}. Its last output:\n{}", self.what, self.output)
    }
}

/// On PATH, else where `cargo install` puts it.
fn find_binary() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(BINARY))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|home| home.join("bin").join(BINARY)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Error::Setup(format!(
                "`{BINARY}` (the PostgREST server, crate postrust-server) is not installed: run `make setup`"
            ))
        })
}
