//! The Management API through the real `aws-sdk-apigatewaymanagement` client.

use crate::helpers::{
    echo_event, next_close, next_message, role_key, sdk, sdk_with, signed_post, ws_connect, TestStack, Ws,
};
use apigw_local::WsLimits;
use aws_credential_types::Credentials;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

async fn connected(stack: &TestStack) -> (Ws, String) {
    let url = format!("{}?token=allow", stack.emulator().websocket_url());
    let mut ws = ws_connect(&url).await.unwrap();
    let id = echo_event(&mut ws).await["requestContext"]["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    (ws, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_get_delete_and_gone() {
    let mut stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let client = sdk(stack.emulator().management_url());
    let (mut ws, id) = connected(&stack).await;

    client
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("hello from the server"))
        .send()
        .await
        .expect("post");
    assert_eq!(next_message(&mut ws).await, Message::text("hello from the server"));

    client
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(vec![0xff, 0x00, 0x80]))
        .send()
        .await
        .expect("binary post");
    assert_eq!(next_message(&mut ws).await, Message::binary(vec![0xff, 0x00, 0x80]));

    let info = client.get_connection().connection_id(&id).send().await.expect("get");
    assert!(info.connected_at().is_some());
    assert!(info.last_active_at().is_some());
    assert!(info.last_active_at().unwrap().secs() >= info.connected_at().unwrap().secs());
    let identity = info.identity().expect("identity");
    assert_eq!(identity.source_ip(), Some("127.0.0.1"));
    assert_eq!(identity.user_agent(), Some("apigw-local-tests"));

    let too_big = vec![b'a'; 128 * 1024 + 1];
    let error = client
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new(too_big))
        .send()
        .await
        .expect_err("too large");
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_payload_too_large_exception()),
        "{error:?}"
    );

    client
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("delete");
    let frame = next_close(&mut ws).await.expect("close frame");
    assert_eq!(frame.code, CloseCode::Normal);

    let error = client
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("late"))
        .send()
        .await
        .expect_err("gone after delete");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );
    let error = client
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );
    let error = client
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );

    // $disconnect ran once for the deleted connection.
    stack.wait_disconnect(&id).await;
    stack.stop().await;
    let disconnects: Vec<Value> = stack.records("DisconnectFunction");
    assert_eq!(disconnects.len(), 1);
    assert_eq!(disconnects[0]["requestContext"]["connectionId"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_connections_are_gone() {
    let mut stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let client = sdk(stack.emulator().management_url());
    let error = client
        .post_to_connection()
        .connection_id("AAAAAAAAAAAAAAA=")
        .data(Blob::new("x"))
        .send()
        .await
        .expect_err("unknown id");
    let service_error = error.into_service_error();
    assert!(service_error.is_gone_exception(), "{service_error:?}");

    // The raw wire format, at both paths.
    let management = stack.emulator().management_url();
    let root = management.rsplit_once('/').unwrap().0.to_string();
    for url in [
        format!("{management}/@connections/nope"),
        format!("{root}/@connections/nope"),
    ] {
        let response = signed_post(&url, b"x", &role_key()).send().await.unwrap();
        assert_eq!(response.status(), 410, "{url}");
        assert_eq!(response.headers()["x-amzn-errortype"], "GoneException");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            serde_json::json!({"message": null})
        );
    }
    stack.stop().await;
}

/// Nothing but a signed request with the functions' key reaches a socket:
/// the forged pushes are refused with AWS's 403s and the socket's next
/// message is the genuine one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_requests_signed_with_the_functions_key_are_served() {
    let mut stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let management = stack.emulator().management_url();
    let (mut ws, id) = connected(&stack).await;
    let url = format!("{management}/@connections/{id}");
    let forged = br#"{"type":"message.created","body":"forged"}"#;

    let unsigned = reqwest::Client::new()
        .post(&url)
        .body(forged.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    assert_eq!(
        unsigned.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        unsigned.json::<Value>().await.unwrap(),
        serde_json::json!({"message": "Missing Authentication Token"})
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = reqwest::Client::new()
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method}");
    }

    let key = role_key();
    let wrong_secret = apigw_local::Credentials {
        secret_access_key: "guessed".into(),
        ..key.clone()
    };
    let response = signed_post(&url, forged, &wrong_secret).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-amzn-errortype"], "InvalidSignatureException");
    let message = response.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("The request signature we calculated does not match the signature you provided."),
        "{message}"
    );

    let unknown = apigw_local::Credentials {
        access_key_id: "ASIAUNKNOWN000000000".into(),
        ..key.clone()
    };
    let response = signed_post(&url, forged, &unknown).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-amzn-errortype"], "UnrecognizedClientException");

    // Signed by the key, but the body swapped afterwards.
    let mut tampered = signed_post(&url, b"genuine", &key).build().unwrap();
    *tampered.body_mut() = Some(forged.to_vec().into());
    let response = reqwest::Client::new().execute(tampered).await.unwrap();
    assert_eq!(response.status(), 403);

    // The SDK with a wrong secret, and without the session token: refused too.
    for credentials in [
        Credentials::new(
            key.access_key_id.clone(),
            "guessed",
            key.session_token.clone(),
            None,
            "tests",
        ),
        Credentials::new(
            key.access_key_id.clone(),
            key.secret_access_key.clone(),
            None,
            None,
            "tests",
        ),
    ] {
        let error = sdk_with(management.clone(), credentials)
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(forged.to_vec()))
            .send()
            .await
            .expect_err("refused");
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(403),
            "{error:?}"
        );
    }

    // The genuine push is the first thing the socket receives.
    sdk(management)
        .post_to_connection()
        .connection_id(&id)
        .data(Blob::new("genuine"))
        .send()
        .await
        .expect("signed post");
    assert_eq!(next_message(&mut ws).await, Message::text("genuine"));
    stack.stop().await;
}

/// Each function instance signs with a session token of its own; such
/// tokens are served, a forged one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_has_its_own_session_token() {
    let mut stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let base = stack.emulator().http_url();
    let client = reqwest::Client::new();
    // Two calls at once: two instances.
    let call = || async {
        let body: Value = client
            .get(format!("{base}/v1/sleep/300"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body["env"]["AWS_SESSION_TOKEN"].as_str().unwrap().to_string();
        (body["pid"].as_u64().unwrap(), token)
    };
    let ((first_pid, first), (second_pid, second)) = tokio::join!(call(), call());
    assert_ne!(first_pid, second_pid);
    let role = role_key();
    assert_ne!(first, second);
    assert!(![&first, &second].contains(&role.session_token.as_ref().unwrap()));

    let unknown = format!("{}/@connections/AAAAAAAAAAAAAAA=", stack.emulator().management_url());
    let signed_as = |token: String| apigw_local::Credentials {
        session_token: Some(token),
        ..role.clone()
    };
    // The instance's key is the function's: served (the connection is unknown: 410).
    let response = signed_post(&unknown, b"x", &signed_as(first.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    // Altered, or made up: refused.
    let (tag, mac) = first.split_once('.').unwrap();
    for forged in [
        format!(
            "{tag}.{}",
            mac.replace(&mac[..1], if &mac[..1] == "A" { "B" } else { "A" })
        ),
        format!("{tag}x.{mac}"),
        "made-up".to_string(),
    ] {
        let response = signed_post(&unknown, b"x", &signed_as(forged.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{forged}");
        assert_eq!(response.headers()["x-amzn-errortype"], "UnrecognizedClientException");
    }
    stack.stop().await;
}
