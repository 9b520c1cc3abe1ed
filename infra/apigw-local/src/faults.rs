//! Fault injection, off by default: what a run may do to its clients and
//! functions that AWS does now and then, on purpose and in measured shares, so
//! the code that copes with it runs: `@connections` calls answered 410, 429
//! or 500 or answered late, function instances killed mid-invocation or right
//! after their database commit, and `$disconnect` never invoked.
//!
//! Every random choice comes from one seeded generator: a run with the same
//! seed and the same order of events makes the same choices.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::lambda::stats::FaultStats;

/// What to inject; every share is the probability, from 0 to 1, that one
/// call, invocation or closed socket gets the fault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// `@connections` calls (POST, GET, DELETE) answered 410 `GoneException`;
    /// the connection is also cut at once (no close frame), as a client that
    /// vanished.
    pub push_gone: f64,
    /// `@connections` calls answered 429 `LimitExceededException`.
    pub push_throttle: f64,
    /// `@connections` calls answered 500 `InternalServerErrorException`.
    pub push_error: f64,
    /// Each `@connections` call is delayed by a uniformly random 0..=this.
    pub push_latency: Duration,
    /// Invocations whose instance is killed (SIGKILL) at a random point
    /// before it answers.
    pub kill: f64,
    /// Function (logical id, handler or binary name) -> share of its invocations
    /// killed right after their database commit: at the instance's first
    /// `@connections` call in the invocation (not served), or when it
    /// answers if it makes none (the answer discarded).
    pub kill_after_commit: BTreeMap<String, f64>,
    /// Closed sockets whose `$disconnect` is never invoked.
    pub drop_disconnect: f64,
    /// Seed of the random choices; `None` picks one (logged, to repeat a run).
    pub seed: Option<u64>,
}

impl FaultConfig {
    pub fn is_enabled(&self) -> bool {
        self.push_gone > 0.0
            || self.push_throttle > 0.0
            || self.push_error > 0.0
            || !self.push_latency.is_zero()
            || self.kill > 0.0
            || self.kill_after_commit.values().any(|share| *share > 0.0)
            || self.drop_disconnect > 0.0
    }

    /// Every share a probability, and the `@connections` answers at most one each.
    pub fn validate(&self) -> Result<(), String> {
        let named = [
            ("push_gone", self.push_gone),
            ("push_throttle", self.push_throttle),
            ("push_error", self.push_error),
            ("kill", self.kill),
            ("drop_disconnect", self.drop_disconnect),
        ];
        let after_commit = self
            .kill_after_commit
            .iter()
            .map(|(name, share)| (name.as_str(), *share));
        for (name, share) in named.into_iter().chain(after_commit) {
            check_share(share).map_err(|error| format!("fault {name}: {error}"))?;
        }
        let answers = self.push_gone + self.push_throttle + self.push_error;
        if answers > 1.0 + 1e-9 {
            return Err(format!(
                "the @connections fault shares (gone {}, throttle {}, error {}) add up to {answers}, more than 1",
                self.push_gone, self.push_throttle, self.push_error
            ));
        }
        Ok(())
    }
}

/// A share is a number from 0 to 1.
pub fn check_share(share: f64) -> Result<(), String> {
    if share.is_finite() && (0.0..=1.0).contains(&share) {
        Ok(())
    } else {
        Err(format!("a share must be a number from 0 to 1, not {share}"))
    }
}

/// The answer an `@connections` call gets instead of being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushFault {
    Gone,
    Throttled,
    Error,
}

/// What fault injection has in store for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillPlan {
    Spare,
    /// Killed after this long, or when it answers if that comes first.
    Random(Duration),
    /// Killed at its first `@connections` call, or when it answers.
    AfterCommit,
}

/// Which counter a kill goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillKind {
    Random,
    AfterCommit,
}

#[derive(Default)]
struct Counters {
    push_gone: AtomicU64,
    push_throttled: AtomicU64,
    push_error: AtomicU64,
    push_delayed: AtomicU64,
    kills: AtomicU64,
    kills_after_commit: AtomicU64,
    disconnects_dropped: AtomicU64,
}

/// The run's fault configuration, its random choices and what it injected.
pub(crate) struct FaultInjector {
    config: FaultConfig,
    seed: u64,
    rng: Mutex<SplitMix64>,
    counters: Counters,
}

