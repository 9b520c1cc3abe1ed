//! Read state end to end: the read watermark over WebSocket and REST, `read`
//! receipts (to a direct partner, never in rooms) and unread counts that
//! count only live messages from others.

use crate::helpers::{mark_read_frame, stack};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn the_read_watermark_moves_forward_over_websocket_and_rest() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = stack.group(&alice, &[&bob, &carol]).await; // seq 1
    for i in 0..6 {
        stack.send_text(&alice, conversation, &format!("news {i}")).await; // seq 2..=7
    }
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut carol_socket = stack.connect(&carol).await;

    // markRead over the socket: the answer and everyone's receipt is `read`.
    bob_phone.send_json(mark_read_frame(conversation, Some(5))).await;
    for socket in [&mut bob_phone, &mut bob_laptop, &mut alice_socket, &mut carol_socket] {
        let read = socket.expect("read").await;
        assert_eq!(read["conversation_id"], conversation.to_string());
        assert_eq!(read["data"]["user_id"], bob.id.to_string());
        assert_eq!(read["data"]["last_read_seq"], 5);
        assert!(read["data"]["read_at"].is_string());
        assert!(read.get("seq").is_none(), "read is not durable: {read}");
    }

    // Backwards over REST: nothing moves, nobody is told.
    let (status, body) = stack.mark_read(&bob, conversation, json!({"seq": 3})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"conversation_id": conversation, "last_read_seq": 5, "unread_count": 2, "changed": false})
    );
    alice_socket.expect_none("read").await;

    // Backwards over the socket: only that socket hears, with the unchanged watermark.
    bob_phone.send_json(mark_read_frame(conversation, Some(3))).await;
    let unchanged = bob_phone.expect("read").await;
    assert_eq!(unchanged["data"]["last_read_seq"], 5);
    assert_eq!(unchanged["data"]["user_id"], bob.id.to_string());
    for socket in [&mut bob_laptop, &mut alice_socket, &mut carol_socket] {
        socket.expect_none("read").await;
    }

    // A seq beyond the latest counts as the latest.
    let (status, body) = stack.mark_read(&bob, conversation, json!({"seq": 1000})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_read_seq"], 7);
    assert_eq!(body["changed"], true);
    assert_eq!(body["unread_count"], 0);
    for socket in [&mut bob_phone, &mut bob_laptop, &mut alice_socket, &mut carol_socket] {
        assert_eq!(socket.expect("read").await["data"]["last_read_seq"], 7);
    }
    let (status, body) = stack
        .http()
        .get(&alice, &format!("/v1/conversations/{conversation}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let bob_row = body["conversation"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == bob.id.to_string())
        .unwrap()
        .clone();
    assert_eq!(bob_row["last_read_seq"], 7, "read receipts in the conversation");

    // Without a body: everything, which is already read.
    let (status, body) = stack
        .http()
        .request(
            reqwest::Method::POST,
            Some(&bob.token),
            &format!("/v1/conversations/{conversation}/read"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["last_read_seq"].as_i64(), body["changed"].as_bool()),
        (Some(7), Some(false))
    );

    // Refusals, over REST and over the socket.
    let (status, body) = stack.mark_read(&bob, conversation, json!({"seq": -1})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_argument");
    bob_phone.send_json(mark_read_frame(conversation, Some(-1))).await;
    let error = bob_phone.expect("error").await;
    assert_eq!(error["data"]["code"], "invalid_argument");
    assert_eq!(error["data"]["action"], "markRead");
    let (status, body) = stack.mark_read(&dave, conversation, json!({"seq": 2})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_a_participant");
    let mut stranger = stack.connect(&dave).await;
    stranger.send_json(mark_read_frame(conversation, None)).await;
    let error = stranger.expect("error").await;
    assert_eq!(error["data"]["code"], "not_a_participant");
    assert_eq!(error["data"]["action"], "markRead");
    alice_socket.expect_none("read").await;
}

#[tokio::test]
async fn read_receipts_reach_a_direct_partner_but_stay_private_in_rooms() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let public = stack.room(&alice, &[&bob]).await;
    stack.send_text(&alice, conversation, "hello").await;
    stack.send_text(&alice, public, "hello room").await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;

    bob_laptop.send_json(mark_read_frame(conversation, None)).await;
    for socket in [&mut bob_laptop, &mut bob_phone, &mut alice_socket] {
        let read = socket.expect("read").await;
        assert_eq!(read["conversation_id"], conversation.to_string());
        assert_eq!(read["data"]["last_read_seq"], 2);
    }

    let (status, body) = stack.mark_read(&bob, public, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    for socket in [&mut bob_laptop, &mut bob_phone] {
        let read = socket.expect("read").await;
        assert_eq!(read["conversation_id"], public.to_string());
        assert_eq!(read["data"]["user_id"], bob.id.to_string());
    }
    alice_socket.expect_none("read").await;
}

#[tokio::test]
async fn unread_counts_only_count_live_messages_from_others() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let direct = stack.direct_conversation(&alice, &bob).await;
    let team = stack.group(&alice, &[&bob, &carol]).await;

    let b1 = stack.send_text(&bob, direct, "b1").await;
    let b2 = stack.send_text(&bob, direct, "b2").await;
    stack.send_text(&bob, direct, "b3").await;
    stack.send_text(&alice, direct, "a1").await;
    stack.send_text(&alice, direct, "a2").await;
    let (status, body) = stack
        .http()
        .delete(&bob, &format!("/v1/messages/{}", b2["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    stack.send_text(&carol, team, "c1").await;
    stack.send_text(&carol, team, "c2").await;
    stack.send_text(&alice, team, "a3").await;

    let entry = |body: &Value, conversation: Uuid| -> Option<Value> {
        body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["conversation_id"] == conversation.to_string())
            .cloned()
    };
    // Alice: b1 and b3 (b2 is deleted, a1/a2 are hers); c1 and c2.
    let counts = stack.unread(&alice).await;
    assert_eq!(counts["total"], 4, "{counts}");
    assert_eq!(counts["conversations"].as_array().unwrap().len(), 2, "{counts}");
    assert_eq!(
        entry(&counts, direct).unwrap(),
        json!({"conversation_id": direct, "unread_count": 2, "muted": false})
    );
    assert_eq!(entry(&counts, team).unwrap()["unread_count"], 2);
    assert_eq!(stack.listed(&alice, direct).await["unread_count"], 2);
    assert_eq!(stack.listed(&alice, team).await["unread_count"], 2);
    let (_, details) = stack.http().get(&alice, &format!("/v1/conversations/{direct}")).await;
    assert_eq!(details["me"]["unread_count"], 2, "{details}");
    // Bob: a1, a2; c1, c2, a3.
    let counts = stack.unread(&bob).await;
    assert_eq!(counts["total"], 5, "{counts}");
    assert_eq!(entry(&counts, direct).unwrap()["unread_count"], 2);
    assert_eq!(entry(&counts, team).unwrap()["unread_count"], 3);

    // Reading up to b1 leaves b3.
    let (status, body) = stack.mark_read(&alice, direct, json!({"seq": b1["seq"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unread_count"], 1);
    assert_eq!(entry(&stack.unread(&alice).await, direct).unwrap()["unread_count"], 1);
    assert_eq!(stack.listed(&alice, direct).await["last_read_seq"], b1["seq"]);

    // Muted conversations still count, and say so.
    let (status, body) = stack
        .http()
        .patch(&alice, &format!("/v1/conversations/{team}"), json!({"muted": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let counts = stack.unread(&alice).await;
    assert_eq!(counts["total"], 3, "{counts}");
    assert_eq!(entry(&counts, team).unwrap()["muted"], true);

    // Everything read: the conversation leaves the list.
    let (status, body) = stack.mark_read(&alice, direct, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let counts = stack.unread(&alice).await;
    assert_eq!(counts["total"], 2, "{counts}");
    assert!(entry(&counts, direct).is_none(), "{counts}");
    assert_eq!(stack.listed(&alice, direct).await["unread_count"], 0);
}
