//! Blocking and presence privacy, end to end: `POST /v1/blocks`,
//! `DELETE /v1/blocks/{user_id}`, `GET /v1/blocks`; what a block refuses in a
//! direct conversation (opening, sending, editing; both ways, storing nothing),
//! in groups and rooms (creating one with, or adding, the other) and hides
//! (presence, typing, read receipts), what it leaves (deleting, groups both
//! are in); a send racing a block; the blocks table through PostgREST with a
//! user's token; and presence shown only once both users have written in a
//! shared direct conversation or group (since they last came back).

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::api::messages_path;
use crate::helpers::{assert_error, send_frame, stack, uuid_of, Stack, User};
use crate::postgrest_direct::{assert_denied, Rest, Who};

fn block(user: &User) -> Value {
    json!({"user_id": user.id})
}

/// Direct conversations between two users, whatever their context.
async fn direct_conversations(stack: &Stack, a: &User, b: &User) -> i64 {
    stack
        .db()
        .await
        .query_one(
            "select count(*) from conversations
              where kind = 'direct' and direct_user_low = least($1::uuid, $2::uuid)
                and direct_user_high = greatest($1::uuid, $2::uuid)",
            &[&a.id, &b.id],
        )
        .await
        .unwrap()
        .get(0)
}

/// The users `viewer` may see the presence of, among `users`.
async fn presence_of(stack: &Stack, viewer: &User, users: &[&User]) -> Vec<String> {
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let (status, body) = stack
        .http()
        .get(viewer, &format!("/v1/presence?user_ids={}", ids.join(",")))
        .await;
    assert_eq!(status, 200, "{body}");
    body["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_block_refuses_the_direct_conversation_both_ways_and_stores_nothing_until_lifted() {
    let stack = stack();
    let http = stack.http();
    let (alice, bob, carol) = (
        stack.new_user("blocker").await,
        stack.new_user("blocked").await,
        stack.new_user("bystander").await,
    );
    let direct = stack.direct_conversation(&bob, &alice).await;
    let bobs = uuid_of(&stack.send_text(&bob, direct, "hi alice").await["id"]);
    let alices = uuid_of(&stack.send_text(&alice, direct, "hi bob").await["id"]);
    let mut alice_socket = stack.connect(&alice).await;
    let mut bob_socket = stack.connect(&bob).await;

    let (status, body) = http.post(&alice, "/v1/blocks", block(&bob)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (&body["block"]["user_id"], &body["created"]),
        (&json!(bob.id), &json!(true))
    );
    let (status, again) = http.post(&alice, "/v1/blocks", block(&bob)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(
        again["block"], body["block"],
        "blocking again keeps the block as it was"
    );

    // Only the blocker's list names the block.
    let (status, listed) = http.get(&alice, "/v1/blocks").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["blocks"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["blocks"][0]["user_id"], bob.id.to_string());
    assert_eq!(listed["blocks"][0]["profile"]["username"], bob.name);
    assert_eq!(http.get(&bob, "/v1/blocks").await.1, json!({"blocks": []}));

    // Neither can open the 1:1 (with or without a context) or write into it.
    let messages = stack.message_count(direct).await;
    for (from, to) in [(&bob, &alice), (&alice, &bob)] {
        for body in [
            json!({"user_id": to.id}),
            json!({"user_id": to.id, "context": {"type": "listing", "id": "l-1"}}),
        ] {
            assert_error(
                http.post(from, "/v1/conversations/direct", body).await,
                403,
                "blocked",
                &format!("{} opens the 1:1", from.name),
            );
        }
        assert_error(
            http.post(
                from,
                &messages_path(direct),
                json!({"body": "hello?", "client_msg_id": Uuid::new_v4()}),
            )
            .await,
            403,
            "blocked",
            &format!("{} sends over REST", from.name),
        );
    }
    bob_socket.send_json(send_frame(direct, "hello?", "blocked-ws-1")).await;
    let error = bob_socket.expect("error").await;
    assert_eq!(
        (
            &error["data"]["code"],
            &error["data"]["status"],
            &error["data"]["action"]
        ),
        (&json!("blocked"), &json!(403), &json!("sendMessage")),
        "{error}"
    );
    alice_socket.expect_none("message.created").await;
    assert_eq!(stack.message_count(direct).await, messages, "nothing stored");
    assert_eq!(direct_conversations(stack, &alice, &bob).await, 1, "no 1:1 created");

    // Nor can either edit an old message into a new one; deleting one's own
    // is allowed.
    for (from, message) in [(&bob, bobs), (&alice, alices)] {
        assert_error(
            http.patch(from, &format!("/v1/messages/{message}"), json!({"body": "hello again"}))
                .await,
            403,
            "blocked",
            &format!("{} edits in the 1:1", from.name),
        );
    }
    alice_socket.expect_none("message.updated").await;
    let history = stack.history(&alice, direct).await;
    assert_eq!(
        (&history[0]["body"], &history[1]["body"]),
        (&json!("hi alice"), &json!("hi bob")),
        "nothing edited"
    );
    let (status, body) = http.delete(&bob, &format!("/v1/messages/{bobs}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        alice_socket.expect("message.deleted").await["data"]["id"],
        bobs.to_string()
    );

    // Nor reach the other through a new group or room, or by adding them to
    // one; both are told the same, which does not say who blocked whom.
    let create = |kind: &str, members: &[&User]| json!({"kind": kind, "name": format!("{kind} {}", Uuid::new_v4()), "member_ids": members.iter().map(|m| m.id).collect::<Vec<_>>()});
    let told = |(status, body): (u16, Value)| (status, body["error"]["code"].clone(), body["error"]["message"].clone());
    let refusal = told(
        http.post(&bob, "/v1/conversations", create("group", &[&carol, &alice]))
            .await,
    );
    assert_eq!(
        (refusal.0, &refusal.1),
        (403, &json!("blocked")),
        "bob creates a group with alice: {refusal:?}"
    );
    let same = told(http.post(&alice, "/v1/conversations", create("room", &[&bob])).await);
    assert_eq!(same, refusal, "alice creates a room with bob");
    let alices_group = stack.group(&alice, &[&carol]).await;
    let members = format!("/v1/conversations/{alices_group}/members");
    let same = told(http.post(&alice, &members, json!({"user_ids": [bob.id]})).await);
    assert_eq!(same, refusal, "alice adds bob");
    let created_by_bob: i64 = stack
        .db()
        .await
        .query_one(
            "select count(*) from conversations where created_by = $1 and kind <> 'direct'",
            &[&bob.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(created_by_bob, 0, "no group created");
    assert_eq!(
        stack.details(&alice, alices_group).await["conversation"]["participants"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "nobody added"
    );

    // Bad input.
    assert_error(
        http.post(&alice, "/v1/blocks", block(&alice)).await,
        400,
        "invalid_argument",
        "block myself",
    );
    assert_error(
        http.post(&alice, "/v1/blocks", json!({"user_id": Uuid::new_v4()}))
            .await,
        404,
        "user_not_found",
        "block nobody",
    );
    assert_error(
        http.post(&alice, "/v1/blocks", json!({})).await,
        400,
        "invalid_request",
        "no user_id",
    );
    assert_error(
        http.post(&alice, "/v1/blocks", json!({"user_id": bob.id, "why": "spam"}))
            .await,
        400,
        "invalid_request",
        "an unknown field",
    );
    assert_error(
        http.delete(&alice, "/v1/blocks/bob").await,
        400,
        "invalid_argument",
        "unblock not-a-uuid",
    );

    // The blocked user cannot lift it.
    let (status, body) = http.delete(&bob, &format!("/v1/blocks/{}", alice.id)).await;
    assert_eq!((status, &body["removed"]), (200, &json!(false)), "{body}");
    assert_error(
        http.post(
            &bob,
            &messages_path(direct),
            json!({"body": "now?", "client_msg_id": Uuid::new_v4()}),
        )
        .await,
        403,
        "blocked",
        "still blocked",
    );

    // The blocker lifts it: everything works again.
    let (status, body) = http.delete(&alice, &format!("/v1/blocks/{}", bob.id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"user_id": bob.id, "removed": true}));
    assert_eq!(http.get(&alice, "/v1/blocks").await.1, json!({"blocks": []}));
    let (status, body) = http.post(&bob, "/v1/conversations/direct", block(&alice)).await;
    assert_eq!((status, uuid_of(&body["conversation"]["id"])), (200, direct), "{body}");
    stack.send_text(&bob, direct, "sorry").await;
    assert_eq!(alice_socket.expect("message.created").await["data"]["body"], "sorry");
}

/// Waits until a database session running `function` is waiting for a lock.
async fn waits_for_a_lock(stack: &Stack, function: &str) {
    let pattern = format!("%{function}%");
    stack
        .eventually(&format!("{function} waits for a lock"), || async {
            stack
                .db()
                .await
                .query_one(
                    "select count(*) from pg_stat_activity
                      where wait_event_type = 'Lock' and query ilike $1 and pid <> pg_backend_pid()",
                    &[&pattern],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                > 0
        })
        .await;
}

#[tokio::test]
async fn a_send_racing_a_block_lands_before_it_or_is_refused() {
    let stack = stack();
    let (alice, bob, direct) = stack.direct_pair().await;

    // alice's block is being made (not committed yet): bob's send waits for
    // it, then sees it.
    let mut db = stack.db().await;
    let blocking_tx = db.transaction().await.unwrap();
    let claims = json!({"sub": alice.id, "role": "authenticated", "exp": chrono::Utc::now().timestamp() + 3600});
    blocking_tx
        .execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
            &[&claims.to_string()],
        )
        .await
        .unwrap();
    blocking_tx
        .execute("select public.block_user($1)", &[&bob.id])
        .await
        .unwrap();
    let send = {
        let bob = bob.clone();
        tokio::spawn(async move {
            stack
                .http()
                .post(
                    &bob,
                    &messages_path(direct),
                    json!({"body": "quick, before she blocks me"}),
                )
                .await
        })
    };
    waits_for_a_lock(stack, "send_message").await;
    blocking_tx.commit().await.unwrap();
    assert_error(send.await.unwrap(), 403, "blocked", "the send that waited");
    assert_eq!(stack.message_count(direct).await, 0, "nothing stored");

    // The other way round: a send under way (not committed yet) when a block
    // is asked for lands first; the block waits for it.
    let (status, _) = stack.http().delete(&alice, &format!("/v1/blocks/{}", bob.id)).await;
    assert_eq!(status, 200);
    let sending = db.transaction().await.unwrap();
    sending
        .execute(
            "select public.send_message($1, $2, 'under-way', 'text', 'made it')",
            &[&bob.id, &direct],
        )
        .await
        .unwrap();
    let blocking = {
        let alice = alice.clone();
        tokio::spawn(async move { stack.http().post(&alice, "/v1/blocks", block(&bob)).await })
    };
    waits_for_a_lock(stack, "block_user").await;
    sending.commit().await.unwrap();
    let (status, body) = blocking.await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(stack.message_count(direct).await, 1, "the send under way is stored");
}

#[tokio::test]
async fn a_block_hides_presence_and_typing_both_ways_and_leaves_group_messages() {
    let stack = stack();
    let http = stack.http();
    let (alice, bob, carol) = (
        stack.new_user("blocker").await,
        stack.new_user("blocked").await,
        stack.new_user("bystander").await,
    );
    // All three have written in the group: each is the others' contact.
    let group = stack.group(&alice, &[&bob, &carol]).await;
    for user in [&alice, &bob, &carol] {
        stack.send_text(user, group, "hello").await;
    }
    assert_eq!(
        presence_of(stack, &bob, &[&alice]).await,
        [alice.id.to_string()],
        "contacts before the block"
    );
    let (status, _) = http.post(&alice, "/v1/blocks", block(&bob)).await;
    assert_eq!(status, 201);

    let mut carol_socket = stack.connect(&carol).await;
    let mut bob_socket = stack.connect(&bob).await;
    let online = carol_socket.expect("presence").await;
    assert_eq!(
        (&online["data"]["user_id"], &online["data"]["online"]),
        (&json!(bob.id), &json!(true))
    );
    let mut alice_socket = stack.connect(&alice).await;
    let online = carol_socket.expect("presence").await;
    assert_eq!(
        (&online["data"]["user_id"], &online["data"]["online"]),
        (&json!(alice.id), &json!(true))
    );
    bob_socket.expect_none("presence").await;
    alice_socket.expect_none("presence").await;
    assert_eq!(
        presence_of(stack, &bob, &[&alice]).await,
        Vec::<String>::new(),
        "bob asks for alice"
    );
    assert_eq!(
        presence_of(stack, &alice, &[&bob]).await,
        Vec::<String>::new(),
        "alice asks for bob"
    );
    let (_, profiles) = http.get(&bob, &format!("/v1/users?ids={}", alice.id)).await;
    assert_eq!(profiles["users"][0]["online"], Value::Null, "{profiles}");
    assert_eq!(profiles["users"][0]["last_seen_at"], Value::Null, "{profiles}");
    let (_, stats) = http.get(&bob, &format!("/v1/conversations/{group}/stats")).await;
    assert_eq!(stats["online_count"], 2, "bob and carol, not alice: {stats}");

    // Typing: not between the two, still to carol.
    let typing = json!({"action": "typing", "conversation_id": group, "is_typing": true});
    alice_socket.send_json(typing.clone()).await;
    assert_eq!(
        carol_socket.expect("typing").await["data"]["user_id"],
        alice.id.to_string()
    );
    bob_socket.expect_none("typing").await;
    bob_socket.send_json(typing.clone()).await;
    assert_eq!(
        carol_socket.expect("typing").await["data"]["user_id"],
        bob.id.to_string()
    );
    alice_socket.expect_none("typing").await;

    // Group messages still reach the blocker (her client hides them).
    stack.send_text(&bob, group, "still here").await;
    assert_eq!(
        alice_socket.expect("message.created").await["data"]["body"],
        "still here"
    );

    // Read receipts: not between the two, still to carol (and the reader's
    // own devices).
    let (status, body) = stack.mark_read(&bob, group, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(carol_socket.expect("read").await["data"]["user_id"], bob.id.to_string());
    assert_eq!(bob_socket.expect("read").await["data"]["user_id"], bob.id.to_string());
    alice_socket.expect_none("read").await;
    let (status, body) = stack.mark_read(&alice, group, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        carol_socket.expect("read").await["data"]["user_id"],
        alice.id.to_string()
    );
    bob_socket.expect_none("read").await;

    // Going offline is not told to bob either.
    alice_socket.close().await;
    let offline = carol_socket.expect("presence").await;
    assert_eq!(offline["data"]["online"], false);
    bob_socket.expect_none("presence").await;

    // Lifted: presence and typing flow again.
    let (status, _) = http.delete(&alice, &format!("/v1/blocks/{}", bob.id)).await;
    assert_eq!(status, 200);
    let mut alice_socket = stack.connect(&alice).await;
    let online = bob_socket.expect("presence").await;
    assert_eq!(
        (&online["data"]["user_id"], &online["data"]["online"]),
        (&json!(alice.id), &json!(true))
    );
    assert_eq!(presence_of(stack, &bob, &[&alice]).await, [alice.id.to_string()]);
    alice_socket.send_json(typing).await;
    assert_eq!(
        bob_socket.expect("typing").await["data"]["user_id"],
        alice.id.to_string()
    );
}

#[tokio::test]
async fn block_rows_are_readable_by_the_blocker_alone_and_written_only_through_the_api() {
    let stack = stack();
    let rest = Rest::new();
    let (alice, bob, carol) = (
        stack.new_user("blocker").await,
        stack.new_user("blocked").await,
        stack.new_user("stranger").await,
    );
    let (status, _) = stack.http().post(&alice, "/v1/blocks", block(&bob)).await;
    assert_eq!(status, 201);

    let rows = |response: (u16, Value)| {
        assert_eq!(response.0, 200, "{}", response.1);
        response.1.as_array().unwrap().len()
    };
    let mine = format!(
        "blocks?select=blocker_id,blocked_id,created_at&blocker_id=eq.{}",
        alice.id
    );
    assert_eq!(
        rows(rest.get(Who::User(&alice), &mine).await),
        1,
        "the blocker reads her block"
    );
    assert_eq!(
        rows(rest.get(Who::User(&bob), &mine).await),
        0,
        "the blocked user reads nothing"
    );
    assert_eq!(
        rows(rest.get(Who::User(&bob), "blocks?select=*").await),
        0,
        "nor any block"
    );
    assert_eq!(
        rows(rest.get(Who::User(&carol), "blocks?select=*").await),
        0,
        "a stranger reads nothing"
    );
    assert_denied("anon reads blocks", &rest.get(Who::Anon, "blocks?select=*").await);
    let (status, listed) = rest.rpc(Who::User(&bob), "list_blocks", &json!({})).await;
    assert_eq!(
        (status, listed),
        (200, json!({"blocks": []})),
        "the blocked user's list_blocks"
    );

    // Writes: only through block_user / unblock_user, which act as the caller.
    for (what, method, path, body) in [
        (
            "bob blocks alice in carol's name",
            Method::POST,
            "blocks".to_string(),
            Some(json!({"blocker_id": carol.id, "blocked_id": alice.id})),
        ),
        (
            "bob inserts his own block, past the RPC",
            Method::POST,
            "blocks".to_string(),
            Some(json!({"blocker_id": bob.id, "blocked_id": alice.id})),
        ),
        (
            "bob deletes alice's block",
            Method::DELETE,
            format!("blocks?blocker_id=eq.{}", alice.id),
            None,
        ),
        (
            "bob rewrites alice's block",
            Method::PATCH,
            format!("blocks?blocker_id=eq.{}", alice.id),
            Some(json!({"blocked_id": carol.id})),
        ),
    ] {
        assert_denied(what, &rest.send(Who::User(&bob), method, &path, body).await);
    }
    assert_denied(
        "alice deletes her own block directly",
        &rest
            .send(
                Who::User(&alice),
                Method::DELETE,
                &format!("blocks?blocker_id=eq.{}", alice.id),
                None,
            )
            .await,
    );
    let (status, body) = rest
        .rpc(Who::User(&bob), "unblock_user", &json!({"p_user_id": bob.id}))
        .await;
    assert_eq!((status, &body["removed"]), (200, &json!(false)), "{body}");
    assert_denied(
        "anon blocks",
        &rest.rpc(Who::Anon, "block_user", &json!({"p_user_id": alice.id})).await,
    );

    let db = stack.db().await;
    let blocks: Vec<(Uuid, Uuid)> = db
        .query(
            "select blocker_id, blocked_id from blocks where $1 in (blocker_id, blocked_id) or $2 in (blocker_id, blocked_id)",
            &[&bob.id, &carol.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(blocks, [(alice.id, bob.id)], "only alice's block, as she made it");
}

#[tokio::test]
async fn presence_shows_only_once_both_have_written_in_a_direct_conversation() {
    let stack = stack();
    let http = stack.http();
    let (bob, stranger) = (stack.new_user("bob").await, stack.new_user("stranger").await);
    let bob_socket = stack.connect(&bob).await;
    let mut stranger_socket = stack.connect(&stranger).await;
    let hidden = |what: &'static str| {
        let (bob, stranger) = (&bob, &stranger);
        async move {
            assert_eq!(
                presence_of(stack, stranger, &[bob]).await,
                Vec::<String>::new(),
                "{what}: GET /v1/presence"
            );
            let (_, body) = stack.http().get(stranger, &format!("/v1/users?ids={}", bob.id)).await;
            assert_eq!(
                (&body["users"][0]["online"], &body["users"][0]["last_seen_at"]),
                (&Value::Null, &Value::Null),
                "{what}: GET /v1/users?ids="
            );
        }
    };

    // Opening a 1:1 with bob, and writing there, reveals nothing.
    let direct = stack.direct_conversation(&stranger, &bob).await;
    hidden("after opening the 1:1").await;
    stack
        .send_text(&stranger, direct, "hi bob, is the bike still for sale?")
        .await;
    hidden("after writing in the 1:1").await;

    // Nor does joining a public room bob is in, even when both write there.
    let room = stack.room(&bob, &[]).await;
    let (status, _) = http
        .post(&stranger, &format!("/v1/conversations/{room}/join"), json!({}))
        .await;
    assert_eq!(status, 200);
    stack.send_text(&bob, room, "welcome").await;
    stack.send_text(&stranger, room, "thanks").await;
    hidden("after both wrote in a room").await;
    let (_, connections) = http
        .get(&stranger, &format!("/v1/conversations/{room}/connections"))
        .await;
    assert_eq!(
        connections["users"],
        json!([{"user_id": stranger.id, "connections": 1}]),
        "bob's connections are his presence: {connections}"
    );
    let (_, stats) = http.get(&stranger, &format!("/v1/conversations/{room}/stats")).await;
    assert_eq!(stats["online_count"], 1, "{stats}");

    // bob comes and goes: the stranger is not told.
    bob_socket.close().await;
    let bob_socket = stack.connect(&bob).await;
    stranger_socket.expect_none("presence").await;

    // Leaving the 1:1 and opening it again changes nothing.
    let (status, _) = http
        .post(&stranger, &format!("/v1/conversations/{direct}/leave"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stack.direct_conversation(&stranger, &bob).await, direct);
    hidden("after leaving and reopening").await;

    // bob answers; but the stranger has not written since he came back, and
    // what he wrote before leaving does not count.
    stack.send_text(&bob, direct, "yes it is").await;
    hidden("after bob answered, the stranger silent since he came back").await;

    // The stranger writes again: now they are contacts, both ways.
    stack.send_text(&stranger, direct, "great, I'll take it").await;
    assert_eq!(presence_of(stack, &stranger, &[&bob]).await, [bob.id.to_string()]);
    let (_, body) = http.get(&stranger, &format!("/v1/users?ids={}", bob.id)).await;
    assert_eq!(body["users"][0]["online"], true, "{body}");
    bob_socket.close().await;
    let offline = stranger_socket.expect("presence").await;
    assert_eq!(
        (&offline["data"]["user_id"], &offline["data"]["online"]),
        (&json!(bob.id), &json!(false))
    );
    let _bob_again = stack.connect(&bob).await;
    assert_eq!(stranger_socket.expect("presence").await["data"]["online"], true);

    // bob leaves the 1:1: no longer contacts.
    let (status, _) = http
        .post(&bob, &format!("/v1/conversations/{direct}/leave"), json!({}))
        .await;
    assert_eq!(status, 200);
    hidden("after bob left").await;
}
