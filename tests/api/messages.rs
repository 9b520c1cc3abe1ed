//! Messages end to end: sending over REST (to every member's sockets), image
//! and file attachments, replies, idempotency (`client_msg_id` and the
//! `Idempotency-Key` header), history pages, edits, deletes and full-text
//! search — over real HTTP and WebSocket clients against the local stack.
//!
//! Every test makes its own users and conversations; other tests run at the
//! same time, so nothing here depends on global counts.

use std::collections::BTreeSet;

use crate::helpers::api::messages_path;
use crate::helpers::{attachment, enc, message_ids, stack, tag, timestamp};
use serde_json::{json, Value};
use uuid::Uuid;

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
    let conversation = stack.group(&alice, &[&bob, &carol]).await;
    let mut alice_phone = stack.connect(&alice).await;
    let mut alice_laptop = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;

    let message = stack
        .send(
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

    let image = stack.send(
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

    let file = stack.send(
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
    let stored = stack.history(&bob, conversation).await;
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

    let original = stack.send_text(&bob, with_bob, "is the flat available?").await;
    bob_socket.expect("message.created").await;
    let reply = stack
        .send(
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
    let log = stack.events(&alice, conversation).await;
    let created = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message.created")
        .count();
    assert_eq!(created, 1, "one message.created in the log: {log}");
    // The repeat re-delivered it (the first send's fan-out may never have
    // run): the same id and seq twice, shown once by a client that
    // de-duplicates by seq.
    let pushed = [
        bob_socket.expect("message.created").await,
        bob_socket.expect("message.created").await,
    ];
    bob_socket.expect_none("message.created").await;
    for copy in &pushed {
        assert_eq!(copy["data"]["id"], first["message"]["id"], "{copy}");
        assert_eq!(copy["seq"], first["message"]["seq"], "{copy}");
        assert_eq!(copy["data"]["body"], "first try", "{copy}");
    }
    let seqs: std::collections::BTreeSet<_> = pushed.iter().map(|c| c["seq"].as_i64()).collect();
    assert_eq!(seqs.len(), 1, "shown once");

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
    let conversation = stack.group(&alice, &[&bob, &carol]).await;
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

#[tokio::test]
async fn the_idempotency_key_header_stands_in_for_client_msg_id() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let url = format!(
        "{}{}",
        stack.info.http_url.trim_end_matches('/'),
        messages_path(conversation)
    );
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
    assert_eq!(
        (retry["duplicate"].as_bool(), &retry["message"]["id"]),
        (Some(true), &first["message"]["id"])
    );
    // The body's own client_msg_id wins over the header.
    let own = post(
        &key,
        json!({"body": "own id", "client_msg_id": format!("own-{}", tag())}),
    )
    .await
    .unwrap();
    assert_eq!(own.status().as_u16(), 201);
    let bad = post("has spaces", json!({"body": "x"})).await.unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    assert_eq!(stack.message_count(conversation).await, 2);
}
#[tokio::test]
async fn rest_send_is_idempotent_and_pushes_to_every_socket() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let path = format!("/v1/conversations/{conversation}/messages");

    let (status, first) = stack
        .http()
        .post(&alice, &path, json!({"body": "via rest", "client_msg_id": "r-1"}))
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = stack
        .http()
        .post(&alice, &path, json!({"body": "via rest", "client_msg_id": "r-1"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["message"]["id"], again["message"]["id"]);
    assert_eq!(again["duplicate"], true);

    // No socket sent it, so every socket gets message.created, and the
    // repeat re-delivers it: twice, the same id and seq (shown once by a
    // client that de-duplicates by seq).
    for socket in [&mut alice_socket, &mut bob_socket] {
        for _ in 0..2 {
            let created = socket.expect("message.created").await;
            assert_eq!(created["data"]["id"], first["message"]["id"]);
            assert_eq!(created["seq"], first["message"]["seq"]);
        }
        socket.expect_none("message.created").await;
    }
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
    let conversation = stack.group(&alice, &[&bob]).await; // seq 1
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(stack.send_text(&alice, conversation, &format!("m{i}")).await);
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
        sent.push(stack.send_text(&alice, conversation, &format!("m{i}")).await);
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

#[tokio::test]
async fn history_pages_by_seq_with_the_limit_capped_at_100() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let path = format!("/v1/conversations/{conversation}/messages");
    let http = stack.http();
    for i in 0..120 {
        let (status, body) = http.post(&alice, &path, json!({"body": format!("m{i}")})).await;
        assert_eq!(status, 201, "{body}");
    }
    let seqs = |page: &Value| -> Vec<i64> {
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };

    let (status, newest) = http.get(&bob, &format!("{path}?limit=1000")).await;
    assert_eq!(status, 200, "{newest}");
    let newest_seqs = seqs(&newest);
    assert_eq!(newest_seqs.len(), 100);
    assert!(newest_seqs.windows(2).all(|w| w[1] == w[0] + 1), "ascending, gap-free");
    assert_eq!(newest["has_more"], true);
    assert_eq!(newest["messages"][99]["body"], "m119");

    // Without `limit`, the newest page of the default size (50).
    let (status, default_page) = http.get(&bob, &path).await;
    assert_eq!(status, 200, "{default_page}");
    let default_seqs = seqs(&default_page);
    assert_eq!(default_seqs, newest_seqs[50..].to_vec(), "the newest 50, ascending");
    assert_eq!(default_page["messages"][0]["body"], "m70");
    assert_eq!(default_page["has_more"], true);

    let oldest_in_page = newest_seqs[0];
    let (_, older) = http
        .get(&bob, &format!("{path}?before_seq={oldest_in_page}&limit=100"))
        .await;
    let older_seqs = seqs(&older);
    assert_eq!(older_seqs.len(), 20);
    assert_eq!(*older_seqs.last().unwrap(), oldest_in_page - 1);
    assert_eq!(older["has_more"], false);
    assert_eq!(older["messages"][0]["body"], "m0");

    let (_, after) = http
        .get(&bob, &format!("{path}?after_seq={}&limit=5", older_seqs[0]))
        .await;
    assert_eq!(seqs(&after), (older_seqs[0] + 1..older_seqs[0] + 6).collect::<Vec<_>>());
    assert_eq!(after["has_more"], true);

    for bad in ["?limit=0", "?limit=abc", "?before_seq=-1", "?before_seq=5&after_seq=1"] {
        let (status, body) = http.get(&bob, &format!("{path}{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument");
    }
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
    let conversation = stack.group(&alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;
    let message = stack.send_text(&alice, conversation, "my first draft").await;
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
    let log = stack.events(&bob, conversation).await;
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
    assert_eq!(stack.history(&carol, conversation).await[0]["body"], "the final text");
}

#[tokio::test]
async fn edits_that_change_nothing_or_break_the_rules() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let mut bob_socket = stack.connect(&bob).await;
    let text = stack.send_text(&alice, conversation, "same words").await;
    let image = stack
        .send(
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
    let stored = stack.history(&alice, conversation).await;
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
    assert_eq!(stack.history(&alice, conversation).await[0]["body"], Value::Null);
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
    let conversation = stack.group(&alice, &[&bob, &carol]).await;
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;
    let mut carol_socket = stack.connect(&carol).await;
    let mut stranger = stack.connect(&dave).await;
    let doomed = stack
        .send_text(&alice, conversation, "the pelican flies at midnight")
        .await;
    let kept = stack.send_text(&alice, conversation, "another pelican sighting").await;
    let path = format!("/v1/messages/{}", doomed["id"].as_str().unwrap());
    let http = stack.http();
    // Edited first, so the log holds two events of the message.
    let (status, body) = http
        .patch(&alice, &path, json!({"body": "the pelican flies at dawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let in_group = format!("conversation_id={conversation}&q=pelican");
    assert_eq!(stack.found(&bob, &in_group).await, message_ids(&[&doomed, &kept]));

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
    let stored = stack.history(&bob, conversation).await;
    let row = stored.iter().find(|m| m["id"] == doomed["id"]).unwrap();
    assert_eq!(row["body"], Value::Null);
    assert!(row["deleted_at"].is_string());
    assert_eq!(
        stored.iter().find(|m| m["id"] == kept["id"]).unwrap()["body"],
        "another pelican sighting"
    );
    // ...from every event of the log, old and edited text alike...
    let log = stack.events(&bob, conversation).await;
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
    assert_eq!(stack.found(&bob, &in_group).await, message_ids(&[&kept]));
    assert!(stack.found(&alice, "q=midnight").await.is_empty());
    assert!(stack.found(&alice, "q=dawn").await.is_empty());

    // Deleting again changes nothing and tells nobody.
    let last_seq = log["last_seq"].clone();
    let (status, again) = http.delete(&alice, &path).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deleted"], false);
    assert_eq!(again["message"]["deleted_at"], tombstone["deleted_at"]);
    bob_socket.expect_none("message.deleted").await;
    assert_eq!(stack.events(&bob, conversation).await["last_seq"], last_seq);
}

/// A soft delete keeps the message's row, so a reply to it still points to
/// something: the history shows the reply with its `reply_to_id` and the
/// original as a tombstone in its place.
#[tokio::test]
async fn a_reply_keeps_pointing_to_a_deleted_message() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let original = stack.send_text(&bob, conversation, "is the flat available?").await;
    let reply = stack
        .send(
            &alice,
            conversation,
            json!({"body": "yes it is", "reply_to_id": original["id"]}),
        )
        .await;
    let (status, body) = stack
        .http()
        .delete(&bob, &format!("/v1/messages/{}", original["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], true, "{body}");

    for viewer in [&alice, &bob] {
        let history = stack.history(viewer, conversation).await;
        assert_eq!(history.len(), 2, "{history:?}");
        let (tombstone, kept) = (&history[0], &history[1]);
        assert_eq!(tombstone["id"], original["id"]);
        assert_eq!(tombstone["seq"], original["seq"]);
        assert_eq!(tombstone["body"], Value::Null);
        assert!(tombstone["deleted_at"].is_string(), "{tombstone}");
        assert_eq!(kept["id"], reply["id"]);
        assert_eq!(kept["reply_to_id"], original["id"]);
        assert_eq!(kept["body"], "yes it is");
        assert_eq!(kept["deleted_at"], Value::Null);
    }
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

#[tokio::test]
async fn search_matches_english_and_spanish_word_forms() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let runs = stack.send_text(&bob, conversation, "She runs every morning").await;
    let run = stack.send_text(&bob, conversation, "I will run tomorrow").await;
    let song = stack.send_text(&bob, conversation, "Me encanta esta canción").await;
    let dog = stack.send_text(&bob, conversation, "El perro corre en el parque").await;
    let _cat = stack.send_text(&bob, conversation, "The cat sleeps").await;

    assert_eq!(
        stack.found(&alice, "q=running").await,
        message_ids(&[&runs, &run]),
        "English: running ~ runs ~ run"
    );
    assert_eq!(
        stack.found(&alice, "q=canciones").await,
        message_ids(&[&song]),
        "Spanish: canciones ~ canción"
    );
    assert_eq!(
        stack.found(&alice, &format!("q={}", enc("canción"))).await,
        message_ids(&[&song])
    );
    assert_eq!(
        stack.found(&alice, "q=corriendo").await,
        message_ids(&[&dog]),
        "Spanish: corriendo ~ corre"
    );
    assert_eq!(
        stack.found(&alice, "q=perros").await,
        message_ids(&[&dog]),
        "Spanish: perros ~ perro"
    );
    // Web search syntax: every word must match, `-` excludes.
    assert_eq!(
        stack.found(&alice, &format!("q={}", enc("run -morning"))).await,
        message_ids(&[&run])
    );
    assert!(stack
        .found(&alice, &format!("q={}", enc("perro gato")))
        .await
        .is_empty());

    let (_, body) = stack.search(&alice, "q=running").await;
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
        sent.push(stack.send_text(&alice, conversation, body).await);
    }
    let best = &sent[2];

    let mut seen = Vec::new();
    let mut ranks = Vec::new();
    let mut offset = Some(0);
    let mut pages = 0;
    while let Some(at) = offset {
        let (status, page) = stack.search(&bob, &format!("q=mango&limit=2&offset={at}")).await;
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
        message_ids(&sent.iter().collect::<Vec<_>>()),
        "each once"
    );
    assert_eq!(seen[0], best["id"].as_str().unwrap(), "the densest match ranks first");
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "ranks descend: {ranks:?}");
    assert!(ranks[0] > ranks[1]);

    let (status, all) = stack.search(&bob, "q=mango&limit=500").await;
    assert_eq!(status, 200, "a large limit is capped, not refused: {all}");
    assert_eq!(all["results"].as_array().unwrap().len(), 5);
    assert_eq!(all["next_offset"], Value::Null);
    for bad in [
        "q=mango&offset=-1",
        "q=mango&offset=10001",
        "q=mango&limit=0",
        "q=mango&conversation_id=nope",
    ] {
        let (status, body) = stack.search(&bob, bad).await;
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
    let team = stack.group(&bob, &[&alice]).await;

    let a = stack.send_text(&bob, with_bob, "a kiwi for you").await;
    let b = stack.send_text(&carol, with_carol, "kiwi smoothies").await;
    let _foreign = stack.send_text(&dave, foreign, "my kiwi is secret").await;
    let in_team = stack.send_text(&bob, team, "kiwi for the team").await;
    let gone = stack.send_text(&alice, with_bob, "kiwi to forget").await;
    let (status, body) = stack
        .http()
        .delete(&alice, &format!("/v1/messages/{}", gone["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        stack.found(&alice, "q=kiwi").await,
        message_ids(&[&a, &b, &in_team]),
        "never another user's conversation, never a deleted message"
    );
    assert_eq!(
        stack.found(&alice, &format!("q=kiwi&conversation_id={with_bob}")).await,
        message_ids(&[&a])
    );
    assert_eq!(stack.found(&dave, "q=kiwi").await.len(), 1);

    for (what, conversation) in [("someone else's", foreign), ("unknown", Uuid::new_v4())] {
        let (status, body) = stack
            .search(&alice, &format!("q=kiwi&conversation_id={conversation}"))
            .await;
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error"]["code"], "not_a_participant", "{what}: {body}");
    }

    // After leaving, a conversation's messages are out of reach.
    let (status, body) = stack
        .http()
        .post(&alice, &format!("/v1/conversations/{team}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.found(&alice, "q=kiwi").await, message_ids(&[&a, &b]));

    for bad in [
        "q=".to_string(),
        format!("q={}", enc("   ")),
        String::new(),
        format!("q={}", "k".repeat(201)),
    ] {
        let (status, body) = stack.search(&alice, &bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad:?}: {body}");
    }
}
