//! The WebSocket API against a real emulator.

use std::time::Duration;

use crate::helpers::{
    echo_event, next_close, next_json, refused_status, send_json, ws_connect, ws_connect_with, TestStack,
};
use apigw_local::WsLimits;
use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

async fn stack_with(limits: WsLimits) -> TestStack {
    TestStack::start("template.yaml", limits).await
}

fn connection_id(event: &Value) -> String {
    event["requestContext"]["connectionId"].as_str().unwrap().to_string()
}

/// DISCONNECT events by connection id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_allows_denies_and_refuses() {
    let mut stack = stack_with(WsLimits::default()).await;
    let url = stack.emulator().websocket_url();
    assert!(url.ends_with("/test"), "{url}");

    assert_eq!(refused_status(&format!("{url}?token=deny")).await, 403);
    assert_eq!(refused_status(&format!("{url}?token=nonsense")).await, 401);
    assert_eq!(refused_status(&url).await, 401);
    assert_eq!(refused_status(&format!("{url}?token=error")).await, 500);
    assert_eq!(refused_status(&format!("{url}?token=crash")).await, 500);
    // The $connect function's own status refuses the handshake too.
    assert_eq!(refused_status(&format!("{url}?token=allow&reject=418")).await, 418);
    // Another stage is not this API.
    let wrong_stage = url.replace("/test", "/prod");
    assert_eq!(refused_status(&format!("{wrong_stage}?token=allow")).await, 403);

    let mut ws = ws_connect(&format!("{url}?token=allow-1")).await.expect("allowed");
    let event = echo_event(&mut ws).await;
    let id = connection_id(&event);

    // The authorizer saw the documented REQUEST event.
    let auth = stack
        .records("AuthorizerFunction")
        .into_iter()
        .find(|e| e["requestContext"]["connectionId"] == id.as_str())
        .expect("authorizer event");
    assert_eq!(auth["type"], "REQUEST");
    let api_id = auth["requestContext"]["apiId"].as_str().unwrap();
    assert_eq!(
        auth["methodArn"],
        format!("arn:aws:execute-api:us-east-1:000000000000:{api_id}/test/$connect")
    );
    assert_eq!(auth["queryStringParameters"]["token"], "allow-1");
    assert_eq!(auth["multiValueQueryStringParameters"]["token"], json!(["allow-1"]));
    assert_eq!(auth["requestContext"]["eventType"], "CONNECT");
    assert_eq!(auth["requestContext"]["routeKey"], "$connect");
    assert_eq!(auth["requestContext"]["stage"], "test");
    assert_eq!(auth["requestContext"]["identity"]["userAgent"], "apigw-local-tests");
    let typed: aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(auth.clone()).expect("authorizer event shape");
    assert_eq!(typed.request_context.stage.as_deref(), Some("test"));

    // The connect function got the CONNECT event with the authorizer's output.
    let connect = stack
        .records("ConnectFunction")
        .into_iter()
        .find(|e| e["requestContext"]["connectionId"] == id.as_str())
        .expect("connect event");
    assert_eq!(connect["requestContext"]["eventType"], "CONNECT");
    assert_eq!(connect["requestContext"]["authorizer"]["principalId"], "user-allow-1");
    assert_eq!(connect["requestContext"]["authorizer"]["token"], "allow-1");
    assert_eq!(connect["isBase64Encoded"], false);
    assert!(connect["headers"]["Host"].as_str().unwrap().starts_with("127.0.0.1:"));
    let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(connect).expect("connect event shape");
    assert_eq!(typed.request_context.connection_id.as_deref(), Some(id.as_str()));

    // Refused handshakes never reach $disconnect.
    ws.close(None).await.unwrap();
    stack.wait_disconnect(&id).await;
    stack.stop().await;
    let all = stack.records("DisconnectFunction");
    assert_eq!(all.len(), 1, "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_context_reaches_message_events_and_routes_select() {
    let mut stack = stack_with(WsLimits::default()).await;
    let url = stack.emulator().websocket_url();
    let mut ws = ws_connect(&format!("{url}?token=allow-ctx")).await.expect("allowed");

    let event = echo_event(&mut ws).await;
    let rc = &event["requestContext"];
    assert_eq!(rc["routeKey"], "echo");
    assert_eq!(rc["eventType"], "MESSAGE");
    assert_eq!(rc["messageDirection"], "IN");
    assert_eq!(rc["stage"], "test");
    assert_eq!(rc["authorizer"]["principalId"], "user-allow-ctx");
    assert_eq!(rc["authorizer"]["token"], "allow-ctx");
    assert_eq!(rc["authorizer"]["exp"], "1790000000");
    assert_eq!(rc["authorizer"]["admin"], "false");
    assert!(rc["authorizer"]["integrationLatency"].is_u64());
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    let id = connection_id(&event);
    assert!((12..=16).contains(&id.len()), "{id}");
    assert!(
        id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)),
        "{id}"
    );
    assert_eq!(event["body"], r#"{"action":"echo"}"#);
    let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event.clone()).expect("message event shape");
    assert_eq!(typed.request_context.route_key.as_deref(), Some("echo"));
    assert_eq!(typed.request_context.authorizer.fields["principalId"], "user-allow-ctx");
    assert!(typed.request_context.message_id.is_some());

    // Unknown actions and non-JSON go to $default.
    send_json(&mut ws, json!({"action": "nope", "n": 1})).await;
    let posted = next_json(&mut ws).await;
    assert_eq!(posted["routeKey"], "$default");
    assert_eq!(posted["event"]["requestContext"]["authorizer"]["token"], "allow-ctx");
    ws.send(Message::text("plain text")).await.unwrap();
    let posted = next_json(&mut ws).await;
    assert_eq!(posted["routeKey"], "$default");
    assert_eq!(posted["event"]["body"], "plain text");

    // A failing route integration answers the client like API Gateway does.
    send_json(&mut ws, json!({"action": "echo", "crash": true})).await;
    let error = next_json(&mut ws).await;
    assert_eq!(error["message"], "Internal server error");
    assert_eq!(error["connectionId"], id.as_str());
    assert!(error["requestId"].is_string());

    // Messages on one connection run concurrently.
    for n in 0..4 {
        send_json(&mut ws, json!({"action": "echo", "n": n})).await;
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let posted = next_json(&mut ws).await;
        let body: Value = serde_json::from_str(posted["event"]["body"].as_str().unwrap()).unwrap();
        seen.push(body["n"].as_u64().unwrap());
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_comes_from_the_connect_function() {
    let mut stack = stack_with(WsLimits::default()).await;
    let url = stack.emulator().websocket_url();
    let (mut ws, response) = ws_connect_with(&format!("{url}?token=allow"), Some("chat.v1, bearer.xyz"))
        .await
        .expect("subprotocol accepted");
    assert_eq!(response.status(), 101);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    let id = connection_id(&echo_event(&mut ws).await);
    let connect = stack
        .records("ConnectFunction")
        .into_iter()
        .find(|e| e["requestContext"]["connectionId"] == id.as_str())
        .unwrap();
    assert_eq!(connect["headers"]["Sec-WebSocket-Protocol"], "chat.v1, bearer.xyz");
    assert_eq!(
        connect["multiValueHeaders"]["Sec-WebSocket-Protocol"],
        json!(["chat.v1, bearer.xyz"])
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_default_route_unmatched_messages_are_forbidden() {
    let mut stack = TestStack::start("template-no-default.yaml", WsLimits::default()).await;
    let url = stack.emulator().websocket_url();
    assert!(url.ends_with("/bare"));
    let mut ws = ws_connect(&url).await.expect("no $connect route: accepted");
    send_json(&mut ws, json!({"action": "other"})).await;
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["message"], "Forbidden");
    assert!(answer["connectionId"].is_string());
    assert!(answer["requestId"].is_string());
    let event = echo_event(&mut ws).await;
    assert_eq!(event["requestContext"]["routeKey"], "echo");
    assert!(event["requestContext"].get("authorizer").is_none());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_that_socket() {
    let mut stack = stack_with(WsLimits::default()).await;
    let url = format!("{}?token=allow", stack.emulator().websocket_url());
    let mut big = ws_connect(&url).await.unwrap();
    let mut other = ws_connect(&url).await.unwrap();
    let big_id = connection_id(&echo_event(&mut big).await);

    big.send(Message::text("x".repeat(40 * 1024))).await.unwrap();
    let frame = next_close(&mut big).await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Size);
    let disconnect = stack.wait_disconnect(&big_id).await;
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1009);
    assert_eq!(disconnect["requestContext"]["eventType"], "DISCONNECT");

    let event = echo_event(&mut other).await;
    assert_eq!(event["requestContext"]["routeKey"], "echo");
    // Up to the limit is fine.
    let exactly = json!({"action": "echo", "pad": "y".repeat(32 * 1024 - 40)}).to_string();
    assert!(exactly.len() <= 32 * 1024);
    other.send(Message::text(exactly)).await.unwrap();
    assert_eq!(next_json(&mut other).await["routeKey"], "echo");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_closes_with_1009() {
    let limits = WsLimits {
        max_message_bytes: 1024,
        ..WsLimits::default()
    };
    let mut stack = stack_with(limits).await;
    let mut ws = ws_connect(&format!("{}?token=allow", stack.emulator().websocket_url()))
        .await
        .unwrap();
    ws.send(Message::text("z".repeat(2048))).await.unwrap();
    assert_eq!(next_close(&mut ws).await.unwrap().code, CloseCode::Size);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_with_1001() {
    let limits = WsLimits {
        idle_timeout: Duration::from_millis(800),
        ..WsLimits::default()
    };
    let mut stack = stack_with(limits).await;
    let mut ws = ws_connect(&format!("{}?token=allow", stack.emulator().websocket_url()))
        .await
        .unwrap();
    let id = connection_id(&echo_event(&mut ws).await);
    let frame = next_close(&mut ws).await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason.as_str(), "Going away");
    let disconnect = stack.wait_disconnect(&id).await;
    assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1001);
    assert_eq!(disconnect["requestContext"]["disconnectReason"], "Going away");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_closed_at_the_end_of_their_lifetime() {
    let limits = WsLimits {
        max_lifetime: Duration::from_millis(800),
        ..WsLimits::default()
    };
    let mut stack = stack_with(limits).await;
    let mut ws = ws_connect(&format!("{}?token=allow", stack.emulator().websocket_url()))
        .await
        .unwrap();
    let frame = next_close(&mut ws).await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Away);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_runs_exactly_once_per_connection() {
    let stack = stack_with(WsLimits::default()).await;
    let url = format!("{}?token=allow", stack.emulator().websocket_url());

    let mut polite = ws_connect(&url).await.unwrap();
    let polite_id = connection_id(&echo_event(&mut polite).await);
    polite
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();

    let mut rude = ws_connect(&url).await.unwrap();
    let rude_id = connection_id(&echo_event(&mut rude).await);
    drop(rude);

    let mut silent = ws_connect(&url).await.unwrap();
    let silent_id = connection_id(&echo_event(&mut silent).await);

    let event = stack.wait_disconnect(&polite_id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1000);
    assert_eq!(event["requestContext"]["disconnectReason"], "bye");
    assert_eq!(event["requestContext"]["routeKey"], "$disconnect");
    assert_eq!(event["requestContext"]["authorizer"]["principalId"], "user-allow");
    assert_eq!(event["headers"]["x-api-key"], "");
    let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).expect("disconnect event shape");
    assert_eq!(typed.request_context.disconnect_status_code, Some(1000));
    let event = stack.wait_disconnect(&rude_id).await;
    assert_eq!(event["requestContext"]["disconnectStatusCode"], 1006);

    // Shutdown closes the remaining socket and runs its $disconnect before returning.
    stack_stop_and_check(stack, &[&polite_id, &rude_id, &silent_id]).await;
    drop(silent);
}

async fn stack_stop_and_check(mut stack: TestStack, ids: &[&str]) {
    stack.stop().await;
    let all = stack.records("DisconnectFunction");
    for id in ids {
        let count = all
            .iter()
            .filter(|e| e["requestContext"]["connectionId"] == *id)
            .count();
        assert_eq!(count, 1, "$disconnect for {id} ran {count} times");
    }
    assert_eq!(all.len(), ids.len());
}
