//! The WebSocket API end to end (real function binaries behind the API
//! Gateway emulator, PostgREST-compatible server, Postgres): connect and the
//! authorizer, send and deliver to every device, acks and idempotency,
//! typing, limits, malformed frames, stale and expired connections.

use crate::helpers::{attachment, send_frame, stack, Closed, WsClient};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_message_reaches_every_device_of_every_participant() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut alice_phone = stack.connect(&alice).await;
    let mut alice_laptop = stack.connect(&alice).await;
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;

    alice_phone
        .send_json(send_frame(conversation, "hello bob", "m-1"))
        .await;
    let ack = alice_phone.expect("message.ack").await;
    assert_eq!(ack["conversation_id"], conversation.to_string());
    assert_eq!(ack["data"]["client_msg_id"], "m-1");
    assert_eq!(ack["data"]["duplicate"], false);
    let (id, seq) = (ack["data"]["id"].clone(), ack["data"]["seq"].clone());
    assert!(seq.as_i64().unwrap() >= 1);

    for socket in [&mut bob_phone, &mut bob_laptop, &mut alice_laptop] {
        let created = socket.expect("message.created").await;
        assert_eq!(created["data"]["id"], id);
        assert_eq!(created["seq"], seq);
        assert_eq!(created["data"]["seq"], seq);
        assert_eq!(created["data"]["body"], "hello bob");
        assert_eq!(created["data"]["sender_id"], alice.id.to_string());
    }
    // The sending socket gets the ack, not a second copy.
    alice_phone.expect_none("message.created").await;
}

#[tokio::test]
async fn the_same_client_msg_id_stores_one_message() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;

    socket.send_json(send_frame(conversation, "once", "dup-1")).await;
    let first = socket.expect("message.ack").await;
    socket.send_json(send_frame(conversation, "once", "dup-1")).await;
    let second = socket.expect("message.ack").await;
    assert_eq!(first["data"]["id"], second["data"]["id"]);
    assert_eq!(first["data"]["seq"], second["data"]["seq"]);
    assert_eq!(second["data"]["duplicate"], true);
    assert_eq!(second["data"]["message"], first["data"]["message"]);
    assert_eq!(first["data"]["message"]["body"], "once");

    // Concurrent repeats on two sockets: still one row.
    let mut other = stack.connect(&alice).await;
    socket.send_json(send_frame(conversation, "race", "dup-2")).await;
    other.send_json(send_frame(conversation, "race", "dup-2")).await;
    let a = socket.expect("message.ack").await;
    let b = other.expect("message.ack").await;
    assert_eq!(a["data"]["id"], b["data"]["id"]);
    assert_eq!(a["data"]["seq"], b["data"]["seq"]);

    assert_eq!(stack.message_count(conversation).await, 2);
    // A repeat re-delivers (the first send's fan-out may never have run): bob
    // gets message.created for each send of each id, always with the stored
    // id and seq, and a client that de-duplicates by seq shows each once.
    let mut shown = std::collections::BTreeMap::new();
    for expected in [&first, &first, &a, &a] {
        let created = bob_socket.expect("message.created").await;
        assert_eq!(created["data"]["id"], expected["data"]["id"], "{created}");
        assert_eq!(created["seq"], expected["data"]["seq"], "{created}");
        shown.insert(created["seq"].as_i64().unwrap(), created["data"]["id"].clone());
    }
    bob_socket.expect_none("message.created").await;
    assert_eq!(
        shown.into_values().collect::<Vec<_>>(),
        vec![first["data"]["id"].clone(), a["data"]["id"].clone()],
        "each message shown once, in seq order"
    );
}

