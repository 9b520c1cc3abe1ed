//! Health and authentication: `GET /v1/health` answers without a token and
//! counts what is live; every other operation of `docs/openapi.yaml` refuses a
//! missing token with 401 `missing_token`, and a sample of routes (reads and
//! writes) refuses a malformed or foreign-signed token too and changes nothing.

use crate::helpers::stack;
use crate::helpers::template::{openapi, operations, PUBLIC};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn health_counts_include_what_this_test_opened() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    stack.send_text(&alice, conversation, "keep it active").await;
    let _a = stack.connect(&alice).await;
    let _b = stack.connect(&alice).await;
    let _c = stack.connect(&bob).await;

    let (status, health) = stack.http().get_anonymous("/v1/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    for (field, at_least) in [
        ("live_connections", 3),
        ("users_online", 2),
        ("active_conversations", 1),
    ] {
        let value = health[field]
            .as_i64()
            .unwrap_or_else(|| panic!("{field} is not a number: {health}"));
        assert!(value >= at_least, "{field} = {value}, expected at least {at_least}");
    }
}

#[tokio::test]
async fn rest_requires_a_valid_token_and_health_does_not() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let http = stack.http();
    let (status, health) = http.get_anonymous("/v1/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "reachable");
    assert!(health["live_connections"].is_i64());

    let (status, body) = http
        .post_raw(None, "/v1/conversations/direct", json!({"user_id": bob.id}).to_string())
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_token");
    let expired = stack.token(json!({"sub": alice.id.to_string(), "exp": chrono::Utc::now().timestamp() - 3600}));
    let (status, body) = http
        .post_raw(
            Some(&expired),
            "/v1/conversations/direct",
            json!({"user_id": bob.id}).to_string(),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "token_expired");
}

#[tokio::test]
async fn the_api_needs_a_valid_token() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let message = stack.send_text(&alice, conversation, "do not touch").await;
    let message_path = format!("/v1/messages/{}", message["id"].as_str().unwrap());
    let foreign = stack.token_signed_with(
        json!({"sub": alice.id.to_string()}),
        "another-secret-that-is-at-least-32-bytes",
    );
    use reqwest::Method;
    let calls = [
        (Method::GET, "/v1/me".to_string(), None),
        (Method::GET, "/v1/unread".to_string(), None),
        (Method::GET, "/v1/users?q=a".to_string(), None),
        (Method::GET, format!("/v1/presence?user_ids={}", alice.id), None),
        (Method::GET, "/v1/messages/search?q=touch".to_string(), None),
        (
            Method::PATCH,
            message_path.clone(),
            Some(json!({"body": "touched"}).to_string()),
        ),
        (Method::DELETE, message_path.clone(), None),
        (
            Method::POST,
            format!("/v1/conversations/{conversation}/read"),
            Some("{}".to_string()),
        ),
    ];
    let http = stack.http();
    for (method, path, body) in calls {
        for (what, token, code) in [
            ("no token", None, "missing_token"),
            ("garbage", Some("not.a.jwt"), "invalid_token"),
            ("wrong signature", Some(foreign.as_str()), "invalid_token"),
        ] {
            let (status, answer) = http.request(method.clone(), token, &path, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {what}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{method} {path} with {what}: {answer}");
        }
    }
    let stored = stack.history(&alice, conversation).await;
    assert_eq!(stored[0]["body"], "do not touch");
    assert_eq!(stored[0]["deleted_at"], Value::Null);
    let (_, body) = stack.mark_read(&alice, conversation, json!({})).await;
    assert_eq!(body["changed"], true, "the refused read changed nothing: {body}");
}

/// Every operation the contract documents, called without a token (a random
/// id in the path, no query, `{}` as the body of writes): whatever the handler
/// would make of the rest, the sign-in check answers first.
#[tokio::test]
async fn every_route_but_health_refuses_a_missing_token() {
    let stack = stack();
    let http = stack.http();
    let documented = operations(&openapi());
    let mut called = 0;
    for (method, template) in documented.keys() {
        if (method.as_str(), template.as_str()) == PUBLIC {
            continue;
        }
        let path: String = template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    Uuid::new_v4().to_string()
                } else {
                    segment.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method: reqwest::Method = method.parse().unwrap();
        let body = matches!(method, reqwest::Method::POST | reqwest::Method::PATCH).then(|| "{}".to_string());
        let (status, answer) = http.request(method.clone(), None, &path, body).await;
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        assert_eq!(
            answer["error"]["code"], "missing_token",
            "{method} {path} without a token: {answer}"
        );
        assert!(answer["error"]["request_id"].is_string(), "{method} {path}: {answer}");
        called += 1;
    }
    assert_eq!(called, documented.len() - 1, "health is the one operation left out");
}
