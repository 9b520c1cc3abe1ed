//! The command line, parsed by clap like `chat-local`'s; the checks that
//! involve several flags or a load that cannot run are made after parsing and
//! reported the same way (usage, exit status 2).

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgAction, ArgGroup, CommandFactory as _, Parser};

/// Benchmarks the chat backend on an isolated local stack (fresh database, free ports, release function
/// binaries): send→deliver latency, throughput, database round trips, cold starts, handler time, memory and binary
/// size. Run it through `make bench`.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "chat-bench")]
#[command(group(ArgGroup::new("waits_for_acks").args(["chaos", "step"])))]
pub struct Options {
    /// WebSocket clients, one user each.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub clients: usize,
    /// Share of the clients in direct pairs; the rest are in groups.
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    pub direct_share: f64,
    /// Members per group conversation, 3..101.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub group_size: usize,
    /// Members of the one room, 0 = no room, at most 101.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub room_size: usize,
    /// Messages per second each client sends to its direct or group conversation.
    #[arg(long, value_name = "R", default_value_t = 0.5)]
    pub rate: f64,
    /// Messages per second each room member sends to the room.
    #[arg(long, value_name = "R", default_value_t = 0.02)]
    pub room_rate: f64,
    /// Fan-out-heavy load: the room holds every client (members beyond what one creation takes are added after
    /// it), and every client also sends to it at --rate, besides its direct or group conversation, so that room
    /// fan-out makes most of the deliveries. Replaces --room-size and --room-rate.
    #[arg(long, conflicts_with_all = ["room_size", "room_rate", "chaos"])]
    pub fan_out_heavy: bool,
    /// Measured sending time.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "60")]
    pub duration: Duration,
    /// Step mode, instead of one load of --duration: steps of SECS each, starting at --rate (and --room-rate), every
    /// rate multiplied by --step-factor after each step held, until the p99 of send → deliver passes --step-p99-ms,
    /// a send goes unacknowledged for --ack-timeout, or a message is lost or refused. Every step drains before the
    /// next; the warm-up runs once, before the first. Reports each step and the highest one held.
    #[arg(long, value_name = "SECS", value_parser = seconds, conflicts_with = "chaos")]
    pub step: Option<Duration>,
    /// With --step: what every rate is multiplied by from one step to the next.
    #[arg(long, value_name = "F", default_value_t = 1.5, requires = "step")]
    pub step_factor: f64,
    /// With --step: the highest p99 of send → deliver (every recipient) a step may have and be held.
    #[arg(long, value_name = "MS", default_value_t = 250.0, requires = "step")]
    pub step_p99_ms: f64,
    /// With --step: no more steps than this, held or not.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "step")]
    pub max_steps: usize,
    /// Sending before the measurement starts, not measured.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "5")]
    pub warmup: Duration,
    /// Longest wait for the last deliveries after sending stops.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "15")]
    pub drain: Duration,
    /// Requests per REST operation measured.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub rest_requests: usize,
    /// One-at-a-time sends that count database round trips.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub sequential_sends: usize,
    /// Rounds of cold starts one at a time after the run: every idle instance reclaimed, then one client
    /// connects, sends, calls REST and disconnects, so that each function it reaches starts alone on a warm
    /// stack (0: none).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub cold_rounds: usize,
    /// Raw INSERT and raw WebSocket push samples.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub floor_samples: usize,
    /// WebSocket handshakes in flight at once while connecting.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub connect_concurrency: usize,
    /// Share of each group's and the room's members who are members but never connect (extra users, not taken
    /// from --clients), so that every message to those conversations hands a notification to the notification
    /// function. Direct conversations have two members, both sending, and get none.
    #[arg(long, value_name = "F", default_value_t = 0.0, conflicts_with = "chaos")]
    pub offline_share: f64,
    /// Concurrent instances per function (default: the stack's).
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,
    /// Release binaries: chat-local and the functions (default target/release).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The checkout whose template.yaml and sql/ the stack runs (default: this one); with --bin-dir built from
    /// another commit, that commit's checkout.
    #[arg(long, value_name = "DIR")]
    pub checkout: Option<PathBuf>,
    /// A template parameter's value for this run (its Default replaced in a copy of the template), e.g.
    /// RateLimitMessagesPerMinute=600. Repeatable. --step lifts the message rate limits unless they are given here:
    /// it measures capacity, not the limits.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = parameter)]
    pub parameters: Vec<(String, String)>,
    /// Where the JSON goes (default bench/results).
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Print the table only; write no JSON.
    #[arg(long = "no-save", action = ArgAction::SetFalse)]
    pub save: bool,
    /// Run the chaos scenario instead of the measurements: the same clients and conversations, each client
    /// recovering as docs/websocket-protocol.md says, while their sockets are cut, function instances are
    /// killed and @connections calls fail; at the end every stored message must be at every member exactly
    /// once, in seq order. Uses --clients, the conversation mix, the rates, --duration and --drain.
    #[arg(long)]
    pub chaos: bool,
    /// With --chaos: mean time between two cuts of one client's socket (TCP dropped, no close frame); 0 = none.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "20", requires = "chaos")]
    pub cut_every: Duration,
    /// With --chaos: share of function invocations whose instance is killed mid-invocation.
    #[arg(long, value_name = "F", default_value_t = 0.01, requires = "chaos")]
    pub fault_kill: f64,
    /// With --chaos: share of sendMessage invocations killed right after their database commit.
    #[arg(long, value_name = "F", default_value_t = 0.05, requires = "chaos")]
    pub fault_kill_after_commit: f64,
    /// With --chaos: share of @connections calls answered 410 (and that socket cut).
    #[arg(long, value_name = "F", default_value_t = 0.002, requires = "chaos")]
    pub fault_push_gone: f64,
    /// With --chaos: share of @connections calls answered 429.
    #[arg(long, value_name = "F", default_value_t = 0.05, requires = "chaos")]
    pub fault_push_throttle: f64,
    /// With --chaos: share of @connections calls answered 500.
    #[arg(long, value_name = "F", default_value_t = 0.005, requires = "chaos")]
    pub fault_push_error: f64,
    /// With --chaos: each @connections call delayed by up to this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0, requires = "chaos")]
    pub fault_push_latency: u64,
    /// With --chaos: share of closed sockets whose $disconnect never runs.
    #[arg(long, value_name = "F", default_value_t = 0.1, requires = "chaos")]
    pub fault_drop_disconnect: f64,
    /// With --chaos: seed of the emulator's random choices (default: a fresh one each run).
    #[arg(long, value_name = "N", requires = "chaos")]
    pub fault_seed: Option<u64>,
    /// With --chaos: how often each client compares its position with every conversation's last seq.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10", requires = "chaos")]
    pub resync_every: Duration,
    /// With --chaos: a send without an answer for this long goes again (same client_msg_id). With --step: a send
    /// acknowledged later than this, or never, ends the stepping.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10", requires = "waits_for_acks")]
    pub ack_timeout: Duration,
}

