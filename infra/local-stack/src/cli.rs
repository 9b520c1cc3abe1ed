//! The command line. clap accepts both `--flag value` and `--flag=value`,
//! writes `--help` from the doc comments below and reports mistakes with the
//! usage, exiting with status 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::tokens::Subject;

/// Runs the chat backend on this machine: Postgres, PostgREST and the API Gateway emulator.
#[derive(Debug, Parser)]
#[command(
    name = "chat-local",
    after_help = "Environment: DATABASE_URL (use that server instead of a private one), \
                  SUPABASE_JWT_SECRET (instead of a generated one), SUPABASE_JWT_ISSUER, RUST_LOG; \
                  CHAT_FAULT_* and CHAT_SCHEDULE_EVERY for the options of `up` not given (see `up --help`)."
)]
pub struct Cli {
    /// None: print the help and exit successfully, as `--help` does.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum Command {
    /// Run the whole stack until Ctrl-C.
    #[command(after_help = "Environment: a fault option or --schedule-every not given comes from \
                            CHAT_FAULT_PUSH_GONE, CHAT_FAULT_PUSH_THROTTLE, CHAT_FAULT_PUSH_ERROR, \
                            CHAT_FAULT_PUSH_LATENCY, CHAT_FAULT_KILL, CHAT_FAULT_KILL_AFTER_COMMIT (a comma-separated \
                            list of NAME[=F]), CHAT_FAULT_DROP_DISCONNECT, CHAT_FAULT_SEED or CHAT_SCHEDULE_EVERY \
                            when set.")]
    Up(UpOptions),
    /// Print an access token signed with the stack's JWT secret.
    Token(TokenOptions),
    /// Apply the pending migrations to a Supabase project's database (no local bootstrap, no seed data).
    #[command(after_help = crate::postgres::tls::HELP)]
    DbPush(DbPushOptions),
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct UpOptions {
    /// Fresh state in a temp dir and free ports; all removed on exit.
    #[arg(long)]
    pub ephemeral: bool,
    /// State (database, secrets); default .local/ at the workspace root (with --ephemeral: where the temp dir is
    /// made).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// HTTP API (default 3000; 0 = any free port).
    #[arg(long, value_name = "N")]
    pub http_port: Option<u16>,
    /// WebSocket API and @connections (default 3001; 0 = any free port).
    #[arg(long, value_name = "N")]
    pub ws_port: Option<u16>,
    /// PostgREST (default 3002; 0 = any free port).
    #[arg(long, value_name = "N")]
    pub postgrest_port: Option<u16>,
    /// Function binaries (default: the cargo target dir's debug/).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// SAM template (default template.yaml at the workspace root).
    #[arg(long, value_name = "PATH")]
    pub template: Option<PathBuf>,
    /// Bootstrap, migrations and seed (default sql/ at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub sql_dir: Option<PathBuf>,
    /// Write the stack's URLs, keys and tokens there as JSON once it is ready.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// Stop when stdin closes (so the stack dies with a test harness).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    #[command(flatten)]
    pub ws_limits: WsLimitOptions,
    #[command(flatten)]
    pub notifications: NotificationOptions,
    /// Concurrent instances per function.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,
    /// Threads of chat-local itself (the emulator and the processes it watches). One by default: on a machine of a
    /// few cores the functions, Postgres and PostgREST need the others, and with more the emulator spent a fifth
    /// more CPU per delivery waking its threads for one another (`make bench`, fan-out-heavy). Raise it where the
    /// emulator, not the functions, would be what a benchmark saturates.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub faults: FaultOptions,
}

/// Faults injected into the run and one interval for every schedule, for
/// tests; nothing unless given. Each option not on the command line may come
/// from the environment: `--fault-push-gone` from CHAT_FAULT_PUSH_GONE, and so
/// on (CHAT_FAULT_KILL_AFTER_COMMIT a comma-separated list), `--schedule-every`
/// from CHAT_SCHEDULE_EVERY.
#[derive(Args, Clone, Debug, Default, PartialEq)]
#[command(next_help_heading = "Fault injection and schedules (for tests; all off by default)")]
pub struct FaultOptions {
    /// Share (0 to 1) of @connections calls (POST, GET, DELETE) answered 410 GoneException; that socket is also cut
    /// at once, without a close frame, as a client that vanished (its $disconnect still runs).
    #[arg(long = "fault-push-gone", value_name = "F", value_parser = share)]
    pub push_gone: Option<f64>,
    /// Share of @connections calls answered 429 LimitExceededException.
    #[arg(long = "fault-push-throttle", value_name = "F", value_parser = share)]
    pub push_throttle: Option<f64>,
    /// Share of @connections calls answered 500 InternalServerErrorException.
    #[arg(long = "fault-push-error", value_name = "F", value_parser = share)]
    pub push_error: Option<f64>,
    /// Delay each @connections call by a uniformly random 0 to MS milliseconds.
    #[arg(long = "fault-push-latency", value_name = "MS")]
    pub push_latency_ms: Option<u64>,
    /// Share of function invocations whose instance is killed (SIGKILL) at a random point before it answers.
    #[arg(long = "fault-kill", value_name = "F", value_parser = share)]
    pub kill: Option<f64>,
    /// Kill share F (default 1) of this function's invocations right after their database commit: at the instance's
    /// first @connections call in the invocation (not served), or when it answers if it makes none. NAME is a handler
    /// (ws-send-message) or a logical id (WsSendMessageFunction). Repeatable.
    #[arg(long = "fault-kill-after-commit", value_name = "NAME[=F]", value_parser = kill_after_commit)]
    pub kill_after_commit: Vec<KillAfterCommit>,
    /// Share of closed sockets whose $disconnect is never invoked.
    #[arg(long = "fault-drop-disconnect", value_name = "F", value_parser = share)]
    pub drop_disconnect: Option<f64>,
    /// Seed of the random choices, to repeat a run (default: a random one, logged).
    #[arg(long = "fault-seed", value_name = "N")]
    pub seed: Option<u64>,
    /// Run every Schedule / ScheduleV2 event of the template at this interval instead of its own rate (fractions
    /// allowed, e.g. 0.5; cron schedules too).
    #[arg(long = "schedule-every", value_name = "SECS", value_parser = interval)]
    pub schedule_every: Option<Duration>,
}

/// `--fault-kill-after-commit NAME[=F]`.
#[derive(Clone, Debug, PartialEq)]
pub struct KillAfterCommit {
    pub function: String,
    pub share: f64,
}

impl FaultOptions {
    /// Fills what the command line left out from the environment (`var`
    /// looks a variable up).
    pub fn or_from_env(&self, var: impl Fn(&str) -> Option<String>) -> Result<FaultOptions, String> {
        let read = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        fn parsed<T>(
            given: Option<T>,
            value: Option<String>,
            name: &str,
            parse: impl Fn(&str) -> Result<T, String>,
        ) -> Result<Option<T>, String> {
            match (given, value) {
                (Some(given), _) => Ok(Some(given)),
                (None, Some(value)) => parse(value.trim())
                    .map(Some)
                    .map_err(|error| format!("{name}: {error}")),
                (None, None) => Ok(None),
            }
        }
        let kill_after_commit = match (self.kill_after_commit.is_empty(), read("CHAT_FAULT_KILL_AFTER_COMMIT")) {
            (true, Some(list)) => list
                .split(',')
                .filter(|item| !item.trim().is_empty())
                .map(|item| kill_after_commit(item.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("CHAT_FAULT_KILL_AFTER_COMMIT: {error}"))?,
            _ => self.kill_after_commit.clone(),
        };
        let number = |text: &str| text.parse::<u64>().map_err(|e| format!("{text:?}: {e}"));
        Ok(FaultOptions {
            push_gone: parsed(
                self.push_gone,
                read("CHAT_FAULT_PUSH_GONE"),
                "CHAT_FAULT_PUSH_GONE",
                share,
            )?,
            push_throttle: parsed(
                self.push_throttle,
                read("CHAT_FAULT_PUSH_THROTTLE"),
                "CHAT_FAULT_PUSH_THROTTLE",
                share,
            )?,
            push_error: parsed(
                self.push_error,
                read("CHAT_FAULT_PUSH_ERROR"),
                "CHAT_FAULT_PUSH_ERROR",
                share,
            )?,
            push_latency_ms: parsed(
                self.push_latency_ms,
                read("CHAT_FAULT_PUSH_LATENCY"),
                "CHAT_FAULT_PUSH_LATENCY",
                number,
            )?,
            kill: parsed(self.kill, read("CHAT_FAULT_KILL"), "CHAT_FAULT_KILL", share)?,
            kill_after_commit,
            drop_disconnect: parsed(
                self.drop_disconnect,
                read("CHAT_FAULT_DROP_DISCONNECT"),
                "CHAT_FAULT_DROP_DISCONNECT",
                share,
            )?,
            seed: parsed(self.seed, read("CHAT_FAULT_SEED"), "CHAT_FAULT_SEED", number)?,
            schedule_every: parsed(
                self.schedule_every,
                read("CHAT_SCHEDULE_EVERY"),
                "CHAT_SCHEDULE_EVERY",
                interval,
            )?,
        })
    }
}

/// Only what was given; the emulator's own defaults are AWS's.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct WsLimitOptions {
    /// Close idle WebSockets after this long (AWS: 600).
    #[arg(long = "ws-idle-timeout", value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: Option<Duration>,
    /// Close WebSockets after this long (AWS: 7200).
    #[arg(long = "ws-max-lifetime", value_name = "SECS", value_parser = seconds)]
    pub max_lifetime: Option<Duration>,
    /// Largest WebSocket frame (AWS: 32768).
    #[arg(long = "ws-max-frame-bytes", value_name = "N")]
    pub max_frame_bytes: Option<usize>,
    /// Largest WebSocket message (AWS: 131072).
    #[arg(long = "ws-max-message-bytes", value_name = "N")]
    pub max_message_bytes: Option<usize>,
}

/// Notifications to users who are offline.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct NotificationOptions {
    /// Post each notification, signed with WEBHOOK_SECRET (at least 32 bytes, from the environment), to this URL
    /// (https, or http to localhost).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Wait before retrying a failed asynchronous invocation, in milliseconds; the second retry waits twice as long
    /// (AWS: about 60000).
    #[arg(long = "async-retry-delay-ms", value_name = "MS", value_parser = milliseconds)]
    pub async_retry_delay: Option<Duration>,
}

