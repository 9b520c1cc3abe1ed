//! The messaging API end to end: sending with attachments and replies, edits,
//! deletes, search, read state and unread counts, presence, typing, users and
//! health — over real HTTP and WebSocket clients against the local stack.
//!
//! Every test makes its own users and conversations; other tests run at the
//! same time, so nothing here depends on global counts.

use std::collections::BTreeSet;

use chat_e2e::{stack, Stack, User};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A short random tag, to make names and words unique to one test.
fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Percent-encodes a query-string value.
fn enc(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn uuid_of(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))).unwrap()
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp: {value}: {e}"))
}

fn messages_path(conversation: Uuid) -> String {
    format!("/v1/conversations/{conversation}/messages")
}

/// A group owned by `owner` with `members`.
async fn group(stack: &Stack, owner: &User, members: &[&User]) -> Uuid {
    let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    let (status, body) = stack
        .http()
        .post(
            owner,
            "/v1/conversations",
            json!({"kind": "group", "name": format!("group {}", tag()), "member_ids": ids}),
        )
        .await;
    assert_eq!(status, 201, "create group: {body}");
    uuid_of(&body["conversation"]["id"])
}

/// A public room owned by `owner` with `members`.
async fn room(stack: &Stack, owner: &User, members: &[&User]) -> Uuid {
    let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    let (status, body) = stack
        .http()
        .post(
            owner,
            "/v1/conversations",
            json!({"kind": "room", "name": format!("room {}", tag()), "member_ids": ids}),
        )
        .await;
    assert_eq!(status, 201, "create room: {body}");
    uuid_of(&body["conversation"]["id"])
}

/// Sends over REST and returns the stored message (asserting 201).
async fn send(stack: &Stack, user: &User, conversation: Uuid, message: Value) -> Value {
    let (status, body) = stack.http().post(user, &messages_path(conversation), message).await;
    assert_eq!(status, 201, "send: {body}");
    assert_eq!(body["duplicate"], false);
    body["message"].clone()
}

async fn send_text(stack: &Stack, user: &User, conversation: Uuid, text: &str) -> Value {
    send(stack, user, conversation, json!({"body": text})).await
}

/// Every message of a conversation (at most 100), as `user` sees them.
async fn history(stack: &Stack, user: &User, conversation: Uuid) -> Vec<Value> {
    let (status, body) = stack
        .http()
        .get(user, &format!("{}?limit=100", messages_path(conversation)))
        .await;
    assert_eq!(status, 200, "history: {body}");
    body["messages"].as_array().unwrap().clone()
}

/// The whole replayable event log of a conversation, as `user` sees it.
async fn events(stack: &Stack, user: &User, conversation: Uuid) -> Value {
    let (status, body) = stack
        .http()
        .get(
            user,
            &format!("/v1/conversations/{conversation}/events?after_seq=0&limit=500"),
        )
        .await;
    assert_eq!(status, 200, "events: {body}");
    body
}

/// GET /v1/messages/search with the given query string (already encoded).
async fn search(stack: &Stack, user: &User, query: &str) -> (u16, Value) {
    stack.http().get(user, &format!("/v1/messages/search?{query}")).await
}

/// Ids of the messages a search finds (asserting 200).
async fn found(stack: &Stack, user: &User, query: &str) -> BTreeSet<String> {
    let (status, body) = search(stack, user, query).await;
    assert_eq!(status, 200, "search {query}: {body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["id"].as_str().unwrap().to_string())
        .collect()
}

fn ids(messages: &[&Value]) -> BTreeSet<String> {
    messages.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

async fn mark_read(stack: &Stack, user: &User, conversation: Uuid, body: Value) -> (u16, Value) {
    stack
        .http()
        .post(user, &format!("/v1/conversations/{conversation}/read"), body)
        .await
}

fn mark_read_frame(conversation: Uuid, seq: Option<i64>) -> Value {
    match seq {
        Some(seq) => json!({"action": "markRead", "conversation_id": conversation, "seq": seq}),
        None => json!({"action": "markRead", "conversation_id": conversation}),
    }
}

async fn unread(stack: &Stack, user: &User) -> Value {
    let (status, body) = stack.http().get(user, "/v1/unread").await;
    assert_eq!(status, 200, "unread: {body}");
    body
}

/// The entry of `conversation` in GET /v1/conversations.
async fn listed(stack: &Stack, user: &User, conversation: Uuid) -> Value {
    let (status, body) = stack.http().get(user, "/v1/conversations?limit=100").await;
    assert_eq!(status, 200, "list conversations: {body}");
    body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == conversation.to_string())
        .unwrap_or_else(|| panic!("{conversation} is not listed: {body}"))
        .clone()
}

fn attachment(url: &str, name: &str, mime_type: &str, size_bytes: u64) -> Value {
    json!({"url": url, "name": name, "mime_type": mime_type, "size_bytes": size_bytes})
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rest_send_reaches_every_member_socket_including_the_senders_other_devices() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await;
    let mut alice_phone = stack.connect(&alice).await;
    let mut alice_laptop = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;

    let message = send(
        stack,
        &alice,
        conversation,
        json!({"body": "hello group", "client_msg_id": "g-1"}),
    )
    .await;
    assert_eq!(message["kind"], "text");
    assert_eq!(message["client_msg_id"], "g-1");
    let seq = message["seq"].as_i64().unwrap();
    assert!(seq > 1, "seq 1 is conversation.created");

    for socket in [&mut alice_phone, &mut alice_laptop, &mut bob_socket, &mut carol_socket] {
        let created = socket.expect("message.created").await;
        assert_eq!(created["conversation_id"], conversation.to_string());
        assert_eq!(created["seq"], seq);
        assert_eq!(created["data"], message, "the pushed message is the stored one");
    }
    stranger.expect_none("message.created").await;
    alice_phone.expect_none("message.created").await;
}

#[tokio::test]
async fn image_and_file_messages_carry_their_attachments() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = stack.connect(&bob).await;

    let image = send(
        stack,
        &alice,
        conversation,
        json!({"kind": "image", "body": "The balcony",
               "attachment": attachment("https://cdn.example.com/u/a11c/balcony.jpg", " balcony.jpg ", "image/JPEG", 482113)}),
    )
    .await;
    assert_eq!(image["kind"], "image");
    assert_eq!(image["body"], "The balcony");
    // Stored with the name trimmed and the mime type lower-cased.
    assert_eq!(
        image["attachment"],
        attachment(
            "https://cdn.example.com/u/a11c/balcony.jpg",
            "balcony.jpg",
            "image/jpeg",
            482113
        )
    );

    let file = send(
        stack,
        &alice,
        conversation,
        json!({"kind": "file",
               "attachment": attachment("https://cdn.example.com/listings/42/floor-plan.pdf", "floor-plan.pdf", "application/pdf", 183204)}),
    )
    .await;
    assert_eq!(file["kind"], "file");
    assert_eq!(file["body"], Value::Null, "the caption is optional");
    assert_eq!(file["attachment"]["mime_type"], "application/pdf");
    assert_eq!(file["attachment"]["size_bytes"], 183204);

    for sent in [&image, &file] {
        let created = bob_socket.expect("message.created").await;
        assert_eq!(created["data"]["id"], sent["id"]);
        assert_eq!(created["data"]["attachment"], sent["attachment"]);
    }
    let stored = history(stack, &bob, conversation).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["attachment"], image["attachment"]);
    assert_eq!(stored[1]["attachment"], file["attachment"]);
}

