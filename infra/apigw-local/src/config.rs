use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::FaultConfig;
use crate::sigv4::Credentials;

/// What the emulator serves and how it runs the functions.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The AWS SAM template (`template.yaml`).
    pub template_path: PathBuf,
    /// Function binaries live at `bin_dir/<Metadata.BuildProperties.Binary>`.
    pub bin_dir: PathBuf,
    /// HTTP API; port 0 picks a free one.
    pub http_addr: SocketAddr,
    /// WebSocket API and Management API share this port; port 0 picks a free one.
    pub ws_addr: SocketAddr,
    /// CloudFormation parameter values; parameters not given take their `Default`.
    pub parameter_overrides: BTreeMap<String, String>,
    /// Applied to every function on top of the template's environment.
    pub function_env: BTreeMap<String, String>,
    pub ws_limits: WsLimits,
    /// Instances per function unless the template sets `ReservedConcurrentExecutions`.
    pub default_max_instances: usize,
    /// e.g. `us-east-1`.
    pub region: String,
    /// The execution role's key: every function gets it (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and the Management API
    /// accepts only requests it signed (SigV4, service `execute-api`, `region`).
    pub credentials: Credentials,
    /// Before an asynchronous invocation that failed is retried; the second
    /// retry waits twice as long (AWS: about a minute, then two).
    pub async_retry_delay: Duration,
}

/// What one run adds to the template, for tests: injected faults and one
/// interval for every schedule. The default adds nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    pub faults: FaultConfig,
    /// Runs every enabled `Schedule` / `ScheduleV2` event at this interval
    /// instead of its own rate (`cron(...)` and `at(...)` ones too).
    pub schedule_every: Option<Duration>,
}

impl RunOptions {
    pub fn validate(&self) -> Result<(), String> {
        self.faults.validate()?;
        if self.schedule_every.is_some_and(|every| every.is_zero()) {
            return Err("the schedule interval must be longer than 0".into());
        }
        Ok(())
    }
}

/// WebSocket API limits; the defaults are the AWS quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// A larger frame closes that socket with 1009.
    pub max_frame_bytes: usize,
    /// A larger message (after reassembling fragments) closes that socket with
    /// 1009; also the largest `POST @connections` body.
    pub max_message_bytes: usize,
    /// No client frame for this long closes the socket with 1001.
    pub idle_timeout: Duration,
    /// Sockets older than this are closed with 1001.
    pub max_lifetime: Duration,
}

/// AWS's wait before the first retry of a failed asynchronous invocation.
pub const AWS_ASYNC_RETRY_DELAY: Duration = Duration::from_secs(60);

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_frame_bytes: 32 * 1024,
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            max_lifetime: Duration::from_secs(2 * 60 * 60),
        }
    }
}
