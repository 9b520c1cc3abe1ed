//! `make bench` speaks the same protocol as the functions: a tiny run of the
//! load generator on the debug binaries, against a stack of its own, must end
//! with no error, loss, duplicate or stray frame (it exits 1 otherwise). With
//! members who never connect, every message to their conversations hands one
//! notification to the notification function, which runs without failing
//! (no push subscription and no webhook: nothing to send); and the CPU of
//! each process kind is read from the OS; and after the run, each function a
//! client reaches is started cold once per round, alone. How fast or how much CPU is not
//! asserted here; speed is `make bench`'s business.

use std::process::Command;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::stack::{binaries_dir, workspace_root};

#[test]
fn a_tiny_bench_run_ends_clean() {
    let bin_dir = binaries_dir();
    let results = std::env::temp_dir().join(format!("chat-bench-smoke-{}", Uuid::new_v4()));
    let output = Command::new(bin_dir.join("chat-bench"))
        .current_dir(workspace_root())
        .args(["--bin-dir", bin_dir.to_str().unwrap()])
        .args(["--results-dir", results.to_str().unwrap()])
        .args(["--clients", "12", "--room-size", "6", "--group-size", "3"])
        .args(["--duration", "2", "--warmup", "1", "--drain", "10"])
        .args([
            "--rest-requests",
            "5",
            "--sequential-sends",
            "3",
            "--floor-samples",
            "20",
        ])
        .args(["--offline-share", "0.3", "--cold-rounds", "2"])
        .env("RUST_LOG", "error")
        .output()
        .expect("run chat-bench (cargo build --workspace --bins --examples first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let saved = std::fs::read_to_string(results.join("latest.json"));
    let _ = std::fs::remove_dir_all(&results);
    assert!(
        output.status.success(),
        "chat-bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("errors 0 · lost 0 · duplicates 0 · acks missing 0 · duplicate acks 0 · strays 0"),
        "{stdout}"
    );
    let report: Value = serde_json::from_str(&saved.expect("the results")).expect("JSON results");
    let context = format!("{stdout}\n{report:#}");

    // Groups of 3 get one member who never connects, the room of 6 three.
    assert_eq!(report["settings"]["offline_users"], 5, "{context}");
    let notified = &report["load"]["notifications"];
    let expected = notified["expected"].as_u64().expect("expected hand-offs");
    assert!(expected > 0, "{context}");
    assert_eq!(notified["handed_off"].as_u64(), Some(expected), "{context}");
    assert_eq!(notified["notify_invocations"].as_u64(), Some(expected), "{context}");
    assert_eq!(notified["succeeded"].as_u64(), Some(expected), "{context}");
    assert_eq!(
        (&notified["notify_errors"], &notified["retries"], &notified["failed"]),
        (&Value::from(0), &Value::from(0), &Value::from(0)),
        "{context}"
    );
    assert!(notified["users_to_notify"].as_u64().unwrap() >= expected, "{context}");

    // Every process kind of the stack is found and accounted for.
    let cpu = &report["cpu"];
    let kinds: Vec<&str> = cpu["kinds"]
        .as_array()
        .expect("CPU by kind")
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "functions",
            "emulator (chat-local)",
            "PostgREST server (postrust)",
            "Postgres (all its processes)",
            "load generator (chat-bench)"
        ],
        "{context}"
    );
    let functions = cpu["functions"].as_array().expect("CPU by function");
    for id in ["WsSendMessageFunction", "NotifyFunction"] {
        assert!(
            functions
                .iter()
                .any(|f| f["kind"] == id && f["processes"].as_u64() > Some(0)),
            "{id} missing: {context}"
        );
    }
    assert!(cpu["kinds"][0]["cpu_s"].as_f64().unwrap() > 0.0, "{context}");
    assert_eq!(cpu["sends"], report["load"]["sent_measured"], "{context}");
    // The machine over the same window: it was busy at least with the stack,
    // and its three parts add up to what it counted.
    let host = &cpu["host"];
    let seconds = |field: &str| {
        host[field]
            .as_f64()
            .unwrap_or_else(|| panic!("cpu.host.{field}: {context}"))
    };
    assert!(seconds("busy_s") > 0.0, "{context}");
    assert!(
        (seconds("busy_s") + seconds("idle_s") + seconds("steal_s") - seconds("cores_s")).abs() < 0.05,
        "{context}"
    );
    assert!((0.0..=1.0).contains(&seconds("steal_share")), "{context}");

    // Connecting has a window of its own, per connection: the authorizer and
    // `$connect` ran in it, and nothing else of the functions did.
    let connect = &report["connect"]["cpu"];
    assert_eq!(connect["sends"], report["connect"]["clients"], "{context}");
    let connect_functions: Vec<&str> = connect["functions"]
        .as_array()
        .expect("connect CPU by function")
        .iter()
        .filter(|f| f["cpu_s"].as_f64() > Some(0.0))
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(
        connect_functions
            .iter()
            .all(|id| ["WsAuthorizerFunction", "WsConnectFunction"].contains(id)),
        "{context}"
    );
    let postgres = connect["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "Postgres (all its processes)")
        .expect("Postgres while connecting");
    assert!(postgres["us_per_send"].as_f64() > Some(0.0), "{context}");

    // Each round reclaims every idle instance, so each function a round
    // reaches starts once in it, alone.
    let rows = report["functions"].as_array().expect("per-function figures");
    for id in [
        "WsAuthorizerFunction",
        "WsConnectFunction",
        "WsSendMessageFunction",
        "OpenDirectConversationFunction",
        "ListConversationsFunction",
        "ListMessagesFunction",
        "WsDisconnectFunction",
    ] {
        let row = rows
            .iter()
            .find(|f| f["function"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {context}"));
        assert_eq!(row["cold_starts_alone"], 2, "{id}: {context}");
        assert!(row["cold_start_alone_p50_ms"].as_f64() > Some(0.0), "{id}: {context}");
    }
    assert_eq!(report["settings"]["cold_rounds"], 2, "{context}");
}
