//! The HTTP API and the Lambda side against a real emulator.

use crate::helpers::{TestStack, PATIENCE};
use apigw_local::{EmulatorStats, WsLimits};
use serde_json::Value;

async fn stack() -> TestStack {
    TestStack::start("template.yaml", WsLimits::default()).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(PATIENCE).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_with_path_parameters_and_v2_event() {
    let mut stack = stack().await;
    let url = format!("{}/v1/items/it%20em-1?b=2&a=1&a=3", stack.emulator().http_url());
    let response = client()
        .post(&url)
        .header("x-multi", "one")
        .header("cookie", "c1=v1; c2=v2")
        .header("authorization", "Bearer secret")
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("apigw-requestid"));
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["set-cookie"], "echo=1; Path=/");
    let pid_header = response.headers()["x-echo-pid"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    let event = &body["event"];

    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /v1/items/{id}");
    assert_eq!(event["rawPath"], "/v1/items/it%20em-1");
    assert_eq!(event["rawQueryString"], "b=2&a=1&a=3");
    assert_eq!(event["pathParameters"]["id"], "it em-1");
    assert_eq!(event["queryStringParameters"]["a"], "1,3");
    assert_eq!(event["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-multi"], "one");
    assert_eq!(event["headers"]["authorization"], "Bearer secret");
    assert_eq!(event["body"], r#"{"hello":"world"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let rc = &event["requestContext"];
    assert_eq!(rc["http"]["method"], "POST");
    assert_eq!(rc["http"]["path"], "/v1/items/it%20em-1");
    assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["stage"], "$default");
    assert_eq!(rc["routeKey"], "POST /v1/items/{id}");
    assert_eq!(rc["accountId"], "000000000000");
    assert_eq!(rc["apiId"].as_str().unwrap().len(), 10);
    assert!(rc["time"].as_str().unwrap().ends_with(" +0000"));
    assert!(rc["timeEpoch"].as_i64().unwrap() > 1_700_000_000_000);
    let typed: aws_lambda_events::event::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event.clone()).expect("deserializes as ApiGatewayV2httpRequest");
    assert_eq!(typed.path_parameters["id"], "it em-1");

    // The Runtime API headers.
    let headers = &body["runtime_headers"];
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:EchoFunction"
    );
    assert!(headers["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .is_ok());
    assert!(headers["lambda-runtime-trace-id"]
        .as_str()
        .unwrap()
        .starts_with("Root=1-"));
    assert_eq!(headers["lambda-runtime-aws-request-id"].as_str().unwrap().len(), 36);
    assert_eq!(body["pid"].to_string(), pid_header);

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_environment() {
    let mut stack = stack().await;
    let body: Value = client()
        .get(format!("{}/v1/items/1", stack.emulator().http_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let env = body["env"].as_object().unwrap();
    let var = |name: &str| {
        env.get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(var("GREETING"), "hi"); // parameter override
    assert_eq!(
        var("MANAGEMENT_ENDPOINT"),
        "https://WebSocketApi.execute-api.us-east-1.amazonaws.com/test"
    );
    assert_eq!(var("ECHO_ROLE"), "http");
    assert_eq!(var("EXTRA_FROM_CONFIG"), "yes");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_NAME"), "EchoFunction");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
    assert_eq!(var("AWS_LAMBDA_LOG_GROUP_NAME"), "/aws/lambda/EchoFunction");
    assert!(var("AWS_LAMBDA_LOG_STREAM_NAME").contains("[$LATEST]"));
    assert!(var("AWS_LAMBDA_RUNTIME_API").starts_with("127.0.0.1:"));
    assert_eq!(var("AWS_REGION"), "us-east-1");
    assert_eq!(var("AWS_DEFAULT_REGION"), "us-east-1");
    assert_eq!(var("_HANDLER"), "bootstrap");
    assert_eq!(var("AWS_EXECUTION_ENV"), "AWS_Lambda_rust");
    assert!(!var("AWS_ACCESS_KEY_ID").is_empty());
    assert!(!var("AWS_SECRET_ACCESS_KEY").is_empty());
    assert!(!var("AWS_SESSION_TOKEN").is_empty());
    assert!(!var("LAMBDA_TASK_ROOT").is_empty());
    // Nothing else of the test process's environment leaks in.
    assert!(!env.contains_key("CARGO_MANIFEST_DIR"));
    assert!(!env.contains_key("CARGO_PKG_NAME"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_not_found_and_inferred_responses() {
    let mut stack = stack().await;
    let base = stack.emulator().http_url();
    let client = client();

    let response = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("apigw-requestid"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({"message": "Not Found"})
    );
    // Right path, wrong method.
    let response = client.delete(format!("{base}/v1/items/1")).send().await.unwrap();
    assert_eq!(response.status(), 404);

    let response = client.get(format!("{base}/v1/error")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({"message": "Internal Server Error"})
    );

    // A crash fails exactly that invocation; the next one gets a new instance.
    let response = client.get(format!("{base}/v1/crash")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let response = client.get(format!("{base}/v1/items/after-crash")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let response = client.get(format!("{base}/v1/plain")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({"plain": true})
    );

    let response = client.get(format!("{base}/v1/files/a/b/c.txt")).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["event"]["routeKey"], "ANY /v1/files/{proxy+}");
    assert_eq!(body["event"]["pathParameters"]["proxy"], "a/b/c.txt");

    let too_big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let response = client
        .post(format!("{base}/v1/items/1"))
        .body(too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    let binary = client
        .post(format!("{base}/v1/items/1"))
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(binary["event"]["isBase64Encoded"], true);
    assert_eq!(binary["event"]["body"], "//4A");

    let stats = stack.emulator().stats();
    let echo = &stats.functions["EchoFunction"];
    assert!(echo.errors >= 2, "{echo:?}");
    assert!(echo.instances_started >= 2, "{echo:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_out_to_the_limit_and_reuses_warm_instances() {
    let mut stack = stack().await;
    let base = stack.emulator().http_url();
    let client = client();

    // SlowFunction has ReservedConcurrentExecutions: 3.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/v1/sleep/400");
            tokio::spawn(async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for call in calls {
        let body = call.await.unwrap();
        pids.insert(body["pid"].as_u64().unwrap());
    }
    let slow = stack.emulator().stats().functions["SlowFunction"].clone();
    assert!(slow.instances_started >= 2, "no scale-out: {slow:?}");
    assert!(slow.instances_started <= 3, "over the limit: {slow:?}");
    assert!(pids.len() as u64 <= slow.instances_started);
    assert_eq!(slow.invocations, 8);
    assert_eq!(slow.errors, 0);
    assert!(slow.live_pids.len() <= 3);
    assert_eq!(slow.cold_starts.len() as u64, slow.instances_started);
    // Each instance: ready, then handed its first invocation, then answered.
    for start in &slow.cold_starts {
        let (Some(init), Some(started), Some(answered)) =
            (start.init_ms, start.first_started_ms, start.first_response_ms)
        else {
            panic!("a cold start not fully timed: {start:?}");
        };
        assert!(init <= started && started <= answered, "{start:?}");
        // The first call sleeps 400 ms in the handler.
        assert!(answered - started >= 400.0, "{start:?}");
    }
    assert!(slow.max_handler_ms > 0.0 && slow.total_handler_ms >= slow.max_handler_ms);

    // Sequential calls only reuse warm instances.
    for _ in 0..5 {
        let response = client.get(format!("{base}/v1/sleep/1")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let after = stack.emulator().stats().functions["SlowFunction"].clone();
    assert_eq!(after.instances_started, slow.instances_started, "{after:?}");
    assert_eq!(after.invocations, 13);

    // The same numbers over HTTP, for benchmarks.
    let served: EmulatorStats = client
        .get(format!("{base}/__emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served.functions["SlowFunction"].instances_started,
        after.instances_started
    );
    assert_eq!(served.functions["SlowFunction"].invocations, 13);
    // Live instances are sampled for their peak memory whenever stats are read.
    assert!(served.functions["SlowFunction"].peak_rss_kib.unwrap_or(0) > 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_instance_and_fails_the_call() {
    let mut stack = stack().await;
    let base = stack.emulator().http_url();
    let client = client();
    // SlowFunction's Timeout is 2 s.
    let response = client.get(format!("{base}/v1/sleep/30000")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let stats = stack.emulator().stats().functions["SlowFunction"].clone();
    assert_eq!(stats.errors, 1);
    let response = client.get(format!("{base}/v1/sleep/1")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_process() {
    let mut stack = stack().await;
    let base = stack.emulator().http_url();
    client().get(format!("{base}/v1/items/1")).send().await.unwrap();
    let pids = stack.emulator().stats().functions["EchoFunction"].live_pids.clone();
    assert_eq!(pids.len(), 1);
    stack.stop().await;
    for pid in pids {
        // After shutdown the process is reaped: signalling it fails.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive, "pid {pid} still alive");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_runs_a_function_on_a_raw_event() {
    let mut stack = stack().await;
    let event = serde_json::json!({"version": "2.0", "rawPath": "/v1/raw", "headers": {}, "isBase64Encoded": false});
    let answer = stack
        .emulator()
        .invoke("EchoFunction", event.to_string().into_bytes())
        .await
        .expect("the handler answers");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["statusCode"], 200);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], event, "the event reaches the handler as given");
    assert_eq!(body["env"]["EXTRA_FROM_CONFIG"], "yes");

    let failed = serde_json::json!({"rawPath": "/v1/error"}).to_string().into_bytes();
    let error = stack.emulator().invoke("EchoFunction", failed).await.unwrap_err();
    assert!(matches!(error, apigw_local::InvokeError::Function { .. }), "{error}");
    assert_eq!(error.error_message(), "boom");
    let unknown = stack
        .emulator()
        .invoke("NoSuchFunction", b"{}".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(unknown, apigw_local::InvokeError::Unavailable(_)), "{unknown}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaiming_idle_instances_makes_the_next_call_a_cold_start() {
    // Arrange: one warm instance of EchoFunction, which answers with its pid.
    let mut stack = stack().await;
    let base = stack.emulator().http_url();
    let client = client();
    let echo_pid = |response: &reqwest::Response| response.headers()["x-echo-pid"].to_str().unwrap().to_owned();
    let warm = client.get(format!("{base}/v1/items/a")).send().await.unwrap();
    assert_eq!(warm.status(), 200);
    let warm_pid = echo_pid(&warm);
    let again = client.get(format!("{base}/v1/items/b")).send().await.unwrap();
    assert_eq!(echo_pid(&again), warm_pid, "a warm instance takes the next call");

    let reclaim_idle = || async {
        let reclaim = client
            .post(format!("{base}/__emulator/reclaim-idle"))
            .send()
            .await
            .unwrap();
        assert_eq!(reclaim.status(), 200);
        reclaim.json::<Value>().await.unwrap()
    };

    // Act
    let reclaimed = reclaim_idle().await;
    let cold = client.get(format!("{base}/v1/items/c")).send().await.unwrap();

    // Assert: the idle instance is gone and the next call started another.
    assert_eq!(reclaimed["reclaimed"], 1, "{reclaimed}");
    assert_eq!(cold.status(), 200);
    assert_ne!(echo_pid(&cold), warm_pid);
    let echo = stack.emulator().stats().functions["EchoFunction"].clone();
    assert_eq!(echo.instances_started, 2, "{echo:?}");
    assert_eq!(echo.errors, 0, "{echo:?}");
    let second = echo.cold_starts.last().expect("a second cold start");
    assert!(
        second.init_ms.is_some() && second.first_response_ms.is_some(),
        "{second:?}"
    );
    assert!(!echo.live_pids.contains(&warm_pid.parse::<u32>().unwrap()), "{echo:?}");

    // An instance is idle as soon as its caller has the answer, though its
    // runtime has not asked for the next invocation yet (here it lingers for a
    // second first): a reclaim then takes it, and nothing more runs on it.
    let mut pids = vec![echo_pid(&cold)];
    for round in 0..3 {
        let answered = client.get(format!("{base}/v1/files/linger/1000")).send().await.unwrap();
        assert_eq!(answered.status(), 200, "round {round}");
        assert_eq!(
            echo_pid(&answered),
            *pids.last().unwrap(),
            "round {round}: the warm instance answers"
        );
        let reclaimed = reclaim_idle().await;
        assert_eq!(reclaimed["reclaimed"], 1, "round {round}: {reclaimed}");
        let next = client.get(format!("{base}/v1/items/d")).send().await.unwrap();
        assert_eq!(next.status(), 200, "round {round}");
        assert!(
            !pids.contains(&echo_pid(&next)),
            "round {round}: a reclaimed instance served {pids:?}"
        );
        pids.push(echo_pid(&next));
    }
    let echo = stack.emulator().stats().functions["EchoFunction"].clone();
    assert_eq!((echo.instances_started, echo.errors), (5, 0), "{echo:?}");
    stack.stop().await;
}