/// A room or group holds its creator plus at most this many members.
pub const MAX_MEMBERS_BESIDES_CREATOR: usize = 100;
/// Above this, offline members outnumber the connected ones more than nine to one.
const MAX_OFFLINE_SHARE: f64 = 0.9;

impl Options {
    /// The process's arguments, parsed and checked; a mistake prints the
    /// usage and exits with status 2, `--help` prints the help and exits.
    pub fn from_args() -> Options {
        Self::checked(Self::try_parse()).unwrap_or_else(|error| error.exit())
    }

    /// Members of the room: every client with --fan-out-heavy, else --room-size.
    pub fn room_members(&self) -> usize {
        if self.fan_out_heavy {
            self.clients
        } else {
            self.room_size
        }
    }

    /// Messages per second each room member sends to the room: --rate with --fan-out-heavy, else --room-rate.
    pub fn room_rate_per_member(&self) -> f64 {
        if self.fan_out_heavy {
            self.rate
        } else {
            self.room_rate
        }
    }

    /// The template parameters this run sets: `--parameter`, and in step mode
    /// the message rate limits out of the way, unless given.
    pub fn template_parameters(&self) -> Vec<(String, String)> {
        let mut parameters = self.parameters.clone();
        if self.step.is_some() {
            for name in STEP_LIFTED_LIMITS {
                if !parameters.iter().any(|(given, _)| given == name) {
                    parameters.push((name.to_string(), UNLIMITED.to_string()));
                }
            }
        }
        parameters
    }