#[tokio::test]
async fn invalid_attachments_are_refused_and_nothing_is_stored() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = stack.connect(&bob).await;
    let good = |mime: &str| attachment("https://cdn.example.com/f/doc", "doc.bin", mime, 1024);
    let with = |field: &str, value: Value| {
        let mut a = good("application/pdf");
        a[field] = value;
        a
    };

    let cases = [
        (
            "http URL",
            json!({"kind": "file", "attachment": with("url", json!("http://cdn.example.com/f/doc.pdf"))}),
        ),
        (
            "javascript: URL",
            json!({"kind": "file", "attachment": with("url", json!("javascript:alert(1)"))}),
        ),
        (
            "URL without a host",
            json!({"kind": "file", "attachment": with("url", json!("https://"))}),
        ),
        (
            "empty mime type",
            json!({"kind": "file", "attachment": with("mime_type", json!(""))}),
        ),
        (
            "mime type without subtype",
            json!({"kind": "file", "attachment": with("mime_type", json!("pdf"))}),
        ),
        (
            "size 0",
            json!({"kind": "file", "attachment": with("size_bytes", json!(0))}),
        ),
        (
            "size over 100 MiB",
            json!({"kind": "file", "attachment": with("size_bytes", json!(104_857_601u64))}),
        ),
        (
            "a path as the name",
            json!({"kind": "file", "attachment": with("name", json!("../etc/passwd"))}),
        ),
        (
            "blank name",
            json!({"kind": "file", "attachment": with("name", json!("   "))}),
        ),
        (
            "image kind with application/pdf",
            json!({"kind": "image", "attachment": good("application/pdf")}),
        ),
        (
            "image without attachment",
            json!({"kind": "image", "body": "where is it"}),
        ),
        (
            "text with attachment",
            json!({"body": "look", "attachment": good("image/png")}),
        ),
    ];
    for (what, message) in cases {
        let (status, body) = stack.http().post(&alice, &messages_path(conversation), message).await;
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_attachment", "{what}: {body}");
    }

    // An attachment object without a mime_type field has the wrong shape.
    let mut missing = good("application/pdf");
    missing.as_object_mut().unwrap().remove("mime_type");
    let (status, body) = stack
        .http()
        .post(
            &alice,
            &messages_path(conversation),
            json!({"kind": "file", "attachment": missing}),
        )
        .await;
    assert_eq!(status, 400, "attachment without mime_type: {body}");
    assert_eq!(
        body["error"]["code"], "invalid_request",
        "attachment without mime_type: {body}"
    );

    assert_eq!(stack.message_count(conversation).await, 0, "nothing refused was stored");
    bob_socket.expect_none("message.created").await;
}

