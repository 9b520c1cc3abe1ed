//! A hostile client calling the PostgREST-compatible server directly, as
//! anyone holding the project URL and the anon key (it ships in every client)
//! can: with a signed-in user's own token, or with the anon key alone. None of
//! the Lambda functions' checks apply here; the grants, the policies and the
//! RPCs' own checks have to hold by themselves.
//!
//! A refused privilege (table or EXECUTE) is 401 from postrust and 403 from
//! PostgREST (401 for anon); both are accepted. What must hold either way is
//! checked in the database: nothing changed.

use crate::helpers::{stack, User};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Who a request claims to be.
#[derive(Clone, Copy)]
pub(crate) enum Who<'a> {
    /// The anon key alone, as a client that never signed in.
    Anon,
    /// A signed-in user's own access token.
    User(&'a User),
    /// The service_role key: only to check that a refused call would have
    /// reached its function at all.
    Service,
}

impl Who<'_> {
    fn label(&self) -> String {
        match self {
            Who::Anon => "anon".into(),
            Who::User(user) => user.name.clone(),
            Who::Service => "service_role".into(),
        }
    }
}

/// A raw client of the PostgREST-compatible server.
pub(crate) struct Rest {
    base: String,
    anon_key: String,
    service_role_key: String,
    client: reqwest::Client,
}

impl Rest {
    pub(crate) fn new() -> Rest {
        let info = &stack().info;
        Rest {
            base: info.postgrest_url.trim_end_matches('/').to_string(),
            anon_key: info.anon_key.clone(),
            service_role_key: info.service_role_key.clone(),
            client: reqwest::Client::new(),
        }
    }

    pub(crate) async fn send(&self, who: Who<'_>, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = match who {
            Who::Anon => self.anon_key.as_str(),
            Who::User(user) => user.token.as_str(),
            Who::Service => self.service_role_key.as_str(),
        };
        // Supabase's gateway wants the apikey header; the token decides the role.
        let mut request = self
            .client
            .request(method, format!("{}/{}", self.base, path.trim_start_matches('/')))
            .header("apikey", &self.anon_key)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to the PostgREST server");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub(crate) async fn get(&self, who: Who<'_>, path: &str) -> (u16, Value) {
        self.send(who, Method::GET, path, None).await
    }

    pub(crate) async fn rpc(&self, who: Who<'_>, function: &str, args: &Value) -> (u16, Value) {
        self.send(who, Method::POST, &format!("rpc/{function}"), Some(args.clone()))
            .await
    }
}

/// A refused privilege: 401 (postrust, or anon on PostgREST) or 403
/// (PostgREST for a signed-in role). Writes may also be refused before the
/// database is asked, as a method the table does not allow (405).
#[track_caller]
pub(crate) fn assert_denied(what: &str, response: &(u16, Value)) {
    let (status, body) = response;
    assert!(
        matches!(status, 401 | 403 | 405),
        "{what}: expected a refusal, got {status} {body}"
    );
}

/// A refusal raised by an RPC itself (P0001 -> 400), and its code.
#[track_caller]
pub(crate) fn assert_api_error(what: &str, response: &(u16, Value), code: &str) {
    let (status, body) = response;
    assert_eq!(*status, 400, "{what}: {body}");
    assert_eq!(body["message"], code, "{what}: {body}");
}

/// The rows of a successful read.
#[track_caller]
pub(crate) fn rows(what: &str, response: (u16, Value)) -> Vec<Value> {
    let (status, body) = response;
    assert_eq!(status, 200, "{what}: {body}");
    body.as_array()
        .unwrap_or_else(|| panic!("{what}: not an array: {body}"))
        .clone()
}

/// The body of a successful RPC call.
#[track_caller]
fn ok(what: &str, response: (u16, Value)) -> Value {
    let (status, body) = response;
    assert_eq!(status, 200, "{what}: {body}");
    body
}

