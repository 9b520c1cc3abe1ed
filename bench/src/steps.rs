//! Step mode (`--step`): the load runs in steps, every rate multiplied by a
//! factor after each step held, until a step is not held: its p99 of send →
//! deliver passes the bound, or a send went unacknowledged within the ack
//! timeout, or a message was lost or refused. What a step did, and whether
//! it was held, is decided here from its figures alone.

use serde::Serialize;

use crate::latency::Summary;
use crate::report::Integrity;

/// What the stepping was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct StepSettings {
    pub step_s: f64,
    pub factor: f64,
    pub p99_bound_ms: f64,
    pub ack_timeout_s: f64,
    pub max_steps: usize,
}

/// One step's row.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Messages per second each client sent to its direct or group conversation.
    pub rate_per_client: f64,
    /// Messages per second each room member sent to the room.
    pub room_rate_per_member: f64,
    pub sends_per_s: f64,
    pub deliveries_per_s: f64,
    /// Send → `message.created`, every recipient, this step's messages only.
    pub deliver: Option<Summary>,
    /// Sends acknowledged later than the ack timeout, or not by the end of the step's drain.
    pub unacked: u64,
    pub integrity: Integrity,
    /// Why the step was not held; empty when it was.
    pub failed_because: Vec<String>,
}

impl Step {
    pub fn held(&self) -> bool {
        self.failed_because.is_empty()
    }
}

/// Every step and the highest held.
#[derive(Debug, Clone, Serialize)]
pub struct StepFigures {
    pub settings: StepSettings,
    pub steps: Vec<Step>,
    /// Index into `steps` of the last step held; `None`: not even the first.
    pub highest_held: Option<usize>,
    /// Why the stepping ended.
    pub stopped_because: String,
}

impl StepFigures {
    pub fn highest(&self) -> Option<&Step> {
        self.highest_held.map(|index| &self.steps[index])
    }
}

/// What to do after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run the next step at rates multiplied by this.
    Raise(f64),
    /// Stop; why.
    Stop(String),
}

/// Why a step with these figures is not held (empty: it is). A message
/// lost or refused, or a wrong delivery, is never held, whatever the
/// latency: the rate was not served.
pub fn failures(
    deliver: Option<&Summary>,
    unacked: u64,
    integrity: &Integrity,
    settings: &StepSettings,
) -> Vec<String> {
    let mut failed = Vec::new();
    match deliver {
        Some(summary) if summary.p99_ms > settings.p99_bound_ms => {
            failed.push(format!("p99 {} ms over {} ms", summary.p99_ms, settings.p99_bound_ms))
        }
        Some(_) => {}
        None => failed.push("no delivery measured".to_owned()),
    }
    if unacked > 0 {
        failed.push(format!(
            "{unacked} sends unacknowledged within {} s",
            settings.ack_timeout_s
        ));
    }
    for (count, what) in [
        (integrity.lost, "deliveries lost"),
        (integrity.errors, "refused (error events)"),
        (integrity.duplicates, "duplicate deliveries"),
        (integrity.ack_duplicates, "duplicate acks"),
        (integrity.strays, "stray deliveries"),
        (integrity.dropped_sockets, "sockets dropped"),
    ] {
        if count > 0 {
            failed.push(format!("{count} {what}"));
        }
    }
    failed
}

/// After step `index` (0-based) ran: raise the rates, or stop.
pub fn decide(step: &Step, index: usize, settings: &StepSettings) -> Decision {
    if !step.held() {
        return Decision::Stop(format!(
            "step {} not held: {}",
            index + 1,
            step.failed_because.join(", ")
        ));
    }
    if index + 1 >= settings.max_steps {
        return Decision::Stop(format!("all {} steps held (--max-steps)", settings.max_steps));
    }
    Decision::Raise(settings.factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StepSettings {
        StepSettings {
            step_s: 5.0,
            factor: 1.5,
            p99_bound_ms: 250.0,
            ack_timeout_s: 10.0,
            max_steps: 3,
        }
    }

    fn summary(p99_ms: f64) -> Summary {
        Summary {
            count: 1000,
            p50_ms: p99_ms / 4.0,
            p95_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
            mean_ms: p99_ms / 3.0,
        }
    }

    fn step(p99_ms: Option<f64>, unacked: u64, integrity: Integrity) -> Step {
        let deliver = p99_ms.map(summary);
        let failed_because = failures(deliver.as_ref(), unacked, &integrity, &settings());
        Step {
            rate_per_client: 1.0,
            room_rate_per_member: 1.0,
            sends_per_s: 200.0,
            deliveries_per_s: 20000.0,
            deliver,
            unacked,
            integrity,
            failed_because,
        }
    }

    #[test]
    fn a_step_under_the_bound_with_every_send_acked_is_held_and_the_rate_raised() {
        let at_bound = step(Some(250.0), 0, Integrity::default());
        assert!(at_bound.held());
        assert_eq!(decide(&at_bound, 0, &settings()), Decision::Raise(1.5));
        assert_eq!(
            decide(&step(Some(12.0), 0, Integrity::default()), 1, &settings()),
            Decision::Raise(1.5)
        );
    }

    #[test]
    fn passing_the_p99_bound_stops() {
        let slow = step(Some(250.5), 0, Integrity::default());
        assert_eq!(slow.failed_because, ["p99 250.5 ms over 250 ms"]);
        assert_eq!(
            decide(&slow, 1, &settings()),
            Decision::Stop("step 2 not held: p99 250.5 ms over 250 ms".into())
        );
    }

    #[test]
    fn an_unacknowledged_send_stops_even_with_fast_deliveries() {
        let unacked = step(Some(20.0), 3, Integrity::default());
        assert_eq!(unacked.failed_because, ["3 sends unacknowledged within 10 s"]);
        assert!(matches!(decide(&unacked, 0, &settings()), Decision::Stop(_)));
    }

    #[test]
    fn a_lost_or_refused_message_or_no_delivery_at_all_stops() {
        let lost = step(
            Some(20.0),
            0,
            Integrity {
                lost: 2,
                errors: 1,
                ..Integrity::default()
            },
        );
        assert_eq!(lost.failed_because, ["2 deliveries lost", "1 refused (error events)"]);
        let silent = step(None, 0, Integrity::default());
        assert_eq!(silent.failed_because, ["no delivery measured"]);
        assert!(!silent.held());
    }

    #[test]
    fn the_last_allowed_step_held_stops_the_stepping() {
        let held = step(Some(20.0), 0, Integrity::default());
        assert_eq!(
            decide(&held, 2, &settings()),
            Decision::Stop("all 3 steps held (--max-steps)".into())
        );
    }
}
