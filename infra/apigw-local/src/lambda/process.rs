//! Function instances as OS processes of the function's real binary.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::sigv4::Credentials;
use crate::template::FunctionSpec;

/// Variables of the emulator's own environment a function still sees.
const INHERITED: [&str; 5] = ["PATH", "HOME", "RUST_LOG", "RUST_BACKTRACE", "TZ"];

/// How to start an instance of one function.
#[derive(Debug, Clone)]
pub(crate) struct LaunchConfig {
    pub logical_id: String,
    pub executable: PathBuf,
    pub task_root: PathBuf,
    /// Everything but the per-instance variables.
    pub env: BTreeMap<String, String>,
}

impl LaunchConfig {
    pub fn new(
        spec: &FunctionSpec,
        bin_dir: &Path,
        function_env: &BTreeMap<String, String>,
        region: &str,
        credentials: &Credentials,
    ) -> Self {
        let task_root = std::path::absolute(bin_dir).unwrap_or_else(|_| bin_dir.to_path_buf());
        let mut env = BTreeMap::new();
        for name in INHERITED {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.to_string(), value);
            }
        }
        if let Some(format) = &spec.log_format {
            env.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.clone());
        }
        env.extend(spec.env.clone());
        env.extend(function_env.clone());
        // Reserved by Lambda: neither the template nor overrides can change these.
        // The execution role's key is the one the Management API accepts.
        let reserved = [
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", spec.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.function_name),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", region.to_string()),
            ("AWS_DEFAULT_REGION", region.to_string()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_rust".into()),
            ("_HANDLER", spec.handler.clone()),
            ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ];
        for (name, value) in reserved {
            env.insert(name.to_string(), value);
        }
        // Each instance has a session token of its own (`spawn`).
        env.remove("AWS_SESSION_TOKEN");
        LaunchConfig {
            logical_id: spec.logical_id.clone(),
            executable: task_root.join(&spec.binary),
            task_root,
            env,
        }
    }

    /// Starts one instance talking to the Runtime API at `runtime_api`, with
    /// the execution role's key and `session_token`; its output is re-printed
    /// on the emulator's stderr, each line prefixed with the function's
    /// logical id.
    ///
    /// Call this from a runtime worker thread, never from `spawn_blocking`:
    /// the parent-death signal fires when the *thread* that forked exits.
    pub fn spawn(&self, runtime_api: SocketAddr, session_token: &str) -> io::Result<Child> {
        let mut command = Command::new(&self.executable);
        command
            .env_clear()
            .envs(&self.env)
            .env("AWS_SESSION_TOKEN", session_token)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name())
            .current_dir(&self.task_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Instances must never outlive the emulator, even when it is SIGKILLed.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The emulator may have died between fork and prctl.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::other("the emulator exited"));
                }
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        if let Some(stdout) = child.stdout.take() {
            relay_lines(stdout, self.logical_id.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            relay_lines(stderr, self.logical_id.clone());
        }
        Ok(child)
    }
}

/// `2026/11/21/[$LATEST]<32 hex>`, like Lambda's log stream names.
fn log_stream_name() -> String {
    format!(
        "{}/[$LATEST]{}",
        chrono::Utc::now().format("%Y/%m/%d"),
        uuid::Uuid::new_v4().simple()
    )
}

fn relay_lines(output: impl AsyncRead + Unpin + Send + 'static, logical_id: String) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(output);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    eprintln!("[{logical_id}] {}", text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    });
}

/// `exit status 1` / `signal: 9 (SIGKILL)`, as Lambda words a runtime exit.
pub(crate) fn describe_exit(status: io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(libc::SIGKILL)) => "signal: killed".to_string(),
            (None, Some(signal)) => format!("signal: {signal}"),
            (None, None) => status.to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec() -> FunctionSpec {
        FunctionSpec {
            logical_id: "EchoFunction".into(),
            function_name: "EchoFunction".into(),
            binary: "echo".into(),
            handler: "echo-handler".into(),
            env: BTreeMap::from([
                ("FROM_TEMPLATE".to_string(), "t".to_string()),
                ("OVERRIDDEN".to_string(), "template".to_string()),
                ("AWS_REGION".to_string(), "nope".to_string()),
            ]),
            timeout: Duration::from_secs(3),
            memory_mb: 256,
            reserved_concurrency: None,
            log_format: Some("JSON".into()),
            event_invoke: Default::default(),
        }
    }

    #[test]
    fn environment_layers() {
        let overrides = BTreeMap::from([
            ("OVERRIDDEN".to_string(), "config".to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), "mine".to_string()),
        ]);
        let key = Credentials {
            access_key_id: "AKIDROLE".into(),
            secret_access_key: "role-secret".into(),
            session_token: Some("role-session".into()),
        };
        let launch = LaunchConfig::new(&spec(), Path::new("/opt/fns"), &overrides, "eu-west-1", &key);
        let env = &launch.env;
        assert_eq!(env["FROM_TEMPLATE"], "t");
        assert_eq!(env["OVERRIDDEN"], "config");
        // The role's key, whatever the overrides say: it is what @connections accepts.
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "AKIDROLE");
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "role-secret");
        // Not the role's session token: each instance gets its own at spawn.
        assert!(!env.contains_key("AWS_SESSION_TOKEN"));
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "EchoFunction");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/EchoFunction");
        assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        assert_eq!(env["_HANDLER"], "echo-handler");
        assert_eq!(env["LAMBDA_TASK_ROOT"], "/opt/fns");
        assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_rust");
        assert_eq!(launch.executable, PathBuf::from("/opt/fns/echo"));
        for name in env.keys() {
            let allowed = INHERITED.contains(&name.as_str())
                || name.starts_with("AWS_")
                || name.starts_with("LAMBDA_")
                || name == "_HANDLER"
                || ["FROM_TEMPLATE", "OVERRIDDEN"].contains(&name.as_str());
            assert!(allowed, "unexpected variable {name}");
        }
    }

    #[test]
    fn log_stream_names_look_like_lambda() {
        let name = log_stream_name();
        assert!(name.contains("/[$LATEST]"));
        assert_eq!(name.rsplit(']').next().unwrap().len(), 32);
    }
}