#[tokio::test]
async fn a_non_participant_sees_nothing_and_cannot_send() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let conversation = stack.direct_conversation(&alice, &bob).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut carol_socket = stack.connect(&carol).await;

    alice_socket.send_json(send_frame(conversation, "private", "p-1")).await;
    alice_socket.expect("message.ack").await;
    carol_socket.expect_none("message.created").await;

    carol_socket
        .send_json(send_frame(conversation, "let me in", "c-1"))
        .await;
    let error = carol_socket.expect("error").await;
    assert_eq!(error["data"]["code"], "not_a_participant");
    assert_eq!(error["data"]["action"], "sendMessage");
    // API Gateway's id of the refused frame, to quote when reporting it.
    let request_id = error["data"]["request_id"].as_str().unwrap_or_default();
    assert!(!request_id.is_empty(), "no request_id: {error}");
    carol_socket.send_json(send_frame(conversation, "again", "c-2")).await;
    let again = carol_socket.expect("error").await;
    assert_eq!(again["data"]["code"], "not_a_participant");
    assert!(
        again["data"]["request_id"].is_string() && again["data"]["request_id"] != request_id,
        "each frame has its own request_id: {again}"
    );

    let (status, body) = stack
        .http()
        .post(
            &carol,
            &format!("/v1/conversations/{conversation}/messages"),
            json!({"body": "rest too"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_a_participant");
    assert!(body["error"]["request_id"].is_string());

    let (status, _) = stack
        .http()
        .get(&carol, &format!("/v1/conversations/{conversation}/messages"))
        .await;
    assert_eq!(status, 403);
    assert_eq!(stack.message_count(conversation).await, 1);
}

/// The frame carries what the REST body carries: an image with its
/// attachment, in reply to an earlier message; the rules are the same too.
#[tokio::test]
async fn a_socket_send_carries_kind_attachment_and_reply() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let original = stack.send_text(&bob, conversation, "a photo of the balcony?").await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;

    let mut frame = send_frame(conversation, "The balcony", "img-1");
    frame["kind"] = json!("image");
    frame["attachment"] = attachment(
        "https://cdn.example.com/u/a11c/balcony.jpg",
        " balcony.jpg ",
        "image/JPEG",
        482113,
    );
    frame["reply_to_id"] = original["id"].clone();
    alice_socket.send_json(frame.clone()).await;
    let ack = alice_socket.expect("message.ack").await;
    assert_eq!(ack["data"]["client_msg_id"], "img-1");
    assert_eq!(ack["data"]["duplicate"], false);

    // Stored as the REST send stores it: the name trimmed, the type lower-cased.
    let stored_attachment = attachment(
        "https://cdn.example.com/u/a11c/balcony.jpg",
        "balcony.jpg",
        "image/jpeg",
        482113,
    );
    let created = bob_socket.expect("message.created").await;
    assert_eq!(created["data"]["id"], ack["data"]["id"]);
    assert_eq!(created["data"]["kind"], "image");
    assert_eq!(created["data"]["body"], "The balcony");
    assert_eq!(created["data"]["attachment"], stored_attachment);
    assert_eq!(created["data"]["reply_to_id"], original["id"]);
    let history = stack.history(&bob, conversation).await;
    assert_eq!(
        history.last().unwrap(),
        &created["data"],
        "the pushed message is the stored one"
    );
    // The sender is told the same: its ack carries the stored message, not its draft.
    assert_eq!(ack["data"]["message"], created["data"]);

    // An invalid attachment in a frame: the same code as over REST, nothing stored.
    frame["client_msg_id"] = json!("img-2");
    frame["attachment"]["mime_type"] = json!("application/pdf");
    alice_socket.send_json(frame).await;
    let error = alice_socket.expect("error").await;
    assert_eq!(error["data"]["code"], "invalid_attachment", "{error}");
    assert_eq!(error["data"]["action"], "sendMessage");
    bob_socket.expect_none("message.created").await;
    assert_eq!(stack.message_count(conversation).await, 2);
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut alice_phone = stack.connect(&alice).await;
    let mut alice_laptop = stack.connect(&alice).await;
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;

    alice_phone
        .send_json(json!({"action": "typing", "conversation_id": conversation, "is_typing": true}))
        .await;
    for socket in [&mut bob_phone, &mut bob_laptop] {
        let typing = socket.expect("typing").await;
        assert_eq!(typing["conversation_id"], conversation.to_string());
        assert_eq!(typing["data"]["user_id"], alice.id.to_string());
        assert_eq!(typing["data"]["is_typing"], true);
        let expires: chrono::DateTime<chrono::Utc> = typing["data"]["expires_at"].as_str().unwrap().parse().unwrap();
        assert!(expires > chrono::Utc::now());
        assert!(typing.get("seq").is_none(), "typing is not durable");
    }
    alice_laptop.expect_none("typing").await;
    alice_phone.expect_none("typing").await;

    alice_phone
        .send_json(json!({"action": "typing", "conversation_id": conversation, "is_typing": false}))
        .await;
    assert_eq!(bob_phone.expect("typing").await["data"]["is_typing"], false);
}

#[tokio::test]
async fn bad_tokens_are_refused_at_connect() {
    let stack = stack();
    let user = stack.new_user("mallory").await;
    let sub = json!(user.id.to_string());
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            "invalid signature",
            stack.token_signed_with(json!({"sub": sub}), "a-different-secret-that-is-32-bytes-long"),
        ),
        ("expired", stack.token(json!({"sub": sub, "exp": now - 3600}))),
        (
            "wrong audience",
            stack.token(json!({"sub": sub, "aud": "someone-else"})),
        ),
        ("anon role", stack.token(json!({"sub": sub, "role": "anon"}))),
        ("service role", stack.token(json!({"sub": sub, "role": "service_role"}))),
        ("sub not a UUID", stack.token(json!({"sub": "mallory"}))),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, token) in cases {
        let refused = WsClient::connect(&stack.websocket_url_with_token(&token)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{what}")
            }
            Err(other) => panic!("{what}: unexpected error {other}"),
            Ok(_) => panic!("{what}: the connection was accepted"),
        }
    }
    match WsClient::connect(&stack.info.websocket_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        _ => panic!("a connection without a token was accepted"),
    }
    assert!(
        stack.connection_ids(&user).await.is_empty(),
        "no connection row for refused tokens"
    );
}