#[derive(Args, Debug, PartialEq)]
pub struct TokenOptions {
    /// alice, bob, carol, dave or a user's UUID.
    #[arg(value_name = "USER")]
    pub user: Subject,
    /// Lifetime in seconds (default 24 h).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub ttl: Option<Duration>,
    /// State dir whose JWT secret signs the token (default .local/ at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// A day: long enough for a working session, short enough to notice expiry.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Ports used when none is given and the stack is not ephemeral.
pub const DEV_HTTP_PORT: u16 = 3000;
pub const DEV_WS_PORT: u16 = 3001;
pub const DEV_POSTGREST_PORT: u16 = 3002;

impl UpOptions {
    /// A port as asked for, else the dev default, else (ephemeral) 0 = any.
    pub fn port(&self, given: Option<u16>, dev_default: u16) -> u16 {
        given.unwrap_or(if self.ephemeral { 0 } else { dev_default })
    }
}

impl TokenOptions {
    pub fn lifetime(&self) -> Duration {
        self.ttl.unwrap_or(DEFAULT_TOKEN_TTL)
    }
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct DbPushOptions {
    /// The project's Postgres connection string (default: DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Where migrations/ is (default sql/ at the workspace root).
    #[arg(long, value_name = "DIR")]
    pub sql_dir: Option<PathBuf>,
}

fn seconds(text: &str) -> Result<Duration, std::num::ParseIntError> {
    text.parse().map(Duration::from_secs)
}

/// A probability: a number from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("a share is a number from 0 to 1, not {text:?}"))?;
    apigw_local::check_share(share)?;
    Ok(share)
}

/// `NAME` or `NAME=F`.
fn kill_after_commit(text: &str) -> Result<KillAfterCommit, String> {
    let (function, share) = match text.split_once('=') {
        Some((function, given)) => (function, self::share(given)?),
        None => (text, 1.0),
    };
    let function = function.trim();
    if function.is_empty() {
        return Err(format!(
            "expected NAME or NAME=F (a function's binary or logical id), not {text:?}"
        ));
    }
    Ok(KillAfterCommit {
        function: function.to_string(),
        share,
    })
}

/// Seconds, fractions allowed, more than 0.
fn interval(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => Ok(Duration::from_secs_f64(seconds)),
        _ => Err(format!(
            "expected a number of seconds greater than 0 (e.g. 0.5), not {text:?}"
        )),
    }
}

