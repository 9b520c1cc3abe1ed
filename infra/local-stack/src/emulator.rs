//! The API Gateway emulator, configured for this stack: the functions get the
//! environment Lambda would give them, pointed at the local PostgREST.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use apigw_local::{Credentials, Emulator, EmulatorConfig, EmulatorError, FaultConfig, RunOptions, WsLimits};
use tracing::warn;

use crate::cli::{FaultOptions, NotificationOptions, WsLimitOptions};
use crate::error::{Error, Result};
use crate::ports;
use crate::secrets::VapidKeyPair;

pub const STAGE: &str = "dev";
pub const REGION: &str = "us-east-1";
/// The contact push services are given for the local key (RFC 8292).
const VAPID_SUBJECT: &str = "mailto:chat-local@localhost";
/// Instances per function when neither the template nor the command line says.
const DEFAULT_MAX_INSTANCES: usize = 4;
/// A free port we picked can be taken before the emulator binds it.
const PORT_ATTEMPTS: usize = 3;

pub struct EmulatorSettings {
    pub template_path: PathBuf,
    pub bin_dir: PathBuf,
    /// 0: any free port (the emulator binds it itself).
    pub http_port: u16,
    /// 0: any free port.
    pub ws_port: u16,
    pub postgrest_url: String,
    pub anon_key: String,
    pub service_role_key: String,
    pub jwt_secret: String,
    /// The functions' AWS key: the only one `@connections` accepts.
    pub credentials: Credentials,
    pub ws_limits: WsLimitOptions,
    pub max_instances: Option<usize>,
    /// Injected faults, one interval for every schedule.
    pub run_options: RunOptions,
    /// The local Web Push key pair (template parameters VapidPublicKey, VapidPrivateKey).
    pub vapid: VapidKeyPair,
    pub notifications: NotificationOptions,
}

/// A ws port of 0 picks a free one, and another one if that is taken before
/// the emulator binds it.
pub async fn start(settings: EmulatorSettings) -> Result<Emulator> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ws_port = ports::resolve(settings.ws_port)?;
        match Emulator::start_with(config(&settings, ws_port), settings.run_options.clone()).await {
            Ok(emulator) => return Ok(emulator),
            Err(EmulatorError::Bind { addr, .. })
                if settings.ws_port == 0 && addr.port() == ws_port && attempt < PORT_ATTEMPTS =>
            {
                warn!(port = ws_port, "the WebSocket port was taken; trying another");
            }
            Err(error) => {
                let hint = match error {
                    EmulatorError::MissingBinary { .. } => " (`make dev` builds them; or pass --bin-dir)",
                    EmulatorError::Bind { .. } => " (is another stack running? see --http-port and --ws-port)",
                    _ => "",
                };
                return Err(Error::Setup(format!(
                    "the API Gateway emulator did not start: {error}{hint}"
                )));
            }
        }
    }
}

/// The functions are told the management endpoint before the emulator
/// exists, so the WebSocket port is fixed first.
fn config(settings: &EmulatorSettings, ws_port: u16) -> EmulatorConfig {
    let management_url = format!("http://127.0.0.1:{ws_port}/{STAGE}");
    let issuer = std::env::var("SUPABASE_JWT_ISSUER").unwrap_or_default();
    let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let parameter_overrides = BTreeMap::from([
        ("StageName".to_owned(), STAGE.to_owned()),
        ("SupabaseUrl".to_owned(), settings.postgrest_url.clone()),
        ("SupabaseAnonKey".to_owned(), settings.anon_key.clone()),
        ("SupabaseServiceRoleKey".to_owned(), settings.service_role_key.clone()),
        ("SupabaseJwtSecret".to_owned(), settings.jwt_secret.clone()),
        ("SupabaseJwtIssuer".to_owned(), issuer.clone()),
        ("VapidPublicKey".to_owned(), settings.vapid.public_key.clone()),
        ("VapidPrivateKey".to_owned(), settings.vapid.private_key.clone()),
        ("VapidSubject".to_owned(), VAPID_SUBJECT.to_owned()),
    ]);
    let mut parameter_overrides = parameter_overrides;
    if let Some(url) = &settings.notifications.webhook_url {
        parameter_overrides.insert("WebhookUrl".to_owned(), url.clone());
        parameter_overrides.insert(
            "WebhookSecret".to_owned(),
            std::env::var("WEBHOOK_SECRET").unwrap_or_default(),
        );
    }
    let function_env = BTreeMap::from([
        ("SUPABASE_URL".to_owned(), settings.postgrest_url.clone()),
        // postrust serves PostgREST at its root; Supabase serves it at /rest/v1.
        ("SUPABASE_REST_URL".to_owned(), settings.postgrest_url.clone()),
        ("SUPABASE_ANON_KEY".to_owned(), settings.anon_key.clone()),
        // Not SUPABASE_SERVICE_ROLE_KEY: template.yaml gives it only to the
        // functions that need it, from the SupabaseServiceRoleKey parameter.
        ("SUPABASE_JWT_SECRET".to_owned(), settings.jwt_secret.clone()),
        ("SUPABASE_JWT_ISSUER".to_owned(), issuer),
        ("WEBSOCKET_MANAGEMENT_ENDPOINT".to_owned(), management_url),
        // Lambda's Invoke API, served on the same port (the notification hand-off).
        (
            "AWS_ENDPOINT_URL_LAMBDA".to_owned(),
            format!("http://127.0.0.1:{ws_port}"),
        ),
        ("RUST_LOG".to_owned(), rust_log),
    ]);
    EmulatorConfig {
        template_path: settings.template_path.clone(),
        bin_dir: settings.bin_dir.clone(),
        http_addr: ports::loopback(settings.http_port),
        ws_addr: ports::loopback(ws_port),
        parameter_overrides,
        function_env,
        ws_limits: ws_limits(&settings.ws_limits),
        default_max_instances: settings.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES),
        region: REGION.to_owned(),
        credentials: settings.credentials.clone(),
        async_retry_delay: settings
            .notifications
            .async_retry_delay
            .unwrap_or(apigw_local::AWS_ASYNC_RETRY_DELAY),
    }
}

