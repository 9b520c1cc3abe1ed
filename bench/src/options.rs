//! The command line, parsed by hand like `chat-local`'s: a dozen numeric
//! flags do not justify an argument-parsing dependency.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub const USAGE: &str = "\
Benchmarks the chat backend on an isolated local stack (fresh database, free ports,
release function binaries): send→deliver latency, throughput, database round trips,
cold starts, handler time, memory and binary size. Run it through `make bench`.

Usage: chat-bench [options]
  --clients N            WebSocket clients, one user each (default 200)
  --direct-share F       share of the clients in direct pairs; the rest are in groups (default 0.5)
  --group-size N         members per group conversation, 3..101 (default 6)
  --room-size N          members of the one room, 0 = no room, at most 101 (default 100)
  --rate R               messages per second each client sends to its direct or group
                         conversation (default 0.5)
  --room-rate R          messages per second each room member sends to the room (default 0.02)
  --duration SECS        measured sending time (default 60)
  --warmup SECS          sending before the measurement starts, not measured (default 5)
  --drain SECS           longest wait for the last deliveries after sending stops (default 15)
  --rest-requests N      requests per REST operation measured (default 200)
  --sequential-sends N   one-at-a-time sends that count database round trips (default 60)
  --floor-samples N      raw INSERT and raw WebSocket push samples (default 1000)
  --connect-concurrency N  WebSocket handshakes in flight at once while connecting (default 16)
  --max-instances N      concurrent instances per function (default: the stack's)
  --bin-dir DIR          release binaries: chat-local and the functions (default target/release)
  --results-dir DIR      where the JSON goes (default bench/results)
  --no-save              print the table only; write no JSON";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub clients: usize,
    pub direct_share: f64,
    pub group_size: usize,
    pub room_size: usize,
    pub rate: f64,
    pub room_rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain: Duration,
    pub rest_requests: usize,
    pub sequential_sends: usize,
    pub floor_samples: usize,
    pub connect_concurrency: usize,
    pub max_instances: Option<usize>,
    pub bin_dir: Option<PathBuf>,
    pub results_dir: Option<PathBuf>,
    pub save: bool,
}

/// A room or group holds its creator plus at most this many members.
pub const MAX_MEMBERS_BESIDES_CREATOR: usize = 100;

impl Default for Options {
    fn default() -> Self {
        Options {
            clients: 200,
            direct_share: 0.5,
            group_size: 6,
            room_size: 100,
            rate: 0.5,
            room_rate: 0.02,
            duration: Duration::from_secs(60),
            warmup: Duration::from_secs(5),
            drain: Duration::from_secs(15),
            rest_requests: 200,
            sequential_sends: 60,
            floor_samples: 1000,
            connect_concurrency: 16,
            max_instances: None,
            bin_dir: None,
            results_dir: None,
            save: true,
        }
    }
}

pub enum Parsed {
    Run(Options),
    Help,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(word) = args.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (word, None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("`{flag}` needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--clients" => options.clients = number(&flag, value(&flag)?)?,
            "--direct-share" => options.direct_share = number(&flag, value(&flag)?)?,
            "--group-size" => options.group_size = number(&flag, value(&flag)?)?,
            "--room-size" => options.room_size = number(&flag, value(&flag)?)?,
            "--rate" => options.rate = number(&flag, value(&flag)?)?,
            "--room-rate" => options.room_rate = number(&flag, value(&flag)?)?,
            "--duration" => options.duration = seconds(&flag, value(&flag)?)?,
            "--warmup" => options.warmup = seconds(&flag, value(&flag)?)?,
            "--drain" => options.drain = seconds(&flag, value(&flag)?)?,
            "--rest-requests" => options.rest_requests = number(&flag, value(&flag)?)?,
            "--sequential-sends" => options.sequential_sends = number(&flag, value(&flag)?)?,
            "--floor-samples" => options.floor_samples = number(&flag, value(&flag)?)?,
            "--connect-concurrency" => options.connect_concurrency = number(&flag, value(&flag)?)?,
            "--max-instances" => options.max_instances = Some(number(&flag, value(&flag)?)?),
            "--bin-dir" => options.bin_dir = Some(value(&flag)?.into()),
            "--results-dir" => options.results_dir = Some(value(&flag)?.into()),
            "--no-save" if inline.is_none() => options.save = false,
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    options.validate()?;
    Ok(Parsed::Run(options))
}

impl Options {
    fn validate(&self) -> Result<(), String> {
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
                self.room_size == 0 || (2..=MAX_MEMBERS_BESIDES_CREATOR + 1).contains(&self.room_size),
                "--room-size must be 0 or between 2 and 101",
            ),
            (self.room_size <= self.clients, "--room-size cannot exceed --clients"),
            (
                self.rate >= 0.0 && self.room_rate >= 0.0 && self.rate + self.room_rate > 0.0,
                "--rate and --room-rate must not be negative, and not both 0",
            ),
            (!self.duration.is_zero(), "--duration must be at least 1 second"),
            (self.max_instances != Some(0), "--max-instances must be at least 1"),
            (
                self.rest_requests > 0
                    && self.sequential_sends > 0
                    && self.floor_samples > 0
                    && self.connect_concurrency > 0,
                "--rest-requests, --sequential-sends, --floor-samples and --connect-concurrency must be at least 1",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }
}

fn number<T: FromStr>(flag: &str, raw: String) -> Result<T, String> {
    raw.parse()
        .map_err(|_| format!("`{flag}`: `{raw}` is not a valid value"))
}

fn seconds(flag: &str, raw: String) -> Result<Duration, String> {
    let secs: f64 = number(flag, raw)?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{flag}` must be a number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Parsed, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn defaults_are_the_documented_load() {
        let Parsed::Run(options) = parse_words("").unwrap() else {
            panic!()
        };
        assert_eq!(options, Options::default());
        assert_eq!((options.clients, options.group_size, options.room_size), (200, 6, 100));
    }

    #[test]
    fn flags_in_both_spellings() {
        let Parsed::Run(options) =
            parse_words("--clients=20 --rate 2 --room-size 0 --duration=1.5 --max-instances 8 --no-save").unwrap()
        else {
            panic!()
        };
        assert_eq!(options.clients, 20);
        assert_eq!(options.rate, 2.0);
        assert_eq!(options.room_size, 0);
        assert_eq!(options.duration, Duration::from_millis(1500));
        assert_eq!(options.max_instances, Some(8));
        assert!(!options.save);
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
            "--floor-samples 0",
            "--direct-share 2",
            "--rate fast",
            "--nope",
            "--clients",
            "--no-save=yes",
        ] {
            assert!(parse_words(line).is_err(), "{line}");
        }
        assert!(matches!(parse_words("--help"), Ok(Parsed::Help)));
    }
}
