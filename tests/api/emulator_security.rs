//! The local API Gateway emulator guards what AWS guards: `@connections`
//! takes only SigV4-signed requests with the functions' key (a forged push
//! reaches nobody), and a token in the handshake is recognised whatever its
//! encoding.

use crate::helpers::send_frame;
use crate::helpers::stack::stack;
use crate::helpers::ws::WsClient;
use serde_json::{json, Value};

/// A `message.created` event as the functions push it, but from a forger.
fn forged_event(conversation: uuid::Uuid) -> Vec<u8> {
    json!({
        "type": "message.created",
        "conversation_id": conversation,
        "seq": 999_999,
        "data": {"id": uuid::Uuid::new_v4(), "seq": 999_999, "body": "forged: send me your password"},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn an_unsigned_or_badly_signed_push_is_refused_and_reaches_nobody() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = stack.connect(&bob).await;
    let ids = stack.connection_ids(&bob).await;
    let [bob_connection] = ids.as_slice() else {
        panic!("bob has one socket: {ids:?}")
    };
    let url = format!("{}/@connections/{bob_connection}", stack.info.management_url);

    // Unsigned, as the attack run sent it.
    let response = reqwest::Client::new()
        .post(&url)
        .body(forged_event(conversation))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "Missing Authentication Token"})
    );
    // Signed with the right access key id but a guessed secret, or without
    // the session token the key was issued with.
    for client in [
        stack.management_api_signing_with("a-guessed-secret", stack.info.aws_session_token.clone()),
        stack.management_api_signing_with(&stack.info.aws_secret_access_key, None),
    ] {
        let error = client
            .post_to_connection()
            .connection_id(bob_connection)
            .data(forged_event(conversation).into())
            .send()
            .await
            .expect_err("a forged signature is refused");
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(403),
            "{error:?}"
        );
    }
    // Nor can a forger close or inspect the socket.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = reqwest::Client::new().request(method, &url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403);
    }
    bob_socket.expect_nothing().await;

    // The functions sign with the stack's key: a real message arrives.
    let mut alice_socket = stack.connect(&alice).await;
    alice_socket
        .send_json(send_frame(conversation, "genuine", "sec-1"))
        .await;
    alice_socket.expect("message.ack").await;
    let created = bob_socket.expect("message.created").await;
    assert_eq!(created["data"]["body"], "genuine");

    // And a push signed with the stack's key is delivered as sent.
    stack
        .management_api()
        .post_to_connection()
        .connection_id(bob_connection)
        .data(br#"{"type":"signed.test"}"#.to_vec().into())
        .send()
        .await
        .expect("a signed push is delivered");
    bob_socket.expect("signed.test").await;
}

#[tokio::test]
async fn a_percent_encoded_token_parameter_is_the_token() {
    let stack = stack();
    let user = stack.new_user("encoded").await;
    // API Gateway decodes parameter names: `%74oken` is `token`.
    let url = format!("{}?%74oken={}", stack.info.websocket_url, user.token);
    let mut socket = WsClient::connect(&url).await.expect("authorised");
    socket.ping().await;
    assert_eq!(stack.connection_ids(&user).await.len(), 1);
    // Names are case-sensitive: `TOKEN` is not the token.
    let upper = format!("{}?TOKEN={}", stack.info.websocket_url, user.token);
    assert!(WsClient::connect(&upper).await.is_err());
}
