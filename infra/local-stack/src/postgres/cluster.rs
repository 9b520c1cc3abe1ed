//! A private PostgreSQL cluster: initdb once into `<state>/pgdata`, then the
//! server on a free loopback port for as long as the runner lives.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tracing::{info, warn};

use super::binaries::{self, Binaries};
use super::initdb::{initialize_if_needed, SUPERUSER};
use super::layout::{self, make_owned_dir, socket_directory_setting};
use super::os_user::{self, run_as, ServerUser};
use super::DatabaseTarget;
use crate::error::{Context, Error, Result};
use crate::process::{self, Readiness};
use crate::{files, ports};

const START_DEADLINE: Duration = Duration::from_secs(60);
/// Fast shutdown rolls back open transactions; it is quick unless a
/// checkpoint is large.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The free port we picked can be taken before the server binds it.
const PORT_ATTEMPTS: usize = 3;

pub struct Cluster {
    child: Child,
    target: DatabaseTarget,
    log_path: PathBuf,
    /// Cluster files kept outside the state dir, removed when ephemeral.
    remove_on_stop: Option<PathBuf>,
}

impl Cluster {
    pub async fn start(state_dir: &Path, ephemeral: bool) -> Result<Self> {
        let binaries = binaries::find()?;
        let owner = os_user::for_server().await?;
        let layout = layout::choose(state_dir, owner.as_ref(), ephemeral)?;
        let data_dir = layout.data_dir();
        initialize_if_needed(&binaries, &data_dir, owner.as_ref(), ephemeral).await?;
        let socket_dir = layout.socket_dir();
        make_owned_dir(&socket_dir, owner.as_ref())?;

        let log_path = state_dir.join("postgres.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = ports::free_port()?;
            let mut child = spawn_server(
                &binaries,
                &data_dir,
                &socket_dir,
                port,
                &log_path,
                owner.as_ref(),
                ephemeral,
            )?;
            let target = DatabaseTarget {
                host: "127.0.0.1".into(),
                port,
                database: "postgres".into(),
                superuser: SUPERUSER.into(),
                superuser_password: None,
            };
            let probe = target.clone();
            let readiness = process::wait_until(&mut child, START_DEADLINE, || {
                let probe = probe.clone();
                async move { probe.connect().await.is_ok() }
            })
            .await;
            let log_tail = || files::tail(&log_path, 20);
            match readiness {
                Readiness::Ready => {
                    info!(port, data_dir = %data_dir.display(), "postgres is up");
                    return Ok(Self {
                        child,
                        target,
                        log_path,
                        remove_on_stop: (ephemeral && layout.outside_state_dir).then(|| layout.root.clone()),
                    });
                }
                Readiness::Exited(_) if attempt < PORT_ATTEMPTS && lost_the_port(&log_tail()) => {
                    warn!(port, "postgres could not bind its port; trying another");
                }
                Readiness::Exited(status) => {
                    return Err(server_failed(
                        &format!("postgres exited during start-up ({status})"),
                        &log_path,
                    ))
                }
                Readiness::TimedOut => {
                    process::stop(&mut child, "postgres", libc::SIGQUIT, Duration::from_secs(5)).await;
                    return Err(server_failed(
                        &format!("postgres did not accept connections within {START_DEADLINE:?}"),
                        &log_path,
                    ));
                }
            }
        }
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.target
    }

    pub async fn exited(&mut self) -> String {
        let status = self.child.wait().await;
        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        server_failed(&format!("postgres exited unexpectedly ({status})"), &self.log_path).to_string()
    }

    pub async fn stop(mut self) {
        // SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
        process::stop(&mut self.child, "postgres", libc::SIGINT, STOP_GRACE).await;
        if let Some(dir) = self.remove_on_stop.take() {
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                warn!("could not remove {}: {error}", dir.display());
            }
        }
    }
}

fn spawn_server(
    binaries: &Binaries,
    data_dir: &Path,
    socket_dir: &Path,
    port: u16,
    log_path: &Path,
    owner: Option<&ServerUser>,
    ephemeral: bool,
) -> Result<Child> {
    let log = std::fs::File::create(log_path).context(|| format!("creating {}", log_path.display()))?;
    let log_too = log.try_clone().context(|| "duplicating the log file handle".into())?;
    let mut command = Command::new(&binaries.postgres);
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .arg("-c")
        .arg(format!(
            "unix_socket_directories={}",
            socket_directory_setting(socket_dir)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_too));
    if binaries.has_pg_stat_statements() {
        command.args(["-c", "shared_preload_libraries=pg_stat_statements"]);
    }
    if ephemeral {
        // Thrown away on exit: durability only costs time.
        command.args(["-c", "fsync=off"]);
    }
    run_as(&mut command, owner);
    process::supervise(&mut command)
        .spawn()
        .context(|| format!("starting {}", binaries.postgres.display()))
}

fn lost_the_port(log: &str) -> bool {
    log.contains("could not bind") || log.contains("Address already in use")
}

fn server_failed(what: &str, log_path: &Path) -> Error {
    Error::Setup(format!(
        "{what}. Last lines of {}:\n{}",
        log_path.display(),
        files::tail(log_path, 20)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_clash_is_recognized_in_the_log() {
        assert!(lost_the_port(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!lost_the_port("FATAL:  data directory has wrong ownership"));
    }
}
