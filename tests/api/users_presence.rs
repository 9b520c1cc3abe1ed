//! Users and presence end to end: online/offline announced to contacts on the
//! first and last socket, `GET /v1/presence`, typing indicators, `GET /v1/me`
//! and user search.

use crate::helpers::{enc, stack, tag, timestamp, User};
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

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
    // Contacts: alice and bob through a group, alice and carol through a 1:1,
    // both written in by both. dave only shares a 1:1 in which he wrote and
    // alice did not: no contact.
    stack.make_contacts(&alice, &bob).await;
    let direct = stack.direct_conversation(&carol, &alice).await;
    stack.send_text(&carol, direct, "hi alice").await;
    stack.send_text(&alice, direct, "hi carol").await;
    let unanswered = stack.direct_conversation(&dave, &alice).await;
    stack.send_text(&dave, unanswered, "hi alice").await;
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
    stack.make_contacts(&alice, &bob).await;
    // Sharing a 1:1 that only carol wrote in makes no contact.
    let unanswered = stack.direct_conversation(&carol, &alice).await;
    stack.send_text(&carol, unanswered, "hi alice").await;
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
        "me and my contact, by user_id; the unanswered stranger and the unknown id left out"
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
    let conversation = stack.group(&alice, &[&bob, &carol]).await;
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
// Users
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
    stack.make_contacts(&me, &friend).await;
    stack.direct_conversation(&stranger, &me).await;
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