impl FaultInjector {
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed.unwrap_or_else(|| {
            let bytes = uuid::Uuid::new_v4().into_bytes();
            u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
        });
        FaultInjector {
            config,
            seed,
            rng: Mutex::new(SplitMix64(seed)),
            counters: Counters::default(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A uniform number in [0, 1).
    fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).next_f64()
    }

    /// True with probability `share`; draws only for a share strictly
    /// between 0 and 1, so a fault that is off leaves the others' choices as
    /// they would be without it.
    fn happens(&self, share: f64) -> bool {
        if share <= 0.0 {
            false
        } else if share >= 1.0 {
            true
        } else {
            self.draw() < share
        }
    }

    /// How long to hold one `@connections` call, if at all (counted).
    pub fn push_delay(&self) -> Option<Duration> {
        let most = self.config.push_latency;
        if most.is_zero() {
            return None;
        }
        let delay = most.mul_f64(self.draw());
        if delay.is_zero() {
            return None;
        }
        self.counters.push_delayed.fetch_add(1, Ordering::Relaxed);
        Some(delay)
    }

    /// The fault answering one `@connections` call, if any (counted).
    pub fn push_fault(&self) -> Option<PushFault> {
        let FaultConfig {
            push_gone,
            push_throttle,
            push_error,
            ..
        } = self.config;
        if push_gone + push_throttle + push_error <= 0.0 {
            return None;
        }
        let roll = self.draw();
        let (fault, counter) = if roll < push_gone {
            (PushFault::Gone, &self.counters.push_gone)
        } else if roll < push_gone + push_throttle {
            (PushFault::Throttled, &self.counters.push_throttled)
        } else if roll < push_gone + push_throttle + push_error {
            (PushFault::Error, &self.counters.push_error)
        } else {
            return None;
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }

    /// Whether and how the invocation starting now dies: `after_commit` is
    /// its function's share of kills after commit; a random kill comes
    /// within `typical` (the function's usual handler time), so that most
    /// land while it works.
    pub fn kill_plan(&self, after_commit: f64, typical: Duration) -> KillPlan {
        if self.happens(after_commit) {
            KillPlan::AfterCommit
        } else if self.happens(self.config.kill) {
            KillPlan::Random(typical.mul_f64(self.draw()))
        } else {
            KillPlan::Spare
        }
    }

    pub fn count_kill(&self, kind: KillKind) {
        let counter = match kind {
            KillKind::Random => &self.counters.kills,
            KillKind::AfterCommit => &self.counters.kills_after_commit,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether this closed socket's `$disconnect` is skipped (counted).
    pub fn drop_disconnect(&self) -> bool {
        let dropped = self.happens(self.config.drop_disconnect);
        if dropped {
            self.counters.disconnects_dropped.fetch_add(1, Ordering::Relaxed);
        }
        dropped
    }

    pub fn stats(&self) -> FaultStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let c = &self.counters;
        FaultStats {
            push_gone: read(&c.push_gone),
            push_throttled: read(&c.push_throttled),
            push_error: read(&c.push_error),
            push_delayed: read(&c.push_delayed),
            kills: read(&c.kills),
            kills_after_commit: read(&c.kills_after_commit),
            disconnects_dropped: read(&c.disconnects_dropped),
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood): tiny, fast, and good enough to pick faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(config: FaultConfig) -> FaultInjector {
        FaultInjector::new(FaultConfig {
            seed: Some(7),
            ..config
        })
    }

    #[test]
    fn off_by_default() {
        let config = FaultConfig::default();
        assert!(!config.is_enabled());
        assert_eq!(config.validate(), Ok(()));
        let faults = injector(config);
        for _ in 0..100 {
            assert_eq!(faults.push_fault(), None);
            assert_eq!(faults.push_delay(), None);
            assert_eq!(faults.kill_plan(0.0, Duration::from_millis(10)), KillPlan::Spare);
            assert!(!faults.drop_disconnect());
        }
        assert_eq!(faults.stats(), FaultStats::default());
    }

    #[test]
    fn shares_must_be_probabilities_that_fit_together() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let config = FaultConfig {
                kill: bad,
                ..Default::default()
            };
            let error = config.validate().unwrap_err();
            assert!(error.contains("fault kill") && error.contains("from 0 to 1"), "{error}");
        }
        let config = FaultConfig {
            kill_after_commit: BTreeMap::from([("ws-send-message".to_string(), 2.0)]),
            ..Default::default()
        };
        assert!(config.validate().unwrap_err().contains("ws-send-message"));
        let config = FaultConfig {
            push_gone: 0.5,
            push_throttle: 0.4,
            push_error: 0.2,
            ..Default::default()
        };
        assert!(config.validate().unwrap_err().contains("more than 1"));
        let config = FaultConfig {
            push_gone: 0.5,
            push_throttle: 0.3,
            push_error: 0.2,
            ..Default::default()
        };
        assert_eq!(config.validate(), Ok(()));
        assert!(config.is_enabled());
    }

    #[test]
    fn shares_are_honoured_and_counted() {
        let faults = injector(FaultConfig {
            push_gone: 0.1,
            push_throttle: 0.2,
            push_error: 0.3,
            drop_disconnect: 0.25,
            ..Default::default()
        });
        let mut answers = BTreeMap::new();
        let rounds = 20_000;
        for _ in 0..rounds {
            *answers.entry(format!("{:?}", faults.push_fault())).or_insert(0u64) += 1;
            faults.drop_disconnect();
        }
        let share = |key: &str| answers.get(key).copied().unwrap_or(0) as f64 / rounds as f64;
        assert!((share("Some(Gone)") - 0.1).abs() < 0.02, "{answers:?}");
        assert!((share("Some(Throttled)") - 0.2).abs() < 0.02, "{answers:?}");
        assert!((share("Some(Error)") - 0.3).abs() < 0.02, "{answers:?}");
        assert!((share("None") - 0.4).abs() < 0.02, "{answers:?}");
        let stats = faults.stats();
        assert_eq!(stats.push_gone, answers["Some(Gone)"]);
        assert_eq!(stats.push_throttled, answers["Some(Throttled)"]);
        assert_eq!(stats.push_error, answers["Some(Error)"]);
        assert!((stats.disconnects_dropped as f64 / rounds as f64 - 0.25).abs() < 0.02);
    }

    #[test]
    fn a_share_of_one_always_happens() {
        let faults = injector(FaultConfig {
            push_error: 1.0,
            kill: 1.0,
            drop_disconnect: 1.0,
            ..Default::default()
        });
        for _ in 0..100 {
            assert_eq!(faults.push_fault(), Some(PushFault::Error));
            assert!(faults.drop_disconnect());
            assert!(matches!(
                faults.kill_plan(0.0, Duration::from_millis(40)),
                KillPlan::Random(after) if after < Duration::from_millis(40)
            ));
            assert_eq!(faults.kill_plan(1.0, Duration::from_millis(40)), KillPlan::AfterCommit);
        }
    }

    #[test]
    fn latency_is_uniform_up_to_the_bound() {
        let most = Duration::from_millis(100);
        let faults = injector(FaultConfig {
            push_latency: most,
            ..Default::default()
        });
        let delays: Vec<Duration> = (0..1000).filter_map(|_| faults.push_delay()).collect();
        assert!(delays.len() > 990);
        assert!(delays.iter().all(|d| *d <= most));
        let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
        assert!(
            mean > Duration::from_millis(40) && mean < Duration::from_millis(60),
            "{mean:?}"
        );
        assert_eq!(faults.stats().push_delayed, delays.len() as u64);
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let config = FaultConfig {
            push_gone: 0.3,
            push_throttle: 0.3,
            kill: 0.5,
            seed: Some(42),
            ..Default::default()
        };
        let choices = |faults: FaultInjector| -> Vec<String> {
            (0..200)
                .map(|_| {
                    format!(
                        "{:?} {:?}",
                        faults.push_fault(),
                        faults.kill_plan(0.0, Duration::from_secs(1))
                    )
                })
                .collect()
        };
        let first = choices(FaultInjector::new(config.clone()));
        assert_eq!(first, choices(FaultInjector::new(config.clone())));
        let other_seed = FaultConfig {
            seed: Some(43),
            ..config
        };
        assert_ne!(first, choices(FaultInjector::new(other_seed)));
    }
}
