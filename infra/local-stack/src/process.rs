//! Child processes that cannot outlive the runner, stop in order, and whose
//! output is kept for error messages.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tracing::warn;

/// Makes `command` a supervised child:
/// - the kernel SIGKILLs it when the runner dies, however it dies
///   (PR_SET_PDEATHSIG). The signal follows the *thread* that spawned the
///   child, so spawn only from async tasks (runtime threads live as long as
///   the runtime), never from `spawn_blocking`;
/// - it gets its own process group, so a terminal's Ctrl-C reaches only the
///   runner, which then stops everything in order;
/// - dropping its `Child` kills it, for error paths that never reach a stop.
pub fn supervise(command: &mut Command) -> &mut Command {
    let runner = std::process::id();
    command.process_group(0).kill_on_drop(true);
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The runner may have died before the prctl took effect.
            if libc::getppid() as u32 != runner {
                return Err(std::io::Error::other("the runner exited while starting a child"));
            }
            Ok(())
        });
    }
    command
}

/// Sends `signal`, waits up to `grace`, then SIGKILLs the child's whole
/// process group (a server's workers included) and reaps it.
pub async fn stop(child: &mut Child, name: &str, signal: libc::c_int, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let Some(pid) = child.id() else { return };
    let pid = pid as libc::pid_t;
    // SAFETY: plain kill(2) on a child we have not reaped yet.
    unsafe { libc::kill(pid, signal) };
    if tokio::time::timeout(grace, child.wait()).await.is_ok() {
        return;
    }
    warn!("{name} did not stop within {grace:?}; killing it");
    // SAFETY: as above; the negative pid addresses its process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait().await;
}

/// The last lines a child printed, kept for the error message if it fails.
#[derive(Clone, Default)]
pub struct OutputTail(Arc<Mutex<VecDeque<String>>>);

const TAIL_LINES: usize = 40;

impl OutputTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("output tail lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn text(&self) -> String {
        let lines = self.0.lock().expect("output tail lock");
        lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// Copies a piped child's stdout and stderr to the runner's stderr, each line
/// prefixed (`[postgrest] …`), and keeps the tail.
pub fn forward_output(child: &mut Child, prefix: &'static str) -> OutputTail {
    let tail = OutputTail::default();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, prefix, tail.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, prefix, tail.clone()));
    }
    tail
}

async fn forward_lines(stream: impl AsyncRead + Unpin, prefix: &'static str, tail: OutputTail) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // Ignored: a closed stderr must not stop the draining (the child
        // would block on a full pipe).
        let _ = writeln!(std::io::stderr(), "{prefix} {line}");
        tail.push(line);
    }
}

/// Polls until `ready` says yes, the child exits, or `deadline` passes.
pub async fn wait_until<F, Fut>(child: &mut Child, deadline: Duration, mut ready: F) -> Readiness
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Readiness::Exited(status);
        }
        if ready().await {
            return Readiness::Ready;
        }
        if tokio::time::Instant::now() >= give_up {
            return Readiness::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub enum Readiness {
    Ready,
    Exited(std::process::ExitStatus),
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_escalates_to_sigkill_for_a_child_that_ignores_the_signal() {
        let mut command = Command::new("sh");
        command.args(["-c", "trap '' TERM; sleep 30"]);
        let mut child = supervise(&mut command).spawn().unwrap();
        // Give the shell time to install its trap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        stop(&mut child, "test child", libc::SIGTERM, Duration::from_millis(300)).await;
        assert!(child.try_wait().unwrap().is_some());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn output_is_forwarded_and_its_tail_kept() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "echo one; echo two >&2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = supervise(&mut command).spawn().unwrap();
        let tail = forward_output(&mut child, "[test]");
        child.wait().await.unwrap();
        for _ in 0..50 {
            if tail.text().lines().count() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = tail.text();
        assert!(text.contains("one") && text.contains("two"), "{text}");
    }
}