fn milliseconds(text: &str) -> Result<Duration, std::num::ParseIntError> {
    text.parse().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn parse_words(line: &str) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-local").chain(line.split_whitespace())).map(|cli| cli.command)
    }

    fn up(line: &str) -> UpOptions {
        match parse_words(line) {
            Ok(Some(Command::Up(options))) => options,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn token(line: &str) -> TokenOptions {
        match parse_words(line) {
            Ok(Some(Command::Token(options))) => options,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn db_push_takes_a_url_and_a_sql_dir() {
        let Ok(Some(Command::DbPush(options))) = parse_words("db-push --database-url postgres://x/y --sql-dir=q")
        else {
            panic!("db-push not parsed");
        };
        assert_eq!(options.database_url.as_deref(), Some("postgres://x/y"));
        assert_eq!(options.sql_dir, Some("q".into()));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn up_with_no_options_uses_dev_ports() {
        let options = up("up");
        assert_eq!(options, UpOptions::default());
        assert_eq!(options.port(options.http_port, DEV_HTTP_PORT), 3000);
        assert_eq!(options.port(options.ws_port, DEV_WS_PORT), 3001);
        assert_eq!(options.port(options.postgrest_port, DEV_POSTGREST_PORT), 3002);
    }

    #[test]
    fn ephemeral_defaults_to_free_ports_but_keeps_given_ones() {
        let options = up("up --ephemeral --ws-port 4001");
        assert_eq!(options.port(options.http_port, DEV_HTTP_PORT), 0);
        assert_eq!(options.port(options.ws_port, DEV_WS_PORT), 4001);
    }

    #[test]
    fn up_reads_every_option_in_both_spellings() {
        let line = "up --ephemeral --state-dir /s --http-port=1 --ws-port 2 --postgrest-port 3 \
                    --bin-dir b --template t.yaml --sql-dir q --ready-file r.json --exit-on-stdin-eof \
                    --ws-idle-timeout 5 --ws-max-lifetime=6 --ws-max-frame-bytes 7 \
                    --ws-max-message-bytes 8 --max-instances 9 --webhook-url http://127.0.0.1:4/h \
                    --async-retry-delay-ms=250 --threads 3";
        assert_eq!(
            up(line),
            UpOptions {
                ephemeral: true,
                state_dir: Some("/s".into()),
                http_port: Some(1),
                ws_port: Some(2),
                postgrest_port: Some(3),
                bin_dir: Some("b".into()),
                template: Some("t.yaml".into()),
                sql_dir: Some("q".into()),
                ready_file: Some("r.json".into()),
                exit_on_stdin_eof: true,
                ws_limits: WsLimitOptions {
                    idle_timeout: Some(Duration::from_secs(5)),
                    max_lifetime: Some(Duration::from_secs(6)),
                    max_frame_bytes: Some(7),
                    max_message_bytes: Some(8),
                },
                notifications: NotificationOptions {
                    webhook_url: Some("http://127.0.0.1:4/h".into()),
                    async_retry_delay: Some(Duration::from_millis(250)),
                },
                max_instances: Some(9),
                threads: Some(3),
                faults: FaultOptions::default(),
            }
        );
    }

    #[test]
    fn threads_are_one_to_256() {
        assert_eq!(up("up").threads, None);
        assert_eq!(up("up --threads 256").threads, Some(256));
        for bad in ["0", "257", "two"] {
            let error = parse_words(&format!("up --threads {bad}")).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{bad}");
        }
    }

    #[test]
    fn up_reads_the_fault_options() {
        let line = "up --fault-push-gone 0.1 --fault-push-throttle=0.2 --fault-push-error 0 \
                    --fault-push-latency 40 --fault-kill 0.05 --fault-kill-after-commit ws-send-message \
                    --fault-kill-after-commit=WsTypingFunction=0.5 --fault-drop-disconnect 1 --fault-seed 7 \
                    --schedule-every 0.5";
        assert_eq!(
            up(line).faults,
            FaultOptions {
                push_gone: Some(0.1),
                push_throttle: Some(0.2),
                push_error: Some(0.0),
                push_latency_ms: Some(40),
                kill: Some(0.05),
                kill_after_commit: vec![
                    KillAfterCommit {
                        function: "ws-send-message".into(),
                        share: 1.0
                    },
                    KillAfterCommit {
                        function: "WsTypingFunction".into(),
                        share: 0.5
                    },
                ],
                drop_disconnect: Some(1.0),
                seed: Some(7),
                schedule_every: Some(Duration::from_millis(500)),
            }
        );
    }

    #[test]
    fn fault_options_come_from_the_environment_when_not_given() {
        let env = std::collections::BTreeMap::from([
            ("CHAT_FAULT_PUSH_GONE", "0.2"),
            ("CHAT_FAULT_KILL", "0.1"),
            ("CHAT_FAULT_KILL_AFTER_COMMIT", "ws-send-message=0.5, ws-typing"),
            ("CHAT_FAULT_PUSH_LATENCY", "25"),
            ("CHAT_FAULT_SEED", "3"),
            ("CHAT_SCHEDULE_EVERY", "2"),
            ("CHAT_FAULT_DROP_DISCONNECT", " "),
        ]);
        let var = |name: &str| env.get(name).map(|v| v.to_string());
        let given = up("up --fault-kill 0.3").faults;
        let options = given.or_from_env(var).unwrap();
        assert_eq!(options.push_gone, Some(0.2));
        // The command line wins.
        assert_eq!(options.kill, Some(0.3));
        assert_eq!(
            options.kill_after_commit,
            [
                KillAfterCommit {
                    function: "ws-send-message".into(),
                    share: 0.5
                },
                KillAfterCommit {
                    function: "ws-typing".into(),
                    share: 1.0
                }
            ]
        );
        assert_eq!(options.push_latency_ms, Some(25));
        assert_eq!(options.seed, Some(3));
        assert_eq!(options.schedule_every, Some(Duration::from_secs(2)));
        assert_eq!(options.drop_disconnect, None);
        assert_eq!(options.push_throttle, None);

        let bad = |name: &'static str, value: &'static str| {
            FaultOptions::default()
                .or_from_env(|n| (n == name).then(|| value.to_string()))
                .unwrap_err()
        };
        assert!(bad("CHAT_FAULT_PUSH_ERROR", "lots").starts_with("CHAT_FAULT_PUSH_ERROR: "));
        assert!(bad("CHAT_FAULT_KILL", "1.5").contains("from 0 to 1"));
        assert!(bad("CHAT_SCHEDULE_EVERY", "0").contains("greater than 0"));
        assert!(bad("CHAT_FAULT_KILL_AFTER_COMMIT", "=0.5").contains("NAME"));
        assert!(bad("CHAT_FAULT_SEED", "-1").starts_with("CHAT_FAULT_SEED: "));
    }

    #[test]
    fn token_takes_a_user_and_options_in_any_order() {
        let expected = TokenOptions {
            user: "bob".parse().unwrap(),
            ttl: Some(Duration::from_secs(60)),
            state_dir: Some("d".into()),
        };
        assert_eq!(token("token bob --ttl 60 --state-dir d"), expected);
        assert_eq!(token("token --ttl=60 --state-dir=d bob"), expected);
        assert_eq!(token("token --ttl=60 alice").user, "alice".parse().unwrap());
        let id = "6f1c1a52-3a5e-4c0e-9b7e-2d4f5a6b7c8d";
        assert_eq!(token(&format!("token {id}")).user.id.to_string(), id);
    }

    #[test]
    fn a_token_lives_a_day_unless_told_otherwise() {
        assert_eq!(token("token carol").lifetime(), Duration::from_secs(24 * 60 * 60));
        assert_eq!(token("token carol --ttl 5").lifetime(), Duration::from_secs(5));
    }

    #[test]
    fn mistakes_are_reported_and_point_at_the_help() {
        for line in [
            "down",
            "up --http-port",
            "up --http-port many",
            "up --http-port 70000",
            "up --ephemeral=yes",
            "up --nope",
            "up stray",
            "token",
            "token mallory",
            "token alice bob",
            "token alice --ttl -1",
            "up --fault-push-gone 1.5",
            "up --fault-kill -0.1",
            "up --fault-push-error much",
            "up --fault-kill-after-commit ws-send-message=2",
            "up --fault-kill-after-commit =0.5",
            "up --fault-push-latency 1.5",
            "up --schedule-every 0",
            "up --schedule-every -1",
            "up --schedule-every soon",
        ] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.exit_code(), 2, "{line}");
            // Each message names the mistake and points at the help.
            assert!(error.render().to_string().contains("'--help'"), "{line}: {error}");
        }
    }

    #[test]
    fn no_command_or_help_asks_for_help() {
        assert!(parse_words("").unwrap().is_none());
        for line in ["--help", "-h", "help", "up --help", "help token"] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.kind(), ErrorKind::DisplayHelp, "{line}");
            assert_eq!(error.exit_code(), 0, "{line}");
        }
    }
}
