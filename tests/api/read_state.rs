//! Read state end to end: the read watermark over WebSocket and REST, `read`
//! receipts (to a direct partner, never in rooms) and unread counts that
//! count only live messages from others; the delivered watermark over
//! WebSocket and `delivered` receipts (to the senders, never in rooms or
//! across a block).

use crate::helpers::{mark_read_frame, send_frame, stack, tag, Stack, User};
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

/// A `markDelivered` WebSocket frame.
fn mark_delivered_frame(conversation: Uuid, seq: i64) -> Value {
    json!({"action": "markDelivered", "conversation_id": conversation, "seq": seq})
}

/// A participant's receipts as `user` sees them in `GET /v1/conversations/{id}`:
/// (last_read_seq, last_delivered_seq), null where hidden.
async fn receipts_of(stack: &Stack, user: &User, conversation: Uuid, of: &User) -> (Value, Value) {
    let details = stack.details(user, conversation).await;
    let row = details["conversation"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == of.id.to_string())
        .unwrap_or_else(|| panic!("{} is listed: {details}", of.name))
        .clone();
    (row["last_read_seq"].clone(), row["last_delivered_seq"].clone())
}

#[tokio::test]
async fn a_delivery_report_reaches_the_sender_and_the_watermark_only_moves_forward() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let carol = stack.new_user("carol").await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;

    // Alice sends two messages; bob's phone receives them and reports the highest seq.
    for (i, body) in ["first", "second"].into_iter().enumerate() {
        alice_socket
            .send_json(send_frame(conversation, body, &format!("receipt-{}-{i}", tag())))
            .await;
        alice_socket.expect("message.ack").await;
    }
    let mut received = 0;
    for _ in 0..2 {
        let created = bob_phone.expect("message.created").await;
        received = received.max(created["seq"].as_i64().unwrap());
    }
    assert_eq!(received, 3);
    bob_phone.send_json(mark_delivered_frame(conversation, received)).await;
    for socket in [&mut alice_socket, &mut bob_phone, &mut bob_laptop] {
        let delivered = socket.expect("delivered").await;
        assert_eq!(delivered["conversation_id"], conversation.to_string());
        assert_eq!(delivered["data"]["user_id"], bob.id.to_string());
        assert_eq!(delivered["data"]["last_delivered_seq"], 3);
        assert!(delivered["data"]["delivered_at"].is_string(), "{delivered}");
        assert!(delivered.get("seq").is_none(), "delivered is not durable: {delivered}");
    }
    assert_eq!(
        receipts_of(stack, &alice, conversation, &bob).await,
        (json!(0), json!(3)),
        "delivered, not read"
    );

    // A lower seq does not move it back: only the reporting socket hears, with the watermark as it is.
    bob_phone.send_json(mark_delivered_frame(conversation, 2)).await;
    let unchanged = bob_phone.expect("delivered").await;
    assert_eq!(unchanged["data"]["last_delivered_seq"], 3);
    assert_eq!(unchanged["data"]["user_id"], bob.id.to_string());
    alice_socket.expect_none("delivered").await;
    bob_laptop.expect_none("delivered").await;
    assert_eq!(
        receipts_of(stack, &alice, conversation, &bob).await,
        (json!(0), json!(3))
    );

    // Reading is the higher watermark: reading seq 4 delivers it too, told by `read` alone.
    stack.send_text(&alice, conversation, "third").await; // seq 4
    let (status, body) = stack.mark_read(&bob, conversation, json!({"seq": 4})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(alice_socket.expect("read").await["data"]["last_read_seq"], 4);
    assert_eq!(
        receipts_of(stack, &alice, conversation, &bob).await,
        (json!(4), json!(4))
    );
    bob_laptop.send_json(mark_delivered_frame(conversation, 4)).await;
    assert_eq!(
        bob_laptop.expect("delivered").await["data"]["last_delivered_seq"],
        4,
        "already delivered by the read"
    );
    alice_socket.expect_none("delivered").await;

    // Bob's own messages: reporting them tells nobody else.
    let own = stack.send_text(&bob, conversation, "mine").await; // seq 5
    bob_phone
        .send_json(mark_delivered_frame(conversation, own["seq"].as_i64().unwrap()))
        .await;
    assert_eq!(bob_phone.expect("delivered").await["data"]["last_delivered_seq"], 5);
    alice_socket.expect_none("delivered").await;

    // Refusals: no seq, a negative seq, an outsider.
    bob_phone
        .send_json(json!({"action": "markDelivered", "conversation_id": conversation}))
        .await;
    let error = bob_phone.expect("error").await;
    assert_eq!(
        (&error["data"]["code"], &error["data"]["action"]),
        (&json!("invalid_request"), &json!("markDelivered"))
    );
    bob_phone.send_json(mark_delivered_frame(conversation, -1)).await;
    assert_eq!(bob_phone.expect("error").await["data"]["code"], "invalid_argument");
    let mut stranger = stack.connect(&carol).await;
    stranger.send_json(mark_delivered_frame(conversation, 1)).await;
    let error = stranger.expect("error").await;
    assert_eq!(
        (&error["data"]["code"], &error["data"]["action"]),
        (&json!("not_a_participant"), &json!("markDelivered"))
    );
    alice_socket.expect_none("delivered").await;
    assert_eq!(
        receipts_of(stack, &alice, conversation, &bob).await,
        (json!(4), json!(5))
    );
}

#[tokio::test]
async fn delivery_receipts_stay_private_in_rooms_and_across_a_block() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let room = stack.room(&alice, &[&bob, &carol]).await;
    let group = stack.group(&alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;

    // A room: the member's own socket hears of it, the sender does not, and nobody sees it.
    let hello = stack.send_text(&alice, room, "hello room").await;
    bob_socket
        .send_json(mark_delivered_frame(room, hello["seq"].as_i64().unwrap()))
        .await;
    let own = bob_socket.expect("delivered").await;
    assert_eq!(
        (&own["conversation_id"], &own["data"]["last_delivered_seq"]),
        (&json!(room), &hello["seq"])
    );
    alice_socket.expect_none("delivered").await;
    assert_eq!(receipts_of(stack, &alice, room, &bob).await, (Value::Null, Value::Null));

    // A block between alice and bob: in the group they share, neither hears of
    // or sees the other's receipts; carol hears and sees both.
    let (status, body) = stack
        .http()
        .post(&alice, "/v1/blocks", json!({"user_id": bob.id}))
        .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    stack.send_text(&bob, group, "from bob").await;
    let last = stack.send_text(&carol, group, "from carol").await;
    let seq = last["seq"].as_i64().unwrap();
    alice_socket.send_json(mark_delivered_frame(group, seq)).await;
    assert_eq!(
        alice_socket.expect("delivered").await["data"]["last_delivered_seq"],
        seq
    );
    let heard = carol_socket.expect("delivered").await;
    assert_eq!(
        (&heard["data"]["user_id"], &heard["data"]["last_delivered_seq"]),
        (&json!(alice.id), &json!(seq))
    );
    bob_socket.expect_none("delivered").await;
    assert_eq!(
        receipts_of(stack, &bob, group, &alice).await,
        (Value::Null, Value::Null)
    );
    assert_eq!(receipts_of(stack, &carol, group, &alice).await, (json!(0), json!(seq)));
    assert_eq!(
        receipts_of(stack, &alice, group, &bob).await,
        (Value::Null, Value::Null)
    );
}