/// The faults and the schedule interval asked for (nothing when none).
pub fn run_options(options: &FaultOptions) -> RunOptions {
    let share = |given: Option<f64>| given.unwrap_or(0.0);
    RunOptions {
        faults: FaultConfig {
            push_gone: share(options.push_gone),
            push_throttle: share(options.push_throttle),
            push_error: share(options.push_error),
            push_latency: Duration::from_millis(options.push_latency_ms.unwrap_or(0)),
            kill: share(options.kill),
            kill_after_commit: options
                .kill_after_commit
                .iter()
                .map(|kill| (kill.function.clone(), kill.share))
                .collect(),
            drop_disconnect: share(options.drop_disconnect),
            seed: options.seed,
        },
        schedule_every: options.schedule_every,
    }
}

/// AWS's quotas, with whatever the command line overrides.
fn ws_limits(options: &WsLimitOptions) -> WsLimits {
    let aws = WsLimits::default();
    WsLimits {
        max_frame_bytes: options.max_frame_bytes.unwrap_or(aws.max_frame_bytes),
        max_message_bytes: options.max_message_bytes.unwrap_or(aws.max_message_bytes),
        idle_timeout: options.idle_timeout.unwrap_or(aws.idle_timeout),
        max_lifetime: options.max_lifetime.unwrap_or(aws.max_lifetime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::KillAfterCommit;

    #[test]
    fn no_fault_options_inject_nothing() {
        let options = run_options(&FaultOptions::default());
        assert_eq!(options, RunOptions::default());
        assert!(!options.faults.is_enabled());
    }

    #[test]
    fn fault_options_become_the_emulators() {
        let options = run_options(&FaultOptions {
            push_gone: Some(0.1),
            push_throttle: Some(0.2),
            push_error: Some(0.3),
            push_latency_ms: Some(40),
            kill: Some(0.05),
            kill_after_commit: vec![KillAfterCommit {
                function: "ws-send-message".into(),
                share: 0.5,
            }],
            drop_disconnect: Some(0.25),
            seed: Some(9),
            schedule_every: Some(Duration::from_millis(500)),
        });
        assert_eq!(
            options,
            RunOptions {
                faults: FaultConfig {
                    push_gone: 0.1,
                    push_throttle: 0.2,
                    push_error: 0.3,
                    push_latency: Duration::from_millis(40),
                    kill: 0.05,
                    kill_after_commit: BTreeMap::from([("ws-send-message".to_string(), 0.5)]),
                    drop_disconnect: 0.25,
                    seed: Some(9),
                },
                schedule_every: Some(Duration::from_millis(500)),
            }
        );
        assert_eq!(options.validate(), Ok(()));
    }

    #[test]
    fn limits_default_to_aws_and_take_overrides() {
        assert_eq!(ws_limits(&WsLimitOptions::default()), WsLimits::default());
        let limits = ws_limits(&WsLimitOptions {
            idle_timeout: Some(Duration::from_secs(2)),
            max_frame_bytes: Some(1024),
            ..Default::default()
        });
        assert_eq!(limits.idle_timeout, Duration::from_secs(2));
        assert_eq!(limits.max_frame_bytes, 1024);
        assert_eq!(limits.max_message_bytes, WsLimits::default().max_message_bytes);
    }
}
