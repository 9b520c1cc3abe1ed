//! Scheduled invocations: a function's `Schedule` events (EventBridge rules)
//! and `ScheduleV2` events (EventBridge Scheduler) run it at their rate with
//! the event each service sends, through the function's pool like any other
//! invocation. `rate(...)` is interpreted; `cron(...)` and `at(...)` are not
//! (a warning at start) and run only when the run sets one interval for every
//! schedule (`schedule_every`, for tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use crate::lambda::stats::ScheduleStats;
use crate::lambda::FunctionSet;
use crate::template::ACCOUNT_ID;

/// When a schedule runs, as its expression says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expression {
    /// `rate(N minute|minutes|hour|hours|day|days)`.
    Rate(Duration),
    /// `cron(...)`: six fields, not interpreted here.
    Cron(String),
    /// `at(yyyy-mm-ddThh:mm:ss)`: one time, Scheduler only; not interpreted here.
    At(String),
}

impl Expression {
    /// A schedule expression as EventBridge accepts it; `at(...)` only when
    /// `one_time_allowed` (EventBridge Scheduler).
    pub fn parse(text: &str, one_time_allowed: bool) -> Result<Expression, String> {
        let text = text.trim();
        if let Some(inner) = enclosed(text, "rate") {
            return parse_rate(inner).map(Expression::Rate);
        }
        if let Some(inner) = enclosed(text, "cron") {
            let fields = inner.split_whitespace().count();
            if fields != 6 {
                return Err(format!(
                    "{text:?}: a cron expression has six fields (minutes hours day-of-month month day-of-week year), not {fields}"
                ));
            }
            return Ok(Expression::Cron(text.to_string()));
        }
        if let Some(inner) = enclosed(text, "at") {
            if !one_time_allowed {
                return Err(format!(
                    "{text:?}: one-time at(...) schedules are ScheduleV2 (EventBridge Scheduler) only"
                ));
            }
            if chrono::NaiveDateTime::parse_from_str(inner.trim(), "%Y-%m-%dT%H:%M:%S").is_err() {
                return Err(format!("{text:?}: expected at(yyyy-mm-ddThh:mm:ss)"));
            }
            return Ok(Expression::At(text.to_string()));
        }
        Err(format!(
            "{text:?} is not a schedule expression: expected rate(N minute|minutes|hour|hours|day|days) or cron(...)"
        ))
    }

    pub fn rate(&self) -> Option<Duration> {
        match self {
            Expression::Rate(period) => Some(*period),
            Expression::Cron(_) | Expression::At(_) => None,
        }
    }
}

/// `inner` of `name(inner)`.
fn enclosed<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
}

/// `5 minutes` -> 300 s. As EventBridge requires: a positive whole number,
/// the singular unit for 1 and the plural for more.
fn parse_rate(inner: &str) -> Result<Duration, String> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    let [value, unit] = words.as_slice() else {
        return Err(format!(
            "rate({inner}): expected rate(N unit), e.g. rate(1 minute) or rate(5 minutes)"
        ));
    };
    let value: u64 = match value.parse() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            return Err(format!(
                "rate({inner}): the value must be a positive whole number, not {value:?}"
            ))
        }
    };
    let (seconds, singular) = match *unit {
        "minute" => (60, true),
        "minutes" => (60, false),
        "hour" => (3600, true),
        "hours" => (3600, false),
        "day" => (86_400, true),
        "days" => (86_400, false),
        other => {
            return Err(format!(
                "rate({inner}): the unit must be minute(s), hour(s) or day(s), not {other:?}"
            ))
        }
    };
    if singular != (value == 1) {
        let wanted = if value == 1 { "singular" } else { "plural" };
        return Err(format!("rate({inner}): a value of {value} takes the {wanted} unit"));
    }
    value
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("rate({inner}) is too long"))
}

/// Which service runs the schedule, and so which event the function gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Service {
    /// A `Schedule` event: an EventBridge rule (`source: aws.events`).
    Rule,
    /// A `ScheduleV2` event: EventBridge Scheduler (`source: aws.scheduler`), in a group.
    Scheduler { group: String },
}

/// One `Schedule` or `ScheduleV2` event of a function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScheduleSpec {
    /// Logical id of the function it invokes.
    pub function: String,
    /// The event's name in the function's `Events`.
    pub event: String,
    pub service: Service,
    /// The rule's or schedule's name.
    pub name: String,
    pub expression: Expression,
    /// `Enabled: false` or `State: DISABLED` turn it off.
    pub enabled: bool,
    /// `Input`: JSON sent instead of the service's event.
    pub input: Option<String>,
}