    /// `--checkout`, else the checkout this program was built in.
    pub fn checkout_dir(&self) -> PathBuf {
        let dir = self.checkout.clone().unwrap_or_else(crate::stack::workspace_root);
        std::path::absolute(&dir).unwrap_or(dir)
    }

    fn checked(parsed: Result<Options, clap::Error>) -> Result<Options, clap::Error> {
        let options = parsed?;
        match options.impossibility() {
            Some(message) => Err(Options::command().error(ErrorKind::ValueValidation, message)),
            None => Ok(options),
        }
    }

    /// Why this load cannot run, if it cannot.
    fn impossibility(&self) -> Option<&'static str> {
        let checks = [
            (self.clients >= 2, "--clients must be at least 2"),
            (
                (0.0..=1.0).contains(&self.direct_share),
                "--direct-share must be between 0 and 1",
            ),
            (
                (3..=MAX_MEMBERS_BESIDES_CREATOR + 1).contains(&self.group_size),
                "--group-size must be between 3 and 101",
            ),
            (
                self.fan_out_heavy
                    || self.room_size == 0
                    || (2..=MAX_MEMBERS_BESIDES_CREATOR + 1).contains(&self.room_size),
                "--room-size must be 0 or between 2 and 101",
            ),
            (
                self.fan_out_heavy || self.room_size <= self.clients,
                "--room-size cannot exceed --clients",
            ),
            (
                self.rate >= 0.0 && self.room_rate >= 0.0 && self.rate + self.room_rate > 0.0,
                "--rate and --room-rate must not be negative, and not both 0",
            ),
            (
                !self.fan_out_heavy || self.rate > 0.0,
                "--fan-out-heavy needs a --rate above 0",
            ),
            (!self.duration.is_zero(), "--duration must be at least 1 second"),
            (
                self.step.is_none_or(|step| !step.is_zero()),
                "--step must be more than 0 seconds",
            ),
            (
                self.step_factor > 1.0 && self.step_factor.is_finite(),
                "--step-factor must be above 1",
            ),
            (
                self.step_p99_ms > 0.0 && self.step_p99_ms.is_finite(),
                "--step-p99-ms must be more than 0",
            ),
            (self.max_steps >= 1, "--max-steps must be at least 1"),
            (
                (0.0..MAX_OFFLINE_SHARE).contains(&self.offline_share),
                "--offline-share must be at least 0 and below 0.9",
            ),
            (self.max_instances != Some(0), "--max-instances must be at least 1"),
            (
                self.rest_requests > 0
                    && self.sequential_sends > 0
                    && self.floor_samples > 0
                    && self.connect_concurrency > 0,
                "--rest-requests, --sequential-sends, --floor-samples and --connect-concurrency must be at least 1",
            ),
            (
                [
                    self.fault_kill,
                    self.fault_kill_after_commit,
                    self.fault_push_gone,
                    self.fault_push_throttle,
                    self.fault_push_error,
                    self.fault_drop_disconnect,
                ]
                .iter()
                .all(|share| (0.0..=1.0).contains(share)),
                "the --fault-* shares must be between 0 and 1",
            ),
            (
                self.fault_push_gone + self.fault_push_throttle + self.fault_push_error <= 1.0,
                "--fault-push-gone, --fault-push-throttle and --fault-push-error together cannot exceed 1",
            ),
            (
                !self.resync_every.is_zero() && !self.ack_timeout.is_zero(),
                "--resync-every and --ack-timeout must be more than 0",
            ),
        ];
        checks.iter().find(|(ok, _)| !ok).map(|(_, message)| *message)
    }
}

/// Seconds, fractions allowed (`--duration 1.5`).
/// The per-user message limits (template parameters) a step run lifts.
const STEP_LIFTED_LIMITS: [&str; 2] = ["RateLimitMessagesPerMinute", "RateLimitMessagesBurst"];
/// The template's largest allowed value for a limit.
const UNLIMITED: &str = "1000000";