fn uuids(rows: &[Value], key: &str) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = rows
        .iter()
        .map(|row| row[key].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

/// alice and bob share a group (with a message only they may read), a 1:1
/// and a public room; mallory shares nothing with anyone. alice has a live
/// connection and has archived and muted the group. Made in the database
/// directly, as the Lambda functions would through the internal RPCs.
struct Fixture {
    alice: User,
    bob: User,
    mallory: User,
    group: Uuid,
    room: Uuid,
    direct: Uuid,
    message: Uuid,
    alice_connection: String,
}

const SECRET: &str = "swordfish";

async fn fixture() -> Fixture {
    let stack = stack();
    let (alice, bob, mallory) = (
        stack.new_user("alice").await,
        stack.new_user("bob").await,
        stack.new_user("mallory").await,
    );
    let db = stack.db().await;
    let group: Uuid = db
        .query_one(
            "select (public.create_conversation($1, 'group', 'secret plans', $2::uuid[]) -> 'result' -> 'conversation' ->> 'id')::uuid",
            &[&alice.id, &vec![bob.id]],
        )
        .await
        .unwrap()
        .get(0);
    let room: Uuid = db
        .query_one(
            "select (public.create_conversation($1, 'room', $2, $3::uuid[]) -> 'result' -> 'conversation' ->> 'id')::uuid",
            &[&bob.id, &format!("hideout {}", Uuid::new_v4()), &vec![alice.id]],
        )
        .await
        .unwrap()
        .get(0);
    let direct: Uuid = db
        .query_one(
            "select (public.open_direct_conversation($1, $2) -> 'result' -> 'conversation' ->> 'id')::uuid",
            &[&alice.id, &bob.id],
        )
        .await
        .unwrap()
        .get(0);
    let send =
        "select (public.send_message($1, $2, $3, 'text', $4, null, null) -> 'result' -> 'message' ->> 'id')::uuid";
    let message: Uuid = db
        .query_one(
            send,
            &[
                &alice.id,
                &group,
                &Uuid::new_v4().to_string(),
                &format!("the password is {SECRET}"),
            ],
        )
        .await
        .unwrap()
        .get(0);
    for conversation in [room, direct] {
        db.query_one(
            send,
            &[
                &bob.id,
                &conversation,
                &Uuid::new_v4().to_string(),
                &format!("{SECRET} here too"),
            ],
        )
        .await
        .unwrap();
    }
    // alice answers bob in the 1:1: both have taken part, so they are contacts
    // (each sees the other's presence).
    db.query_one(
        send,
        &[&alice.id, &direct, &Uuid::new_v4().to_string(), &"hi bob".to_string()],
    )
    .await
    .unwrap();
    db.execute(
        "select public.update_conversation($1, $2, null, true, true)",
        &[&alice.id, &group],
    )
    .await
    .unwrap();
    let alice_connection = format!("pgrst-{}", Uuid::new_v4().simple());
    db.execute(
        "select public.register_connection($1, $2, now() + interval '1 hour')",
        &[&alice_connection, &alice.id],
    )
    .await
    .unwrap();
    Fixture {
        alice,
        bob,
        mallory,
        group,
        room,
        direct,
        message,
        alice_connection,
    }
}

/// Everything stored about the fixture's users and conversations, to show
/// that refused requests changed nothing.
async fn snapshot(f: &Fixture) -> Value {
    let conversations = vec![f.group, f.room, f.direct];
    let users = vec![f.alice.id, f.bob.id, f.mallory.id];
    stack()
        .db()
        .await
        .query_one(
            "select jsonb_build_object(
               'conversations', (select jsonb_agg(to_jsonb(c) order by c.id) from public.conversations c
                                  where c.id = any($1) or c.created_by = any($2)),
               'participants', (select jsonb_agg(to_jsonb(p) order by p.conversation_id, p.user_id) from public.participants p
                                 where p.conversation_id = any($1) or p.user_id = any($2)),
               'messages', (select jsonb_agg(to_jsonb(m) - 'search' order by m.id) from public.messages m
                             where m.conversation_id = any($1) or m.sender_id = any($2)),
               'events', (select jsonb_agg(to_jsonb(e) order by e.conversation_id, e.seq) from public.conversation_events e
                           where e.conversation_id = any($1) or e.actor_id = any($2)),
               'connections', (select jsonb_agg(to_jsonb(c) order by c.connection_id) from public.connections c
                                where c.user_id = any($2)),
               'profiles', (select jsonb_agg(to_jsonb(p) order by p.id) from public.profiles p where p.id = any($2))
             )",
            &[&conversations, &users],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn reads_show_only_what_the_policies_and_column_grants_allow() {
    let f = fixture().await;
    let rest = Rest::new();
    let (alice, bob, mallory) = (Who::User(&f.alice), Who::User(&f.bob), Who::User(&f.mallory));
    let ours = format!("{},{},{}", f.group, f.room, f.direct);

    // An outsider sees no row of others' conversations: not the group or the
    // 1:1, nor anyone's participants, messages or events. A public room's own
    // row is browsable by design; what is said in it is not.
    let seen = rows(
        "mallory reads the conversations",
        rest.get(mallory, &format!("conversations?select=id&id=in.({ours})"))
            .await,
    );
    assert_eq!(uuids(&seen, "id"), vec![f.room]);
    let seen = rows(
        "mallory reads every conversation",
        rest.get(mallory, "conversations?select=id,kind").await,
    );
    assert!(
        seen.iter().all(|c| c["kind"] == "room"),
        "mallory sees a conversation that is not a room: {seen:?}"
    );
    for (table, columns) in [
        ("participants", "conversation_id,user_id"),
        ("messages", "conversation_id,body"),
        ("conversation_events", "conversation_id,payload"),
    ] {
        // mallory is in nothing, so every row is someone else's.
        let seen = rows(
            &format!("mallory reads {table}"),
            rest.get(mallory, &format!("{table}?select={columns}")).await,
        );
        assert!(seen.is_empty(), "mallory reads {table}: {seen:?}");
    }
    let (_, found) = rest
        .get(mallory, &format!("messages?select=id&body=like.*{SECRET}*"))
        .await;
    assert_eq!(found, json!([]), "mallory searches message bodies");

    // A member reads their conversations, with read receipts but without
    // anyone's private settings.
    let seen = rows(
        "alice reads the conversations",
        rest.get(alice, &format!("conversations?select=id&id=in.({ours})"))
            .await,
    );
    assert_eq!(uuids(&seen, "id"), {
        let mut all = vec![f.group, f.room, f.direct];
        all.sort();
        all
    });
    let seen = rows(
        "bob reads the group's messages",
        rest.get(bob, &format!("messages?select=id,body&conversation_id=eq.{}", f.group))
            .await,
    );
    assert_eq!(uuids(&seen, "id"), vec![f.message]);
    let seen = rows(
        "bob reads the group's participants",
        rest.get(
            bob,
            &format!(
                "participants?select=conversation_id,user_id,role,joined_at,left_at&conversation_id=eq.{}",
                f.group
            ),
        )
        .await,
    );
    assert_eq!(seen.len(), 2);
    let seen = rows(
        "bob reads the group's events",
        rest.get(
            bob,
            &format!("conversation_events?select=seq&conversation_id=eq.{}", f.group),
        )
        .await,
    );
    assert!(!seen.is_empty());

    // Private columns are refused outright, to members too, however asked for.
    for (who, path) in [
        (alice, format!("profiles?select=id,last_seen_at&id=eq.{}", f.alice.id)),
        (bob, format!("profiles?select=last_seen_at&id=eq.{}", f.alice.id)),
        (mallory, "profiles?select=last_seen_at".to_string()),
        (mallory, "profiles".to_string()),
        (mallory, "profiles?select=*".to_string()),
        (mallory, "profiles?select=id&last_seen_at=not.is.null".to_string()),
        (mallory, "profiles?select=id&order=last_seen_at.desc".to_string()),
        (
            bob,
            format!("participants?select=user_id,archived&conversation_id=eq.{}", f.group),
        ),
        (
            bob,
            format!("participants?select=user_id,muted&conversation_id=eq.{}", f.group),
        ),
        (bob, format!("participants?conversation_id=eq.{}", f.group)),
        (bob, format!("participants?select=*&conversation_id=eq.{}", f.group)),
        (
            bob,
            format!(
                "participants?select=user_id&muted=is.true&conversation_id=eq.{}",
                f.group
            ),
        ),
        (
            alice,
            format!("participants?select=archived,muted&user_id=eq.{}", f.alice.id),
        ),
        (
            bob,
            format!(
                "participants?select=user_id,last_delivered_seq&conversation_id=eq.{}",
                f.group
            ),
        ),
        (
            bob,
            format!(
                "participants?select=user_id&last_delivered_seq=gt.0&conversation_id=eq.{}",
                f.group
            ),
        ),
    ] {
        assert_denied(&format!("{} GET {path}", who.label()), &rest.get(who, &path).await);
    }
    // The public part of a profile stays readable.
    let seen = rows(
        "mallory reads alice's public profile",
        rest.get(
            mallory,
            &format!(
                "profiles?select=id,username,display_name,avatar_url,created_at&id=eq.{}",
                f.alice.id
            ),
        )
        .await,
    );
    assert_eq!(seen.len(), 1);
    assert!(seen[0].get("last_seen_at").is_none());

    // Connections: never, not even one's own connection ids.
    for who in [alice, mallory, Who::Anon] {
        for path in [
            "connections?select=connection_id".to_string(),
            format!("connections?select=user_id&user_id=eq.{}", f.alice.id),
        ] {
            assert_denied(&format!("{} GET {path}", who.label()), &rest.get(who, &path).await);
        }
    }

    // anon reads no table at all.
    for path in [
        "profiles?select=id,username",
        "conversations?select=id",
        "participants?select=user_id",
        "messages?select=id,body",
        "conversation_events?select=seq",
        "connections?select=connection_id",
    ] {
        assert_denied(&format!("anon GET {path}"), &rest.get(Who::Anon, path).await);
    }
}

#[tokio::test]
async fn direct_writes_to_every_table_change_nothing() {
    let f = fixture().await;
    let rest = Rest::new();
    let before = snapshot(&f).await;

    // alice (a member, the group's owner), mallory (an outsider) and anon.
    for who in [Who::User(&f.alice), Who::User(&f.mallory), Who::Anon] {
        let label = who.label();
        for (table, row) in [
            (
                "conversations",
                json!({"kind": "group", "name": "forged", "created_by": f.alice.id}),
            ),
            (
                "participants",
                json!({"conversation_id": f.group, "user_id": f.mallory.id, "role": "owner"}),
            ),
            (
                "messages",
                json!({"conversation_id": f.group, "seq": 999, "sender_id": f.alice.id, "client_msg_id": "forged", "body": "forged"}),
            ),
            (
                "conversation_events",
                json!({"conversation_id": f.group, "seq": 999, "type": "message.created", "payload": {}}),
            ),
            (
                "connections",
                json!({"connection_id": format!("forged-{}", Uuid::new_v4().simple()), "user_id": f.alice.id}),
            ),
            ("profiles", json!({"id": f.mallory.id, "username": "forged"})),
        ] {
            assert_denied(
                &format!("{label} inserts into {table}"),
                &rest.send(who, Method::POST, table, Some(row)).await,
            );
        }
        for (path, change) in [
            (
                format!("conversations?id=eq.{}", f.group),
                json!({"name": "pwned", "last_seq": 0}),
            ),
            (
                format!("participants?conversation_id=eq.{}", f.group),
                json!({"role": "owner", "last_read_seq": 999}),
            ),
            (
                format!("participants?conversation_id=eq.{}&user_id=eq.{}", f.group, f.bob.id),
                json!({"last_delivered_seq": 999}),
            ),
            (format!("messages?id=eq.{}", f.message), json!({"body": "pwned"})),
            (
                format!("conversation_events?conversation_id=eq.{}", f.group),
                json!({"payload": {}}),
            ),
            (
                format!("connections?user_id=eq.{}", f.alice.id),
                json!({"token_exp": "2099-01-01T00:00:00Z"}),
            ),
            (
                format!("profiles?id=eq.{}", f.alice.id),
                json!({"last_seen_at": "2000-01-01T00:00:00Z"}),
            ),
        ] {
            assert_denied(
                &format!("{label} PATCH {path}"),
                &rest.send(who, Method::PATCH, &path, Some(change)).await,
            );
        }
        for path in [
            format!("conversations?id=eq.{}", f.group),
            format!("participants?conversation_id=eq.{}", f.group),
            format!("messages?id=eq.{}", f.message),
            format!("conversation_events?conversation_id=eq.{}", f.group),
            format!("connections?user_id=eq.{}", f.alice.id),
            format!("profiles?id=eq.{}", f.alice.id),
        ] {
            assert_denied(
                &format!("{label} DELETE {path}"),
                &rest.send(who, Method::DELETE, &path, None).await,
            );
        }
    }

    // Someone else's profile: the editable columns are granted, but the policy
    // matches no row of another user, so the update finds nothing to change.
    let (status, body) = rest
        .send(
            Who::User(&f.mallory),
            Method::PATCH,
            &format!("profiles?id=eq.{}", f.alice.id),
            Some(json!({"display_name": "pwned"})),
        )
        .await;
    assert!(status < 500, "mallory renames alice: {status} {body}");

    assert_eq!(snapshot(&f).await, before, "the database after every refused write");
}

/// The internal RPCs with arguments that would do harm if they ran: acting
/// for alice, on alice's conversation, message and connection. No argument is
/// null: postrust passes a JSON null as an empty string, which fails the cast
/// to uuid or bigint before the privilege check is even reached.
fn internal_calls(f: &Fixture) -> Vec<(&'static str, Value)> {
    let (alice, bob, mallory) = (f.alice.id, f.bob.id, f.mallory.id);
    vec![
        (
            "register_connection",
            json!({"p_connection_id": "pgrst-forged", "p_user_id": alice, "p_token_exp": "2099-01-01T00:00:00Z"}),
        ),
        ("unregister_connection", json!({"p_connection_id": f.alice_connection})),
        ("touch_connection", json!({"p_connection_id": f.alice_connection})),
        ("remove_connections", json!({"p_connection_ids": [f.alice_connection]})),
        (
            "send_message",
            json!({"p_sender": alice, "p_conversation_id": f.group, "p_client_msg_id": "forged", "p_kind": "text", "p_body": "forged"}),
        ),
        (
            "send_typing",
            json!({"p_user_id": alice, "p_conversation_id": f.group, "p_is_typing": true}),
        ),
        (
            "open_direct_conversation",
            json!({"p_user_id": mallory, "p_other_user_id": alice}),
        ),
        (
            "create_conversation",
            json!({"p_user_id": alice, "p_kind": "group", "p_name": "forged", "p_member_ids": [mallory]}),
        ),
        (
            "update_conversation",
            json!({"p_user_id": alice, "p_conversation_id": f.group, "p_name": "pwned"}),
        ),
        (
            "add_members",
            json!({"p_user_id": alice, "p_conversation_id": f.group, "p_user_ids": [mallory]}),
        ),
        ("join_room", json!({"p_user_id": mallory, "p_conversation_id": f.room})),
        (
            "leave_conversation",
            json!({"p_user_id": bob, "p_conversation_id": f.group}),
        ),
        (
            "mark_read",
            json!({"p_user_id": bob, "p_conversation_id": f.group, "p_seq": 1}),
        ),
        (
            "mark_delivered",
            json!({"p_user_id": bob, "p_conversation_id": f.group, "p_seq": 1}),
        ),
        (
            "edit_message",
            json!({"p_user_id": alice, "p_message_id": f.message, "p_body": "pwned"}),
        ),
        ("delete_message", json!({"p_user_id": alice, "p_message_id": f.message})),
        // Helpers the RPCs use; they answer with connection ids and counters.
        (
            "live_recipients",
            json!({"p_conversation_id": f.group, "p_except_user_id": bob}),
        ),
        ("contact_recipients", json!({"p_user_id": alice})),
        ("user_recipients", json!({"p_user_ids": [alice]})),
        ("next_conversation_seq", json!({"p_conversation_id": f.group})),
        (
            "append_conversation_event",
            json!({"p_conversation_id": f.group, "p_type": "message.created", "p_actor_id": alice, "p_message_id": f.message, "p_payload": {}}),
        ),
        ("conversation_json", json!({"p_conversation_id": f.group})),
        (
            "unread_count",
            json!({"p_conversation_id": f.group, "p_user_id": bob, "p_last_read_seq": 0}),
        ),
        (
            "require_participant",
            json!({"p_conversation_id": f.group, "p_user_id": alice}),
        ),
        (
            "lock_as_participant",
            json!({"p_conversation_id": f.group, "p_user_id": alice}),
        ),
        (
            "lock_own_watermarks",
            json!({"p_user_id": bob, "p_conversation_id": f.group, "p_seq": 1}),
        ),
        (
            "receipt_recipients",
            json!({"p_kind": "group", "p_conversation_id": f.group, "p_user_id": bob, "p_audience": [alice]}),
        ),
        (
            "receipts_seen_by",
            json!({"p_conversation": {"kind": "group", "participants": []}, "p_viewer": alice}),
        ),
    ]
}

/// The same call with every id replaced by one that matches nothing, so that
/// it harms nothing even where it is allowed.
fn harmless(args: &Value) -> Value {
    match args {
        Value::String(s) if s.parse::<Uuid>().is_ok() => json!(Uuid::new_v4()),
        Value::String(s) if s.starts_with("pgrst-") => json!(format!("pgrst-missing-{}", Uuid::new_v4().simple())),
        Value::Array(items) => Value::Array(items.iter().map(harmless).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), harmless(v))).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn internal_rpcs_are_refused_to_users_and_anon() {
    let f = fixture().await;
    let rest = Rest::new();
    let before = snapshot(&f).await;

    for (function, args) in internal_calls(&f) {
        // Even alice, acting for herself, may not: only the Lambda functions,
        // which verify the token first, call these.
        for who in [Who::User(&f.alice), Who::User(&f.mallory), Who::Anon] {
            assert_denied(
                &format!("{} calls {function}", who.label()),
                &rest.rpc(who, function, &args).await,
            );
        }
        // The refusal was the function's grants, not a call that matched no
        // function (which would prove nothing).
        let (status, body) = rest.rpc(Who::Service, function, &harmless(&args)).await;
        assert!(
            status != 404 && status < 500,
            "service_role calls {function} with the same arguments: {status} {body}"
        );
    }

    assert_eq!(snapshot(&f).await, before, "the database after every refused call");
}

#[tokio::test]
async fn user_facing_rpcs_refuse_anon_and_tell_outsiders_nothing() {
    let f = fixture().await;
    let rest = Rest::new();
    let (alice, bob, mallory) = (Who::User(&f.alice), Who::User(&f.bob), Who::User(&f.mallory));

    // anon: none of them (health aside).
    for (function, args) in [
        ("get_me", json!({})),
        ("search_users", json!({"p_query": "a"})),
        ("get_presence", json!({"p_user_ids": [f.alice.id]})),
        ("get_profiles", json!({"p_user_ids": [f.alice.id]})),
        ("list_rooms", json!({})),
        ("list_conversations", json!({})),
        ("get_conversation", json!({"p_conversation_id": f.group})),
        ("list_events", json!({"p_conversation_id": f.group})),
        ("list_messages", json!({"p_conversation_id": f.group})),
        ("conversation_stats", json!({"p_conversation_id": f.group})),
        ("conversation_connections", json!({"p_conversation_id": f.group})),
        ("unread_counts", json!({})),
        ("search_messages", json!({"p_query": SECRET})),
    ] {
        assert_denied(
            &format!("anon calls {function}"),
            &rest.rpc(Who::Anon, function, &args).await,
        );
        // The same call signed in reaches the function (so the refusal above
        // was the grant).
        let (status, body) = rest.rpc(mallory, function, &args).await;
        assert!(
            status == 200 || status == 400,
            "mallory calls {function}: {status} {body}"
        );
    }
    ok(
        "anon asks for health",
        rest.rpc(Who::Anon, "health_stats", &json!({})).await,
    );

    // An outsider asking about alice's group gets exactly what a made-up id gets.
    for (function, extra) in [
        ("get_conversation", json!({})),
        ("list_events", json!({"p_after_seq": 0})),
        ("list_messages", json!({})),
        ("conversation_stats", json!({})),
        ("conversation_connections", json!({})),
        ("search_messages", json!({"p_query": SECRET})),
    ] {
        let call = |conversation: Uuid| {
            let mut args = extra.clone();
            args["p_conversation_id"] = json!(conversation);
            args
        };
        let foreign = rest.rpc(mallory, function, &call(f.group)).await;
        assert_api_error(
            &format!("mallory calls {function} on alice's group"),
            &foreign,
            "not_a_participant",
        );
        let missing = rest.rpc(mallory, function, &call(Uuid::new_v4())).await;
        assert_eq!(
            foreign, missing,
            "{function}: a foreign conversation and a made-up one must look the same"
        );
        // A member gets an answer.
        ok(
            &format!("bob calls {function}"),
            rest.rpc(bob, function, &call(f.group)).await,
        );
    }

    // Nothing of alice's conversations shows through the listings either.
    let found = ok(
        "mallory searches everywhere",
        rest.rpc(mallory, "search_messages", &json!({"p_query": SECRET})).await,
    );
    assert_eq!(found["results"], json!([]));
    let listed = ok(
        "mallory lists her conversations",
        rest.rpc(mallory, "list_conversations", &json!({"p_limit": 100})).await,
    );
    assert_eq!(listed["conversations"], json!([]));
    let unread = ok(
        "mallory's unread counts",
        rest.rpc(mallory, "unread_counts", &json!({})).await,
    );
    assert_eq!(unread["total"], 0);

    // Presence only between people who share a conversation.
    let presence = ok(
        "mallory asks for alice's presence",
        rest.rpc(mallory, "get_presence", &json!({"p_user_ids": [f.alice.id]}))
            .await,
    );
    assert_eq!(presence["presence"], json!([]));
    let users = ok(
        "mallory searches for alice",
        rest.rpc(mallory, "search_users", &json!({"p_query": f.alice.name}))
            .await,
    );
    assert_eq!(users["users"].as_array().unwrap().len(), 1, "{users}");
    assert_eq!(users["users"][0]["online"], Value::Null);
    assert_eq!(users["users"][0]["last_seen_at"], Value::Null);
    // By id, the same: the public profile search shows, never the presence.
    let profiles = ok(
        "mallory asks for alice's profile by id",
        rest.rpc(mallory, "get_profiles", &json!({"p_user_ids": [f.alice.id]}))
            .await,
    );
    assert_eq!(profiles["users"], users["users"], "get_profiles and search_users alike");
    let profiles = ok(
        "bob asks for alice's profile by id",
        rest.rpc(bob, "get_profiles", &json!({"p_user_ids": [f.alice.id]}))
            .await,
    );
    assert_eq!(profiles["users"][0]["online"], true, "{profiles}");
    let presence = ok(
        "bob asks for alice's presence",
        rest.rpc(bob, "get_presence", &json!({"p_user_ids": [f.alice.id]}))
            .await,
    );
    assert_eq!(presence["presence"][0]["online"], true);

    // Private settings reach their owner only.
    let mine = ok(
        "alice gets the group",
        rest.rpc(alice, "get_conversation", &json!({"p_conversation_id": f.group}))
            .await,
    );
    assert_eq!(
        (mine["me"]["archived"].clone(), mine["me"]["muted"].clone()),
        (json!(true), json!(true))
    );
    let theirs = ok(
        "bob gets the group",
        rest.rpc(bob, "get_conversation", &json!({"p_conversation_id": f.group}))
            .await,
    );
    assert_eq!(
        (theirs["me"]["archived"].clone(), theirs["me"]["muted"].clone()),
        (json!(false), json!(false))
    );
    for participant in theirs["conversation"]["participants"].as_array().unwrap() {
        assert!(
            participant.get("archived").is_none() && participant.get("muted").is_none(),
            "{participant}"
        );
    }
    // Connection counts, never connection ids.
    let connections = ok(
        "bob counts the group's connections",
        rest.rpc(bob, "conversation_connections", &json!({"p_conversation_id": f.group}))
            .await,
    );
    assert!(!connections.to_string().contains(&f.alice_connection), "{connections}");
    assert_eq!(connections["total_connections"], 1);
}
