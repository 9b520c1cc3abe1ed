//! The conversations API, end to end: direct conversations, groups and rooms,
//! details and settings, membership, the lists, stats and connections, and the
//! durable event log — over real HTTP, with real WebSocket clients watching
//! what each participant (and each outsider) is told.

use std::collections::HashSet;

use crate::helpers::api::messages_path;
use crate::helpers::{assert_error, ids, stack, timestamp, unique_name, uuid_of, Stack, User, WsClient};
use serde_json::{json, Value};
use uuid::Uuid;

// ----------------------------------------------------------------- helpers

fn participant_ids(conversation: &Value) -> Vec<Uuid> {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| uuid_of(&p["user_id"]))
        .collect()
}

/// The user's entry among a conversation's participants (null when absent).
fn participant(conversation: &Value, user: &User) -> Value {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == user.id.to_string())
        .cloned()
        .unwrap_or(Value::Null)
}

fn role_of(conversation: &Value, user: &User) -> Value {
    participant(conversation, user)["role"].clone()
}

/// `member.joined` names the newcomer with the profile their participant entry carries.
fn assert_joined_profile(event: &Value, conversation: &Value, user: &User) {
    let profile = &event["data"]["profile"];
    assert_eq!(profile["id"], user.id.to_string(), "{event}");
    assert_eq!(profile["username"], user.name.as_str(), "{event}");
    assert_eq!(*profile, participant(conversation, user)["profile"], "{event}");
}

/// A stored event as the socket got it: without the replay-only keys.
fn as_pushed(stored: &Value) -> Value {
    let mut event = stored.clone();
    let object = event.as_object_mut().unwrap();
    object.remove("actor_id");
    object.remove("created_at");
    event
}

/// The value with every timestamp written one way (UTC, microseconds), to
/// compare content whatever the rendering of the instants.
fn same_instants(value: &Value) -> Value {
    match value {
        Value::String(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(at) => Value::String(
                at.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(same_instants).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), same_instants(v))).collect()),
        other => other.clone(),
    }
}

async fn conversations_created_by(stack: &Stack, user: &User) -> i64 {
    stack
        .db()
        .await
        .query_one("select count(*) from conversations where created_by = $1", &[&user.id])
        .await
        .unwrap()
        .get(0)
}

async fn direct_count(stack: &Stack, a: &User, b: &User) -> i64 {
    stack
        .db()
        .await
        .query_one(
            "select count(*) from conversations where kind = 'direct'
               and direct_user_low = least($1::uuid, $2::uuid) and direct_user_high = greatest($1::uuid, $2::uuid)",
            &[&a.id, &b.id],
        )
        .await
        .unwrap()
        .get(0)
}

async fn connect_all<const N: usize>(stack: &Stack, users: [&User; N]) -> [WsClient; N] {
    let mut sockets = Vec::with_capacity(N);
    for user in users {
        sockets.push(stack.connect(user).await);
    }
    sockets.try_into().unwrap_or_else(|_| unreachable!())
}

// ------------------------------------------------------ direct conversations

#[tokio::test]
async fn opening_a_direct_conversation_creates_it_once_and_tells_both_users() {
    let stack = stack();
    let (alice, bob, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("eve").await,
    );
    let [mut alice_socket, mut bob_socket, mut outsider_socket] = connect_all(stack, [&alice, &bob, &outsider]).await;
    let http = stack.http();

    let (status, created) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": bob.id}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["created"], true);
    let conversation = created["conversation"].clone();
    let id = uuid_of(&conversation["id"]);
    assert_eq!(conversation["kind"], "direct");
    assert!(conversation["name"].is_null());
    assert!(conversation["context_type"].is_null() && conversation["context_id"].is_null());
    assert_eq!(conversation["created_by"], alice.id.to_string());
    assert_eq!(conversation["last_seq"], 1);
    let participants = conversation["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    assert_eq!(role_of(&conversation, &alice), "owner");
    assert_eq!(role_of(&conversation, &bob), "member");
    assert!(participants
        .iter()
        .all(|p| p["last_read_seq"] == 0 && p["joined_at"].is_string()));

    // Both users' sockets learn of it, as the durable seq 1.
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("conversation.created").await;
        assert_eq!(event["seq"], 1);
        assert_eq!(event["conversation_id"], id.to_string());
        assert_eq!(event["data"], conversation);
    }

    // From the other side: found, not created, nothing pushed again.
    let (status, found) = http
        .post(&bob, "/v1/conversations/direct", json!({"user_id": alice.id}))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["created"], false);
    assert_eq!(found["conversation"], conversation);
    let (status, again) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": bob.id}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["conversation"]["id"], id.to_string());

    bob_socket.expect_none("conversation.created").await;
    alice_socket.expect_none("conversation.created").await;
    outsider_socket.expect_nothing().await;
    assert_eq!(direct_count(stack, &alice, &bob).await, 1);
    assert_error(
        http.get(&outsider, &format!("/v1/conversations/{id}")).await,
        403,
        "not_a_participant",
        "an outsider reads the 1:1",
    );
}

#[tokio::test]
async fn there_is_one_direct_conversation_per_pair_and_context() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let http = stack.http();
    let open = |user: &User, other: &User, context: Option<(&str, &str)>| {
        let mut body = json!({"user_id": other.id});
        if let Some((kind, id)) = context {
            body["context"] = json!({"type": kind, "id": id});
        }
        let (http, user) = (&http, user.clone());
        async move { http.post(&user, "/v1/conversations/direct", body).await }
    };

    let (status, plain) = open(&alice, &bob, None).await;
    assert_eq!(status, 201, "{plain}");
    let (status, listing) = open(&alice, &bob, Some(("listing", "listing-42"))).await;
    assert_eq!(status, 201, "{listing}");
    assert_ne!(listing["conversation"]["id"], plain["conversation"]["id"]);
    assert_eq!(listing["conversation"]["context_type"], "listing");
    assert_eq!(listing["conversation"]["context_id"], "listing-42");

    // The same context from the other side is the same conversation.
    let (status, same) = open(&bob, &alice, Some(("listing", "listing-42"))).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["conversation"]["id"], listing["conversation"]["id"]);
    assert_eq!(same["created"], false);

    // Another id, or the same id of another type, is another conversation.
    let (status, other_listing) = open(&bob, &alice, Some(("listing", "listing-43"))).await;
    assert_eq!(status, 201);
    let (status, trip) = open(&alice, &bob, Some(("trip", "listing-42"))).await;
    assert_eq!(status, 201);
    let distinct: HashSet<Uuid> = [&plain, &listing, &other_listing, &trip]
        .iter()
        .map(|c| uuid_of(&c["conversation"]["id"]))
        .collect();
    assert_eq!(distinct.len(), 4);

    // Without a context: still the first one.
    let (status, plain_again) = open(&bob, &alice, None).await;
    assert_eq!(status, 200);
    assert_eq!(plain_again["conversation"]["id"], plain["conversation"]["id"]);
    assert_eq!(direct_count(stack, &alice, &bob).await, 4);
}

#[tokio::test]
async fn concurrent_opens_from_both_sides_yield_exactly_one_conversation() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let [mut alice_socket, mut bob_socket] = connect_all(stack, [&alice, &bob]).await;
    let http = stack.http();

    let requests = (0..8).map(|i| {
        let (caller, other) = if i % 2 == 0 { (&alice, &bob) } else { (&bob, &alice) };
        http.post(caller, "/v1/conversations/direct", json!({"user_id": other.id}))
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut conversation_ids = HashSet::new();
    let mut created = 0;
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 201, "{status} {body}");
        assert_eq!(body["created"], *status == 201, "{body}");
        created += usize::from(*status == 201);
        conversation_ids.insert(uuid_of(&body["conversation"]["id"]));
    }
    assert_eq!(
        conversation_ids.len(),
        1,
        "every request got the same conversation: {answers:?}"
    );
    assert_eq!(created, 1, "exactly one request created it");
    assert_eq!(direct_count(stack, &alice, &bob).await, 1);
    let id = *conversation_ids.iter().next().unwrap();

    // One conversation.created per user, and a log with only that event.
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("conversation.created").await;
        assert_eq!(event["conversation_id"], id.to_string());
        assert_eq!(event["seq"], 1);
        socket.expect_none("conversation.created").await;
    }
    let (status, log) = http.get(&alice, &format!("/v1/conversations/{id}/events")).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
    assert_eq!(log["last_seq"], 1);
}

