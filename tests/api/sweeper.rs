//! Connections that go without their `$disconnect`: found gone by a push
//! (410) or by the scheduled sweep, they tell the contacts their user is
//! offline and stop their user's typing, as `$disconnect` does.

use std::time::Instant;

use serde_json::{json, Value};

use crate::helpers::{stack, tag, uuid_of, Stack, User, WsClient};

fn typing_frame(conversation: uuid::Uuid, is_typing: bool) -> Value {
    json!({"action": "typing", "conversation_id": conversation, "is_typing": is_typing})
}

/// Waits for `user`'s presence on `socket` and checks it is `online`.
async fn expect_presence(socket: &mut WsClient, user: &User, online: bool) -> Value {
    let presence = socket.expect("presence").await;
    assert_eq!(
        (&presence["data"]["user_id"], &presence["data"]["online"]),
        (&json!(user.id), &json!(online)),
        "{presence}"
    );
    presence
}

#[tokio::test]
async fn a_typist_who_disconnects_is_shown_offline_and_no_longer_typing() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    stack.make_contacts(&alice, &bob).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut alice_socket = stack.connect(&alice).await;
    expect_presence(&mut bob_socket, &alice, true).await;
    alice_socket.send_json(typing_frame(conversation, true)).await;
    assert_eq!(bob_socket.expect("typing").await["data"]["is_typing"], true);

    alice_socket.close().await;
    expect_presence(&mut bob_socket, &alice, false).await;
    let stopped = bob_socket.expect("typing").await;
    assert_eq!(stopped["conversation_id"], conversation.to_string());
    assert_eq!(
        (&stopped["data"]["user_id"], &stopped["data"]["is_typing"]),
        (&json!(alice.id), &json!(false)),
        "{stopped}"
    );
}

#[tokio::test]
async fn a_last_connection_a_push_finds_gone_tells_the_contacts_offline_and_stops_its_typing() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    stack.make_contacts(&alice, &bob).await;
    let mut bob_socket = stack.connect(&bob).await;
    // Alice's only connection is one whose socket went without a $disconnect
    // (API Gateway answers 410 for it), past its own $connect, while she was
    // typing here.
    let ghost = format!("Ghost{}=", tag());
    let db = stack.db().await;
    db.execute(
        "insert into connections (connection_id, user_id, token_exp, connected_at) \
         values ($1, $2, now() + interval '1 hour', now() - interval '1 minute')",
        &[&ghost, &alice.id],
    )
    .await
    .unwrap();
    db.execute(
        "insert into typing_indicators (conversation_id, user_id, expires_at) \
         values ($1, $2, now() + interval '1 minute')",
        &[&conversation, &alice.id],
    )
    .await
    .unwrap();

    let sent = stack.send_text(&bob, conversation, "are you there?").await;
    assert_eq!(
        uuid_of(&bob_socket.expect("message.created").await["data"]["id"]),
        uuid_of(&sent["id"])
    );
    let offline = expect_presence(&mut bob_socket, &alice, false).await;
    assert!(offline["data"]["last_seen_at"].is_string(), "{offline}");
    let stopped = bob_socket.expect("typing").await;
    assert_eq!(stopped["conversation_id"], conversation.to_string());
    assert_eq!(
        (&stopped["data"]["user_id"], &stopped["data"]["is_typing"]),
        (&json!(alice.id), &json!(false)),
        "{stopped}"
    );
    assert!(stack.connection_ids(&alice).await.is_empty());
    let (status, body) = stack
        .http()
        .get(&bob, &format!("/v1/presence?user_ids={}", alice.id))
        .await;
    assert_eq!((status, &body["presence"][0]["online"]), (200, &json!(false)), "{body}");
}

/// The sweep's figures in a stack of its own: a sweep every second, and a
/// connection not seen for two seconds is asked about.
const SWEEP_EVERY_SECONDS: &str = "1";
const STALE_CONNECTION_SECONDS: &str = "2";

/// A socket dropped without `$disconnect` (the stack suppresses every one)
/// shows its user offline to a contact once the sweep has asked API Gateway
/// about it: within the sweep interval plus the threshold. The ghost held
/// the user's only connection under a cap of one; it holds nothing after.
#[tokio::test(flavor = "multi_thread")]
async fn a_socket_dropped_without_disconnect_shows_offline_within_a_sweep_and_frees_its_place() {
    let stack = Stack::start_with(
        &["--fault-drop-disconnect", "1", "--schedule-every", SWEEP_EVERY_SECONDS],
        &[
            ("StaleConnectionSeconds", STALE_CONNECTION_SECONDS),
            ("MaxConnectionsPerUser", "1"),
        ],
    );
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    stack.make_contacts(&alice, &bob).await;
    let mut bob_socket = stack.connect(&bob).await;
    let alice_socket = stack.connect(&alice).await;
    expect_presence(&mut bob_socket, &alice, true).await;
    // As a socket open for a while: past the 30 seconds a $connect may take,
    // within which API Gateway's 410 does not prove a connection gone.
    stack
        .db()
        .await
        .execute(
            "update connections set connected_at = now() - interval '1 minute' where user_id = $1",
            &[&alice.id],
        )
        .await
        .unwrap();

    let dropped_before = emulator_stat(&stack, "/faults/disconnects_dropped").await;
    let dropped_at = Instant::now();
    alice_socket.close().await;
    let offline = expect_presence(&mut bob_socket, &alice, false).await;
    eprintln!(
        "ghost online for {:?} after its socket closed (sweep every {SWEEP_EVERY_SECONDS} s, threshold {STALE_CONNECTION_SECONDS} s)",
        dropped_at.elapsed()
    );
    assert!(offline["data"]["last_seen_at"].is_string(), "{offline}");
    assert!(
        emulator_stat(&stack, "/faults/disconnects_dropped").await > dropped_before,
        "alice's $disconnect ran: the sweep was not what told bob"
    );
    assert!(stack.connection_ids(&alice).await.is_empty());

    // Her one place is free again: she reconnects, and bob hears it.
    let mut alice_again = stack.connect(&alice).await;
    expect_presence(&mut bob_socket, &alice, true).await;
    alice_again.ping().await;
}

/// A counter of the emulator's `GET /__emulator/stats`, by JSON pointer.
async fn emulator_stat(stack: &Stack, pointer: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{}/__emulator/stats", stack.info.http_url))
        .await
        .expect("emulator stats")
        .json()
        .await
        .expect("emulator stats are JSON");
    stats
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no counter {pointer} in the emulator's stats: {stats}"))
}
