//! Every sample event in `events/` (the ones `sam local invoke -e` takes) run
//! through its function's real executable, wired as its entry in
//! functions/lambdas/src/handlers.rs wires it, and
//! checked for what the handler did: the events it pushed to real WebSocket
//! clients, the rows it wrote, and what it answered.
//!
//! The samples speak as the seeded users (sql/seed.sql) and name placeholder
//! ids; each test puts fresh users and live values in their place, including
//! the connection id of a real socket, so the pushes meant for the sample's
//! connection reach a client the test holds.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::functions::Functions;
use crate::helpers::template::template_functions;
use crate::helpers::{stack, tag, timestamp, unique_name, uuid_of, Stack, User, WsClient};

const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_ACCESS_TOKEN";
/// Ids in the samples that stand for a conversation, a room and a message.
const CONVERSATION_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000001";
const ROOM_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000002";
const MESSAGE_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000003";
/// Seeded users the samples speak as (alice) and about (bob, carol).
const SEEDED_ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
const SEEDED_BOB: &str = "00000000-0000-4000-8000-000000000b0b";
const SEEDED_CAROL: &str = "00000000-0000-4000-8000-0000000ca201";
const SAMPLE_CONNECTION: &str = "L0SM9cOFvHcCIhw=";
/// `token_exp` in the samples' authorizer context: 2100-01-01.
const SAMPLE_TOKEN_EXP: i64 = 4102444800;

/// The WebSocket samples, in the order they are replayed.
const WEBSOCKET_SAMPLES: [&str; 9] = [
    "ws-authorizer",
    "ws-connect",
    "ws-typing",
    "ws-mark-read",
    "ws-send-message",
    "ws-mark-delivered",
    "ws-ping",
    "ws-default",
    "ws-disconnect",
];

/// The REST samples, in an order where each finds what it needs (the message
/// sent is then edited and deleted; the room is left last).
const REST_SAMPLES: [&str; 29] = [
    "http-health",
    "http-open-direct-conversation",
    "http-list-messages",
    "http-send-message",
    "http-get-me",
    "http-search-users",
    "http-get-presence",
    "http-list-rooms",
    "http-list-conversations",
    "http-create-conversation",
    "http-get-conversation",
    "http-update-conversation",
    "http-list-events",
    "http-mark-read",
    "http-conversation-stats",
    "http-conversation-connections",
    "http-unread-counts",
    "http-search-messages",
    "http-edit-message",
    "http-delete-message",
    "http-add-members",
    "http-join-conversation",
    "http-leave-conversation",
    "http-block-user",
    "http-list-blocks",
    "http-unblock-user",
    "http-vapid-public-key",
    "http-save-push-subscription",
    "http-delete-push-subscription",
];

/// The scheduled samples (EventBridge's Scheduled Event).
const SCHEDULED_SAMPLES: [&str; 1] = ["sweep-connections"];