#[tokio::test]
async fn opening_a_direct_conversation_refuses_bad_input_and_stores_nothing() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let mut bob_socket = stack.connect(&bob).await;
    let http = stack.http();
    let path = "/v1/conversations/direct";
    let raw = |body: &str| http.post_raw(Some(&alice.token), path, body.to_string());

    let body = assert_error(
        http.post(&alice, path, json!({"user_id": alice.id})).await,
        422,
        "invalid_participant",
        "with oneself",
    );
    assert!(body["error"]["request_id"].is_string(), "{body}");
    assert_error(
        http.post(&alice, path, json!({"user_id": Uuid::new_v4()})).await,
        404,
        "user_not_found",
        "unknown user",
    );
    assert_error(raw("{oops").await, 400, "invalid_json", "bad JSON");
    assert_error(raw("").await, 400, "invalid_json", "empty body");
    assert_error(raw("[]").await, 400, "invalid_request", "an array");
    assert_error(raw("{}").await, 400, "invalid_request", "no user_id");
    assert_error(
        http.post(&alice, path, json!({"user_id": bob.id, "subject": "hi"}))
            .await,
        400,
        "invalid_request",
        "unknown field",
    );
    assert_error(
        http.post(&alice, path, json!({"user_id": "bob"})).await,
        400,
        "invalid_request",
        "user_id not a UUID",
    );
    assert_error(
        http.post(&alice, path, json!({"user_id": bob.id, "context": {"type": "listing"}}))
            .await,
        400,
        "invalid_request",
        "context without id",
    );
    for (what, context) in [
        ("blank type", json!({"type": "  ", "id": "x"})),
        ("blank id", json!({"type": "listing", "id": ""})),
        (
            "id over 100 characters",
            json!({"type": "listing", "id": "x".repeat(101)}),
        ),
        ("control character", json!({"type": "list\ning", "id": "x"})),
    ] {
        assert_error(
            http.post(&alice, path, json!({"user_id": bob.id, "context": context}))
                .await,
            400,
            "invalid_argument",
            what,
        );
    }
    assert_error(
        http.post_raw(None, path, json!({"user_id": bob.id}).to_string()).await,
        401,
        "missing_token",
        "no token",
    );
    assert_error(
        http.post_raw(Some("not.a.jwt"), path, json!({"user_id": bob.id}).to_string())
            .await,
        401,
        "invalid_token",
        "garbage token",
    );
    let oversized = json!({"user_id": bob.id, "context": {"type": "listing", "id": "x".repeat(65 * 1024)}});
    assert_error(
        http.post(&alice, path, oversized).await,
        413,
        "payload_too_large",
        "body over 64 KiB",
    );

    assert_eq!(
        conversations_created_by(stack, &alice).await,
        0,
        "nothing refused was stored"
    );
    assert_eq!(direct_count(stack, &alice, &bob).await, 0);
    bob_socket.expect_nothing().await;
    assert!(stack.list(&alice, "").await["conversations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_direct_conversation_that_was_left_is_rejoined_by_opening_it() {
    let stack = stack();
    let (alice, bob, id) = stack.direct_pair().await;
    let [mut alice_socket, mut bob_socket] = connect_all(stack, [&alice, &bob]).await;
    let http = stack.http();

    let (status, left) = http
        .post(&alice, &format!("/v1/conversations/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left["seq"], 2);
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("member.left").await;
        assert_eq!(event["seq"], 2);
        assert_eq!(event["data"]["user_id"], alice.id.to_string());
        assert!(
            event["data"]["new_owner_id"] == bob.id.to_string(),
            "bob is the only one left: {event}"
        );
    }
    stack.send_text(&bob, id, "are you there?").await;
    bob_socket.expect("message.created").await;
    alice_socket.expect_none("message.created").await;

    // Opening it again brings alice back (found, not created).
    let (status, reopened) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": bob.id}))
        .await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["created"], false);
    assert_eq!(reopened["conversation"]["id"], id.to_string());
    assert_eq!(participant_ids(&reopened["conversation"]).len(), 2);
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("member.joined").await;
        assert_eq!(event["seq"], 4);
        assert_eq!(event["data"]["user_id"], alice.id.to_string());
        assert!(event["data"]["added_by"].is_null());
        assert_joined_profile(&event, &reopened["conversation"], &alice);
    }
    let (status, _) = http.get(&alice, &format!("/v1/conversations/{id}/messages")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn direct_conversations_are_found_not_duplicated() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let http = stack.http();
    let (status, created) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": bob.id}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["conversation"]["kind"], "direct");
    assert_eq!(created["conversation"]["participants"].as_array().unwrap().len(), 2);
    let (status, found) = http
        .post(&bob, "/v1/conversations/direct", json!({"user_id": alice.id}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["conversation"]["id"], created["conversation"]["id"]);

    let about = json!({"user_id": bob.id, "context": {"type": "listing", "id": "listing-42"}});
    let (status, listing) = http.post(&alice, "/v1/conversations/direct", about.clone()).await;
    assert_eq!(status, 201);
    assert_ne!(listing["conversation"]["id"], created["conversation"]["id"]);
    assert_eq!(listing["conversation"]["context_type"], "listing");

    // Concurrent find-or-create of a new pair yields one conversation.
    let carol = stack.new_user("carol").await;
    let requests = (0..6).map(|_| http.post(&alice, "/v1/conversations/direct", json!({"user_id": carol.id})));
    let results = futures_util::future::join_all(requests).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert!(*status == 200 || *status == 201, "{status} {body}");
            body["conversation"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);

    let (status, body) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": alice.id}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = http
        .post(&alice, "/v1/conversations/direct", json!({"user_id": Uuid::new_v4()}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = http
        .post_raw(Some(&alice.token), "/v1/conversations/direct", "{oops".into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_json");
}

// ----------------------------------------------------------- groups and rooms

#[tokio::test]
async fn creating_a_group_or_a_room_tells_every_member() {
    let stack = stack();
    let (alice, bob, carol, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("eve").await,
    );
    let [mut alice_socket, mut bob_socket, mut carol_socket, mut outsider_socket] =
        connect_all(stack, [&alice, &bob, &carol, &outsider]).await;
    let http = stack.http();

    // Members deduplicated, the caller not a member of her own group twice, the name trimmed.
    let (status, body) = http
        .post(
            &alice,
            "/v1/conversations",
            json!({"kind": "group", "name": "  Lisbon trip  ", "member_ids": [bob.id, carol.id, bob.id, alice.id]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let group = body["conversation"].clone();
    let group_id = uuid_of(&group["id"]);
    assert_eq!(group["kind"], "group");
    assert_eq!(group["name"], "Lisbon trip");
    assert_eq!(group["created_by"], alice.id.to_string());
    assert_eq!(group["last_seq"], 1);
    assert_eq!(participant_ids(&group).len(), 3);
    assert_eq!(role_of(&group, &alice), "owner");
    assert_eq!(role_of(&group, &bob), "member");
    assert_eq!(role_of(&group, &carol), "member");
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket] {
        let event = socket.expect("conversation.created").await;
        assert_eq!(event["seq"], 1);
        assert_eq!(event["conversation_id"], group_id.to_string());
        assert_eq!(event["data"], group);
    }

    let room_name = unique_name("Plaza");
    let room = stack.create(&alice, "room", &room_name, &[&bob]).await;
    let room_id = uuid_of(&room["id"]);
    assert_eq!(room["kind"], "room");
    assert_eq!(room["name"], room_name.as_str());
    assert_eq!(room["last_seq"], 1);
    assert_eq!(participant_ids(&room).len(), 2);
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("conversation.created").await;
        assert_eq!(event["seq"], 1);
        assert_eq!(event["conversation_id"], room_id.to_string());
        assert_eq!(event["data"], room);
    }
    carol_socket.expect_none("conversation.created").await;
    outsider_socket.expect_nothing().await;

    // The log holds the creation as seq 1, for every member.
    let (status, log) = http.get(&carol, &format!("/v1/conversations/{group_id}/events")).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        as_pushed(&log["events"][0]),
        json!({"type": "conversation.created", "conversation_id": group_id, "seq": 1, "data": group})
    );
    assert_eq!(log["events"][0]["actor_id"], alice.id.to_string());
    assert_error(
        http.get(&carol, &format!("/v1/conversations/{room_id}")).await,
        403,
        "not_a_participant",
        "carol is not in the room",
    );
}

#[tokio::test]
async fn creating_a_conversation_refuses_bad_input_and_stores_nothing() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let mut bob_socket = stack.connect(&bob).await;
    let http = stack.http();
    let path = "/v1/conversations";
    let post = |body: Value| http.post(&alice, path, body);

    for (what, name) in [
        ("empty", String::new()),
        ("blank", "   ".to_string()),
        ("over 200 characters", "é".repeat(201)),
        ("a control character", "bell\u{7}name".to_string()),
        ("a newline", "two\nlines".to_string()),
    ] {
        for kind in ["group", "room"] {
            assert_error(
                post(json!({"kind": kind, "name": name, "member_ids": [bob.id]})).await,
                422,
                "invalid_name",
                &format!("{kind} name {what}"),
            );
        }
    }
    for (what, body) in [
        (
            "kind direct",
            json!({"kind": "direct", "name": "x", "member_ids": [bob.id]}),
        ),
        ("kind unknown", json!({"kind": "channel", "name": "x"})),
        ("no kind", json!({"name": "x"})),
        ("no name", json!({"kind": "group"})),
        (
            "a member id that is not a UUID",
            json!({"kind": "group", "name": "x", "member_ids": ["bob"]}),
        ),
        ("unknown field", json!({"kind": "group", "name": "x", "owner": bob.id})),
    ] {
        assert_error(post(body).await, 400, "invalid_request", what);
    }
    assert_error(
        http.post_raw(Some(&alice.token), path, "{\"kind\":".into()).await,
        400,
        "invalid_json",
        "bad JSON",
    );
    assert_error(
        http.post_raw(None, path, json!({"kind": "group", "name": "x"}).to_string())
            .await,
        401,
        "missing_token",
        "no token",
    );

    let crowd: Vec<Uuid> = (0..101).map(|_| Uuid::new_v4()).collect();
    assert_error(
        post(json!({"kind": "group", "name": "crowd", "member_ids": crowd})).await,
        422,
        "too_many_members",
        "101 members",
    );
    assert_error(
        post(json!({"kind": "group", "name": "ghost", "member_ids": [bob.id, Uuid::new_v4()]})).await,
        404,
        "user_not_found",
        "an unknown member",
    );
    assert_error(
        post(json!({"kind": "room", "name": unique_name("ghost room"), "member_ids": [Uuid::new_v4()]})).await,
        404,
        "user_not_found",
        "an unknown room member",
    );
    let padding = "x".repeat(65 * 1024);
    assert_error(
        post(json!({"kind": "group", "name": "big", "member_ids": [bob.id], "padding": padding})).await,
        413,
        "payload_too_large",
        "body over 64 KiB",
    );

    // Nothing of the above was stored, and bob was told nothing.
    assert_eq!(conversations_created_by(stack, &alice).await, 0);
    assert!(stack.list(&alice, "").await["conversations"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(stack.list(&bob, "").await["conversations"]
        .as_array()
        .unwrap()
        .is_empty());
    bob_socket.expect_nothing().await;

    // Limits are limits, not less: 200 characters, and 101 ids that are two members.
    let longest = stack.create(&alice, "group", &"é".repeat(200), &[]).await;
    assert_eq!(longest["name"].as_str().unwrap().chars().count(), 200);
    let mut repeated = vec![bob.id; 100];
    repeated.push(carol.id);
    let (status, body) = post(json!({"kind": "group", "name": "echo", "member_ids": repeated})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(participant_ids(&body["conversation"]).len(), 3);

    // Room names are unique among rooms, case-insensitively and after trimming.
    let name = unique_name("Agora");
    stack.create(&alice, "room", &name, &[]).await;
    for taken in [name.to_uppercase(), format!("  {}  ", name.to_lowercase())] {
        assert_error(
            http.post(&carol, path, json!({"kind": "room", "name": taken})).await,
            409,
            "room_name_taken",
            &format!("room name {taken:?}"),
        );
    }
    assert_eq!(conversations_created_by(stack, &carol).await, 0);
    // A group may share a room's name.
    stack.create(&carol, "group", &name, &[]).await;
}

// ------------------------------------------------------------------ details

#[tokio::test]
async fn details_show_participants_read_receipts_and_my_settings_to_members_only() {
    let stack = stack();
    let (alice, bob, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("eve").await,
    );
    let group = stack.create(&alice, "group", "Read receipts", &[&bob]).await;
    let id = uuid_of(&group["id"]);
    stack.send_text(&bob, id, "first").await;
    stack.send_text(&bob, id, "second").await;
    let (status, read) = stack
        .http()
        .post(&alice, &format!("/v1/conversations/{id}/read"), json!({"seq": 2}))
        .await;
    assert_eq!(status, 200, "{read}");

    let mine = stack.details(&alice, id).await;
    let conversation = &mine["conversation"];
    assert_eq!(conversation["id"], id.to_string());
    assert_eq!(conversation["kind"], "group");
    assert_eq!(conversation["name"], "Read receipts");
    assert_eq!(conversation["last_seq"], 3);
    let participants = conversation["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    for participant in participants {
        assert!(
            participant["joined_at"].is_string() && participant["role"].is_string(),
            "{participant}"
        );
        assert!(participant["last_read_seq"].is_i64(), "{participant}");
    }
    let alice_entry = participants
        .iter()
        .find(|p| p["user_id"] == alice.id.to_string())
        .unwrap();
    assert_eq!(alice_entry["last_read_seq"], 2, "alice's read receipt");
    let me = &mine["me"];
    assert_eq!(me["role"], "owner");
    assert_eq!(me["archived"], false);
    assert_eq!(me["muted"], false);
    assert_eq!(me["last_read_seq"], 2);
    assert_eq!(me["unread_count"], 1, "bob's second message is unread");
    assert!(me["joined_at"].is_string());

    let bobs = stack.details(&bob, id).await;
    assert_eq!(bobs["conversation"], mine["conversation"]);
    assert_eq!(bobs["me"]["role"], "member");
    assert_eq!(bobs["me"]["unread_count"], 0, "one's own messages are not unread");

    // An outsider and a conversation that does not exist get the same answer.
    let http = stack.http();
    let refused = assert_error(
        http.get(&outsider, &format!("/v1/conversations/{id}")).await,
        403,
        "not_a_participant",
        "outsider",
    );
    let missing = assert_error(
        http.get(&outsider, &format!("/v1/conversations/{}", Uuid::new_v4()))
            .await,
        403,
        "not_a_participant",
        "no such conversation",
    );
    assert_eq!(refused["error"]["message"], missing["error"]["message"]);
    assert_error(
        http.get(&alice, "/v1/conversations/not-a-uuid").await,
        400,
        "invalid_argument",
        "bad uuid",
    );
    let (status, _) = http.get_anonymous(&format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 401);
}

// -------------------------------------------------------------------- PATCH

#[tokio::test]
async fn the_owner_renames_and_every_member_hears_it() {
    let stack = stack();
    let (alice, bob, carol, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("eve").await,
    );
    let group = stack.create(&alice, "group", "Old name", &[&bob, &carol]).await;
    let id = uuid_of(&group["id"]);
    let [mut alice_socket, mut bob_socket, mut carol_socket, mut outsider_socket] =
        connect_all(stack, [&alice, &bob, &carol, &outsider]).await;
    let http = stack.http();
    let path = format!("/v1/conversations/{id}");

    let (status, renamed) = http.patch(&alice, &path, json!({"name": "  New name "})).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["conversation"]["name"], "New name");
    assert_eq!(renamed["conversation"]["last_seq"], 2);
    assert_eq!(renamed["me"]["role"], "owner");
    let expected = json!({"type": "conversation.updated", "conversation_id": id, "seq": 2,
                          "data": {"name": "New name", "updated_by": alice.id}});
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket] {
        assert_eq!(socket.expect("conversation.updated").await, expected);
    }
    let (_, log) = http.get(&bob, &format!("{path}/events?after_seq=1")).await;
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
    assert_eq!(as_pushed(&log["events"][0]), expected, "durable and replayable");

    // The same name again changes nothing.
    let (status, same) = http.patch(&alice, &path, json!({"name": "New name"})).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["conversation"]["last_seq"], 2);

    // Not the owner: refused, and nothing at all changes (not even the archive flag).
    assert_error(
        http.patch(&bob, &path, json!({"name": "Bob's"})).await,
        403,
        "not_owner",
        "member renames",
    );
    assert_error(
        http.patch(&bob, &path, json!({"name": "Bob's", "archived": true}))
            .await,
        403,
        "not_owner",
        "member renames and archives",
    );
    let bobs = stack.details(&bob, id).await;
    assert_eq!(bobs["conversation"]["name"], "New name");
    assert_eq!(bobs["conversation"]["last_seq"], 2);
    assert_eq!(bobs["me"]["archived"], false, "a refused request changes nothing");

    for (what, body) in [
        ("empty", json!({"name": ""})),
        ("blank", json!({"name": " \t "})),
        ("newline", json!({"name": "a\nb"})),
        ("too long", json!({"name": "n".repeat(201)})),
    ] {
        assert_error(http.patch(&alice, &path, body).await, 422, "invalid_name", what);
    }
    assert_error(
        http.patch(&alice, &path, json!({})).await,
        400,
        "invalid_argument",
        "empty patch",
    );
    assert_error(
        http.patch(&alice, &path, json!({"name": null})).await,
        400,
        "invalid_argument",
        "only nulls",
    );
    assert_error(
        http.patch(&alice, &path, json!({"title": "x"})).await,
        400,
        "invalid_request",
        "unknown field",
    );
    assert_error(
        http.patch(&alice, &path, json!({"archived": "yes"})).await,
        400,
        "invalid_request",
        "wrong type",
    );
    assert_error(
        http.request(reqwest::Method::PATCH, Some(&alice.token), &path, Some("{name".into()))
            .await,
        400,
        "invalid_json",
        "bad JSON",
    );
    assert_error(
        http.patch(&outsider, &path, json!({"name": "Hijacked"})).await,
        403,
        "not_a_participant",
        "outsider renames",
    );
    assert_error(
        http.patch(&outsider, &path, json!({"muted": true})).await,
        403,
        "not_a_participant",
        "outsider mutes",
    );
    assert_error(
        http.patch(
            &alice,
            &format!("/v1/conversations/{}", Uuid::new_v4()),
            json!({"name": "x"}),
        )
        .await,
        403,
        "not_a_participant",
        "no such conversation",
    );
    assert_error(
        http.patch(&alice, "/v1/conversations/42", json!({"name": "x"})).await,
        400,
        "invalid_argument",
        "bad uuid",
    );

    assert_eq!(stack.details(&alice, id).await["conversation"]["name"], "New name");
    for socket in [&mut bob_socket, &mut carol_socket] {
        socket.expect_none("conversation.updated").await;
    }
    outsider_socket.expect_nothing().await;

    // A 1:1 has no name, whoever asks.
    let direct = stack.direct_conversation(&alice, &bob).await;
    for user in [&alice, &bob] {
        assert_error(
            http.patch(user, &format!("/v1/conversations/{direct}"), json!({"name": "Us"}))
                .await,
            422,
            "unsupported_for_kind",
            "rename a direct conversation",
        );
    }

    // A room cannot take another room's name.
    let taken = unique_name("Taken");
    stack.create(&alice, "room", &taken, &[]).await;
    let room = uuid_of(&stack.create(&alice, "room", &unique_name("Free"), &[]).await["id"]);
    assert_error(
        http.patch(
            &alice,
            &format!("/v1/conversations/{room}"),
            json!({"name": taken.to_uppercase()}),
        )
        .await,
        409,
        "room_name_taken",
        "rename to a taken room name",
    );
}

#[tokio::test]
async fn archive_and_mute_are_private_to_each_member() {
    let stack = stack();
    let (alice, bob) = (stack.new_user("alice").await, stack.new_user("bob").await);
    // Connected before they share a conversation, so no presence comes between them.
    let [mut alice_socket, mut bob_socket] = connect_all(stack, [&alice, &bob]).await;
    let group = stack.create(&alice, "group", "Quiet", &[&bob]).await;
    let id = uuid_of(&group["id"]);
    for socket in [&mut alice_socket, &mut bob_socket] {
        socket.expect("conversation.created").await;
    }
    let http = stack.http();
    let path = format!("/v1/conversations/{id}");

    let (status, archived) = http.patch(&alice, &path, json!({"archived": true})).await;
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["me"]["archived"], true);
    assert_eq!(archived["me"]["muted"], false);
    let (status, muted) = http.patch(&alice, &path, json!({"muted": true})).await;
    assert_eq!(status, 200, "{muted}");
    assert_eq!(
        muted["me"],
        json!({"role": "owner", "joined_at": muted["me"]["joined_at"], "archived": true, "muted": true, "last_read_seq": 0, "unread_count": 0})
    );
    assert_eq!(muted["conversation"]["last_seq"], 1, "settings are not events");

    // Bob's view is unchanged, and nobody was told.
    let bobs = stack.details(&bob, id).await;
    assert_eq!(bobs["me"]["archived"], false);
    assert_eq!(bobs["me"]["muted"], false);
    assert!(
        !bobs.to_string().contains("\"archived\":true"),
        "alice's settings do not show to bob: {bobs}"
    );
    bob_socket.expect_nothing().await;
    alice_socket.expect_nothing().await;

    assert_eq!(
        ids(&stack.list(&alice, "?archived=true").await["conversations"]),
        vec![id]
    );
    assert!(ids(&stack.list(&alice, "?archived=false").await["conversations"]).is_empty());
    let all = stack.list(&alice, "").await;
    assert_eq!(all["conversations"][0]["archived"], true);
    assert_eq!(all["conversations"][0]["muted"], true);
    assert_eq!(
        ids(&stack.list(&bob, "?archived=false").await["conversations"]),
        vec![id]
    );
    assert!(ids(&stack.list(&bob, "?archived=true").await["conversations"]).is_empty());

    let (status, restored) = http
        .patch(&alice, &path, json!({"archived": false, "muted": false}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(restored["me"]["archived"], false);
    assert_eq!(restored["me"]["muted"], false);
    assert_eq!(
        ids(&stack.list(&alice, "?archived=false").await["conversations"]),
        vec![id]
    );
}

// ------------------------------------------------------------------ members

#[tokio::test]
async fn the_owner_adds_members_and_everyone_hears_it() {
    let stack = stack();
    let (alice, bob, carol, dave, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("dave").await,
        stack.new_user("eve").await,
    );
    let group = stack.create(&alice, "group", "Growing", &[&bob]).await;
    let id = uuid_of(&group["id"]);
    let [mut alice_socket, mut bob_socket, mut carol_socket, mut dave_socket, mut outsider_socket] =
        connect_all(stack, [&alice, &bob, &carol, &dave, &outsider]).await;
    let http = stack.http();
    let path = format!("/v1/conversations/{id}/members");

    let (status, added) = http
        .post(
            &alice,
            &path,
            json!({"user_ids": [carol.id, carol.id, dave.id, bob.id]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        added["added"],
        json!([carol.id, dave.id]),
        "in the order given; bob was a member already"
    );
    assert_eq!(added["conversation"]["last_seq"], 3);
    assert_eq!(participant_ids(&added["conversation"]).len(), 4);
    assert_eq!(role_of(&added["conversation"], &carol), "member");

    // The added users learn of the conversation (a snapshot, not durable)...
    for socket in [&mut carol_socket, &mut dave_socket] {
        let event = socket.expect("conversation.created").await;
        assert!(event.get("seq").is_none(), "no seq when added: {event}");
        assert_eq!(event["conversation_id"], id.to_string());
        assert_eq!(event["data"]["id"], id.to_string());
        assert_eq!(event["data"]["last_seq"], 3);
        assert_eq!(event["data"], added["conversation"]);
    }
    // ...and every member gets each member.joined, in seq order.
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket, &mut dave_socket] {
        for (seq, user) in [(2, &carol), (3, &dave)] {
            let event = socket.expect("member.joined").await;
            assert_eq!(event["seq"], seq, "{event}");
            assert_eq!(event["conversation_id"], id.to_string());
            assert_eq!(event["data"]["user_id"], user.id.to_string());
            assert_eq!(event["data"]["role"], "member");
            assert_eq!(event["data"]["added_by"], alice.id.to_string());
            assert!(event["data"]["joined_at"].is_string());
            assert_joined_profile(&event, &added["conversation"], user);
        }
    }
    alice_socket.expect_none("conversation.created").await;
    bob_socket.expect_none("conversation.created").await;

    // Adding current members again adds nobody and tells nobody.
    let (status, again) = http.post(&alice, &path, json!({"user_ids": [carol.id]})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["added"], json!([]));
    assert_eq!(again["conversation"]["last_seq"], 3);
    bob_socket.expect_none("member.joined").await;

    // Refusals: nothing is added, nobody is told.
    assert_error(
        http.post(&bob, &path, json!({"user_ids": [outsider.id]})).await,
        403,
        "not_owner",
        "a member adds",
    );
    assert_error(
        http.post(&outsider, &path, json!({"user_ids": [outsider.id]})).await,
        403,
        "not_a_participant",
        "an outsider adds",
    );
    assert_error(
        http.post(&alice, &path, json!({"user_ids": [outsider.id, Uuid::new_v4()]}))
            .await,
        404,
        "user_not_found",
        "an unknown user among known ones",
    );
    assert_error(
        http.post(&alice, &path, json!({"user_ids": []})).await,
        400,
        "invalid_argument",
        "empty list",
    );
    assert_error(
        http.post(&alice, &path, json!({"user_ids": ["eve"]})).await,
        400,
        "invalid_request",
        "not a UUID",
    );
    assert_error(
        http.post(&alice, &path, json!({})).await,
        400,
        "invalid_request",
        "no user_ids",
    );
    let crowd: Vec<Uuid> = (0..101).map(|_| Uuid::new_v4()).collect();
    assert_error(
        http.post(&alice, &path, json!({"user_ids": crowd})).await,
        422,
        "too_many_members",
        "101 ids",
    );
    assert_error(
        http.post(
            &alice,
            &format!("/v1/conversations/{}/members", Uuid::new_v4()),
            json!({"user_ids": [outsider.id]}),
        )
        .await,
        403,
        "not_a_participant",
        "no such conversation",
    );
    let direct = stack.direct_conversation(&alice, &bob).await;
    assert_error(
        http.post(
            &alice,
            &format!("/v1/conversations/{direct}/members"),
            json!({"user_ids": [carol.id]}),
        )
        .await,
        422,
        "unsupported_for_kind",
        "add to a direct conversation",
    );
    assert_eq!(
        participant_ids(&stack.details(&alice, direct).await["conversation"]).len(),
        2
    );

    let now = stack.details(&alice, id).await;
    assert_eq!(participant_ids(&now["conversation"]).len(), 4);
    assert_eq!(now["conversation"]["last_seq"], 3);
    assert_error(
        http.get(&outsider, &format!("/v1/conversations/{id}")).await,
        403,
        "not_a_participant",
        "still outside",
    );
    for socket in [&mut alice_socket, &mut bob_socket, &mut carol_socket, &mut dave_socket] {
        socket.expect_none("member.joined").await;
    }
    // Carol got the 1:1's creation? No: she is not in it. The outsider got nothing at all.
    carol_socket.expect_none("conversation.created").await;
    outsider_socket.expect_nothing().await;

    // A former member comes back when added again.
    let (status, _) = http
        .post(&carol, &format!("/v1/conversations/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, back) = http.post(&alice, &path, json!({"user_ids": [carol.id]})).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["added"], json!([carol.id]));
    assert_eq!(role_of(&back["conversation"], &carol), "member");
    let rejoined = carol_socket.expect("member.joined").await;
    assert_eq!(rejoined["seq"], 5);
    assert!(carol_socket.expect("conversation.created").await.get("seq").is_none());
}

#[tokio::test]
async fn joining_a_room_tells_its_members_once_and_groups_cannot_be_joined() {
    let stack = stack();
    let (alice, bob, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("eve").await,
    );
    let room = stack.create(&alice, "room", &unique_name("Lobby"), &[]).await;
    let id = uuid_of(&room["id"]);
    let [mut alice_socket, mut bob_socket, mut outsider_socket] = connect_all(stack, [&alice, &bob, &outsider]).await;
    let http = stack.http();
    let path = format!("/v1/conversations/{id}/join");

    let (status, joined) = http.post_raw(Some(&bob.token), &path, String::new()).await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(joined["joined"], true);
    assert_eq!(role_of(&joined["conversation"], &bob), "member");
    assert_eq!(joined["conversation"]["last_seq"], 2);
    for socket in [&mut alice_socket, &mut bob_socket] {
        let event = socket.expect("member.joined").await;
        assert_eq!(event["seq"], 2);
        assert_eq!(event["conversation_id"], id.to_string());
        assert_eq!(event["data"]["user_id"], bob.id.to_string());
        assert_eq!(event["data"]["role"], "member");
        assert!(event["data"]["added_by"].is_null());
        assert_joined_profile(&event, &joined["conversation"], &bob);
        assert_eq!(event["data"]["profile"]["display_name"], "bob");
    }

    // A second join changes nothing.
    let (status, again) = http.post(&bob, &path, json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["joined"], false);
    assert_eq!(again["conversation"]["last_seq"], 2);
    alice_socket.expect_none("member.joined").await;
    bob_socket.expect_none("member.joined").await;
    outsider_socket.expect_nothing().await;

    assert_error(
        http.post_raw(Some(&bob.token), &path, "[1]".into()).await,
        400,
        "invalid_request",
        "a body that is not an object",
    );
    assert_error(
        http.post_raw(Some(&bob.token), &path, "nope".into()).await,
        400,
        "invalid_json",
        "a body that is not JSON",
    );
    assert_error(
        http.post(&bob, "/v1/conversations/lobby/join", json!({})).await,
        400,
        "invalid_argument",
        "bad uuid",
    );

    // Groups, 1:1s and ids that are nothing look alike: no such room.
    let group = uuid_of(&stack.create(&alice, "group", "Private", &[]).await["id"]);
    let direct = stack.direct_conversation(&alice, &outsider).await;
    for (what, target) in [
        ("a group", group),
        ("a direct conversation", direct),
        ("nothing", Uuid::new_v4()),
    ] {
        assert_error(
            http.post(&bob, &format!("/v1/conversations/{target}/join"), json!({}))
                .await,
            404,
            "conversation_not_found",
            what,
        );
    }
    assert_error(
        http.get(&bob, &format!("/v1/conversations/{group}")).await,
        403,
        "not_a_participant",
        "bob is not in the group",
    );
    assert_eq!(
        participant_ids(&stack.details(&alice, group).await["conversation"]),
        vec![alice.id]
    );
}

/// Seed 000 pushed a room's recent messages on join; here the joiner reads
/// them: the history shows a current member everything, earlier messages
/// included, and an outsider nothing.
#[tokio::test]
async fn a_joiner_reads_the_rooms_earlier_messages() {
    let stack = stack();
    let (owner, joiner) = (stack.new_user("alice").await, stack.new_user("bob").await);
    let room = uuid_of(&stack.create(&owner, "room", &unique_name("Lobby"), &[]).await["id"]);
    let mut sent = Vec::new();
    for text in ["first", "second", "third"] {
        sent.push(stack.send_text(&owner, room, text).await);
    }
    let http = stack.http();
    assert_error(
        http.get(&joiner, &messages_path(room)).await,
        403,
        "not_a_participant",
        "history before joining",
    );

    let (status, joined) = http
        .post(&joiner, &format!("/v1/conversations/{room}/join"), json!({}))
        .await;
    assert_eq!((status, joined["joined"].as_bool()), (200, Some(true)), "{joined}");
    let history = stack.history(&joiner, room).await;
    assert_eq!(
        history.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
        sent.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
        "every earlier message, in seq order"
    );
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ascending seqs: {seqs:?}");
    assert_eq!(history[2]["body"], "third");
}

// -------------------------------------------------------------------- leave

#[tokio::test]
async fn leaving_tells_the_others_and_the_leavers_devices_then_nothing_more() {
    let stack = stack();
    let (alice, bob, carol, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("eve").await,
    );
    // Connected before they share a conversation, so no presence comes between them.
    let [mut alice_socket, mut bob_phone, mut bob_laptop, mut carol_socket, mut outsider_socket] =
        connect_all(stack, [&alice, &bob, &bob, &carol, &outsider]).await;
    let group = stack.create(&alice, "group", "Leaving", &[&bob, &carol]).await;
    let id = uuid_of(&group["id"]);
    for socket in [&mut alice_socket, &mut bob_phone, &mut bob_laptop, &mut carol_socket] {
        assert_eq!(
            socket.expect("conversation.created").await["conversation_id"],
            id.to_string()
        );
    }
    let http = stack.http();
    let base = format!("/v1/conversations/{id}");

    let (status, left) = http.post(&bob, &format!("{base}/leave"), json!({})).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left, json!({"conversation_id": id, "left": true, "seq": 2}));
    for socket in [&mut alice_socket, &mut carol_socket, &mut bob_phone, &mut bob_laptop] {
        let event = socket.expect("member.left").await;
        assert_eq!(event["seq"], 2);
        assert_eq!(event["conversation_id"], id.to_string());
        assert_eq!(event["data"]["user_id"], bob.id.to_string());
        assert!(event["data"]["left_at"].is_string());
        assert!(
            event["data"]["new_owner_id"].is_null(),
            "alice is still the owner: {event}"
        );
    }

    // Bob is out: no history, no log, no details, no writes.
    for suffix in ["", "/messages", "/events", "/stats", "/connections"] {
        assert_error(
            http.get(&bob, &format!("{base}{suffix}")).await,
            403,
            "not_a_participant",
            &format!("GET {suffix}"),
        );
    }
    assert_error(
        http.post(&bob, &format!("{base}/messages"), json!({"body": "still here"}))
            .await,
        403,
        "not_a_participant",
        "send",
    );
    assert_error(
        http.post(&bob, &format!("{base}/leave"), json!({})).await,
        403,
        "not_a_participant",
        "leave twice",
    );
    assert!(!ids(&stack.list(&bob, "").await["conversations"]).contains(&id));
    assert_eq!(
        participant_ids(&stack.details(&alice, id).await["conversation"]).len(),
        2
    );

    // What happens next reaches the others, not bob.
    let message = stack.send_text(&alice, id, "bob is gone").await;
    assert_eq!(
        carol_socket.expect("message.created").await["data"]["id"],
        message["id"]
    );
    assert_eq!(
        alice_socket.expect("message.created").await["data"]["id"],
        message["id"]
    );
    let (status, _) = http.patch(&alice, &base, json!({"name": "Two of us"})).await;
    assert_eq!(status, 200);
    carol_socket.expect("conversation.updated").await;
    bob_phone.expect_nothing().await;
    bob_laptop.expect_nothing().await;
    outsider_socket.expect_nothing().await;
    assert_error(
        http.post(&outsider, &format!("{base}/leave"), json!({})).await,
        403,
        "not_a_participant",
        "outsider leaves",
    );
    assert_error(
        http.post(
            &outsider,
            &format!("/v1/conversations/{}/leave", Uuid::new_v4()),
            json!({}),
        )
        .await,
        403,
        "not_a_participant",
        "no such conversation",
    );
    assert_error(
        http.post(&alice, "/v1/conversations/x/leave", json!({})).await,
        400,
        "invalid_argument",
        "bad uuid",
    );
}

#[tokio::test]
async fn the_last_owner_leaving_hands_the_conversation_to_the_longest_standing_member() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let group = stack.create(&alice, "group", "Handover", &[&bob, &carol]).await;
    let id = uuid_of(&group["id"]);
    let [mut bob_socket, mut carol_socket] = connect_all(stack, [&bob, &carol]).await;
    let http = stack.http();
    // Participants are listed by joined_at, then user id: the first one after alice is next in line.
    let heir = participant_ids(&group).into_iter().find(|u| *u != alice.id).unwrap();
    let (heir_user, other) = if heir == bob.id { (&bob, &carol) } else { (&carol, &bob) };

    let (status, left) = http
        .post(&alice, &format!("/v1/conversations/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{left}");
    for socket in [&mut bob_socket, &mut carol_socket] {
        let event = socket.expect("member.left").await;
        assert_eq!(event["data"]["user_id"], alice.id.to_string());
        assert_eq!(event["data"]["new_owner_id"], heir.to_string());
    }
    let now = stack.details(heir_user, id).await;
    assert_eq!(now["me"]["role"], "owner");
    assert_eq!(role_of(&now["conversation"], other), "member");

    let path = format!("/v1/conversations/{id}");
    assert_error(
        http.patch(other, &path, json!({"name": "Mine"})).await,
        403,
        "not_owner",
        "the other member renames",
    );
    let (status, renamed) = http.patch(heir_user, &path, json!({"name": "Inherited"})).await;
    assert_eq!(status, 200, "the new owner renames: {renamed}");

    // A room whose only member left has no owner; whoever joins next owns it.
    let room = uuid_of(&stack.create(&alice, "room", &unique_name("Abandoned"), &[]).await["id"]);
    let (status, left) = http
        .post(&alice, &format!("/v1/conversations/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{left}");
    let (_, log) = http.get(&bob, &format!("/v1/conversations/{room}/events")).await;
    assert_eq!(log["error"]["code"], "not_a_participant");
    let (status, joined) = http
        .post(&bob, &format!("/v1/conversations/{room}/join"), json!({}))
        .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(role_of(&joined["conversation"], &bob), "owner");
    let (_, log) = http.get(&bob, &format!("/v1/conversations/{room}/events")).await;
    let left_event = &log["events"][1];
    assert_eq!(left_event["type"], "member.left");
    assert!(
        left_event["data"]["new_owner_id"].is_null(),
        "nobody was left to own it: {left_event}"
    );
}

// -------------------------------------------------------------------- lists

#[tokio::test]
async fn my_conversations_are_listed_newest_activity_first_with_unread_counts() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let with_bob = stack.direct_conversation(&alice, &bob).await;
    let trip = uuid_of(&stack.create(&alice, "group", "Trip", &[&carol]).await["id"]);
    let with_carol = stack.direct_conversation(&alice, &carol).await;
    // Someone else's conversation never shows.
    stack.direct_conversation(&bob, &carol).await;

    let page = stack.list(&alice, "").await;
    assert_eq!(ids(&page["conversations"]), vec![with_carol, trip, with_bob]);
    assert!(page["next_cursor"].is_null());

    stack.send_text(&bob, with_bob, "one").await;
    let second = stack.send_text(&bob, with_bob, "two").await;
    let page = stack.list(&alice, "").await;
    assert_eq!(ids(&page["conversations"]), vec![with_bob, with_carol, trip]);
    let entry = &page["conversations"][0];
    assert_eq!(entry["kind"], "direct");
    assert!(entry["name"].is_null());
    assert_eq!(entry["other_user_id"], bob.id.to_string());
    assert_eq!(entry["member_count"], 2);
    assert_eq!(entry["last_seq"], 3);
    assert_eq!(same_instants(&entry["last_message"]), same_instants(&second));
    assert_eq!(entry["unread_count"], 2);
    assert_eq!(entry["last_read_seq"], 0);
    assert_eq!(entry["archived"], false);
    assert_eq!(entry["muted"], false);
    assert_eq!(entry["role"], "owner");
    assert_eq!(timestamp(&entry["last_activity_at"]), timestamp(&second["created_at"]));
    let trip_entry = &page["conversations"][2];
    assert_eq!(trip_entry["kind"], "group");
    assert_eq!(trip_entry["name"], "Trip");
    assert!(trip_entry["other_user_id"].is_null());
    assert!(trip_entry["last_message"].is_null());
    assert_eq!(trip_entry["unread_count"], 0);
    assert_eq!(trip_entry["member_count"], 2);

    // My own messages are never unread; reading clears the rest.
    let mine = stack.send_text(&alice, with_bob, "three").await;
    let page = stack.list(&alice, "").await;
    assert_eq!(page["conversations"][0]["last_message"]["id"], mine["id"]);
    assert_eq!(page["conversations"][0]["unread_count"], 2);
    let (status, _) = stack
        .http()
        .post(&alice, &format!("/v1/conversations/{with_bob}/read"), json!({}))
        .await;
    assert_eq!(status, 200);
    let page = stack.list(&alice, "").await;
    assert_eq!(page["conversations"][0]["unread_count"], 0);
    assert_eq!(page["conversations"][0]["last_read_seq"], 4);

    // Bob's view of the same 1:1.
    let bobs = stack.list(&bob, "").await;
    let bob_entry = bobs["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == with_bob.to_string())
        .unwrap();
    assert_eq!(bob_entry["other_user_id"], alice.id.to_string());
    assert_eq!(bob_entry["unread_count"], 1);
    assert_eq!(bob_entry["role"], "member");

    // A message in the group moves it to the top; the order follows last_activity_at.
    stack.send_text(&carol, trip, "packed?").await;
    let page = stack.list(&alice, "").await;
    assert_eq!(ids(&page["conversations"]), vec![trip, with_bob, with_carol]);
    let times: Vec<_> = page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| timestamp(&c["last_activity_at"]))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Archived ones: flagged, and filtered by ?archived=.
    let (status, _) = stack
        .http()
        .patch(
            &alice,
            &format!("/v1/conversations/{with_carol}"),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(status, 200);
    let archived = stack.list(&alice, "?archived=true").await;
    assert_eq!(ids(&archived["conversations"]), vec![with_carol]);
    assert_eq!(archived["conversations"][0]["archived"], true);
    assert_eq!(
        ids(&stack.list(&alice, "?archived=false").await["conversations"]),
        vec![trip, with_bob]
    );
    assert_eq!(
        stack.list(&alice, "").await["conversations"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn conversation_pages_visit_every_conversation_exactly_once() {
    let stack = stack();
    let alice = stack.new_user("alice").await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(uuid_of(
            &stack.create(&alice, "group", &format!("Page {i}"), &[]).await["id"],
        ));
    }
    let everything = ids(&stack.list(&alice, "?limit=100").await["conversations"]);
    assert_eq!(
        everything,
        created.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_string(),
        };
        let page = stack.list(&alice, &query).await;
        let page_ids = ids(&page["conversations"]);
        sizes.push(page_ids.len());
        seen.extend(page_ids);
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(
                    next.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{next}"
                );
                cursor = Some(next.to_string());
            }
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end: {sizes:?}");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, everything, "every conversation once, in order");

    let exact = stack.list(&alice, "?limit=5").await;
    assert_eq!(exact["conversations"].as_array().unwrap().len(), 5);
    assert!(exact["next_cursor"].is_null(), "no empty last page");
    assert_eq!(
        ids(&stack.list(&alice, "?limit=100000").await["conversations"]).len(),
        5,
        "capped, not refused"
    );

    let http = stack.http();
    for bad in [
        "not a cursor!",
        "abc",
        "aGVsbG98d29ybGQ",
        "MjAyNi0xMS0yMVQwNzowMDowMC4wMDAwMDBafG5vdC1hLXV1aWQtbm90LWEtdXVpZC1ub3QtYS11dWlkLXh4",
        "c29tZWRheXwwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDE",
        &"A".repeat(300),
    ] {
        assert_error(
            http.get(
                &alice,
                &format!(
                    "/v1/conversations?cursor={}",
                    bad.replace(' ', "%20").replace('!', "%21")
                ),
            )
            .await,
            400,
            "invalid_cursor",
            &format!("cursor {bad:?}"),
        );
    }
    for bad in ["0", "-1", "abc", "1.5", ""] {
        assert_error(
            http.get(&alice, &format!("/v1/conversations?limit={bad}")).await,
            400,
            "invalid_argument",
            &format!("limit {bad:?}"),
        );
    }
    assert_error(
        http.get(&alice, "/v1/conversations?archived=maybe").await,
        400,
        "invalid_argument",
        "archived=maybe",
    );
    let (status, _) = http.get_anonymous("/v1/conversations").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn rooms_are_listed_with_counts_and_whether_i_joined() {
    let stack = stack();
    let (alice, bob, carol) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
    );
    let busy_name = unique_name("Busy");
    let busy = uuid_of(&stack.create(&alice, "room", &busy_name, &[&bob]).await["id"]);
    let quiet = uuid_of(&stack.create(&alice, "room", &unique_name("Quiet"), &[]).await["id"]);
    let carols = uuid_of(&stack.create(&carol, "room", &unique_name("Carol's"), &[]).await["id"]);
    let group = uuid_of(&stack.create(&alice, "group", "Not a room", &[&bob]).await["id"]);
    for body in ["a", "b"] {
        stack.send_text(&bob, busy, body).await;
    }
    let doomed = stack.send_text(&alice, busy, "to be deleted").await;
    let (status, deleted) = stack
        .http()
        .delete(&alice, &format!("/v1/messages/{}", doomed["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, joined) = stack
        .http()
        .post(&bob, &format!("/v1/conversations/{carols}/join"), json!({}))
        .await;
    assert_eq!(status, 200, "{joined}");

    // Every room, a page of two at a time, as bob.
    let mut rooms: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let query = cursor
            .as_ref()
            .map(|c| format!("?limit=2&cursor={c}"))
            .unwrap_or_else(|| "?limit=2".into());
        let (status, page) = stack.http().get(&bob, &format!("/v1/rooms{query}")).await;
        assert_eq!(status, 200, "{page}");
        let items = page["rooms"].as_array().unwrap();
        assert!(items.len() <= 2);
        rooms.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let all_ids = ids(&Value::Array(rooms.clone()));
    assert_eq!(
        all_ids.len(),
        all_ids.iter().collect::<HashSet<_>>().len(),
        "no room twice"
    );
    assert!(!all_ids.contains(&group), "groups are not rooms");
    let find = |id: Uuid| {
        rooms
            .iter()
            .find(|r| r["id"] == id.to_string())
            .unwrap_or_else(|| panic!("room {id} missing"))
    };
    let busy_entry = find(busy);
    assert_eq!(busy_entry["name"], busy_name.as_str());
    assert_eq!(busy_entry["created_by"], alice.id.to_string());
    assert_eq!(busy_entry["member_count"], 2);
    assert_eq!(busy_entry["message_count"], 2, "the deleted message does not count");
    assert_eq!(busy_entry["joined"], true);
    assert!(busy_entry["created_at"].is_string() && busy_entry["last_activity_at"].is_string());
    let quiet_entry = find(quiet);
    assert_eq!(quiet_entry["member_count"], 1);
    assert_eq!(quiet_entry["message_count"], 0);
    assert_eq!(quiet_entry["joined"], false);
    let carols_entry = find(carols);
    assert_eq!(carols_entry["member_count"], 2);
    assert_eq!(carols_entry["joined"], true);
    // Most recently active first: bob's join, then the deletion, then the quiet room's creation.
    let position = |id: Uuid| all_ids.iter().position(|r| *r == id).unwrap();
    assert!(
        position(carols) < position(busy) && position(busy) < position(quiet),
        "{all_ids:?}"
    );

    // Joined is the viewer's: carol has not joined the busy room.
    let (_, first) = stack.http().get(&carol, "/v1/rooms?limit=100").await;
    let carol_view = first["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == busy.to_string())
        .cloned()
        .expect("the busy room is on carol's first page (this binary makes far fewer than 100 rooms)");
    assert_eq!(carol_view["joined"], false);
    assert_eq!(carol_view["member_count"], 2);

    let http = stack.http();
    assert_error(
        http.get(&bob, "/v1/rooms?cursor=abc").await,
        400,
        "invalid_cursor",
        "bad cursor",
    );
    assert_error(
        http.get(&bob, "/v1/rooms?cursor=%2Fetc").await,
        400,
        "invalid_cursor",
        "bad characters",
    );
    assert_error(
        http.get(&bob, "/v1/rooms?limit=0").await,
        400,
        "invalid_argument",
        "limit 0",
    );
    assert_error(
        http.get(&bob, "/v1/rooms?limit=ten").await,
        400,
        "invalid_argument",
        "limit ten",
    );
}

// -------------------------------------------------------- stats, connections

#[tokio::test]
async fn stats_and_connections_count_what_is_there_and_never_show_connection_ids() {
    let stack = stack();
    let (alice, bob, carol, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("eve").await,
    );
    let group = stack.create(&alice, "group", "Counted", &[&bob, &carol]).await;
    let id = uuid_of(&group["id"]);
    let [alice_phone, _alice_laptop, _bob_socket, mut outsider_socket] =
        connect_all(stack, [&alice, &alice, &bob, &outsider]).await;
    // carol, who asks, has written too: alice and bob are her contacts, whose
    // connections she may see.
    stack.send_text(&carol, id, "zero").await;
    stack.send_text(&alice, id, "one").await;
    let last = stack.send_text(&bob, id, "two").await;
    let http = stack.http();

    let (status, connections) = http.get(&carol, &format!("/v1/conversations/{id}/connections")).await;
    assert_eq!(status, 200, "{connections}");
    let mut expected = [(alice.id, 2), (bob.id, 1)];
    expected.sort();
    let expected_users: Vec<Value> = expected
        .iter()
        .map(|(u, n)| json!({"user_id": u, "connections": n}))
        .collect();
    assert_eq!(
        connections,
        json!({"conversation_id": id, "users": expected_users, "total_connections": 3})
    );
    let text = connections.to_string();
    for user in [&alice, &bob, &outsider] {
        for connection_id in stack.connection_ids(user).await {
            assert!(!text.contains(&connection_id), "a connection id in the body: {text}");
        }
    }
    assert!(!text.contains("connection_id\""), "{text}");

    let (status, stats) = http.get(&carol, &format!("/v1/conversations/{id}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["conversation_id"], id.to_string());
    assert_eq!(stats["kind"], "group");
    assert_eq!(stats["name"], "Counted");
    assert_eq!(stats["message_count"], 3);
    assert_eq!(stats["participant_count"], 3);
    assert_eq!(stats["online_count"], 2, "alice and bob; carol has no socket");
    assert_eq!(same_instants(&stats["last_message"]), same_instants(&last));
    assert_eq!(stats["last_seq"], 4);
    assert_eq!(timestamp(&stats["last_activity_at"]), timestamp(&last["created_at"]));

    // One of alice's sockets closes: one connection fewer, still online.
    alice_phone.close().await;
    stack
        .eventually("alice has one connection left", || async {
            let (_, now) = http.get(&carol, &format!("/v1/conversations/{id}/connections")).await;
            now["total_connections"] == 2
        })
        .await;
    let (_, stats) = http.get(&carol, &format!("/v1/conversations/{id}/stats")).await;
    assert_eq!(stats["online_count"], 2);

    for suffix in ["stats", "connections"] {
        assert_error(
            http.get(&outsider, &format!("/v1/conversations/{id}/{suffix}")).await,
            403,
            "not_a_participant",
            &format!("outsider {suffix}"),
        );
        assert_error(
            http.get(&alice, &format!("/v1/conversations/{}/{suffix}", Uuid::new_v4()))
                .await,
            403,
            "not_a_participant",
            &format!("no such conversation {suffix}"),
        );
        assert_error(
            http.get(&alice, &format!("/v1/conversations/nope/{suffix}")).await,
            400,
            "invalid_argument",
            suffix,
        );
    }
    outsider_socket.expect_nothing().await;
}

// ------------------------------------------------------------------- events

#[tokio::test]
async fn the_event_log_replays_every_durable_event_as_it_was_pushed() {
    let stack = stack();
    let (alice, bob, carol, outsider) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("carol").await,
        stack.new_user("eve").await,
    );
    let [mut bob_socket, mut outsider_socket] = connect_all(stack, [&bob, &outsider]).await;
    let http = stack.http();

    // Six durable changes; bob's socket sees each of them.
    let id = uuid_of(&stack.create(&alice, "group", "Logged", &[&bob]).await["id"]);
    let mut pushed = vec![bob_socket.expect("conversation.created").await];
    stack.send_text(&alice, id, "hello").await;
    pushed.push(bob_socket.expect("message.created").await);
    let (status, _) = http
        .patch(
            &alice,
            &format!("/v1/conversations/{id}"),
            json!({"name": "Logged (renamed)"}),
        )
        .await;
    assert_eq!(status, 200);
    pushed.push(bob_socket.expect("conversation.updated").await);
    let (status, _) = http
        .post(
            &alice,
            &format!("/v1/conversations/{id}/members"),
            json!({"user_ids": [carol.id]}),
        )
        .await;
    assert_eq!(status, 200);
    pushed.push(bob_socket.expect("member.joined").await);
    stack.send_text(&bob, id, "welcome carol").await;
    pushed.push(bob_socket.expect("message.created").await);
    let (status, _) = http
        .post(&carol, &format!("/v1/conversations/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, 200);
    pushed.push(bob_socket.expect("member.left").await);
    // A read receipt is not durable: not in the log.
    let (status, _) = http
        .post(&bob, &format!("/v1/conversations/{id}/read"), json!({}))
        .await;
    assert_eq!(status, 200);

    let path = format!("/v1/conversations/{id}/events");
    let (status, log) = http.get(&alice, &path).await;
    assert_eq!(status, 200, "{log}");
    let events = log["events"].as_array().unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=6).collect::<Vec<_>>(),
        "every durable event, gap-free and in order"
    );
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "conversation.created",
            "message.created",
            "conversation.updated",
            "member.joined",
            "message.created",
            "member.left"
        ]
    );
    assert_eq!(log["has_more"], false);
    assert_eq!(log["last_seq"], 6);
    for (stored, live) in events.iter().zip(&pushed) {
        assert_eq!(
            same_instants(&as_pushed(stored)),
            same_instants(live),
            "the stored envelope is what the socket got"
        );
        assert!(stored["created_at"].is_string());
    }
    let actors: Vec<&Value> = events.iter().map(|e| &e["actor_id"]).collect();
    let who = |u: &User| json!(u.id);
    assert_eq!(
        actors,
        [
            &who(&alice),
            &who(&alice),
            &who(&alice),
            &who(&alice),
            &who(&bob),
            &who(&carol)
        ]
    );

    // After a seq: exactly the later ones.
    for after in 0..=6 {
        let (status, tail) = http.get(&bob, &format!("{path}?after_seq={after}")).await;
        assert_eq!(status, 200, "{tail}");
        assert_eq!(
            tail["events"].as_array().unwrap().as_slice(),
            &events[after..],
            "after_seq={after}"
        );
        assert_eq!(tail["last_seq"], 6);
    }
    let (_, beyond) = http.get(&bob, &format!("{path}?after_seq=100")).await;
    assert_eq!(beyond["events"], json!([]));
    assert_eq!(beyond["has_more"], false);

    // Pages of two, following has_more.
    let mut replayed = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = http.get(&bob, &format!("{path}?after_seq={after}&limit=2")).await;
        assert_eq!(status, 200, "{page}");
        let items = page["events"].as_array().unwrap().clone();
        assert!(items.len() <= 2);
        if let Some(last) = items.last() {
            after = last["seq"].as_i64().unwrap();
        }
        replayed.extend(items);
        if page["has_more"] == false {
            break;
        }
        assert!(replayed.len() <= 6, "has_more never ends");
    }
    assert_eq!(replayed.as_slice(), events.as_slice());

    // Outsiders, former members and made-up ids learn nothing; bad input is refused.
    assert_error(http.get(&outsider, &path).await, 403, "not_a_participant", "outsider");
    assert_error(http.get(&carol, &path).await, 403, "not_a_participant", "carol left");
    assert_error(
        http.get(&alice, &format!("/v1/conversations/{}/events", Uuid::new_v4()))
            .await,
        403,
        "not_a_participant",
        "no such conversation",
    );
    for bad in ["-1", "abc", "1.5", ""] {
        assert_error(
            http.get(&alice, &format!("{path}?after_seq={bad}")).await,
            400,
            "invalid_argument",
            &format!("after_seq {bad:?}"),
        );
    }
    assert_error(
        http.get(&alice, &format!("{path}?limit=0")).await,
        400,
        "invalid_argument",
        "limit 0",
    );
    assert_error(
        http.get(&alice, "/v1/conversations/zzz/events").await,
        400,
        "invalid_argument",
        "bad uuid",
    );
    outsider_socket.expect_nothing().await;
    bob_socket.expect_none("conversation.created").await;

    // Last, the strict form: the replayed envelope is the pushed one, text for
    // text (a client may compare or deduplicate events as they are).
    for (stored, live) in events.iter().zip(&pushed) {
        assert_eq!(
            &as_pushed(stored),
            live,
            "seq {}: replayed and pushed envelopes differ",
            live["seq"]
        );
    }
}

#[tokio::test]
async fn a_room_message_reaches_every_member_including_those_who_joined() {
    let stack = stack();
    let owner = stack.new_user("room-owner").await;
    let member = stack.new_user("room-member").await;
    let joiner = stack.new_user("room-joiner").await;
    let outsider = stack.new_user("room-outsider").await;
    // Sockets open before anyone shares a conversation, so no presence events interfere.
    let [mut owner_socket, mut member_socket, mut joiner_socket, mut outsider_socket] =
        connect_all(stack, [&owner, &member, &joiner, &outsider]).await;
    let room = uuid_of(&stack.create(&owner, "room", &unique_name("Lobby"), &[&member]).await["id"]);
    owner_socket.expect("conversation.created").await;
    member_socket.expect("conversation.created").await;
    let (status, joined) = stack
        .http()
        .post(&joiner, &format!("/v1/conversations/{room}/join"), json!({}))
        .await;
    assert_eq!((status, joined["joined"].as_bool()), (200, Some(true)), "{joined}");
    owner_socket.expect("member.joined").await;
    member_socket.expect("member.joined").await;
    joiner_socket.expect("member.joined").await;

    owner_socket
        .send_json(
            json!({"action": "sendMessage", "conversation_id": room, "body": "welcome all", "client_msg_id": "room-1"}),
        )
        .await;
    let ack = owner_socket.expect("message.ack").await;
    for socket in [&mut member_socket, &mut joiner_socket] {
        let created = socket.expect("message.created").await;
        assert_eq!(created["data"]["body"], "welcome all");
        assert_eq!(created["data"]["id"], ack["data"]["id"]);
        assert_eq!(created["seq"], ack["data"]["seq"]);
    }
    outsider_socket.expect_nothing().await;
}
