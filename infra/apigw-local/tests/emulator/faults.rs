//! Fault injection as clients and functions meet it: `@connections` answered
//! 410 (and the socket cut), 429 or 500, or late; instances killed at random
//! or right after their commit; `$disconnect` never invoked.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use crate::helpers::{
    next_json, next_message, role_key, sdk, sdk_retrying, send_json, signed_post, ws_connect, TestStack, Ws, PATIENCE,
};
use apigw_local::{Emulator, EmulatorConfig, EmulatorError, FaultConfig, FaultStats, RunOptions, WsLimits};
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn with_faults(faults: FaultConfig) -> RunOptions {
    RunOptions {
        faults,
        ..Default::default()
    }
}

async fn stack_with(template: &str, faults: FaultConfig) -> TestStack {
    TestStack::start_with(template, WsLimits::default(), with_faults(faults)).await
}

/// Connects through the authorizer and `$connect` (neither pushes) and
/// returns the socket and its connection id.
async fn connect(stack: &TestStack) -> (Ws, String) {
    let url = format!("{}?token=allow", stack.emulator().websocket_url());
    let ws = ws_connect(&url).await.expect("connect");
    (ws, stack.last_connection_id())
}

/// The socket ends without a close frame, as a dropped TCP connection does.
async fn expect_cut(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.expect("cut in time") {
            Some(Ok(Message::Close(frame))) => panic!("a close frame ({frame:?}) instead of a cut"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("a message ({other:?}) instead of a cut"),
            Some(Err(_)) | None => return,
        }
    }
}

