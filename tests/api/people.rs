//! People in the API, end to end: the participants of a conversation and the
//! counterpart of a direct one carry their public profile, and
//! `GET /v1/users?ids=` answers profiles by id (presence for contacts only),
//! refusing bad input.

use crate::helpers::{assert_error, stack, Stack, User};
use serde_json::{json, Value};
use uuid::Uuid;

/// A user's public profile as the test stack creates it (display name = the
/// label given to `new_user`), with the avatar given.
fn public_profile(user: &User, display_name: &str, avatar_url: Option<&str>) -> Value {
    json!({"id": user.id, "username": user.name, "display_name": display_name, "avatar_url": avatar_url})
}

async fn set_avatar(stack: &Stack, user: &User, url: &str) {
    stack
        .db()
        .await
        .execute(
            "update public.profiles set avatar_url = $2 where id = $1",
            &[&user.id, &url],
        )
        .await
        .expect("set avatar");
}

#[tokio::test]
async fn details_and_the_list_name_the_participants_and_a_direct_counterpart() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let avatar = "https://cdn.example.com/avatars/bob.png";
    set_avatar(stack, &bob, avatar).await;
    let group = stack.group(&alice, &[&bob, &carol]).await;
    let direct = stack.direct_conversation(&alice, &bob).await;
    let (status, body) = stack
        .http()
        .post(&carol, &format!("/v1/conversations/{group}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "carol leaves: {body}");

    // Details: the current participants, each with their public profile and
    // nothing of their presence; carol, who left, is not among them.
    let details = stack.details(&bob, group).await;
    let participants = details["conversation"]["participants"].as_array().unwrap();
    let mut profiles: Vec<Value> = participants.iter().map(|p| p["profile"].clone()).collect();
    let mut expected = vec![
        public_profile(&alice, "alice", None),
        public_profile(&bob, "bob", Some(avatar)),
    ];
    for list in [&mut profiles, &mut expected] {
        list.sort_by_key(|p| p["id"].to_string());
    }
    assert_eq!(profiles, expected, "{details}");
    for participant in participants {
        assert_eq!(participant["profile"]["id"], participant["user_id"], "{participant}");
    }
    let text = details.to_string();
    assert!(
        !text.contains("online") && !text.contains("last_seen"),
        "no presence in conversation details: {details}"
    );

    // The list: each side of the 1:1 is named by the other; a group has no
    // counterpart (it has a name).
    let entry = stack.listed(&alice, direct).await;
    assert_eq!(
        entry["counterpart"],
        public_profile(&bob, "bob", Some(avatar)),
        "{entry}"
    );
    assert_eq!(entry["other_user_id"], bob.id.to_string());
    let entry = stack.listed(&bob, direct).await;
    assert_eq!(entry["counterpart"], public_profile(&alice, "alice", None), "{entry}");
    let entry = stack.listed(&alice, group).await;
    assert_eq!(entry["counterpart"], Value::Null, "{entry}");

    // A name changed later shows in the next answer: profiles are read, not copied.
    stack
        .db()
        .await
        .execute(
            "update public.profiles set display_name = 'Robert' where id = $1",
            &[&bob.id],
        )
        .await
        .unwrap();
    let entry = stack.listed(&alice, direct).await;
    assert_eq!(entry["counterpart"]["display_name"], "Robert", "{entry}");
}

#[tokio::test]
async fn users_by_id_answer_who_i_may_see_with_presence_for_contacts_only() {
    let stack = stack();
    let (alice, bob, dave) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("dave").await,
    );
    stack.make_contacts(&alice, &bob).await;
    // dave opened a 1:1 with alice: that alone makes no contact.
    stack.direct_conversation(&dave, &alice).await;
    let _bob_socket = stack.connect(&bob).await;
    let _dave_socket = stack.connect(&dave).await;
    let http = stack.http();

    let unknown = Uuid::new_v4();
    let (status, body) = http
        .get(
            &alice,
            &format!("/v1/users?ids={},{unknown},{},{}", dave.id, bob.id, alice.id),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let users = body["users"].as_array().unwrap();
    let names: Vec<&str> = users.iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [&alice.name, &bob.name, &dave.name],
        "by username; the unknown id left out"
    );
    let of = |user: &User| users.iter().find(|u| u["id"] == user.id.to_string()).unwrap();
    // My contact: online, last seen.
    assert_eq!(of(&bob)["online"], true, "{body}");
    assert!(of(&bob)["last_seen_at"].is_string(), "{body}");
    // A stranger: the public profile, as search shows it, but no presence
    // although dave is connected.
    assert_eq!(of(&dave)["online"], Value::Null, "{body}");
    assert_eq!(of(&dave)["last_seen_at"], Value::Null, "{body}");
    let (status, found) = http.get(&alice, &format!("/v1/users?q={}", dave.name)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["users"], json!([of(&dave)]), "search and ?ids= show dave alike");
    // Myself, with my presence.
    assert_eq!(of(&alice)["online"], false, "{body}");

    // Only ids of nobody: an empty answer, the same as for a stranger's
    // made-up id, so existence cannot be told apart from nothing.
    let (status, body) = http.get(&dave, &format!("/v1/users?ids={unknown}")).await;
    assert_eq!((status, body), (200, json!({"users": []})));
}

#[tokio::test]
async fn users_by_id_refuse_bad_input() {
    let stack = stack();
    let alice = stack.new_user("alice").await;
    let http = stack.http();
    let ids = |n: usize| (0..n).map(|_| Uuid::new_v4().to_string()).collect::<Vec<_>>().join(",");

    for (path, what) in [
        ("/v1/users?ids=".to_string(), "no ids"),
        ("/v1/users?ids=bob".into(), "not a uuid"),
        (format!("/v1/users?ids={},nope", alice.id), "one bad id"),
        (format!("/v1/users?ids={}", ids(101)), "101 ids"),
        (format!("/v1/users?ids={}&q=al", alice.id), "ids and q"),
        (format!("/v1/users?ids={}&limit=5", alice.id), "ids and limit"),
    ] {
        assert_error(http.get(&alice, &path).await, 400, "invalid_argument", what);
    }
    let (status, body) = http.get(&alice, &format!("/v1/users?ids={}", ids(100))).await;
    assert_eq!((status, body), (200, json!({"users": []})), "100 ids are allowed");

    assert_error(
        http.get_anonymous(&format!("/v1/users?ids={}", alice.id)).await,
        401,
        "missing_token",
        "no token",
    );
}