#[tokio::test]
async fn the_token_may_come_as_a_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let stack = stack();
    let user = stack.new_user("browser").await;
    let mut request = stack.info.websocket_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("chat, {}", user.token).parse().unwrap(),
    );
    let (mut socket, response) = WsClient::connect_request(request)
        .await
        .expect("connect with subprotocol");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    socket.ping().await;
}

#[tokio::test]
async fn disconnect_removes_the_connection_and_the_management_api_answers_410() {
    let stack = stack();
    let user = stack.new_user("leaver").await;
    let socket = stack.connect(&user).await;
    let ids = stack.connection_ids(&user).await;
    assert_eq!(ids.len(), 1);
    let id = ids[0].clone();
    let api = stack.management_api();
    api.get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("a live connection is known");

    socket.close().await;
    stack
        .eventually("the connection row is deleted", || async {
            stack.connection_ids(&user).await.is_empty()
        })
        .await;
    let gone = api
        .post_to_connection()
        .connection_id(&id)
        .data(b"{}".as_slice().into())
        .send()
        .await;
    let error = gone.expect_err("posting to a closed connection must fail");
    assert!(
        error.as_service_error().is_some_and(|e| e.is_gone_exception()),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stale_connection_is_forgotten_and_the_others_still_get_the_message() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    // A connection whose $disconnect never arrived: API Gateway answers 410 for it.
    stack
        .db()
        .await
        .execute(
            "insert into connections (connection_id, user_id, token_exp, connected_at) \
             values ('StaleConn000=', $1, now() + interval '1 hour', now() - interval '1 minute')",
            &[&bob.id],
        )
        .await
        .unwrap();

    alice_socket
        .send_json(send_frame(conversation, "still there?", "s-1"))
        .await;
    alice_socket.expect("message.ack").await;
    bob_socket.expect("message.created").await;
    stack
        .eventually("the stale connection is deleted", || async {
            !stack.connection_ids(&bob).await.contains(&"StaleConn000=".to_string())
        })
        .await;
    assert_eq!(stack.connection_ids(&bob).await.len(), 1, "the live one stays");
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_socket() {
    let stack = stack();
    let user = stack.new_user("big").await;
    let mut offender = stack.connect(&user).await;
    let mut bystander = stack.connect(&user).await;
    offender.send_text("x".repeat(33 * 1024)).await;
    assert_eq!(offender.expect_closed().await, Closed::WithCode(1009));
    bystander.ping().await;
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_socket_stays_open() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let mut socket = stack.connect(&alice).await;

    socket.send_text("this is not json".into()).await;
    assert_eq!(socket.expect("error").await["data"]["code"], "invalid_json");
    socket.send_json(json!({"action": "dance"})).await;
    let unknown = socket.expect("error").await;
    assert_eq!(unknown["data"]["code"], "unknown_action");
    assert_eq!(unknown["data"]["action"], "dance");
    socket
        .send_json(json!({"action": "sendMessage", "conversation_id": "not-a-uuid", "body": "x", "client_msg_id": "x"}))
        .await;
    assert_eq!(socket.expect("error").await["data"]["code"], "invalid_request");
    socket
        .send_json(json!({"action": "sendMessage", "conversation_id": conversation, "body": "no id"}))
        .await;
    assert_eq!(socket.expect("error").await["data"]["code"], "invalid_client_msg_id");
    socket.ping().await;
    assert_eq!(stack.message_count(conversation).await, 0);
}

/// Sends pipelined on one socket are answered in any order: each refusal
/// names the `client_msg_id` of the frame it refuses, even when the rest of
/// that frame is what was wrong, so a client knows which message failed.
#[tokio::test]
async fn a_refused_send_names_its_client_msg_id() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let mut socket = stack.connect(&alice).await;

    socket.send_json(send_frame(conversation, "fine", "ok-1")).await;
    socket.send_json(send_frame(conversation, "   ", "blank-1")).await;
    socket
        .send_json(send_frame(Uuid::new_v4(), "who is there", "stranger-1"))
        .await;
    socket
        .send_json(json!({"action": "sendMessage", "conversation_id": "not-a-uuid", "client_msg_id": "bad-conv"}))
        .await;
    socket
        .send_json(json!({"action": "sendMessage", "conversation_id": conversation, "body": "no id"}))
        .await;

    let mut refused = std::collections::BTreeMap::new();
    for _ in 0..4 {
        let error = socket.expect("error").await;
        assert_eq!(error["data"]["action"], "sendMessage", "{error}");
        refused.insert(
            error["data"]["client_msg_id"].as_str().unwrap_or("(none)").to_string(),
            error["data"]["code"].as_str().unwrap_or_default().to_string(),
        );
    }
    let expected: std::collections::BTreeMap<String, String> = [
        ("blank-1", "invalid_body"),
        ("stranger-1", "not_a_participant"),
        ("bad-conv", "invalid_request"),
        ("(none)", "invalid_client_msg_id"),
    ]
    .into_iter()
    .map(|(id, code)| (id.to_string(), code.to_string()))
    .collect();
    assert_eq!(refused, expected);
    assert_eq!(socket.expect("message.ack").await["data"]["client_msg_id"], "ok-1");
    assert_eq!(stack.message_count(conversation).await, 1);
}

#[tokio::test]
async fn message_bodies_are_limited_in_characters() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let mut socket = stack.connect(&alice).await;

    // 5001 two-byte characters: 10002 bytes, one character too many.
    socket
        .send_json(send_frame(conversation, &"é".repeat(5001), "long-1"))
        .await;
    assert_eq!(socket.expect("error").await["data"]["code"], "message_too_long");
    for (i, blank) in ["", "   ", "\n\t"].iter().enumerate() {
        socket
            .send_json(send_frame(conversation, blank, &format!("blank-{i}")))
            .await;
        assert_eq!(socket.expect("error").await["data"]["code"], "invalid_body");
    }
    let path = format!("/v1/conversations/{conversation}/messages");
    let (status, body) = stack
        .http()
        .post(&alice, &path, json!({"body": "😀".repeat(5001)}))
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = stack.http().post(&alice, &path, json!({"body": " "})).await;
    assert_eq!(status, 422);
    let (status, body) = stack
        .http()
        .post(&alice, &path, json!({"body": "nul\u{0}inside"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(stack.message_count(conversation).await, 0, "nothing refused was stored");

    // Exactly 5000 four-byte characters is allowed (20000 bytes).
    socket
        .send_json(send_frame(conversation, &"😀".repeat(5000), "max-1"))
        .await;
    socket.expect("message.ack").await;
    assert_eq!(stack.message_count(conversation).await, 1);
}

#[tokio::test]
async fn a_socket_whose_token_expired_gets_token_expired_and_is_closed() {
    let stack = stack();
    let user = stack.new_user("sleepy").await;
    let exp = chrono::Utc::now().timestamp() + 2;
    let token = stack.token(json!({"sub": user.id.to_string(), "exp": exp}));
    let mut socket = WsClient::connect(&stack.websocket_url_with_token(&token))
        .await
        .expect("connect");
    let mut other = WsClient::connect(&stack.websocket_url_with_token(&token))
        .await
        .expect("connect");
    socket.ping().await;
    while chrono::Utc::now().timestamp() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A known route and an unknown action ($default) alike.
    socket.send_json(json!({"action": "ping"})).await;
    other.send_json(json!({"action": "dance"})).await;
    for socket in [&mut socket, &mut other] {
        let error = socket.expect("error").await;
        assert_eq!(error["data"]["code"], "token_expired");
        assert!(matches!(
            socket.expect_closed().await,
            Closed::WithCode(_) | Closed::WithoutFrame
        ));
    }
    stack
        .eventually("the expired connection is unregistered", || async {
            stack.connection_ids(&user).await.is_empty()
        })
        .await;
}

/// Each first connection announces presence to the contacts, some of whom are
/// still in their own handshake (API Gateway answers 410 for them): none of
/// them may be forgotten for it.
#[tokio::test]
async fn contacts_connecting_at_once_all_stay_registered_and_hear_every_message() {
    let stack = stack();
    let owner = stack.new_user("crowd-owner").await;
    let mut members = Vec::new();
    for i in 0..11 {
        members.push(stack.new_user(&format!("crowd-{i}")).await);
    }
    let member_ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    let (status, group) = stack
        .http()
        .post(
            &owner,
            "/v1/conversations",
            json!({"kind": "group", "name": "crowd", "member_ids": member_ids}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let conversation: Uuid = group["conversation"]["id"].as_str().unwrap().parse().unwrap();
    // Everyone writes once, which makes them all contacts of each other.
    for user in std::iter::once(&owner).chain(&members) {
        stack.send_text(user, conversation, "hello").await;
    }

    let mut sockets = futures_util::future::join_all(members.iter().map(|m| stack.connect(m))).await;
    for member in &members {
        assert_eq!(
            stack.connection_ids(member).await.len(),
            1,
            "{} lost its connection",
            member.name
        );
    }
    let mut owner_socket = stack.connect(&owner).await;
    owner_socket
        .send_json(send_frame(conversation, "everyone here?", "crowd-1"))
        .await;
    owner_socket.expect("message.ack").await;
    for socket in &mut sockets {
        assert_eq!(socket.expect("message.created").await["data"]["body"], "everyone here?");
    }
}