/// API Gateway's frame to a client whose route integration failed.
fn assert_generic_frame(frame: &Value, connection_id: Option<&str>) {
    let keys: BTreeSet<&str> = frame.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["connectionId", "message", "requestId"]),
        "{frame}"
    );
    assert_eq!(frame["message"], "Internal server error");
    assert_eq!(frame["requestId"].as_str().map(str::len), Some(16), "{frame}");
    match connection_id {
        Some(id) => assert_eq!(frame["connectionId"], id),
        None => assert_eq!(frame["connectionId"].as_str().map(str::len), Some(16), "{frame}"),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(PATIENCE).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_fault_answers_410_and_cuts_the_socket() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            push_gone: 1.0,
            ..Default::default()
        },
    )
    .await;
    let (mut ws, id) = connect(&stack).await;
    let client = sdk(stack.emulator().management_url());

    let error = client
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("never delivered"))
        .send()
        .await
        .expect_err("gone");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(410));
    // The client vanished: no close frame, and its $disconnect still runs.
    expect_cut(&mut ws).await;
    let disconnect = stack.wait_disconnect(&id).await;
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1006);

    let error = client
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(error.as_service_error().is_some_and(|e| e.is_gone_exception()));
    let error = client
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(error.as_service_error().is_some_and(|e| e.is_gone_exception()));
    assert_eq!(
        stack.emulator().stats().faults,
        FaultStats {
            push_gone: 3,
            ..Default::default()
        }
    );
    stack.stop().await;
    assert_eq!(stack.records("DisconnectFunction").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_fault_answers_429_and_a_retry_gets_through() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            push_throttle: 0.5,
            seed: Some(5),
            ..Default::default()
        },
    )
    .await;
    let (mut ws, id) = connect(&stack).await;
    let endpoint = stack.emulator().management_url();

    // Without retries: some posts answered 429, never delivered; the others delivered.
    let once = sdk_retrying(endpoint.clone(), RetryConfig::disabled());
    let mut throttled = 0u64;
    let mut delivered = Vec::new();
    for n in 0..30 {
        let text = format!("once-{n}");
        match once
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(text.clone()))
            .send()
            .await
        {
            Ok(_) => delivered.push(text),
            Err(error) => {
                assert!(
                    error
                        .as_service_error()
                        .is_some_and(|e| e.is_limit_exceeded_exception()),
                    "{error:?}"
                );
                assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(429));
                throttled += 1;
            }
        }
    }
    assert!(throttled > 0 && !delivered.is_empty(), "{throttled} throttled");
    for text in &delivered {
        assert_eq!(next_message(&mut ws).await, Message::text(text.as_str()));
    }

    // The SDK's standard retries take LimitExceededException as throttling: every post gets through, once.
    let retrying = sdk_retrying(
        endpoint,
        RetryConfig::standard()
            .with_max_attempts(12)
            .with_initial_backoff(Duration::from_millis(5)),
    );
    for n in 0..10 {
        let text = format!("retried-{n}");
        retrying
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(text.clone()))
            .send()
            .await
            .expect("served after retries");
        assert_eq!(next_message(&mut ws).await, Message::text(text));
    }
    let faults = stack.emulator().stats().faults;
    assert!(faults.push_throttled > throttled, "{faults:?}");
    assert_eq!(
        faults,
        FaultStats {
            push_throttled: faults.push_throttled,
            ..Default::default()
        }
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_fault_answers_500() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            push_error: 1.0,
            ..Default::default()
        },
    )
    .await;
    let (mut ws, id) = connect(&stack).await;
    let error = sdk_retrying(stack.emulator().management_url(), RetryConfig::disabled())
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("never delivered"))
        .send()
        .await
        .expect_err("500");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(error.code(), Some("InternalServerErrorException"));

    // The socket stays open and got nothing: the echo function's own push
    // fails too, so what it receives next is the crash frame.
    send_json(&mut ws, json!({"action": "echo"})).await;
    assert_generic_frame(&next_json(&mut ws).await, Some(&id));
    assert_eq!(
        stack.emulator().stats().faults,
        FaultStats {
            push_error: 2,
            ..Default::default()
        }
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_holds_calls_back_and_is_counted() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            push_latency: Duration::from_millis(30),
            seed: Some(1),
            ..Default::default()
        },
    )
    .await;
    let (mut ws, id) = connect(&stack).await;
    let client = sdk(stack.emulator().management_url());
    for n in 0..5 {
        let text = format!("late-{n}");
        client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(text.clone()))
            .send()
            .await
            .expect("served, late");
        assert_eq!(next_message(&mut ws).await, Message::text(text));
    }
    assert_eq!(
        stack.emulator().stats().faults,
        FaultStats {
            push_delayed: 5,
            ..Default::default()
        }
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_http_invocations_answer_500_and_a_fresh_instance_serves_the_next() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            kill: 0.5,
            seed: Some(3),
            ..Default::default()
        },
    )
    .await;
    let base = stack.emulator().http_url();
    let client = http_client();
    // (status, pid of the instance that answered)
    let mut calls: Vec<(u16, Option<u32>)> = Vec::new();
    for n in 0..16 {
        let response = client.get(format!("{base}/v1/items/{n}")).send().await.unwrap();
        let status = response.status().as_u16();
        let pid = response
            .headers()
            .get("x-echo-pid")
            .map(|pid| pid.to_str().unwrap().parse().unwrap());
        if status == 500 {
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"message": "Internal Server Error"})
            );
        } else {
            assert_eq!(status, 200);
        }
        calls.push((status, pid));
    }
    let killed = calls.iter().filter(|(status, _)| *status == 500).count();
    assert!(killed > 0 && killed < calls.len(), "{calls:?}");

    // After a kill the next answer comes from a process never seen before.
    let mut seen = HashSet::new();
    let mut after_kill = false;
    for (status, pid) in &calls {
        if *status == 500 {
            after_kill = true;
            continue;
        }
        let pid = pid.expect("the echo function names its process");
        if after_kill {
            assert!(!seen.contains(&pid), "{calls:?}");
        }
        after_kill = false;
        seen.insert(pid);
    }
    let stats = stack.emulator().stats();
    assert_eq!(
        stats.faults,
        FaultStats {
            kills: killed as u64,
            ..Default::default()
        }
    );
    let echo = &stats.functions["EchoFunction"];
    assert_eq!(echo.errors, killed as u64);
    // Sequential calls reuse the warm instance: one start, then one after every kill but a last one.
    let restarted = calls[..calls.len() - 1].iter().filter(|(s, _)| *s == 500).count();
    assert_eq!(echo.instances_started, 1 + restarted as u64, "{calls:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_route_function_sends_api_gateways_generic_frame() {
    // No $connect, $disconnect or authorizer: only the route's function dies.
    let mut stack = stack_with(
        "template-no-default.yaml",
        FaultConfig {
            kill: 1.0,
            ..Default::default()
        },
    )
    .await;
    let mut ws = ws_connect(&stack.emulator().websocket_url()).await.unwrap();
    let rounds = 3;
    for _ in 0..rounds {
        send_json(&mut ws, json!({"action": "echo"})).await;
        // Killed before or after its push: the echo may come first.
        let frame = loop {
            let message = next_json(&mut ws).await;
            if message.get("routeKey").is_none() {
                break message;
            }
        };
        assert_generic_frame(&frame, None);
    }
    let stats = stack.emulator().stats();
    assert_eq!(
        stats.faults,
        FaultStats {
            kills: rounds,
            ..Default::default()
        }
    );
    let function = &stats.functions["MessageFunction"];
    assert_eq!(function.errors, rounds);
    // Each call had a fresh instance.
    let pids: HashSet<u32> = function.cold_starts.iter().map(|c| c.pid).collect();
    assert_eq!((function.instances_started, pids.len() as u64), (rounds, rounds));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_commit_kills_at_the_first_connections_call_and_not_before() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            kill_after_commit: BTreeMap::from([
                ("MessageFunction".to_string(), 1.0),
                ("EchoFunction".to_string(), 1.0),
            ]),
            ..Default::default()
        },
    )
    .await;
    let (mut ws, id) = connect(&stack).await;
    send_json(&mut ws, json!({"action": "echo"})).await;
    // Its push was not served: the crash frame is all the client gets.
    assert_generic_frame(&next_json(&mut ws).await, Some(&id));
    // It ran up to its push: the event it received is on record (its "commit").
    let seen = stack.records("MessageFunction");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["requestContext"]["routeKey"], "echo");

    // The $default route's function is the same binary under another logical id: spared.
    send_json(&mut ws, json!({"action": "other"})).await;
    let echoed = next_json(&mut ws).await;
    assert_eq!(echoed["routeKey"], "$default", "{echoed}");

    // A function that makes no @connections call dies as it answers; the answer is lost.
    let base = stack.emulator().http_url();
    let response = http_client().get(format!("{base}/v1/items/7")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let answered = stack.records("EchoFunction");
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0]["rawPath"], "/v1/items/7");

    let stats = stack.emulator().stats();
    assert_eq!(
        stats.faults,
        FaultStats {
            kills_after_commit: 2,
            ..Default::default()
        }
    );
    for function in ["MessageFunction", "EchoFunction"] {
        assert_eq!(stats.functions[function].errors, 1, "{function}");
        assert!(stats.functions[function].live_pids.is_empty(), "{function}");
    }
    assert_eq!(stats.functions["DefaultFunction"].errors, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_commit_names_must_be_in_the_template() {
    let options = with_faults(FaultConfig {
        kill_after_commit: BTreeMap::from([("ws-send-message".to_string(), 1.0)]),
        ..Default::default()
    });
    let config = EmulatorConfig {
        template_path: crate::helpers::fixture("template-no-default.yaml"),
        bin_dir: std::env::temp_dir(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ws_addr: "127.0.0.1:0".parse().unwrap(),
        parameter_overrides: BTreeMap::new(),
        function_env: BTreeMap::new(),
        ws_limits: WsLimits::default(),
        default_max_instances: 1,
        region: "us-east-1".into(),
        credentials: role_key(),
        async_retry_delay: apigw_local::AWS_ASYNC_RETRY_DELAY,
    };
    let Err(error) = Emulator::start_with(config, options).await else {
        panic!("started with an unknown function");
    };
    assert!(matches!(error, EmulatorError::RunOptions(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("\"ws-send-message\"") && message.contains("MessageFunction (echo_function)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_disconnects_are_never_invoked() {
    let mut stack = stack_with(
        "template.yaml",
        FaultConfig {
            drop_disconnect: 1.0,
            ..Default::default()
        },
    )
    .await;
    let (mut ws, _) = connect(&stack).await;
    ws.close(None).await.unwrap();
    stack
        .wait_stats("the $disconnect dropped", |stats| stats.faults.disconnects_dropped == 1)
        .await;
    stack.stop().await;
    let stats_after = stack.records("DisconnectFunction");
    assert!(stats_after.is_empty(), "{stats_after:?}");
}

/// The same seed, the same calls in the same order: the same faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_repeats_a_run() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut stack = stack_with(
            "template.yaml",
            FaultConfig {
                push_throttle: 0.5,
                seed: Some(11),
                ..Default::default()
            },
        )
        .await;
        let url = format!("{}/@connections/AAAAAAAAAAAAAAA=", stack.emulator().management_url());
        let mut statuses = Vec::new();
        for _ in 0..24 {
            let response = signed_post(&url, b"x", &role_key()).send().await.unwrap();
            statuses.push(response.status().as_u16());
        }
        stack.stop().await;
        runs.push(statuses);
    }
    // An unknown connection is gone (410) unless the call is throttled first (429).
    assert!(runs[0].contains(&429) && runs[0].contains(&410), "{:?}", runs[0]);
    assert_eq!(runs[0], runs[1]);
}
