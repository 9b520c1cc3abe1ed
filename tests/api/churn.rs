//! Delivery that survives failure. A churn run of `chat-bench --chaos` on
//! the debug binaries: recovering clients in direct, group and room
//! conversations while their sockets are cut, function instances are killed
//! and `@connections` answers 410, 429 and 500, must end with every stored
//! message at every member exactly once and in order. And the case that
//! used to lose a message for good, made reproducible: the sender's function
//! killed right after its commit, in a quiet direct conversation.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::helpers::stack::{binaries_dir, workspace_root};
use crate::helpers::{send_frame, Stack, ARRIVAL, SILENCE};

#[test]
fn a_churn_run_under_faults_loses_duplicates_and_reorders_nothing() {
    let bin_dir = binaries_dir();
    let results = std::env::temp_dir().join(format!("chat-churn-{}", Uuid::new_v4()));
    let output = Command::new(bin_dir.join("chat-bench"))
        .current_dir(workspace_root())
        .args(["--bin-dir", bin_dir.to_str().unwrap()])
        .args(["--results-dir", results.to_str().unwrap()])
        .arg("--chaos")
        .args(["--clients", "24", "--group-size", "4", "--room-size", "8"])
        .args(["--rate", "0.5", "--room-rate", "0.25"])
        .args(["--duration", "15", "--drain", "30"])
        .args(["--cut-every", "6", "--resync-every", "4", "--ack-timeout", "3"])
        .args(["--fault-kill", "0.03", "--fault-kill-after-commit", "0.15"])
        .args(["--fault-push-gone", "0.01", "--fault-push-throttle", "0.05"])
        .args(["--fault-push-error", "0.02", "--fault-drop-disconnect", "0.2"])
        .env("RUST_LOG", "error")
        .output()
        .expect("run chat-bench (cargo build --workspace --bins --examples first)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let saved = std::fs::read_to_string(results.join("latest-chaos.json"));
    let _ = std::fs::remove_dir_all(&results);
    assert!(
        output.status.success(),
        "chat-bench --chaos failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_str(&saved.expect("the chaos results")).expect("JSON results");
    let chaos = &report["chaos"];
    let n = |path: &str| {
        chaos
            .pointer(path)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{path} missing in {chaos:#}"))
    };
    let context = format!("{stdout}\n{chaos:#}");

    // Nothing lost, twice or out of order; everything written acknowledged.
    assert_eq!(
        (
            n("/integrity/lost"),
            n("/integrity/duplicated"),
            n("/integrity/reordered")
        ),
        (0, 0, 0),
        "{context}"
    );
    let written = n("/messages/written");
    assert!(written > 100, "{context}");
    assert_eq!(n("/messages/acknowledged"), written, "{context}");
    assert_eq!(
        (n("/messages/unacknowledged"), n("/messages/refused")),
        (0, 0),
        "{context}"
    );
    assert!(n("/messages/stored") >= written, "{context}");

    // Every delivery owed was made, live or by replay.
    let owed = n("/deliveries/owed");
    assert!(
        owed > written,
        "groups and the room have more than one other member: {context}"
    );
    assert_eq!(n("/deliveries/live") + n("/deliveries/by_replay"), owed, "{context}");
    assert!(n("/deliveries/live") > 0, "{context}");

    // The faults really happened, and the clients went through every recovery.
    assert!(n("/faults/kills") > 0, "{context}");
    assert!(n("/faults/kills_after_commit") > 0, "{context}");
    assert!(
        n("/faults/push_gone") + n("/faults/push_throttled") + n("/faults/push_error") > 0,
        "{context}"
    );
    assert!(n("/sockets/cut_by_clients") > 0, "{context}");
    assert!(n("/replays/after_reconnect") > 0, "{context}");
    assert!(
        n("/messages/duplicate_acks") > 0,
        "a send killed after its commit is acknowledged as a duplicate on its retry: {context}"
    );
    assert!(
        chaos["gateway_frames"]["Internal server error"].as_u64() > Some(0),
        "{context}"
    );
    assert!(chaos["recovery"]["after_cut"]["count"].as_u64() > Some(0), "{context}");
    assert!(
        chaos["recovery"]["after_crash_frame"]["count"].as_u64() > Some(0),
        "{context}"
    );
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A socket read frame by frame: API Gateway's crash frame has no `type`,
/// so it must be seen as it comes rather than waited for by type.
async fn open(stack: &Stack, token: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(stack.websocket_url_with_token(token))
        .await
        .expect("websocket connect");
    socket
}

/// The next JSON frame, or `None` if none comes within `wait`.
async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    tokio::time::timeout(wait, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).expect("JSON frame"),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .ok()
}

/// The next `message.created` within `wait` (presence and the like skipped).
async fn next_created(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    while let Some(frame) = next_frame(socket, deadline - tokio::time::Instant::now()).await {
        if frame["type"] == "message.created" {
            return Some(frame);
        }
    }
    None
}

/// The answer to one `sendMessage`: its ack, or API Gateway's crash frame.
async fn answer(socket: &mut Socket) -> Value {
    let frame = next_frame(socket, ARRIVAL).await.expect("an answer to sendMessage");
    assert!(
        frame["type"] == "message.ack" || frame["message"] == "Internal server error",
        "{frame}"
    );
    frame
}

async fn send(socket: &mut Socket, frame: &Value) {
    socket.send(Message::text(frame.to_string())).await.expect("send frame");
}

async fn fault_counters(stack: &Stack) -> BTreeMap<String, u64> {
    let url = format!("{}/__emulator/stats", stack.info.http_url.trim_end_matches('/'));
    let stats: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    serde_json::from_value(stats["faults"].clone()).expect("fault counters")
}

/// With `--fault-kill-after-commit ws-send-message=0.5`, half the sends die
/// right after the commit, at their first `@connections` call: no ack, no
/// push, only API Gateway's crash frame. The fault's seed makes which ones
/// reproducible; the test does not depend on it, sending until one dies.
#[tokio::test]
async fn a_send_killed_after_its_commit_reaches_the_member_when_the_sender_retries() {
    let stack = Stack::start_with(
        &["--fault-kill-after-commit", "ws-send-message=0.5", "--fault-seed", "10"],
        &[],
    );
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = open(&stack, &bob.token).await;
    let mut alice_socket = open(&stack, &alice.token).await;

    // Sends that survive arrive as usual, until one dies.
    let mut killed = None;
    for n in 0..30 {
        let frame = send_frame(conversation, &format!("quiet {n}"), &format!("m-{n}"));
        send(&mut alice_socket, &frame).await;
        let answer = answer(&mut alice_socket).await;
        if answer["type"] != "message.ack" {
            killed = Some(frame);
            break;
        }
        assert_eq!(answer["data"]["duplicate"], false, "{answer}");
        let created = next_created(&mut bob_socket, ARRIVAL).await.expect("message.created");
        assert_eq!(created["seq"], answer["data"]["seq"], "{created}");
    }
    let killed = killed.expect("one send in two is killed after its commit");
    let client_msg_id = killed["client_msg_id"].as_str().unwrap();

    // It was stored, and nobody was told: the conversation stays quiet.
    let stored: i64 = stack
        .db()
        .await
        .query_one(
            "select seq from messages where conversation_id = $1 and client_msg_id = $2",
            &[&conversation, &client_msg_id],
        )
        .await
        .expect("the killed send was stored")
        .get(0);
    if let Some(created) = next_created(&mut bob_socket, SILENCE).await {
        panic!("a killed send pushed {created}");
    }
    assert!(fault_counters(&stack).await["kills_after_commit"] >= 1);

    // The crash frame proves nothing: the sender retries with the same id
    // (a retry may die too) until it is acknowledged, as a duplicate.
    let ack = loop {
        send(&mut alice_socket, &killed).await;
        let answer = answer(&mut alice_socket).await;
        if answer["type"] == "message.ack" {
            break answer;
        }
    };
    assert_eq!(
        (
            &ack["data"]["duplicate"],
            &ack["data"]["seq"],
            &ack["data"]["client_msg_id"]
        ),
        (&json!(true), &json!(stored), &json!(client_msg_id)),
        "{ack}"
    );
    // The retry re-delivered it: the member gets it, once, at its seq; and
    // it is stored once.
    let created = next_created(&mut bob_socket, ARRIVAL)
        .await
        .expect("the retry re-delivers the message");
    assert_eq!(
        (&created["seq"], &created["data"]["client_msg_id"]),
        (&json!(stored), &json!(client_msg_id)),
        "{created}"
    );
    if let Some(again) = next_created(&mut bob_socket, SILENCE).await {
        panic!("delivered twice: {again}");
    }
    let copies: i64 = stack
        .db()
        .await
        .query_one(
            "select count(*) from messages where conversation_id = $1 and client_msg_id = $2",
            &[&conversation, &client_msg_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 1);
}
