//! Stage throttling from the template (tests/fixtures/template-throttled.yaml:
//! bursts of 2 and 3, next to no refill), as API Gateway applies it.

use crate::helpers::{next_json, refused_status, send_json, ws_connect, TestStack, PATIENCE};
use apigw_local::WsLimits;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_answer_429_past_their_burst() {
    let mut stack = TestStack::start("template-throttled.yaml", WsLimits::default()).await;
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let base = stack.emulator().http_url();
    let mut statuses = Vec::new();
    for id in 1..=4 {
        let response = client.get(format!("{base}/v1/items/{id}")).send().await.unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"message": "Too Many Requests"})
            );
        }
        statuses.push(status);
    }
    // The burst is a parameter's value (2): two served, then refused.
    assert_eq!(statuses, [200, 200, 429, 429]);
    // A route with its own settings has its own bucket.
    for _ in 0..10 {
        let response = client.get(format!("{base}/v1/open")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    // Refused requests never reached the function.
    let items = stack
        .records("EchoFunction")
        .into_iter()
        .filter(|event| event["routeKey"] == "GET /v1/items/{id}")
        .count();
    assert_eq!(items, 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_routes_answer_too_many_requests_past_their_burst() {
    let mut stack = TestStack::start("template-throttled.yaml", WsLimits::default()).await;
    let url = stack.emulator().websocket_url();
    let mut ws = ws_connect(&url).await.expect("first connection");

    for _ in 0..3 {
        send_json(&mut ws, json!({"action": "echo"})).await;
    }
    let mut echoed = 0;
    let mut throttled = Vec::new();
    for _ in 0..3 {
        let reply = next_json(&mut ws).await;
        if reply["routeKey"] == "echo" {
            echoed += 1;
        } else {
            throttled.push(reply);
        }
    }
    assert_eq!(echoed, 2);
    let [frame] = throttled.as_slice() else {
        panic!("one throttling frame expected: {throttled:?}")
    };
    assert_eq!(frame["message"], "Too Many Requests");
    assert!(
        frame["connectionId"].is_string() && frame["requestId"].is_string(),
        "{frame}"
    );

    // Another route has a bucket of its own.
    send_json(&mut ws, json!({"action": "other"})).await;
    assert_eq!(next_json(&mut ws).await["routeKey"], "other");

    // $connect's own burst of 3: two more connections, then 429.
    let _second = ws_connect(&url).await.expect("second connection");
    let _third = ws_connect(&url).await.expect("third connection");
    assert_eq!(refused_status(&url).await, 429);

    let messages = stack.records("MessageFunction");
    assert_eq!(
        messages
            .iter()
            .filter(|e| e["requestContext"]["routeKey"] == "echo")
            .count(),
        2
    );
    assert_eq!(stack.records("ConnectFunction").len(), 3);
    stack.stop().await;
}
