//! `Schedule` and `ScheduleV2` events (tests/fixtures/template-scheduled.yaml)
//! run their functions with the services' events, through the pools.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::TestStack;
use apigw_local::{RunOptions, ScheduleStats, WsLimits};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_interval_runs_every_enabled_schedule_with_its_services_event() {
    let options = RunOptions {
        schedule_every: Some(Duration::from_secs_f64(0.25)),
        ..Default::default()
    };
    let mut stack = TestStack::start_with("template-scheduled.yaml", WsLimits::default(), options).await;
    let runs = |stats: &apigw_local::EmulatorStats, function: &str| stats.schedules.get(function).map_or(0, |s| s.runs);
    let stats = stack
        .wait_stats("runs of every enabled schedule", |stats| {
            runs(stats, "SweepFunction") >= 4 && runs(stats, "FailingFunction") >= 2 && runs(stats, "CronFunction") >= 1
        })
        .await;

    // Through the function's pool, like any invocation.
    let sweep = &stats.functions["SweepFunction"];
    assert!(sweep.invocations >= stats.schedules["SweepFunction"].runs, "{sweep:?}");
    assert!(sweep.instances_started >= 1);
    assert_eq!(stats.schedules["SweepFunction"].errors, 0);
    // A failing run is counted and the schedule goes on.
    let failing = &stats.schedules["FailingFunction"];
    assert_eq!(failing.errors, failing.runs);
    // Disabled schedules never run.
    assert!(!stats.schedules.contains_key("DisabledFunction"));
    assert_eq!(stats.functions["DisabledFunction"].invocations, 0);

    stack.stop().await;
    let events = stack.records("SweepFunction");
    let rule = events
        .iter()
        .find(|e| e["source"] == "aws.events")
        .expect("an EventBridge rule's event");
    let keys: BTreeSet<&str> = rule.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "account",
            "detail",
            "detail-type",
            "id",
            "region",
            "resources",
            "source",
            "time",
            "version"
        ])
    );
    assert_eq!(rule["version"], "0");
    assert_eq!(rule["detail-type"], "Scheduled Event");
    assert_eq!(rule["account"], "000000000000");
    assert_eq!(rule["region"], "us-east-1");
    assert_eq!(
        rule["resources"],
        json!(["arn:aws:events:us-east-1:000000000000:rule/local-SweepFunctionSweep"])
    );
    assert_eq!(rule["detail"], json!({}));
    let time = rule["time"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
        "{time}"
    );
    let scheduler = events
        .iter()
        .find(|e| e["source"] == "aws.scheduler")
        .expect("an EventBridge Scheduler event");
    assert_eq!(scheduler["detail-type"], "Scheduled Event");
    assert_eq!(scheduler["detail"], "{}");
    assert_eq!(
        scheduler["resources"],
        json!(["arn:aws:scheduler:us-east-1:000000000000:schedule/jobs/local-SweepFunctionNightly"])
    );
    // Every event is a new one.
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len());
    // An Input replaces the event.
    let failing: Vec<Value> = stack.records("FailingFunction");
    assert!(failing.iter().all(|e| *e == json!({"fail": true})), "{failing:?}");
    assert!(stack.records("DisabledFunction").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_interval_rates_are_kept_and_cron_is_not_interpreted() {
    let mut stack = TestStack::start("template-scheduled.yaml", WsLimits::default()).await;
    let schedules = stack.emulator().stats().schedules;
    // A minute at the least: none has run yet. The cron schedule and the disabled ones are not running.
    assert_eq!(
        schedules.into_iter().collect::<Vec<_>>(),
        [
            ("FailingFunction".to_string(), ScheduleStats::default()),
            ("SweepFunction".to_string(), ScheduleStats::default()),
        ]
    );
    stack.stop().await;
}