fn parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Ok((name.to_string(), value.to_string()))
        }
        _ => Err("not NAME=VALUE with a template parameter's name".into()),
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err("not a number of seconds".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Options, clap::Error> {
        Options::checked(Options::try_parse_from(
            std::iter::once("chat-bench").chain(line.split_whitespace()),
        ))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Options::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_load() {
        let options = parse_words("").unwrap();
        assert_eq!((options.clients, options.group_size, options.room_size), (200, 6, 100));
        assert_eq!(
            (options.direct_share, options.rate, options.room_rate),
            (0.5, 0.5, 0.02)
        );
        assert_eq!(
            (options.duration, options.warmup, options.drain),
            (Duration::from_secs(60), Duration::from_secs(5), Duration::from_secs(15))
        );
        assert_eq!(
            (
                options.rest_requests,
                options.sequential_sends,
                options.floor_samples,
                options.connect_concurrency
            ),
            (200, 60, 1000, 16)
        );
        assert_eq!(
            (options.max_instances, &options.bin_dir, &options.results_dir),
            (None, &None, &None)
        );
        assert_eq!((options.offline_share, &options.checkout), (0.0, &None));
        assert!(options.save);
        assert_eq!((options.fan_out_heavy, options.step), (false, None));
    }

    #[test]
    fn fan_out_heavy_puts_every_client_in_the_room_at_its_own_rate() {
        let options = parse_words("--fan-out-heavy --clients 150 --rate 0.3").unwrap();
        assert_eq!((options.room_members(), options.room_rate_per_member()), (150, 0.3));
        let plain = parse_words("--clients 150 --rate 0.3").unwrap();
        assert_eq!((plain.room_members(), plain.room_rate_per_member()), (100, 0.02));
        // Fewer clients than the default room: the room is all of them.
        assert_eq!(parse_words("--fan-out-heavy --clients 20").unwrap().room_members(), 20);
        for line in [
            "--fan-out-heavy --room-size 10",
            "--fan-out-heavy --room-rate 1",
            "--fan-out-heavy --chaos",
            "--fan-out-heavy --rate 0",
        ] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.exit_code(), 2, "{line}");
        }
    }

    #[test]
    fn step_mode_has_defaults_and_its_flags_need_it() {
        let options = parse_words("--step 5 --fan-out-heavy").unwrap();
        assert_eq!(options.step, Some(Duration::from_secs(5)));
        assert_eq!(
            (options.step_factor, options.step_p99_ms, options.max_steps),
            (1.5, 250.0, 10)
        );
        assert_eq!(options.ack_timeout, Duration::from_secs(10));
        let options =
            parse_words("--step 2.5 --step-factor 2 --step-p99-ms 100 --max-steps 4 --ack-timeout 3").unwrap();
        assert_eq!(options.step, Some(Duration::from_millis(2500)));
        assert_eq!(
            (options.step_factor, options.step_p99_ms, options.max_steps),
            (2.0, 100.0, 4)
        );
        assert_eq!(options.ack_timeout, Duration::from_secs(3));
        for line in [
            "--step-factor 2",
            "--step-p99-ms 100",
            "--max-steps 3",
            "--ack-timeout 3",
            "--step 0",
            "--step 5 --step-factor 1",
            "--step 5 --step-p99-ms 0",
            "--step 5 --max-steps 0",
            "--step 5 --chaos",
        ] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.exit_code(), 2, "{line}");
        }
    }

    #[test]
    fn parameters_are_given_and_step_mode_lifts_the_message_limits_unless_given() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
        };
        let plain = parse_words("--parameter MaxConnectionsPerUser=9").unwrap();
        assert_eq!(plain.template_parameters(), pairs(&[("MaxConnectionsPerUser", "9")]));
        let step = parse_words("--step 5 --parameter RateLimitMessagesBurst=50").unwrap();
        assert_eq!(
            step.template_parameters(),
            pairs(&[
                ("RateLimitMessagesBurst", "50"),
                ("RateLimitMessagesPerMinute", "1000000")
            ])
        );
        for line in ["--parameter X", "--parameter =1", "--parameter A-B=1"] {
            assert_eq!(parse_words(line).expect_err(line).exit_code(), 2, "{line}");
        }
    }

    #[test]
    fn flags_in_both_spellings() {
        let options =
            parse_words("--clients=20 --rate 2 --room-size 0 --duration=1.5 --max-instances 8 --no-save").unwrap();
        assert_eq!(options.clients, 20);
        assert_eq!(options.rate, 2.0);
        assert_eq!(options.room_size, 0);
        assert_eq!(options.duration, Duration::from_millis(1500));
        assert_eq!(options.max_instances, Some(8));
        assert!(!options.save);
        let options =
            parse_words("--bin-dir=b --results-dir r --warmup 0 --drain=2 --offline-share 0.3 --checkout=c").unwrap();
        assert_eq!(
            (options.bin_dir, options.results_dir, options.checkout),
            (Some("b".into()), Some("r".into()), Some("c".into()))
        );
        assert_eq!(options.offline_share, 0.3);
        assert_eq!(
            (options.warmup, options.drain),
            (Duration::ZERO, Duration::from_secs(2))
        );
    }

    #[test]
    fn impossible_loads_are_refused() {
        for line in [
            "--clients 1",
            "--group-size 2",
            "--room-size 102",
            "--clients 10 --room-size 20",
            "--rate 0 --room-rate 0",
            "--duration 0",
            "--duration -1",
            "--floor-samples 0",
            "--direct-share 2",
            "--offline-share 0.9",
            "--offline-share -0.1",
            "--offline-share NaN",
            "--chaos --offline-share 0.3",
            "--rate fast",
            "--nope",
            "--clients",
            "--no-save=yes",
            "stray",
        ] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.exit_code(), 2, "{line}");
            assert!(error.render().to_string().contains("'--help'"), "{line}: {error}");
        }
    }

    #[test]
    fn chaos_has_fault_defaults_and_its_flags_need_it() {
        let options = parse_words("--chaos --clients 24 --room-size 8 --duration 15").unwrap();
        assert!(options.chaos);
        assert_eq!((options.clients, options.duration), (24, Duration::from_secs(15)));
        assert_eq!((options.fault_kill, options.fault_kill_after_commit), (0.01, 0.05));
        assert_eq!(
            (
                options.fault_push_gone,
                options.fault_push_throttle,
                options.fault_push_error
            ),
            (0.002, 0.05, 0.005)
        );
        assert_eq!((options.fault_push_latency, options.fault_seed), (0, None));
        assert_eq!(
            (options.cut_every, options.resync_every, options.ack_timeout),
            (
                Duration::from_secs(20),
                Duration::from_secs(10),
                Duration::from_secs(10)
            )
        );
        assert!(!parse_words("").unwrap().chaos);
        let options = parse_words("--chaos --fault-kill 0 --cut-every 0 --fault-seed 9").unwrap();
        assert_eq!(
            (options.fault_kill, options.cut_every, options.fault_seed),
            (0.0, Duration::ZERO, Some(9))
        );
        for line in [
            "--fault-kill 0.1",
            "--cut-every 3",
            "--fault-seed 1",
            "--chaos --fault-kill 2",
            "--chaos --fault-drop-disconnect -0.1",
            "--chaos --fault-push-gone 0.5 --fault-push-error 0.6",
            "--chaos --resync-every 0",
            "--chaos --ack-timeout 0",
        ] {
            let error = parse_words(line).expect_err(line);
            assert_eq!(error.exit_code(), 2, "{line}");
        }
    }

    #[test]
    fn help_lists_every_flag_with_its_default() {
        let error = parse_words("--help").expect_err("help");
        assert_eq!((error.kind(), error.exit_code()), (ErrorKind::DisplayHelp, 0));
        let help = error.render().to_string();
        for expected in [
            "--clients <N>",
            "[default: 200]",
            "--duration <SECS>",
            "[default: 60]",
            "--no-save",
            "--chaos",
            "--offline-share <F>",
            "[default: 0]",
            "--fault-kill-after-commit <F>",
            "--cut-every <SECS>",
            "--fan-out-heavy",
            "--step <SECS>",
            "[default: 250]",
        ] {
            assert!(help.contains(expected), "{expected} missing from\n{help}");
        }
    }
}