/// The samples of functions invoked by other functions (asynchronously).
const INVOKED_SAMPLES: [&str; 1] = ["notify"];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The sample `name` with each placeholder replaced.
fn sample(name: &str, live: &[(&str, String)]) -> String {
    let path = events_dir().join(format!("{name}.json"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, value) in live {
        text = text.replace(placeholder, value);
    }
    text
}

/// A WebSocket route's answer: API Gateway reads only its status.
fn assert_ok(name: &str, answer: Result<Value, String>) {
    let answer = answer.unwrap_or_else(|e| panic!("{name} failed: {e}"));
    assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
}

async fn query_one(
    stack: &Stack,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> tokio_postgres::Row {
    stack
        .db()
        .await
        .query_one(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn every_sample_event_is_replayed_and_names_a_function_of_the_template() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let replayed: BTreeSet<String> = WEBSOCKET_SAMPLES
        .iter()
        .chain(&REST_SAMPLES)
        .chain(&SCHEDULED_SAMPLES)
        .chain(&INVOKED_SAMPLES)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(on_disk, replayed);
    let handlers: BTreeSet<String> = template_functions().into_values().filter_map(|f| f.handler).collect();
    assert_eq!(handlers, replayed, "one sample per function");
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_samples_push_to_the_live_socket_and_write_what_their_route_does() {
    let stack = stack();
    let functions = Functions::start().await;
    let (alice, bob, conversation) = stack.direct_pair().await;
    // Contacts, so that bob is told when alice comes and goes.
    stack.make_contacts(&alice, &bob).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut alice_socket = stack.connect(&alice).await;
    let online = bob_socket.expect("presence").await;
    assert_eq!(
        (&online["data"]["user_id"], &online["data"]["online"]),
        (&json!(alice.id), &json!(true))
    );
    let connection = stack
        .connection_ids(&alice)
        .await
        .pop()
        .expect("alice's socket is registered");
    let live = |token: &str| {
        vec![
            (TOKEN_PLACEHOLDER, token.to_string()),
            (SEEDED_ALICE, alice.id.to_string()),
            (CONVERSATION_PLACEHOLDER, conversation.to_string()),
            (SAMPLE_CONNECTION, connection.clone()),
        ]
    };
    let run = |name: &'static str| {
        let event = sample(name, &live(&alice.token));
        let functions = &functions;
        async move { functions.invoke(name, &event).await }
    };

    // $connect authorizer: allowed with a real token, `Unauthorized` (401) without.
    let allowed = run("ws-authorizer").await.expect("allowed");
    assert_eq!(allowed["principalId"], alice.id.to_string());
    assert_eq!(allowed["context"]["user_id"], alice.id.to_string());
    let statement = &allowed["policyDocument"]["Statement"][0];
    assert_eq!(statement["Effect"], "Allow", "{allowed}");
    assert_eq!(statement["Action"], json!(["execute-api:Invoke"]), "{allowed}");
    assert_eq!(
        statement["Resource"],
        json!(["arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/$connect"])
    );
    let refused = functions
        .invoke("ws-authorizer", &sample("ws-authorizer", &live(TOKEN_PLACEHOLDER)))
        .await;
    assert!(
        refused.as_ref().is_err_and(|e| e.ends_with("Unauthorized")),
        "{refused:?}"
    );

    // $connect: as if the socket had not been registered yet, it is, until the
    // token's expiry, and bob hears alice come online.
    stack
        .db()
        .await
        .execute("delete from connections where connection_id = $1", &[&connection])
        .await
        .unwrap();
    assert_ok("ws-connect", run("ws-connect").await);
    let row = query_one(
        stack,
        "select user_id, token_exp from connections where connection_id = $1",
        &[&connection],
    )
    .await;
    assert_eq!(row.get::<_, Uuid>(0), alice.id);
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>(1).timestamp(),
        SAMPLE_TOKEN_EXP
    );
    let online = bob_socket.expect("presence").await;
    assert_eq!(
        (&online["data"]["user_id"], &online["data"]["online"]),
        (&json!(alice.id), &json!(true))
    );

    // typing: bob is told, until a few seconds from now.
    assert_ok("ws-typing", run("ws-typing").await);
    let typing = bob_socket.expect("typing").await;
    assert_eq!(typing["conversation_id"], conversation.to_string());
    assert_eq!(
        (&typing["data"]["user_id"], &typing["data"]["is_typing"]),
        (&json!(alice.id), &json!(true))
    );
    assert!(timestamp(&typing["data"]["expires_at"]) > chrono::Utc::now());

    // markRead seq 1: alice's watermark moves, and her direct partner hears it.
    assert_ok("ws-mark-read", run("ws-mark-read").await);
    let read_seq: i64 = query_one(
        stack,
        "select last_read_seq from participants where conversation_id = $1 and user_id = $2",
        &[&conversation, &alice.id],
    )
    .await
    .get(0);
    assert_eq!(read_seq, 1);
    let read = bob_socket.expect("read").await;
    assert_eq!(read["conversation_id"], conversation.to_string());
    assert_eq!(
        (&read["data"]["user_id"], &read["data"]["last_read_seq"]),
        (&json!(alice.id), &json!(1))
    );

    // sendMessage: stored once, acknowledged on the sending socket, delivered to bob.
    assert_ok("ws-send-message", run("ws-send-message").await);
    let stored = query_one(
        stack,
        "select id, sender_id, body from messages where conversation_id = $1 and client_msg_id = 'sample-1'",
        &[&conversation],
    )
    .await;
    let message_id: Uuid = stored.get(0);
    assert_eq!(stored.get::<_, Uuid>(1), alice.id);
    assert_eq!(stored.get::<_, String>(2), "Hello from sam local invoke");
    assert_eq!(stack.message_count(conversation).await, 1);
    let ack = alice_socket.expect("message.ack").await;
    assert_eq!(ack["data"]["client_msg_id"], "sample-1", "{ack}");
    assert_eq!(uuid_of(&ack["data"]["id"]), message_id, "{ack}");
    let created = bob_socket.expect("message.created").await;
    assert_eq!(uuid_of(&created["data"]["id"]), message_id, "{created}");
    assert_eq!(created["data"]["body"], "Hello from sam local invoke");

    // markDelivered seq 3: bob answers (seq 3), alice's device reports it,
    // her delivered watermark moves and bob, its sender, hears it.
    let reply = stack.send_text(&bob, conversation, "got it").await;
    assert_eq!(reply["seq"], 3);
    assert_ok("ws-mark-delivered", run("ws-mark-delivered").await);
    let delivered_seq: i64 = query_one(
        stack,
        "select last_delivered_seq from participants where conversation_id = $1 and user_id = $2",
        &[&conversation, &alice.id],
    )
    .await
    .get(0);
    assert_eq!(delivered_seq, 3);
    let delivered = bob_socket.expect("delivered").await;
    assert_eq!(delivered["conversation_id"], conversation.to_string());
    assert_eq!(
        (&delivered["data"]["user_id"], &delivered["data"]["last_delivered_seq"]),
        (&json!(alice.id), &json!(3))
    );

    // ping: the connection's last seen moves to now, and the socket gets pong.
    stack
        .db()
        .await
        .execute(
            "update connections set last_seen_at = now() - interval '1 hour' where connection_id = $1",
            &[&connection],
        )
        .await
        .unwrap();
    assert_ok("ws-ping", run("ws-ping").await);
    alice_socket.expect("pong").await;
    let recent: bool = query_one(
        stack,
        "select last_seen_at > now() - interval '1 minute' from connections where connection_id = $1",
        &[&connection],
    )
    .await
    .get(0);
    assert!(recent, "ping refreshes the connection's last seen");

    // $default: the unknown action is named in an error on the socket, which stays open.
    assert_ok("ws-default", run("ws-default").await);
    let error = alice_socket.expect("error").await;
    assert_eq!(error["data"]["code"], "unknown_action", "{error}");
    assert!(error["data"]["message"].as_str().unwrap().contains("dance"), "{error}");

    // $disconnect: the connection is forgotten and bob hears alice go offline.
    assert_ok("ws-disconnect", run("ws-disconnect").await);
    assert!(stack.connection_ids(&alice).await.is_empty());
    let offline = bob_socket.expect("presence").await;
    assert_eq!(
        (&offline["data"]["user_id"], &offline["data"]["online"]),
        (&json!(alice.id), &json!(false))
    );
}

/// A REST function's answer: its status and its JSON body.
fn rest_answer(name: &str, answer: Result<Value, String>) -> (u16, Value) {
    let answer = answer.unwrap_or_else(|e| panic!("{name} failed: {e}"));
    let status = answer["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name}: no status: {answer}")) as u16;
    let body = serde_json::from_str(answer["body"].as_str().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}: {answer}"));
    (status, body)
}

async fn participant(stack: &Stack, conversation: Uuid, user: &User) -> tokio_postgres::Row {
    query_one(
        stack,
        "select left_at is null, archived, muted, last_read_seq from participants
          where conversation_id = $1 and user_id = $2",
        &[&conversation, &user.id],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_samples_answer_write_and_push_what_their_endpoint_does() {
    let stack = stack();
    let functions = Functions::start().await;
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let conversation = stack.direct_conversation(&alice, &bob).await;
    let room = uuid_of(&stack.create(&alice, "room", &unique_name("Samples"), &[&bob]).await["id"]);
    let from_bob = stack.send_text(&bob, conversation, "hello from bob").await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut live = vec![
        (TOKEN_PLACEHOLDER, alice.token.clone()),
        (SEEDED_ALICE, alice.id.to_string()),
        (SEEDED_BOB, bob.id.to_string()),
        (SEEDED_CAROL, carol.id.to_string()),
        (CONVERSATION_PLACEHOLDER, conversation.to_string()),
        (ROOM_PLACEHOLDER, room.to_string()),
    ];
    let mut sent = None;

    for name in REST_SAMPLES {
        let (status, body) = rest_answer(name, functions.invoke(name, &sample(name, &live)).await);
        assert!((200..300).contains(&status), "{name}: {status} {body}");
        match name {
            "http-health" => assert_eq!(body["status"], "ok"),
            "http-open-direct-conversation" => {
                assert_eq!(status, 201, "a new conversation for the listing: {body}");
                let opened = uuid_of(&body["conversation"]["id"]);
                assert_ne!(opened, conversation, "one direct conversation per pair and context");
                assert_eq!(body["conversation"]["context_type"], "listing");
                assert_eq!(body["conversation"]["context_id"], "listing-42");
                let row = query_one(
                    stack,
                    "select kind, context_id from conversations where id = $1",
                    &[&opened],
                )
                .await;
                assert_eq!(
                    (row.get::<_, String>(0), row.get::<_, String>(1)),
                    ("direct".into(), "listing-42".into())
                );
                assert_eq!(
                    uuid_of(&bob_socket.expect("conversation.created").await["conversation_id"]),
                    opened
                );
            }
            "http-list-messages" => {
                let messages = body["messages"].as_array().unwrap();
                assert_eq!(messages.len(), 1, "{body}");
                assert_eq!(messages[0]["id"], from_bob["id"]);
            }
            "http-send-message" => {
                assert_eq!(status, 201);
                assert_eq!(body["message"]["body"], "Hello over REST");
                let id = uuid_of(&body["message"]["id"]);
                let row = query_one(
                    stack,
                    "select sender_id, client_msg_id from messages where id = $1",
                    &[&id],
                )
                .await;
                assert_eq!(
                    (row.get::<_, Uuid>(0), row.get::<_, String>(1)),
                    (alice.id, "sample-rest-1".into())
                );
                let created = bob_socket.expect("message.created").await;
                assert_eq!(uuid_of(&created["data"]["id"]), id);
                sent = Some(id);
                live.push((MESSAGE_PLACEHOLDER, id.to_string()));
            }
            "http-get-me" => {
                assert_eq!(body["user"]["id"], alice.id.to_string());
                assert_eq!(body["user"]["username"], alice.name);
            }
            "http-search-users" => {
                // Other tests' users match `bo` too: what holds is the filter, the order and the limit.
                let users = body["users"].as_array().unwrap();
                let names: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
                assert!(!names.is_empty() && names.len() <= 10, "q=bo&limit=10: {body}");
                assert!(names.is_sorted(), "ordered by username: {body}");
                for user in users {
                    let matches = |key: &str| user[key].as_str().is_some_and(|n| n.to_lowercase().contains("bo"));
                    assert!(matches("username") || matches("display_name"), "{user} matches bo");
                    assert_ne!(user["id"], alice.id.to_string(), "never me: {body}");
                }
            }
            "http-get-presence" => {
                assert_eq!(body["presence"][0]["user_id"], bob.id.to_string());
                assert_eq!(body["presence"][0]["online"], true, "bob's socket is open: {body}");
            }
            "http-list-rooms" => {
                // The 20 most recently active rooms: other tests' rooms may have
                // pushed this one to a later page, never out of the list.
                let rooms = body["rooms"].as_array().unwrap();
                let listed = rooms.iter().any(|r| r["id"] == room.to_string());
                assert!(
                    listed || (rooms.len() == 20 && body["next_cursor"].is_string()),
                    "{body}"
                );
            }
            "http-list-conversations" => {
                let listed: Vec<&Value> = body["conversations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| &c["id"])
                    .collect();
                for id in [conversation, room] {
                    assert!(listed.contains(&&json!(id)), "{id} listed: {body}");
                }
            }
            "http-create-conversation" => {
                assert_eq!(status, 201);
                assert_eq!(
                    (&body["conversation"]["kind"], &body["conversation"]["name"]),
                    (&json!("group"), &json!("Trip to Cusco"))
                );
                let id = uuid_of(&body["conversation"]["id"]);
                let members: i64 = query_one(
                    stack,
                    "select count(*) from participants where conversation_id = $1",
                    &[&id],
                )
                .await
                .get(0);
                assert_eq!(members, 3);
                for socket in [&mut bob_socket, &mut carol_socket] {
                    assert_eq!(
                        uuid_of(&socket.expect("conversation.created").await["conversation_id"]),
                        id
                    );
                }
            }
            "http-get-conversation" => assert_eq!(body["conversation"]["id"], conversation.to_string(), "{body}"),
            "http-update-conversation" => {
                let row = participant(stack, conversation, &alice).await;
                assert_eq!(
                    (row.get::<_, bool>(1), row.get::<_, bool>(2)),
                    (false, true),
                    "archived, muted"
                );
            }
            "http-list-events" => {
                let kinds: Vec<&Value> = body["events"].as_array().unwrap().iter().map(|e| &e["type"]).collect();
                assert_eq!(
                    kinds,
                    [
                        &json!("conversation.created"),
                        &json!("message.created"),
                        &json!("message.created")
                    ]
                );
            }
            "http-mark-read" => {
                assert_eq!(participant(stack, conversation, &alice).await.get::<_, i64>(3), 1);
                let read = bob_socket.expect("read").await;
                assert_eq!(
                    (&read["data"]["user_id"], &read["data"]["last_read_seq"]),
                    (&json!(alice.id), &json!(1))
                );
            }
            "http-conversation-stats" => assert_eq!(body["message_count"], 2, "{body}"),
            "http-conversation-connections" => assert_eq!(body["total_connections"], 1, "bob's socket: {body}"),
            "http-unread-counts" => {
                let entry = body["conversations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["conversation_id"] == conversation.to_string())
                    .unwrap_or_else(|| panic!("bob's message is unread: {body}"));
                assert_eq!(entry["unread_count"], 1, "{body}");
            }
            "http-search-messages" => {
                let found: Vec<&Value> = body["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| &r["message"]["id"])
                    .collect();
                assert!(found.contains(&&json!(sent.unwrap())), "{body}");
                assert!(found.contains(&&from_bob["id"]), "{body}");
            }
            "http-edit-message" => {
                assert_eq!(body["message"]["body"], "Hello over REST (edited)");
                let edited: bool = query_one(
                    stack,
                    "select edited_at is not null from messages where id = $1",
                    &[&sent.unwrap()],
                )
                .await
                .get(0);
                assert!(edited);
                assert_eq!(
                    bob_socket.expect("message.updated").await["data"]["body"],
                    "Hello over REST (edited)"
                );
            }
            "http-delete-message" => {
                assert!(body["message"]["body"].is_null());
                let row = query_one(
                    stack,
                    "select deleted_at is not null, body from messages where id = $1",
                    &[&sent.unwrap()],
                )
                .await;
                assert!(row.get::<_, bool>(0));
                assert_eq!(
                    row.get::<_, Option<String>>(1),
                    None,
                    "the body is gone from the database"
                );
                assert_eq!(
                    uuid_of(&bob_socket.expect("message.deleted").await["data"]["id"]),
                    sent.unwrap()
                );
            }
            "http-add-members" => {
                assert!(
                    participant(stack, room, &carol).await.get::<_, bool>(0),
                    "carol is in the room"
                );
                let joined = bob_socket.expect("member.joined").await;
                assert_eq!(
                    (&joined["conversation_id"], &joined["data"]["user_id"]),
                    (&json!(room), &json!(carol.id))
                );
            }
            "http-join-conversation" => {
                assert!(
                    participant(stack, room, &alice).await.get::<_, bool>(0),
                    "alice is (still) in the room"
                );
            }
            "http-leave-conversation" => {
                assert!(
                    !participant(stack, room, &alice).await.get::<_, bool>(0),
                    "alice has left the room"
                );
                let left = bob_socket.expect("member.left").await;
                assert_eq!(
                    (&left["conversation_id"], &left["data"]["user_id"]),
                    (&json!(room), &json!(alice.id))
                );
            }
            "http-block-user" => {
                assert_eq!(status, 201, "a new block: {body}");
                assert_eq!(body["block"]["user_id"], carol.id.to_string(), "{body}");
                let blocks: i64 = query_one(
                    stack,
                    "select count(*) from blocks where blocker_id = $1 and blocked_id = $2",
                    &[&alice.id, &carol.id],
                )
                .await
                .get(0);
                assert_eq!(blocks, 1);
            }
            "http-list-blocks" => {
                assert_eq!(body["blocks"].as_array().map(Vec::len), Some(1), "{body}");
                assert_eq!(body["blocks"][0]["user_id"], carol.id.to_string(), "{body}");
                assert_eq!(body["blocks"][0]["profile"]["username"], carol.name, "{body}");
            }
            "http-unblock-user" => {
                assert_eq!(body["removed"], true, "{body}");
                let blocks: i64 = query_one(stack, "select count(*) from blocks where blocker_id = $1", &[&alice.id])
                    .await
                    .get(0);
                assert_eq!(blocks, 0);
            }
            "http-vapid-public-key" => assert_eq!(body, json!({"public_key": stack.info.vapid_public_key})),
            "http-save-push-subscription" => {
                assert_eq!((status, &body["created"]), (201, &json!(true)), "{body}");
                let saved: i64 = query_one(
                    stack,
                    "select count(*) from push_subscriptions where user_id = $1",
                    &[&alice.id],
                )
                .await
                .get(0);
                assert_eq!(saved, 1);
            }
            "http-delete-push-subscription" => {
                assert_eq!(body["removed"], true, "{body}");
                let saved: i64 = query_one(
                    stack,
                    "select count(*) from push_subscriptions where user_id = $1",
                    &[&alice.id],
                )
                .await
                .get(0);
                assert_eq!(saved, 0);
            }
            other => panic!("no checks for the sample {other}"),
        }
    }
    drop::<WsClient>(carol_socket);
}

/// The connection sweep's sample (a Scheduled Event, whose content it does
/// not read) with the template's threshold: a connection whose socket went
/// without its $disconnect and one whose token expired are forgotten, one API
/// Gateway still knows is marked seen, and the ghost's contact is told she is
/// offline. Other tests share the database, so the answer's counts are at
/// least this test's.
#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_sample_sweeps_ghosts_and_expired_connections_and_tells_their_contacts() {
    let stack = stack();
    let functions = Functions::start().await;
    let (alice, bob, _conversation) = stack.direct_pair().await;
    stack.make_contacts(&alice, &bob).await;
    let (carol, dave) = (stack.new_user("carol").await, stack.new_user("dave").await);
    let mut bob_socket = stack.connect(&bob).await;
    let mut dave_socket = stack.connect(&dave).await;
    let db = stack.db().await;
    // Past their $connect, silent for an hour: alice's only connection, whose
    // socket is gone; dave's, whose socket is open; and carol's, whose token
    // expired.
    let (ghost, expired) = (format!("Ghost{}=", tag()), format!("Expired{}=", tag()));
    db.execute(
        "insert into connections (connection_id, user_id, token_exp, connected_at, last_seen_at) values \
         ($1, $2, now() + interval '1 hour', now() - interval '1 hour', now() - interval '1 hour'), \
         ($3, $4, now() - interval '1 minute', now() - interval '1 hour', now() - interval '1 hour')",
        &[&ghost, &alice.id, &expired, &carol.id],
    )
    .await
    .unwrap();
    db.execute(
        "update connections set connected_at = now() - interval '1 hour', last_seen_at = now() - interval '1 hour' \
         where user_id = $1",
        &[&dave.id],
    )
    .await
    .unwrap();

    let answer = functions
        .invoke("sweep-connections", &sample("sweep-connections", &[]))
        .await
        .unwrap_or_else(|e| panic!("sweep-connections failed: {e}"));
    for (count, at_least) in [
        ("gone", 1),
        ("alive", 1),
        ("removed", 1),
        ("refreshed", 1),
        ("went_offline", 1),
    ] {
        let value = answer[count].as_u64().unwrap_or_else(|| panic!("{count} in {answer}"));
        assert!(value >= at_least, "{count}: {answer}");
    }
    // The shared stack's own sweep may have taken carol's first.
    assert!(answer["expired"].is_u64(), "{answer}");

    assert!(stack.connection_ids(&alice).await.is_empty(), "the ghost is forgotten");
    assert!(
        stack.connection_ids(&carol).await.is_empty(),
        "the expired connection is forgotten"
    );
    let seen: bool = query_one(
        stack,
        "select bool_and(last_seen_at > now() - interval '1 minute') from connections where user_id = $1",
        &[&dave.id],
    )
    .await
    .get(0);
    assert!(seen, "an open socket is marked seen");
    let offline = bob_socket.expect("presence").await;
    assert_eq!(
        (&offline["data"]["user_id"], &offline["data"]["online"]),
        (&json!(alice.id), &json!(false)),
        "{offline}"
    );
    dave_socket.ping().await;
}

/// The notification function on its sample: bob, offline, is told of alice's
/// message through the webhook (the stack's receiver), signed.
#[tokio::test(flavor = "multi_thread")]
async fn the_notification_sample_tells_the_webhook() {
    use crate::helpers::push_service::{push_service, verify_webhook};
    let stack = stack();
    let functions = Functions::start().await;
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let conversation = stack.direct_conversation(&alice, &bob).await;
    let message = stack.send_text(&alice, conversation, "for the sample").await;
    // The stack's own notification of it first, so that the sample's is the second.
    push_service().await_webhooks(conversation, 1).await;
    let live = [
        (SEEDED_BOB, bob.id.to_string()),
        (CONVERSATION_PLACEHOLDER, conversation.to_string()),
        (MESSAGE_PLACEHOLDER, message["id"].as_str().unwrap().to_string()),
    ];
    let answer = functions
        .invoke("notify", &sample("notify", &live))
        .await
        .expect("the notification function answers");
    assert_eq!(answer["webhook"], true, "{answer}");
    let received = push_service().await_webhooks(conversation, 2).await;
    let notification = verify_webhook(&received[1]);
    assert_eq!(
        (&notification["id"], &notification["user_ids"]),
        (&message["id"], &json!([bob.id]))
    );
}
