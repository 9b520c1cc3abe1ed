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
                  SUPABASE_JWT_SECRET (instead of a generated one), SUPABASE_JWT_ISSUER, RUST_LOG."
)]
pub struct Cli {
    /// None: print the help and exit successfully, as `--help` does.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum Command {
    /// Run the whole stack until Ctrl-C.
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
                    --async-retry-delay-ms=250";
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
            }
        );
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