#[tokio::test]
async fn a_reply_must_point_to_a_message_of_the_same_conversation() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let with_bob = stack.direct_conversation(&alice, &bob).await;
    let with_carol = stack.direct_conversation(&alice, &carol).await;
    let mut bob_socket = stack.connect(&bob).await;

    let original = send_text(stack, &bob, with_bob, "is the flat available?").await;
    bob_socket.expect("message.created").await;
    let reply = send(
        stack,
        &alice,
        with_bob,
        json!({"body": "yes it is", "reply_to_id": original["id"]}),
    )
    .await;
    assert_eq!(reply["reply_to_id"], original["id"]);
    assert_eq!(
        bob_socket.expect("message.created").await["data"]["reply_to_id"],
        original["id"]
    );

    let http = stack.http();
    for (what, reply_to) in [
        ("another conversation's message", original["id"].clone()),
        ("no such message", json!(Uuid::new_v4())),
    ] {
        let (status, body) = http
            .post(
                &alice,
                &messages_path(with_carol),
                json!({"body": "crossed wires", "reply_to_id": reply_to}),
            )
            .await;
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_reply", "{what}: {body}");
    }
    let (status, body) = http
        .post(
            &alice,
            &messages_path(with_carol),
            json!({"body": "x", "reply_to_id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");

    assert_eq!(stack.message_count(with_carol).await, 0);
    assert_eq!(stack.message_count(with_bob).await, 2);
}

#[tokio::test]
async fn client_msg_id_makes_rest_sends_idempotent_per_sender() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let other = stack.direct_conversation(&alice, &stack.new_user("carol").await).await;
    let mut bob_socket = stack.connect(&bob).await;
    let http = stack.http();
    let path = messages_path(conversation);
    let client_msg_id = format!("idem-{}", tag());

    let (status, first) = http
        .post(
            &alice,
            &path,
            json!({"body": "first try", "client_msg_id": client_msg_id}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["duplicate"], false);
    // A retry whose body differs still gets the stored message.
    let (status, again) = http
        .post(
            &alice,
            &path,
            json!({"body": "second try", "client_msg_id": client_msg_id}),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"], first["message"]);
    assert_eq!(again["message"]["body"], "first try");

    let rows: i64 = stack
        .db()
        .await
        .query_one(
            "select count(*) from messages where sender_id = $1 and client_msg_id = $2",
            &[&alice.id, &client_msg_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    assert_eq!(stack.message_count(conversation).await, 1);
    let log = events(stack, &alice, conversation).await;
    let created = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message.created")
        .count();
    assert_eq!(created, 1, "one message.created in the log: {log}");
    bob_socket.expect("message.created").await;
    bob_socket.expect_none("message.created").await;

    // The same id in another conversation is a conflict, not a new message.
    let (status, body) = http
        .post(
            &alice,
            &messages_path(other),
            json!({"body": "elsewhere", "client_msg_id": client_msg_id}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_conflict");
    assert_eq!(stack.message_count(other).await, 0);

    // Ids are per sender: bob may use the same one.
    let (status, body) = http
        .post(&bob, &path, json!({"body": "mine", "client_msg_id": client_msg_id}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["message"]["id"], first["message"]["id"]);

    let (status, body) = http
        .post(&alice, &path, json!({"body": "x", "client_msg_id": "has space"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_client_msg_id");

    // 5000 characters is the most a body may hold.
    let (status, body) = http.post(&alice, &path, json!({"body": "a".repeat(5001)})).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "message_too_long");
    let (status, body) = http.post(&alice, &path, json!({"body": "a".repeat(5000)})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(stack.message_count(conversation).await, 3);
}

#[tokio::test]
async fn former_members_and_unknown_conversations_cannot_send() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await;
    let mut bob_socket = stack.connect(&bob).await;
    let http = stack.http();
    let (status, body) = http
        .post(&carol, &format!("/v1/conversations/{conversation}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = http
        .post(&carol, &messages_path(conversation), json!({"body": "still here?"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_a_participant");
    let (status, body) = http
        .post(&carol, &messages_path(Uuid::new_v4()), json!({"body": "anyone?"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["code"], "not_a_participant",
        "an unknown conversation answers as a foreign one"
    );

    assert_eq!(stack.message_count(conversation).await, 0);
    bob_socket.expect_none("message.created").await;
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

#[tokio::test]
async fn history_pages_over_messages_only_and_keeps_tombstones_in_place() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let conversation = group(stack, &alice, &[&bob]).await; // seq 1
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(send_text(stack, &alice, conversation, &format!("m{i}")).await);
        // seq 2, 3, 4
    }
    let (status, body) = stack
        .http()
        .post(
            &alice,
            &format!("/v1/conversations/{conversation}/members"),
            json!({"user_ids": [carol.id]}),
        )
        .await; // seq 5
    assert_eq!(status, 200, "{body}");
    for i in 3..5 {
        sent.push(send_text(stack, &alice, conversation, &format!("m{i}")).await);
        // seq 6, 7
    }
    let (status, body) = stack
        .http()
        .delete(&alice, &format!("/v1/messages/{}", sent[1]["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}"); // seq 8

    let http = stack.http();
    let page = |query: String| {
        let http = &http;
        let bob = &bob;
        async move {
            let (status, body) = http.get(bob, &format!("{}?{query}", messages_path(conversation))).await;
            assert_eq!(status, 200, "{query}: {body}");
            let seqs: Vec<i64> = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (seqs, body["has_more"].as_bool().unwrap(), body)
        }
    };

    // Everything, oldest first: the member.joined and message.deleted seqs are not messages.
    let (seqs, more, all) = page("limit=1000".into()).await;
    assert_eq!(seqs, vec![2, 3, 4, 6, 7]);
    assert!(!more);
    let tombstone = &all["messages"][1];
    assert_eq!(tombstone["id"], sent[1]["id"]);
    assert_eq!(tombstone["body"], Value::Null);
    assert!(tombstone["deleted_at"].is_string());
    assert_eq!(all["messages"][4]["body"], "m4");

    // Forward, two at a time, from the start.
    assert_eq!(page("after_seq=0&limit=2".into()).await.0, vec![2, 3]);
    let (seqs, more, _) = page("after_seq=3&limit=2".into()).await;
    assert_eq!((seqs, more), (vec![4, 6], true));
    let (seqs, more, _) = page("after_seq=6&limit=2".into()).await;
    assert_eq!((seqs, more), (vec![7], false));
    let (seqs, more, _) = page("after_seq=7".into()).await;
    assert_eq!((seqs, more), (vec![], false));

    // Backward from the newest.
    let (seqs, more, _) = page("limit=2".into()).await;
    assert_eq!((seqs, more), (vec![6, 7], true));
    let (seqs, more, _) = page("before_seq=6&limit=2".into()).await;
    assert_eq!((seqs, more), (vec![3, 4], true));
    let (seqs, more, _) = page("before_seq=3&limit=2".into()).await;
    assert_eq!((seqs, more), (vec![2], false));
    let (seqs, more, _) = page("before_seq=2".into()).await;
    assert_eq!((seqs, more), (vec![], false));
}

// ---------------------------------------------------------------------------
// Edit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn only_the_author_edits_and_every_member_gets_message_updated() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;
    let message = send_text(stack, &alice, conversation, "my first draft").await;
    let path = format!("/v1/messages/{}", message["id"].as_str().unwrap());
    let http = stack.http();

    let (status, body) = http.patch(&bob, &path, json!({"body": "hijacked"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_author");
    let (status, body) = http.patch(&dave, &path, json!({"body": "hijacked"})).await;
    assert_eq!(status, 404, "a non-member learns nothing: {body}");
    assert_eq!(body["error"]["code"], "message_not_found");
    let (status, body) = http
        .patch(
            &alice,
            &format!("/v1/messages/{}", Uuid::new_v4()),
            json!({"body": "x"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "message_not_found");
    let (status, body) = http
        .patch(&alice, "/v1/messages/not-a-uuid", json!({"body": "x"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_argument");

    let (status, edited) = http.patch(&alice, &path, json!({"body": "the final text"})).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["changed"], true);
    assert_eq!(edited["message"]["id"], message["id"]);
    assert_eq!(edited["message"]["seq"], message["seq"]);
    assert_eq!(edited["message"]["body"], "the final text");
    assert!(timestamp(&edited["message"]["edited_at"]) >= timestamp(&message["created_at"]));

    let message_seq = message["seq"].as_i64().unwrap();
    let mut event_seq = None;
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket] {
        let updated = socket.expect("message.updated").await;
        assert_eq!(updated["conversation_id"], conversation.to_string());
        assert_eq!(updated["data"], edited["message"]);
        assert_eq!(updated["data"]["seq"], message_seq, "the message keeps its place");
        let seq = updated["seq"].as_i64().unwrap();
        assert!(seq > message_seq, "the edit takes a new seq");
        assert_eq!(*event_seq.get_or_insert(seq), seq, "every member gets the same event");
    }
    stranger.expect_none("message.updated").await;
    bob_socket.expect_none("message.updated").await;

    // The log has the edit at its own seq, and the old text nowhere.
    let log = events(stack, &bob, conversation).await;
    assert!(!log.to_string().contains("my first draft"), "{log}");
    let all = log["events"].as_array().unwrap();
    let created = all.iter().find(|e| e["seq"] == message_seq).unwrap();
    assert_eq!(created["type"], "message.created");
    assert_eq!(
        created["data"]["body"], "the final text",
        "earlier events carry the edited message"
    );
    let update = all.iter().find(|e| e["seq"] == event_seq.unwrap()).unwrap();
    assert_eq!(update["type"], "message.updated");
    assert_eq!(update["actor_id"], alice.id.to_string());
    assert_eq!(history(stack, &carol, conversation).await[0]["body"], "the final text");
}

#[tokio::test]
async fn edits_that_change_nothing_or_break_the_rules() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = stack.connect(&bob).await;
    let text = send_text(stack, &alice, conversation, "same words").await;
    let image = send(
        stack,
        &alice,
        conversation,
        json!({"kind": "image", "body": "a caption",
               "attachment": attachment("https://cdn.example.com/p.png", "p.png", "image/png", 10)}),
    )
    .await;
    bob_socket.expect("message.created").await;
    bob_socket.expect("message.created").await;
    let text_path = format!("/v1/messages/{}", text["id"].as_str().unwrap());
    let http = stack.http();

    // The same body: nothing changes, nobody is told.
    let (status, body) = http.patch(&alice, &text_path, json!({"body": "same words"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], false);
    assert_eq!(body["message"]["edited_at"], Value::Null);
    bob_socket.expect_none("message.updated").await;

    for (what, edit, status_wanted, code) in [
        ("blank", json!({"body": "   "}), 422, "invalid_body"),
        ("empty", json!({"body": ""}), 422, "invalid_body"),
        ("NUL", json!({"body": "a\u{0}b"}), 422, "invalid_body"),
        ("too long", json!({"body": "é".repeat(5001)}), 413, "message_too_long"),
        ("no body", json!({}), 400, "invalid_request"),
    ] {
        let (status, body) = http.patch(&alice, &text_path, edit).await;
        assert_eq!(status, status_wanted, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
    }
    let stored = history(stack, &alice, conversation).await;
    assert_eq!(stored[0]["body"], "same words");
    assert_eq!(stored[0]["edited_at"], Value::Null, "refused edits changed nothing");
    bob_socket.expect_none("message.updated").await;

    // A blank caption removes an image's caption; the image stays.
    let (status, body) = http
        .patch(
            &alice,
            &format!("/v1/messages/{}", image["id"].as_str().unwrap()),
            json!({"body": "  "}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["message"]["body"], Value::Null);
    assert_eq!(body["message"]["attachment"], image["attachment"]);
    let updated = bob_socket.expect("message.updated").await;
    assert_eq!(updated["data"]["id"], image["id"]);
    assert_eq!(updated["data"]["body"], Value::Null);

    // A deleted message cannot be edited.
    let (status, body) = http.delete(&alice, &text_path).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http.patch(&alice, &text_path, json!({"body": "resurrected"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "message_deleted");
    assert_eq!(history(stack, &alice, conversation).await[0]["body"], Value::Null);
}

// ---------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deleting_removes_the_body_from_history_events_and_search() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;
    let doomed = send_text(stack, &alice, conversation, "the pelican flies at midnight").await;
    let kept = send_text(stack, &alice, conversation, "another pelican sighting").await;
    let path = format!("/v1/messages/{}", doomed["id"].as_str().unwrap());
    let http = stack.http();
    // Edited first, so the log holds two events of the message.
    let (status, body) = http
        .patch(&alice, &path, json!({"body": "the pelican flies at dawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let in_group = format!("conversation_id={conversation}&q=pelican");
    assert_eq!(found(stack, &bob, &in_group).await, ids(&[&doomed, &kept]));

    let (status, body) = http.delete(&bob, &path).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_author");
    let (status, body) = http.delete(&dave, &path).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "message_not_found");
    let (status, body) = http.delete(&alice, &format!("/v1/messages/{}", Uuid::new_v4())).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "message_not_found");

    let (status, deleted) = http.delete(&alice, &path).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    let tombstone = &deleted["message"];
    assert_eq!(tombstone["id"], doomed["id"]);
    assert_eq!(tombstone["seq"], doomed["seq"]);
    assert_eq!(tombstone["body"], Value::Null);
    assert_eq!(tombstone["attachment"], Value::Null);
    assert!(tombstone["deleted_at"].is_string());

    let mut deleted_seq = None;
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket] {
        let event = socket.expect("message.deleted").await;
        assert_eq!(event["data"], *tombstone);
        let seq = event["seq"].as_i64().unwrap();
        assert!(seq > doomed["seq"].as_i64().unwrap());
        assert_eq!(*deleted_seq.get_or_insert(seq), seq);
    }
    stranger.expect_none("message.deleted").await;

    // Gone from history (the tombstone keeps its place)...
    let stored = history(stack, &bob, conversation).await;
    let row = stored.iter().find(|m| m["id"] == doomed["id"]).unwrap();
    assert_eq!(row["body"], Value::Null);
    assert!(row["deleted_at"].is_string());
    assert_eq!(
        stored.iter().find(|m| m["id"] == kept["id"]).unwrap()["body"],
        "another pelican sighting"
    );
    // ...from every event of the log, old and edited text alike...
    let log = events(stack, &bob, conversation).await;
    let text = log.to_string();
    assert!(
        !text.contains("midnight") && !text.contains("dawn"),
        "the old text survives in the log: {log}"
    );
    for event in log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["id"] == doomed["id"])
    {
        assert_eq!(event["data"]["body"], Value::Null, "{event}");
        assert!(event["data"]["deleted_at"].is_string(), "{event}");
    }
    // ...from storage itself...
    let leftovers: i64 = stack
        .db()
        .await
        .query_one(
            "select (select count(*) from conversation_events where conversation_id = $1 and payload::text ~ '(midnight|dawn)')
                  + (select count(*) from messages where conversation_id = $1 and body ~ '(midnight|dawn)')",
            &[&conversation],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0);
    // ...and from search.
    assert_eq!(found(stack, &bob, &in_group).await, ids(&[&kept]));
    assert!(found(stack, &alice, "q=midnight").await.is_empty());
    assert!(found(stack, &alice, "q=dawn").await.is_empty());

    // Deleting again changes nothing and tells nobody.
    let last_seq = log["last_seq"].clone();
    let (status, again) = http.delete(&alice, &path).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deleted"], false);
    assert_eq!(again["message"]["deleted_at"], tombstone["deleted_at"]);
    bob_socket.expect_none("message.deleted").await;
    assert_eq!(events(stack, &bob, conversation).await["last_seq"], last_seq);
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

#[tokio::test]
async fn search_matches_english_and_spanish_word_forms() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let runs = send_text(stack, &bob, conversation, "She runs every morning").await;
    let run = send_text(stack, &bob, conversation, "I will run tomorrow").await;
    let song = send_text(stack, &bob, conversation, "Me encanta esta canción").await;
    let dog = send_text(stack, &bob, conversation, "El perro corre en el parque").await;
    let _cat = send_text(stack, &bob, conversation, "The cat sleeps").await;

    assert_eq!(
        found(stack, &alice, "q=running").await,
        ids(&[&runs, &run]),
        "English: running ~ runs ~ run"
    );
    assert_eq!(
        found(stack, &alice, "q=canciones").await,
        ids(&[&song]),
        "Spanish: canciones ~ canción"
    );
    assert_eq!(
        found(stack, &alice, &format!("q={}", enc("canción"))).await,
        ids(&[&song])
    );
    assert_eq!(
        found(stack, &alice, "q=corriendo").await,
        ids(&[&dog]),
        "Spanish: corriendo ~ corre"
    );
    assert_eq!(
        found(stack, &alice, "q=perros").await,
        ids(&[&dog]),
        "Spanish: perros ~ perro"
    );
    // Web search syntax: every word must match, `-` excludes.
    assert_eq!(
        found(stack, &alice, &format!("q={}", enc("run -morning"))).await,
        ids(&[&run])
    );
    assert!(found(stack, &alice, &format!("q={}", enc("perro gato")))
        .await
        .is_empty());

    let (_, body) = search(stack, &alice, "q=running").await;
    for result in body["results"].as_array().unwrap() {
        assert!(result["rank"].as_f64().unwrap() > 0.0, "{result}");
        assert_eq!(result["message"]["conversation_id"], conversation.to_string());
    }
}

#[tokio::test]
async fn search_ranks_the_best_match_first_and_pages_by_offset() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut sent = Vec::new();
    for body in [
        "I like a mango",
        "mango season is here",
        "mango mango mango mango smoothie",
        "one mango please",
        "buy a mango",
    ] {
        sent.push(send_text(stack, &alice, conversation, body).await);
    }
    let best = &sent[2];

    let mut seen = Vec::new();
    let mut ranks = Vec::new();
    let mut offset = Some(0);
    let mut pages = 0;
    while let Some(at) = offset {
        let (status, page) = search(stack, &bob, &format!("q=mango&limit=2&offset={at}")).await;
        assert_eq!(status, 200, "{page}");
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 2);
        for result in results {
            seen.push(result["message"]["id"].as_str().unwrap().to_string());
            ranks.push(result["rank"].as_f64().unwrap());
        }
        offset = page["next_offset"].as_i64();
        if let Some(next) = offset {
            assert_eq!(next, at + 2);
        }
        pages += 1;
        assert!(pages <= 3, "too many pages: {page}");
    }
    assert_eq!(pages, 3, "5 results in pages of 2");
    assert_eq!(seen.len(), 5);
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        ids(&sent.iter().collect::<Vec<_>>()),
        "each once"
    );
    assert_eq!(seen[0], best["id"].as_str().unwrap(), "the densest match ranks first");
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "ranks descend: {ranks:?}");
    assert!(ranks[0] > ranks[1]);

    let (status, all) = search(stack, &bob, "q=mango&limit=500").await;
    assert_eq!(status, 200, "a large limit is capped, not refused: {all}");
    assert_eq!(all["results"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_offset"], Value::Null);
    for bad in [
        "q=mango&offset=-1",
        "q=mango&offset=10001",
        "q=mango&limit=0",
        "q=mango&conversation_id=nope",
    ] {
        let (status, body) = search(stack, &bob, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument", "{bad}: {body}");
    }
}

#[tokio::test]
async fn search_only_sees_my_current_conversations() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let (dave, erin) = (stack.new_user("dave").await, stack.new_user("erin").await);
    let with_bob = stack.direct_conversation(&alice, &bob).await;
    let with_carol = stack.direct_conversation(&alice, &carol).await;
    let foreign = stack.direct_conversation(&dave, &erin).await;
    let team = group(stack, &bob, &[&alice]).await;

    let a = send_text(stack, &bob, with_bob, "a kiwi for you").await;
    let b = send_text(stack, &carol, with_carol, "kiwi smoothies").await;
    let _foreign = send_text(stack, &dave, foreign, "my kiwi is secret").await;
    let in_team = send_text(stack, &bob, team, "kiwi for the team").await;
    let gone = send_text(stack, &alice, with_bob, "kiwi to forget").await;
    let (status, body) = stack
        .http()
        .delete(&alice, &format!("/v1/messages/{}", gone["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        found(stack, &alice, "q=kiwi").await,
        ids(&[&a, &b, &in_team]),
        "never another user's conversation, never a deleted message"
    );
    assert_eq!(
        found(stack, &alice, &format!("q=kiwi&conversation_id={with_bob}")).await,
        ids(&[&a])
    );
    assert_eq!(found(stack, &dave, "q=kiwi").await.len(), 1);

    for (what, conversation) in [("someone else's", foreign), ("unknown", Uuid::new_v4())] {
        let (status, body) = search(stack, &alice, &format!("q=kiwi&conversation_id={conversation}")).await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error"]["code"], "not_a_participant", "{what}: {body}");
    }

    // After leaving, a conversation's messages are out of reach.
    let (status, body) = stack
        .http()
        .post(&alice, &format!("/v1/conversations/{team}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(found(stack, &alice, "q=kiwi").await, ids(&[&a, &b]));

    for bad in [
        "q=".to_string(),
        format!("q={}", enc("   ")),
        String::new(),
        format!("q={}", "k".repeat(201)),
    ] {
        let (status, body) = search(stack, &alice, &bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad:?}: {body}");
    }
}

// ---------------------------------------------------------------------------
// Read state
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_read_watermark_moves_forward_over_websocket_and_rest() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await; // seq 1
    for i in 0..6 {
        send_text(stack, &alice, conversation, &format!("news {i}")).await; // seq 2..=7
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
    let (status, body) = mark_read(stack, &bob, conversation, json!({"seq": 3})).await;
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
    let (status, body) = mark_read(stack, &bob, conversation, json!({"seq": 1000})).await;
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
    let (status, body) = mark_read(stack, &bob, conversation, json!({"seq": -1})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_argument");
    bob_phone.send_json(mark_read_frame(conversation, Some(-1))).await;
    let error = bob_phone.expect("error").await;
    assert_eq!(error["data"]["code"], "invalid_argument");
    assert_eq!(error["data"]["action"], "markRead");
    let (status, body) = mark_read(stack, &dave, conversation, json!({"seq": 2})).await;
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
    let public = room(stack, &alice, &[&bob]).await;
    send_text(stack, &alice, conversation, "hello").await;
    send_text(stack, &alice, public, "hello room").await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_phone = stack.connect(&bob).await;
    let mut bob_laptop = stack.connect(&bob).await;

    bob_laptop.send_json(mark_read_frame(conversation, None)).await;
    for socket in [&mut bob_laptop, &mut bob_phone, &mut alice_socket] {
        let read = socket.expect("read").await;
        assert_eq!(read["conversation_id"], conversation.to_string());
        assert_eq!(read["data"]["last_read_seq"], 2);
    }

    let (status, body) = mark_read(stack, &bob, public, json!({})).await;
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
    let team = group(stack, &alice, &[&bob, &carol]).await;

    let b1 = send_text(stack, &bob, direct, "b1").await;
    let b2 = send_text(stack, &bob, direct, "b2").await;
    send_text(stack, &bob, direct, "b3").await;
    send_text(stack, &alice, direct, "a1").await;
    send_text(stack, &alice, direct, "a2").await;
    let (status, body) = stack
        .http()
        .delete(&bob, &format!("/v1/messages/{}", b2["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    send_text(stack, &carol, team, "c1").await;
    send_text(stack, &carol, team, "c2").await;
    send_text(stack, &alice, team, "a3").await;

    let entry = |body: &Value, conversation: Uuid| -> Option<Value> {
        body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["conversation_id"] == conversation.to_string())
            .cloned()
    };
    // Alice: b1 and b3 (b2 is deleted, a1/a2 are hers); c1 and c2.
    let counts = unread(stack, &alice).await;
    assert_eq!(counts["total"], 4, "{counts}");
    assert_eq!(counts["conversations"].as_array().unwrap().len(), 2, "{counts}");
    assert_eq!(
        entry(&counts, direct).unwrap(),
        json!({"conversation_id": direct, "unread_count": 2, "muted": false})
    );
    assert_eq!(entry(&counts, team).unwrap()["unread_count"], 2);
    assert_eq!(listed(stack, &alice, direct).await["unread_count"], 2);
    assert_eq!(listed(stack, &alice, team).await["unread_count"], 2);
    let (_, details) = stack.http().get(&alice, &format!("/v1/conversations/{direct}")).await;
    assert_eq!(details["me"]["unread_count"], 2, "{details}");
    // Bob: a1, a2; c1, c2, a3.
    let counts = unread(stack, &bob).await;
    assert_eq!(counts["total"], 5, "{counts}");
    assert_eq!(entry(&counts, direct).unwrap()["unread_count"], 2);
    assert_eq!(entry(&counts, team).unwrap()["unread_count"], 3);

    // Reading up to b1 leaves b3.
    let (status, body) = mark_read(stack, &alice, direct, json!({"seq": b1["seq"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unread_count"], 1);
    assert_eq!(entry(&unread(stack, &alice).await, direct).unwrap()["unread_count"], 1);
    assert_eq!(listed(stack, &alice, direct).await["last_read_seq"], b1["seq"]);

    // Muted conversations still count, and say so.
    let (status, body) = stack
        .http()
        .patch(&alice, &format!("/v1/conversations/{team}"), json!({"muted": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let counts = unread(stack, &alice).await;
    assert_eq!(counts["total"], 3, "{counts}");
    assert_eq!(entry(&counts, team).unwrap()["muted"], true);

    // Everything read: the conversation leaves the list.
    let (status, body) = mark_read(stack, &alice, direct, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let counts = unread(stack, &alice).await;
    assert_eq!(counts["total"], 2, "{counts}");
    assert!(entry(&counts, direct).is_none(), "{counts}");
    assert_eq!(listed(stack, &alice, direct).await["unread_count"], 0);
}

// ---------------------------------------------------------------------------
// Presence
// ---------------------------------------------------------------------------

#[tokio::test]
async fn presence_is_announced_to_contacts_on_the_first_and_last_socket() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    stack.direct_conversation(&alice, &bob).await;
    group(stack, &carol, &[&alice]).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;

    let before = Utc::now() - chrono::Duration::seconds(5);
    let first = stack.connect(&alice).await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        let presence = socket.expect("presence").await;
        assert_eq!(presence["data"]["user_id"], alice.id.to_string());
        assert_eq!(presence["data"]["online"], true);
        assert!(timestamp(&presence["data"]["last_seen_at"]) >= before);
        assert!(
            presence.get("conversation_id").is_none() && presence.get("seq").is_none(),
            "{presence}"
        );
    }

    // A second device is not news, nor is closing one of two.
    let second = stack.connect(&alice).await;
    bob_socket.expect_none("presence").await;
    second.close().await;
    bob_socket.expect_none("presence").await;

    first.close().await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        let presence = socket.expect("presence").await;
        assert_eq!(presence["data"]["user_id"], alice.id.to_string());
        assert_eq!(presence["data"]["online"], false);
        assert!(timestamp(&presence["data"]["last_seen_at"]) >= before);
    }
    stranger.expect_none("presence").await;
}

#[tokio::test]
async fn get_presence_answers_for_contacts_and_leaves_strangers_out() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    stack.direct_conversation(&alice, &bob).await;
    let _carol_socket = stack.connect(&carol).await;
    let bob_socket = stack.connect(&bob).await;
    let http = stack.http();
    let path = format!(
        "/v1/presence?user_ids={},{},{},{}",
        bob.id,
        carol.id,
        alice.id,
        Uuid::new_v4()
    );

    let (status, body) = http.get(&alice, &path).await;
    assert_eq!(status, 200, "{body}");
    let presence = body["presence"].as_array().unwrap();
    let mut expected = vec![alice.id.to_string(), bob.id.to_string()];
    expected.sort();
    let answered: Vec<&str> = presence.iter().map(|p| p["user_id"].as_str().unwrap()).collect();
    assert_eq!(
        answered, expected,
        "me and my contact, by user_id; the stranger and the unknown id left out"
    );
    let of = |id: Uuid| {
        presence
            .iter()
            .find(|p| p["user_id"] == id.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(of(bob.id)["online"], true);
    assert!(of(bob.id)["last_seen_at"].is_string());
    assert_eq!(of(alice.id)["online"], false);

    bob_socket.close().await;
    stack
        .eventually("bob shows offline", || async {
            let (_, body) = http.get(&alice, &format!("/v1/presence?user_ids={}", bob.id)).await;
            body["presence"][0]["online"] == false
        })
        .await;
    let (_, body) = http.get(&alice, &format!("/v1/presence?user_ids={}", bob.id)).await;
    assert!(body["presence"][0]["last_seen_at"].is_string(), "{body}");

    let too_many = (0..101)
        .map(|_| Uuid::new_v4().to_string())
        .collect::<Vec<_>>()
        .join(",");
    for bad in [
        "/v1/presence".to_string(),
        "/v1/presence?user_ids=".into(),
        "/v1/presence?user_ids=bob".into(),
        format!("/v1/presence?user_ids={},nope", bob.id),
        format!("/v1/presence?user_ids={too_many}"),
    ] {
        let (status, body) = http.get(&alice, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument", "{bad}: {body}");
    }
}

// ---------------------------------------------------------------------------
// Typing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn typing_reaches_every_other_group_member_and_outsiders_are_refused() {
    let stack = stack();
    let (alice, bob, carol, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
    );
    let conversation = group(stack, &alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;

    stranger
        .send_json(json!({"action": "typing", "conversation_id": conversation, "is_typing": true}))
        .await;
    let error = stranger.expect("error").await;
    assert_eq!(error["data"]["code"], "not_a_participant");
    assert_eq!(error["data"]["action"], "typing");
    assert_eq!(error["data"]["status"], 403);
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket] {
        socket.expect_none("typing").await;
    }

    // is_typing defaults to true.
    alice_socket
        .send_json(json!({"action": "typing", "conversation_id": conversation}))
        .await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        let typing = socket.expect("typing").await;
        assert_eq!(typing["conversation_id"], conversation.to_string());
        assert_eq!(typing["data"]["user_id"], alice.id.to_string());
        assert_eq!(typing["data"]["is_typing"], true);
        let expires = timestamp(&typing["data"]["expires_at"]);
        assert!(
            expires > Utc::now() && expires <= Utc::now() + chrono::Duration::seconds(7),
            "{typing}"
        );
    }
    alice_socket.expect_none("typing").await;

    alice_socket
        .send_json(json!({"action": "typing", "conversation_id": conversation, "is_typing": false}))
        .await;
    for socket in [&mut bob_socket, &mut carol_socket] {
        let typing = socket.expect("typing").await;
        assert_eq!(typing["data"]["is_typing"], false);
        assert!(
            timestamp(&typing["data"]["expires_at"]) <= Utc::now() + chrono::Duration::seconds(1),
            "stop ends it now: {typing}"
        );
    }
    alice_socket.expect_none("typing").await;

    alice_socket
        .send_json(json!({"action": "typing", "conversation_id": conversation, "is_typing": "yes"}))
        .await;
    assert_eq!(alice_socket.expect("error").await["data"]["code"], "invalid_request");
    bob_socket.expect_none("typing").await;
}

// ---------------------------------------------------------------------------
// Users and health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn me_shows_my_profile_and_whether_i_am_online() {
    let stack = stack();
    let user = stack.new_user("myself").await;
    let http = stack.http();

    let (status, body) = http.get(&user, "/v1/me").await;
    assert_eq!(status, 200, "{body}");
    let me = &body["user"];
    assert_eq!(me["id"], user.id.to_string());
    assert_eq!(me["username"], user.name);
    assert_eq!(me["display_name"], "myself");
    assert_eq!(me["online"], false);

    let socket = stack.connect(&user).await;
    let (_, body) = http.get(&user, "/v1/me").await;
    assert_eq!(body["user"]["online"], true, "{body}");
    assert!(body["user"]["last_seen_at"].is_string(), "{body}");

    socket.close().await;
    stack
        .eventually("offline once the socket is closed", || async {
            http.get(&user, "/v1/me").await.1["user"]["online"] == false
        })
        .await;
}

#[tokio::test]
async fn user_search_finds_names_excludes_me_and_hides_strangers_presence() {
    let stack = stack();
    let t = tag();
    let me = stack.new_user(&format!("uq{t}me")).await;
    let friend = stack.new_user(&format!("uq{t}friend")).await;
    let stranger = stack.new_user(&format!("uq{t}stranger")).await;
    let nicknamed = stack.new_user("plain").await;
    stack
        .db()
        .await
        .execute(
            "update profiles set display_name = $1 where id = $2",
            &[&format!("Known as UQ{t} Star"), &nicknamed.id],
        )
        .await
        .unwrap();
    stack.direct_conversation(&me, &friend).await;
    let _friend_socket = stack.connect(&friend).await;
    let _stranger_socket = stack.connect(&stranger).await;
    let http = stack.http();

    // Case-insensitive, by username prefix or display-name substring; never me.
    let (status, body) = http.get(&me, &format!("/v1/users?q={}", enc(&format!("UQ{t}")))).await;
    assert_eq!(status, 200, "{body}");
    let users = body["users"].as_array().unwrap();
    let names: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
    let mut expected = vec![friend.name.as_str(), stranger.name.as_str(), nicknamed.name.as_str()];
    expected.sort();
    assert_eq!(names, expected, "ordered by username");
    let of = |user: &User| users.iter().find(|u| u["id"] == user.id.to_string()).unwrap().clone();
    assert_eq!(of(&friend)["online"], true, "a contact's presence shows");
    assert!(of(&friend)["last_seen_at"].is_string());
    assert_eq!(of(&stranger)["online"], Value::Null, "a stranger's presence is hidden");
    assert_eq!(of(&stranger)["last_seen_at"], Value::Null);
    assert_eq!(of(&nicknamed)["display_name"], format!("Known as UQ{t} Star"));

    // A substring from the middle of a username.
    let middle = &friend.name[friend.name.len() - 6..];
    let (_, body) = http.get(&me, &format!("/v1/users?q={middle}")).await;
    let ids: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![friend.id.to_string()], "{body}");
    // Wildcards are literal.
    let (_, body) = http.get(&me, &format!("/v1/users?q={}", enc(&format!("uq{t}%")))).await;
    assert_eq!(body["users"], json!([]), "{body}");

    let (status, _) = http.get(&me, &format!("/v1/users?q={}", "x".repeat(100))).await;
    assert_eq!(status, 200);
    let (status, body) = http.get(&me, &format!("/v1/users?q={}", "x".repeat(101))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn health_counts_include_what_this_test_opened() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    send_text(stack, &alice, conversation, "keep it active").await;
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
async fn the_api_needs_a_valid_token() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let message = send_text(stack, &alice, conversation, "do not touch").await;
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
    let stored = history(stack, &alice, conversation).await;
    assert_eq!(stored[0]["body"], "do not touch");
    assert_eq!(stored[0]["deleted_at"], Value::Null);
    let (_, body) = mark_read(stack, &alice, conversation, json!({})).await;
    assert_eq!(body["changed"], true, "the refused read changed nothing: {body}");
}

#[tokio::test]
async fn the_idempotency_key_header_stands_in_for_client_msg_id() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let url = format!("{}{}", stack.info.http_url.trim_end_matches('/'), messages_path(conversation));
    let key = format!("retry-{}", tag());
    let post = |key: &str, body: Value| {
        reqwest::Client::new()
            .post(&url)
            .bearer_auth(&alice.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post(&key, json!({"body": "sent once"})).await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["message"]["client_msg_id"], key.as_str());
    let retry = post(&key, json!({"body": "sent once"})).await.unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!((retry["duplicate"].as_bool(), &retry["message"]["id"]), (Some(true), &first["message"]["id"]));
    // The body's own client_msg_id wins over the header.
    let own = post(&key, json!({"body": "own id", "client_msg_id": format!("own-{}", tag())})).await.unwrap();
    assert_eq!(own.status().as_u16(), 201);
    let bad = post("has spaces", json!({"body": "x"})).await.unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    assert_eq!(stack.message_count(conversation).await, 2);
}