impl ScheduleSpec {
    /// The rule's or schedule's ARN: the event's `resources`.
    pub fn arn(&self, region: &str) -> String {
        match &self.service {
            Service::Rule => format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/{}", self.name),
            Service::Scheduler { group } => {
                format!("arn:aws:scheduler:{region}:{ACCOUNT_ID}:schedule/{group}/{}", self.name)
            }
        }
    }

    /// What the function receives for the run due at `at`.
    pub fn event(&self, region: &str, at: DateTime<Utc>) -> Vec<u8> {
        let arn = self.arn(region);
        let time = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        if let Some(input) = &self.input {
            return match self.service {
                Service::Rule => input.clone().into_bytes(),
                // Scheduler fills in its context attributes.
                Service::Scheduler { .. } => input
                    .replace("<aws.scheduler.schedule-arn>", &arn)
                    .replace("<aws.scheduler.scheduled-time>", &time)
                    .replace(
                        "<aws.scheduler.execution-id>",
                        &uuid::Uuid::new_v4().simple().to_string()[..16],
                    )
                    .replace("<aws.scheduler.attempt-number>", "1")
                    .into_bytes(),
            };
        }
        let (source, detail) = match self.service {
            Service::Rule => ("aws.events", json!({})),
            // EventBridge Scheduler's default notification carries `detail` as a JSON string.
            Service::Scheduler { .. } => ("aws.scheduler", json!("{}")),
        };
        let event: Value = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": source,
            "account": ACCOUNT_ID,
            "time": time,
            "region": region,
            "resources": [arn],
            "detail": detail,
        });
        serde_json::to_vec(&event).expect("events serialize")
    }
}

/// Runs by function, shared by the schedules and the stats.
pub(crate) type RunCounts = Arc<Mutex<BTreeMap<String, ScheduleStats>>>;

