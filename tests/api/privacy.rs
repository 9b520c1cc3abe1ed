//! What one user must not learn about, or pose as, another, through the API
//! and straight through PostgREST with the user's own token: a room member's
//! read position, who left before one joined, usernames that look like
//! someone else's; and the tokens nobody should act with: expired ones (past
//! a few seconds of leeway) and anonymous sign-ins (refused unless allowed).

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::api::messages_path;
use crate::helpers::{assert_error, send_frame, stack, uuid_of, User, WsClient};
use crate::postgrest_direct::{assert_api_error, assert_denied, rows, Rest, Who};

/// The same user holding another token.
fn with_token(user: &User, token: String) -> User {
    User { token, ..user.clone() }
}

fn participant<'a>(conversation: &'a Value, user: &User) -> &'a Value {
    conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == user.id.to_string())
        .unwrap_or_else(|| panic!("{} among the participants: {conversation}", user.name))
}

/// A user's username and display name, as stored.
async fn profile_of(user: &User) -> (String, String) {
    let row = stack()
        .db()
        .await
        .query_one("select username, display_name from profiles where id = $1", &[&user.id])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn handshake_status(token: &str) -> Option<u16> {
    match WsClient::connect(&stack().websocket_url_with_token(token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
        Err(other) => panic!("unexpected handshake error {other}"),
        Ok(socket) => {
            socket.close().await;
            None
        }
    }
}

#[tokio::test]
async fn a_room_members_read_position_is_theirs_alone_while_groups_keep_read_receipts() {
    let stack = stack();
    let alice = stack.new_user("reader_owner").await;
    let bob = stack.new_user("reader").await;
    let room = stack.room(&alice, &[&bob]).await;
    let group = stack.group(&alice, &[&bob]).await;
    for conversation in [room, group] {
        stack.send_text(&alice, conversation, "read me").await;
        let (status, body) = stack.mark_read(&bob, conversation, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["last_read_seq"].as_i64().unwrap() > 0, "{body}");
    }

    // The API: in the room, nobody's position among the participants; bob's
    // own in `me`.
    let details = stack.details(&alice, room).await;
    for p in details["conversation"]["participants"].as_array().unwrap() {
        assert!(p["last_read_seq"].is_null(), "a room member's read position: {p}");
    }
    let own = stack.details(&bob, room).await;
    assert!(own["me"]["last_read_seq"].as_i64().unwrap() > 0, "{own}");
    // In the group, bob's read receipt.
    let details = stack.details(&alice, group).await;
    assert!(
        participant(&details["conversation"], &bob)["last_read_seq"]
            .as_i64()
            .unwrap()
            > 0
    );

    // PostgREST: the column is nobody's to read, in any conversation, even
    // one's own row (the API answers it).
    let rest = Rest::new();
    for (who, conversation) in [(&alice, room), (&alice, group), (&bob, room)] {
        let path = format!("participants?select=user_id,last_read_seq&conversation_id=eq.{conversation}");
        assert_denied(
            &format!("{} GET {path}", who.name),
            &rest.get(Who::User(who), &path).await,
        );
        let path = format!("participants?select=user_id&conversation_id=eq.{conversation}&last_read_seq=gt.0");
        assert_denied(
            &format!("{} GET {path}", who.name),
            &rest.get(Who::User(who), &path).await,
        );
    }
    // The RPC behind GET /v1/conversations/{id}, called directly, says the same.
    let (status, body) = rest
        .rpc(
            Who::User(&alice),
            "get_conversation",
            &json!({"p_conversation_id": room}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        participant(&body["conversation"], &bob)["last_read_seq"].is_null(),
        "{body}"
    );
}

#[tokio::test]
async fn who_left_is_not_shown_to_the_members_and_newcomers() {
    let stack = stack();
    let alice = stack.new_user("left_owner").await;
    let bob = stack.new_user("left_early").await;
    let carol = stack.new_user("newcomer").await;
    let room = stack.room(&alice, &[&bob]).await;
    let (status, body) = stack
        .http()
        .post(&bob, &format!("/v1/conversations/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack
        .http()
        .post(&carol, &format!("/v1/conversations/{room}/join"), json!({}))
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");

    let rest = Rest::new();
    let path = format!("participants?select=user_id,left_at&conversation_id=eq.{room}");
    for who in [&carol, &alice] {
        let seen = rows(
            &format!("{} reads the room's participants", who.name),
            rest.get(Who::User(who), &path).await,
        );
        let mut ids: Vec<Uuid> = seen.iter().map(|p| uuid_of(&p["user_id"])).collect();
        ids.sort();
        let mut expected = vec![alice.id, carol.id];
        expected.sort();
        assert_eq!(ids, expected, "{} sees who left: {seen:?}", who.name);
    }
    // As the API lists them.
    let details = stack.details(&carol, room).await;
    assert_eq!(
        details["conversation"]["participants"].as_array().unwrap().len(),
        2,
        "{details}"
    );
}

#[tokio::test]
async fn usernames_are_unique_in_any_letter_case_and_names_hide_nothing() {
    let stack = stack();
    let alice = stack.new_user("famous").await;
    let mallory = stack.new_user("impostor").await;
    let rest = Rest::new();
    let path = format!("profiles?id=eq.{}", mallory.id);
    let rename = |field: &'static str, value: String| {
        let rest = &rest;
        let path = path.clone();
        let mallory = mallory.clone();
        async move {
            rest.send(Who::User(&mallory), Method::PATCH, &path, Some(json!({ field: value })))
                .await
        }
    };

    // Taken in other letters: a unique violation (409).
    let (status, body) = rename("username", alice.name.to_uppercase()).await;
    assert_eq!(status, 409, "{body}");
    // Look-alikes and hidden characters: the character set (400).
    for name in [
        alice.name.replacen('a', "\u{430}", 1),
        format!("{}\u{200b}", alice.name),
        format!("{}\u{202e}", alice.name),
        format!("x{}", "\u{ff41}"),
        "no spaces".to_owned(),
        "ab".to_owned(),
        "a".repeat(33),
    ] {
        let (status, body) = rename("username", name.clone()).await;
        assert_eq!(status, 400, "username {name:?}: {body}");
    }
    // Nor one that shows nothing at all: blank, or the blank braille pattern.
    for name in [
        "Ali\u{200b}ce",
        "Alice\u{202e}",
        "\u{2066}Alice",
        "Al\u{feff}ice",
        "Alice\u{1b}[31m",
        "\u{3164}",
        "\u{2800}",
        "",
        "   ",
        "\u{a0}\u{3000}",
    ] {
        let (status, body) = rename("display_name", name.to_owned()).await;
        assert_eq!(status, 400, "display name {name:?}: {body}");
    }
    let profile = profile_of(&mallory).await;
    assert_eq!(
        profile,
        (mallory.name.clone(), "impostor".to_owned()),
        "nothing changed"
    );

    // What is allowed: the documented signs, any script in a display name.
    let (status, body) = rename("username", format!("{}.Real-1", mallory.name)).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = rename("display_name", "Mal \u{5d1} Zoë 👍\u{fe0f}".to_owned()).await;
    assert!(status == 200 || status == 204, "{status} {body}");
}

#[tokio::test]
async fn a_token_past_its_exp_by_more_than_a_few_seconds_is_refused_on_every_path() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let expired = stack.token(json!({
        "sub": alice.id.to_string(),
        "exp": chrono::Utc::now().timestamp() - 10,
    }));
    let late = with_token(&alice, expired.clone());
    let before = stack.message_count(conversation).await;

    assert_eq!(handshake_status(&expired).await, Some(401), "the WebSocket handshake");
    let answer = stack
        .http()
        .post(&late, &messages_path(conversation), json!({"body": "too late"}))
        .await;
    assert_error(answer, 401, "token_expired", "POST …/messages");
    assert_eq!(stack.message_count(conversation).await, before, "nothing stored");
    let path = format!("participants?select=user_id&conversation_id=eq.{conversation}");
    let (status, body) = Rest::new().get(Who::User(&late), &path).await;
    assert_eq!(status, 401, "PostgREST: {body}");
}

#[tokio::test]
async fn anonymous_sign_ins_are_refused_on_every_path() {
    let stack = stack();
    let (alice, bob, conversation) = stack.direct_pair().await;
    let anonymous = with_token(
        &alice,
        stack.token(json!({"sub": alice.id.to_string(), "is_anonymous": true})),
    );
    let before = stack.message_count(conversation).await;

    assert_eq!(
        handshake_status(&anonymous.token).await,
        Some(401),
        "the WebSocket handshake"
    );
    let answer = stack
        .http()
        .post(&anonymous, &messages_path(conversation), json!({"body": "who am I"}))
        .await;
    assert_error(answer, 401, "invalid_token", "POST …/messages");
    assert_error(
        stack.http().get(&anonymous, "/v1/me").await,
        401,
        "invalid_token",
        "GET /v1/me",
    );
    assert_eq!(stack.message_count(conversation).await, before, "nothing stored");

    // PostgREST accepts the token; the policies and RPCs see nobody.
    let rest = Rest::new();
    let who = Who::User(&anonymous);
    for path in [
        format!("participants?select=user_id&conversation_id=eq.{conversation}"),
        format!("messages?select=id&conversation_id=eq.{conversation}"),
        format!("conversations?select=id&id=eq.{conversation}"),
        format!("profiles?select=id&id=eq.{}", bob.id),
    ] {
        let seen = rows(&format!("anonymous GET {path}"), rest.get(who, &path).await);
        assert!(seen.is_empty(), "anonymous GET {path}: {seen:?}");
    }
    assert_api_error(
        "anonymous get_conversation",
        &rest
            .rpc(who, "get_conversation", &json!({"p_conversation_id": conversation}))
            .await,
        "not_a_participant",
    );
    assert_api_error(
        "anonymous list_conversations",
        &rest.rpc(who, "list_conversations", &json!({})).await,
        "invalid_argument",
    );
    let (status, body) = rest
        .send(
            who,
            Method::PATCH,
            &format!("profiles?id=eq.{}", alice.id),
            Some(json!({"display_name": "anon"})),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let profile = profile_of(&alice).await;
    assert_ne!(profile.1, "anon", "an anonymous sign-in changed the profile");
}

#[tokio::test]
async fn control_and_bidi_characters_are_refused_in_bodies_on_both_transports() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let before = stack.message_count(conversation).await;
    for body in [
        "bell\u{7}",
        "\u{1b}[31mred",
        "del\u{7f}",
        "nel\u{85}",
        "gpj.\u{202e}exe",
        "\u{2066}isolate",
    ] {
        let answer = stack
            .http()
            .post(&alice, &messages_path(conversation), json!({"body": body}))
            .await;
        assert_error(answer, 422, "invalid_body", &format!("REST body {body:?}"));
    }
    let mut socket = stack.connect(&alice).await;
    socket
        .send_json(send_frame(conversation, "evil\u{202e}txt.exe", "bidi-1"))
        .await;
    let error = socket.expect("error").await;
    assert_eq!(error["data"]["code"], "invalid_body", "{error}");
    assert_eq!(stack.message_count(conversation).await, before, "nothing stored");

    // Newlines, tabs and the bidi marks are text.
    let sent = stack
        .send(
            &alice,
            conversation,
            json!({"body": "line\n\tindented \u{5d0}\u{200f} ok"}),
        )
        .await;
    assert_eq!(sent["body"], "line\n\tindented \u{5d0}\u{200f} ok", "{sent}");
}
