//! The command line, parsed by hand: two commands and a handful of flags do
//! not justify an argument-parsing dependency.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

pub const USAGE: &str = "\
Runs the chat backend on this machine: Postgres, PostgREST and the API Gateway emulator.

Usage:
  chat-local up [options]
      --ephemeral               fresh state in a temp dir and free ports; all removed on exit
      --state-dir DIR           state (database, secrets); default .local/ at the workspace root
                                (with --ephemeral: where the temp dir is made)
      --http-port N             HTTP API (default 3000; 0 = any free port)
      --ws-port N               WebSocket API and @connections (default 3001; 0 = any free port)
      --postgrest-port N        PostgREST (default 3002; 0 = any free port)
      --bin-dir DIR             function binaries (default: the cargo target dir's debug/)
      --template PATH           SAM template (default template.yaml at the workspace root)
      --sql-dir DIR             bootstrap, migrations and seed (default sql/ at the workspace root)
      --ready-file PATH         write the stack's URLs, keys and tokens there as JSON once it is ready
      --exit-on-stdin-eof       stop when stdin closes (so the stack dies with a test harness)
      --ws-idle-timeout SECS    close idle WebSockets after this long (AWS: 600)
      --ws-max-lifetime SECS    close WebSockets after this long (AWS: 7200)
      --ws-max-frame-bytes N    largest WebSocket frame (AWS: 32768)
      --ws-max-message-bytes N  largest WebSocket message (AWS: 131072)
      --max-instances N         concurrent instances per function
  chat-local token <alice|bob|carol|dave|USER-UUID> [--ttl SECS] [--state-dir DIR]
      prints an access token signed with the stack's JWT secret (default lifetime 24 h)

Environment: DATABASE_URL (use that server instead of a private one),
SUPABASE_JWT_SECRET (instead of a generated one), SUPABASE_JWT_ISSUER, RUST_LOG.";

#[derive(Debug, PartialEq)]
pub enum Command {
    Up(UpOptions),
    Token(TokenOptions),
    Help,
}

#[derive(Debug, Default, PartialEq)]
pub struct UpOptions {
    pub ephemeral: bool,
    pub state_dir: Option<PathBuf>,
    pub http_port: Option<u16>,
    pub ws_port: Option<u16>,
    pub postgrest_port: Option<u16>,
    pub bin_dir: Option<PathBuf>,
    pub template: Option<PathBuf>,
    pub sql_dir: Option<PathBuf>,
    pub ready_file: Option<PathBuf>,
    pub exit_on_stdin_eof: bool,
    pub ws_limits: WsLimitOptions,
    pub max_instances: Option<usize>,
}

/// Only what was given; the emulator's own defaults are AWS's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WsLimitOptions {
    pub idle_timeout: Option<Duration>,
    pub max_lifetime: Option<Duration>,
    pub max_frame_bytes: Option<usize>,
    pub max_message_bytes: Option<usize>,
}

#[derive(Debug, PartialEq)]
pub struct TokenOptions {
    pub user: String,
    pub ttl: Duration,
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

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args = Args::new(args);
    match args.next_word().as_deref() {
        None | Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("up") => parse_up(args).map(Command::Up),
        Some("token") => parse_token(args).map(Command::Token),
        Some(other) => Err(usage(format!("unknown command `{other}`"))),
    }
}

fn parse_up(mut args: Args) -> Result<UpOptions> {
    let mut options = UpOptions::default();
    while let Some(flag) = args.next_flag()? {
        match flag.as_str() {
            "--ephemeral" => options.ephemeral = true,
            "--exit-on-stdin-eof" => options.exit_on_stdin_eof = true,
            "--state-dir" => options.state_dir = Some(args.value(&flag)?),
            "--http-port" => options.http_port = Some(args.value(&flag)?),
            "--ws-port" => options.ws_port = Some(args.value(&flag)?),
            "--postgrest-port" => options.postgrest_port = Some(args.value(&flag)?),
            "--bin-dir" => options.bin_dir = Some(args.value(&flag)?),
            "--template" => options.template = Some(args.value(&flag)?),
            "--sql-dir" => options.sql_dir = Some(args.value(&flag)?),
            "--ready-file" => options.ready_file = Some(args.value(&flag)?),
            "--ws-idle-timeout" => {
                options.ws_limits.idle_timeout = Some(args.seconds(&flag)?);
            }
            "--ws-max-lifetime" => {
                options.ws_limits.max_lifetime = Some(args.seconds(&flag)?);
            }
            "--ws-max-frame-bytes" => {
                options.ws_limits.max_frame_bytes = Some(args.value(&flag)?);
            }
            "--ws-max-message-bytes" => {
                options.ws_limits.max_message_bytes = Some(args.value(&flag)?);
            }
            "--max-instances" => options.max_instances = Some(args.value(&flag)?),
            _ => return Err(usage(format!("unknown option `{flag}` for `up`"))),
        }
    }
    Ok(options)
}