/// Starts one task per enabled schedule that has an interval: its rate, or
/// `every` for all of them when given. The first run comes one interval
/// after the start, as with EventBridge. Aborting a task stops its schedule
/// and its runs under way.
pub(crate) fn start(
    schedules: &[ScheduleSpec],
    every: Option<Duration>,
    region: &str,
    functions: Arc<FunctionSet>,
    runs: RunCounts,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for schedule in schedules {
        let label = format!("{}.{}", schedule.function, schedule.event);
        if !schedule.enabled {
            tracing::info!(schedule = %label, "schedule disabled; not run");
            continue;
        }
        let Some(period) = every.or(schedule.expression.rate()) else {
            tracing::warn!(
                schedule = %label,
                expression = ?schedule.expression,
                "cron(...) and at(...) schedules are not interpreted by the emulator; not run (give an interval for every schedule to run it)"
            );
            continue;
        };
        runs.lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(schedule.function.clone())
            .or_default();
        tracing::info!(schedule = %label, every_seconds = period.as_secs_f64(), "schedule started");
        let (schedule, region, functions, runs) = (
            schedule.clone(),
            region.to_string(),
            Arc::clone(&functions),
            Arc::clone(&runs),
        );
        tasks.push(tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // Dropped with the task: runs under way end with it.
            let mut under_way = JoinSet::new();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    Some(_) = under_way.join_next() => continue,
                }
                let event = schedule.event(&region, Utc::now());
                let (functions, runs, function, label) = (
                    Arc::clone(&functions),
                    Arc::clone(&runs),
                    schedule.function.clone(),
                    label.clone(),
                );
                // As EventBridge invokes asynchronously, a run never waits for the one before.
                under_way.spawn(async move {
                    let result = functions.invoke(&function, event).await;
                    let mut counts = runs.lock().unwrap_or_else(|p| p.into_inner());
                    let stats = counts.entry(function).or_default();
                    stats.runs += 1;
                    match result {
                        Ok(_) => tracing::debug!(schedule = %label, "scheduled run done"),
                        Err(error) => {
                            stats.errors += 1;
                            tracing::warn!(schedule = %label, %error, "scheduled run failed");
                        }
                    }
                });
            }
        }));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Result<Duration, String> {
        match Expression::parse(text, false)? {
            Expression::Rate(period) => Ok(period),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn rates_in_every_unit() {
        assert_eq!(rate("rate(1 minute)"), Ok(Duration::from_secs(60)));
        assert_eq!(rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(rate("rate(1 hour)"), Ok(Duration::from_secs(3600)));
        assert_eq!(rate("rate(12 hours)"), Ok(Duration::from_secs(43_200)));
        assert_eq!(rate("rate(1 day)"), Ok(Duration::from_secs(86_400)));
        assert_eq!(rate("rate(7 days)"), Ok(Duration::from_secs(604_800)));
        assert_eq!(rate("  rate( 2   minutes )  "), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        for (text, complaint) in [
            ("rate(0 minutes)", "positive whole number"),
            ("rate(-1 minutes)", "positive whole number"),
            ("rate(1.5 minutes)", "positive whole number"),
            ("rate(+2 minutes)", "positive whole number"),
            ("rate(five minutes)", "positive whole number"),
            ("rate(5 minute)", "plural"),
            ("rate(1 minutes)", "singular"),
            ("rate(2 seconds)", "minute(s), hour(s) or day(s)"),
            ("rate(2 weeks)", "minute(s), hour(s) or day(s)"),
            ("rate(2)", "expected rate(N unit)"),
            ("rate()", "expected rate(N unit)"),
            ("rate(1 minute now)", "expected rate(N unit)"),
            ("rate(99999999999999999 days)", "too long"),
            ("rate 1 minute", "not a schedule expression"),
            ("every minute", "not a schedule expression"),
            ("", "not a schedule expression"),
            ("Rate(1 minute)", "not a schedule expression"),
        ] {
            let error = Expression::parse(text, true).unwrap_err();
            assert!(error.contains(complaint), "{text}: {error}");
        }
    }

    #[test]
    fn cron_and_at_are_recognised_not_interpreted() {
        let cron = Expression::parse("cron(0/5 * * * ? *)", false).unwrap();
        assert_eq!(cron, Expression::Cron("cron(0/5 * * * ? *)".into()));
        assert_eq!(cron.rate(), None);
        assert!(Expression::parse("cron(* * * *)", false)
            .unwrap_err()
            .contains("six fields"));
        let at = Expression::parse("at(2030-01-01T00:00:00)", true).unwrap();
        assert_eq!(at.rate(), None);
        assert!(Expression::parse("at(2030-01-01T00:00:00)", false)
            .unwrap_err()
            .contains("ScheduleV2"));
        assert!(Expression::parse("at(tomorrow)", true)
            .unwrap_err()
            .contains("yyyy-mm-dd"));
    }

    fn spec(service: Service, input: Option<&str>) -> ScheduleSpec {
        ScheduleSpec {
            function: "SweepFunction".into(),
            event: "Sweep".into(),
            service,
            name: "local-SweepFunctionSweep".into(),
            expression: Expression::Rate(Duration::from_secs(60)),
            enabled: true,
            input: input.map(str::to_string),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T07:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn event(spec: &ScheduleSpec) -> Value {
        serde_json::from_slice(&spec.event("eu-west-1", at())).unwrap()
    }

    /// EventBridge's documented "Scheduled Event" of a rule.
    #[test]
    fn a_rule_sends_the_scheduled_event() {
        let event = event(&spec(Service::Rule, None));
        let id = event["id"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(
            event,
            json!({
                "version": "0",
                "id": id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": "2026-11-21T07:00:00Z",
                "region": "eu-west-1",
                "resources": ["arn:aws:events:eu-west-1:000000000000:rule/local-SweepFunctionSweep"],
                "detail": {}
            })
        );
    }

    /// EventBridge Scheduler's default notification: the same envelope from
    /// `aws.scheduler`, the schedule's ARN in its group, `detail` a JSON string.
    #[test]
    fn a_scheduler_schedule_sends_its_default_notification() {
        let scheduler = Service::Scheduler {
            group: "default".into(),
        };
        let event = event(&spec(scheduler, None));
        assert_eq!(event["source"], "aws.scheduler");
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["detail"], "{}");
        assert_eq!(event["version"], "0");
        assert_eq!(event["account"], ACCOUNT_ID);
        assert_eq!(event["time"], "2026-11-21T07:00:00Z");
        assert_eq!(
            event["resources"],
            json!(["arn:aws:scheduler:eu-west-1:000000000000:schedule/default/local-SweepFunctionSweep"])
        );
    }

    #[test]
    fn input_replaces_the_event() {
        let rule = spec(
            Service::Rule,
            Some(r#"{"job":"sweep","arn":"<aws.scheduler.schedule-arn>"}"#),
        );
        assert_eq!(
            event(&rule),
            json!({"job": "sweep", "arn": "<aws.scheduler.schedule-arn>"})
        );
        let scheduler = Service::Scheduler { group: "jobs".into() };
        let input = r#"{"arn":"<aws.scheduler.schedule-arn>","at":"<aws.scheduler.scheduled-time>","n":"<aws.scheduler.attempt-number>","id":"<aws.scheduler.execution-id>"}"#;
        let event = event(&spec(scheduler, Some(input)));
        assert_eq!(
            event["arn"],
            "arn:aws:scheduler:eu-west-1:000000000000:schedule/jobs/local-SweepFunctionSweep"
        );
        assert_eq!(event["at"], "2026-11-21T07:00:00Z");
        assert_eq!(event["n"], "1");
        assert_eq!(event["id"].as_str().unwrap().len(), 16);
    }
}