fn parse_token(mut args: Args) -> Result<TokenOptions> {
    let mut user = None;
    let mut ttl = DEFAULT_TOKEN_TTL;
    let mut state_dir = None;
    loop {
        if let Some(word) = args.next_word_if_positional() {
            if user.replace(word).is_some() {
                return Err(usage("`token` takes one user".into()));
            }
            continue;
        }
        let Some(flag) = args.next_flag()? else { break };
        match flag.as_str() {
            "--ttl" => ttl = args.seconds(&flag)?,
            "--state-dir" => state_dir = Some(args.value(&flag)?),
            _ => return Err(usage(format!("unknown option `{flag}` for `token`"))),
        }
    }
    let user = user
        .ok_or_else(|| usage("`token` needs a user: alice, bob, carol, dave or a UUID".into()))?;
    Ok(TokenOptions {
        user,
        ttl,
        state_dir,
    })
}

fn usage(message: String) -> Error {
    Error::Usage(format!("{message}\n\n{USAGE}"))
}

/// A cursor over the arguments that understands `--flag value` and `--flag=value`.
struct Args {
    items: std::collections::VecDeque<String>,
    /// The `value` of a `--flag=value` just split off, waiting to be taken.
    inline_value: Option<String>,
}

impl Args {
    fn new(args: impl IntoIterator<Item = String>) -> Self {
        Self {
            items: args.into_iter().collect(),
            inline_value: None,
        }
    }

    fn next_word(&mut self) -> Option<String> {
        self.items.pop_front()
    }

    fn next_word_if_positional(&mut self) -> Option<String> {
        match self.items.front() {
            Some(word) if !word.starts_with("--") => self.items.pop_front(),
            _ => None,
        }
    }

    fn next_flag(&mut self) -> Result<Option<String>> {
        if let Some(value) = self.inline_value.take() {
            return Err(usage(format!("unexpected value `{value}`")));
        }
        let Some(word) = self.items.pop_front() else {
            return Ok(None);
        };
        if !word.starts_with("--") {
            return Err(usage(format!("unexpected argument `{word}`")));
        }
        Ok(Some(match word.split_once('=') {
            Some((flag, value)) => {
                self.inline_value = Some(value.to_owned());
                flag.to_owned()
            }
            None => word,
        }))
    }

    fn value<T: FromStr>(&mut self, flag: &str) -> Result<T> {
        let raw = self
            .inline_value
            .take()
            .or_else(|| self.items.pop_front())
            .ok_or_else(|| usage(format!("`{flag}` needs a value")))?;
        raw.parse()
            .map_err(|_| usage(format!("`{flag}`: `{raw}` is not a valid value")))
    }

    fn seconds(&mut self, flag: &str) -> Result<Duration> {
        self.value::<u64>(flag).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn up_with_no_options_uses_dev_ports() {
        let Command::Up(options) = parse_words("up").unwrap() else {
            panic!()
        };
        assert_eq!(options, UpOptions::default());
        assert_eq!(options.port(options.http_port, DEV_HTTP_PORT), 3000);
        assert_eq!(options.port(options.ws_port, DEV_WS_PORT), 3001);
        assert_eq!(
            options.port(options.postgrest_port, DEV_POSTGREST_PORT),
            3002
        );
    }

    #[test]
    fn ephemeral_defaults_to_free_ports_but_keeps_given_ones() {
        let Command::Up(options) = parse_words("up --ephemeral --ws-port 4001").unwrap() else {
            panic!()
        };
        assert_eq!(options.port(options.http_port, DEV_HTTP_PORT), 0);
        assert_eq!(options.port(options.ws_port, DEV_WS_PORT), 4001);
    }

    #[test]
    fn up_reads_every_option_in_both_spellings() {
        let line = "up --ephemeral --state-dir /s --http-port=1 --ws-port 2 --postgrest-port 3 \
                    --bin-dir b --template t.yaml --sql-dir q --ready-file r.json --exit-on-stdin-eof \
                    --ws-idle-timeout 5 --ws-max-lifetime=6 --ws-max-frame-bytes 7 \
                    --ws-max-message-bytes 8 --max-instances 9";
        let Command::Up(options) = parse_words(line).unwrap() else {
            panic!()
        };
        assert_eq!(
            options,
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
                max_instances: Some(9),
            }
        );
    }

    #[test]
    fn token_takes_a_user_and_options_in_any_order() {
        let expected = TokenOptions {
            user: "bob".into(),
            ttl: Duration::from_secs(60),
            state_dir: Some("d".into()),
        };
        assert_eq!(
            parse_words("token bob --ttl 60 --state-dir d").unwrap(),
            Command::Token(expected)
        );
        let Command::Token(options) = parse_words("token --ttl=60 alice").unwrap() else {
            panic!()
        };
        assert_eq!(options.user, "alice");
        let Command::Token(options) = parse_words("token carol").unwrap() else {
            panic!()
        };
        assert_eq!(options.ttl, DEFAULT_TOKEN_TTL);
    }

    #[test]
    fn mistakes_are_reported_with_usage() {
        for line in [
            "down",
            "up --http-port",
            "up --http-port many",
            "up --http-port 70000",
            "up --ephemeral=yes",
            "up --nope",
            "up stray",
            "token",
            "token alice bob",
            "token alice --ttl -1",
        ] {
            let error = parse_words(line).expect_err(line);
            assert!(
                matches!(error, Error::Usage(ref text) if text.contains("Usage:")),
                "{line}"
            );
        }
    }

    #[test]
    fn no_command_or_help_asks_for_help() {
        assert_eq!(parse_words("").unwrap(), Command::Help);
        assert_eq!(parse_words("--help").unwrap(), Command::Help);
    }
}
