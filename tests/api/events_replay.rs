//! Replays every sample event in `events/` (the ones `sam local invoke -e` uses)
//! through its handler, against the test stack. Placeholders in the samples (the
//! access token, the conversation id) are replaced with live values.

use std::path::PathBuf;

use chat::config::Config;
use chat::lambda::Services;
use chat::ws::{AuthorizerRequest, WsEvent};
use chat_e2e::{stack, User};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_ACCESS_TOKEN";
/// Ids in the samples that stand for a conversation, a room and a message.
const CONVERSATION_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000001";
const ROOM_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000002";
const MESSAGE_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000003";
/// Seeded local user the samples speak as (sql/seed.sql).
const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
const SAMPLE_CONNECTION: &str = "L0SM9cOFvHcCIhw=";

/// Live values for the placeholders.
#[derive(Clone)]
struct Live {
    token: String,
    conversation: String,
    room: String,
    message: String,
}

fn event_text(name: &str, live: &Live) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{name}.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace(TOKEN_PLACEHOLDER, &live.token)
        .replace(CONVERSATION_PLACEHOLDER, &live.conversation)
        .replace(ROOM_PLACEHOLDER, &live.room)
        .replace(MESSAGE_PLACEHOLDER, &live.message)
}

fn services() -> Services {
    let info = &stack().info;
    let env = [
        ("SUPABASE_URL", info.postgrest_url.as_str()),
        ("SUPABASE_REST_URL", info.postgrest_url.as_str()),
        ("SUPABASE_ANON_KEY", info.anon_key.as_str()),
        ("SUPABASE_SERVICE_ROLE_KEY", info.service_role_key.as_str()),
        ("SUPABASE_JWT_SECRET", info.jwt_secret.as_str()),
        ("WEBSOCKET_MANAGEMENT_ENDPOINT", info.management_url.as_str()),
    ];
    Services::from_config(Config::from(&env).unwrap()).unwrap()
}

/// Runs a REST sample through the handler its function's `main` calls.
async fn run_http(services: &Services, name: &str, request: &Request) -> Response<Body> {
    let (v, st, p) = (&services.verifier, &services.store, &services.pusher);
    match name {
        "http-health" => chat::http::health(st).await,
        "http-get-me" => chat::http::get_me(v, st, request).await,
        "http-search-users" => chat::http::search_users(v, st, request).await,
        "http-get-presence" => chat::http::get_presence(v, st, request).await,
        "http-list-rooms" => chat::http::list_rooms(v, st, request).await,
        "http-list-conversations" => chat::http::list_conversations(v, st, request).await,
        "http-create-conversation" => chat::http::create_conversation(v, st, p, request).await,
        "http-open-direct-conversation" => chat::http::open_direct_conversation(v, st, p, request).await,
        "http-get-conversation" => chat::http::get_conversation(v, st, request).await,
        "http-update-conversation" => chat::http::update_conversation(v, st, p, request).await,
        "http-add-members" => chat::http::add_members(v, st, p, request).await,
        "http-join-conversation" => chat::http::join_conversation(v, st, p, request).await,
        "http-leave-conversation" => chat::http::leave_conversation(v, st, p, request).await,
        "http-list-messages" => chat::http::list_messages(v, st, request).await,
        "http-send-message" => chat::http::send_message(v, st, p, request).await,
        "http-list-events" => chat::http::list_events(v, st, request).await,
        "http-mark-read" => chat::http::mark_read(v, st, p, request).await,
        "http-conversation-stats" => chat::http::conversation_stats(v, st, request).await,
        "http-conversation-connections" => chat::http::conversation_connections(v, st, request).await,
        "http-unread-counts" => chat::http::unread_counts(v, st, request).await,
        "http-edit-message" => chat::http::edit_message(v, st, p, request).await,
        "http-delete-message" => chat::http::delete_message(v, st, p, request).await,
        "http-search-messages" => chat::http::search_messages(v, st, request).await,
        other => panic!("no handler for the sample {other}"),
    }
}

#[tokio::test]
async fn every_sample_event_runs_through_its_handler() {
    let stack = stack();
    let services = services();
    let alice = User {
        id: ALICE.parse().unwrap(),
        name: "alice".into(),
        token: stack.token(serde_json::json!({"sub": ALICE})),
    };
    let bob = stack.new_user("bob").await;
    let (status, room) = stack
        .http()
        .post(&alice, "/v1/conversations", serde_json::json!({"kind": "room", "name": format!("Samples {}", bob.id), "member_ids": [bob.id]}))
        .await;
    assert_eq!(status, 201, "{room}");
    let mut live = Live {
        token: alice.token.clone(),
        conversation: stack.direct_conversation(&alice, &bob).await.to_string(),
        room: room["conversation"]["id"].as_str().unwrap().to_string(),
        message: String::new(),
    };
    let mut replayed = Vec::new();

    // $connect authorizer: allowed with a real token, refused with the placeholder.
    let request: AuthorizerRequest = serde_json::from_str(&event_text("ws-authorizer", &live)).unwrap();
    let allowed = chat::ws::authorize(&services.verifier, request).await.expect("allowed");
    assert_eq!(allowed.principal_id, ALICE);
    assert_eq!(allowed.context["user_id"], ALICE);
    let placeholder = Live {
        token: TOKEN_PLACEHOLDER.into(),
        ..live.clone()
    };
    let refused: AuthorizerRequest = serde_json::from_str(&event_text("ws-authorizer", &placeholder)).unwrap();
    assert!(chat::ws::authorize(&services.verifier, refused).await.is_err());
    replayed.push("ws-authorizer");

    let ws = |name: &str, live: &Live| -> WsEvent { serde_json::from_str(&event_text(name, live)).unwrap() };
    let (st, p) = (&services.store, &services.pusher);
    assert_eq!(chat::ws::connect(st, p, &ws("ws-connect", &live)).await.status_code, 200);
    assert!(stack.connection_ids(&alice).await.contains(&SAMPLE_CONNECTION.to_string()));
    replayed.push("ws-connect");

    // The sample connection is not a live socket, so replies to it get 410 and are dropped.
    let sent = chat::ws::send_message(st, p, &ws("ws-send-message", &live)).await;
    assert_eq!(sent.status_code, 200);
    assert_eq!(stack.message_count(live.conversation.parse().unwrap()).await, 1);
    replayed.push("ws-send-message");
    for name in ["ws-typing", "ws-mark-read", "ws-ping", "ws-default"] {
        let event = ws(name, &live);
        let response = match name {
            "ws-typing" => chat::ws::typing(st, p, &event).await,
            "ws-mark-read" => chat::ws::mark_read(st, p, &event).await,
            "ws-ping" => chat::ws::ping(st, p, &event).await,
            _ => chat::ws::default_route(p, &event).await,
        };
        assert_eq!(response.status_code, 200, "{name}");
        replayed.push(name);
    }
    assert_eq!(chat::ws::disconnect(st, p, &ws("ws-disconnect", &live)).await.status_code, 200);
    assert!(!stack.connection_ids(&alice).await.contains(&SAMPLE_CONNECTION.to_string()));
    replayed.push("ws-disconnect");

    // REST samples in an order where each finds what it needs (the message
    // sent is then edited and deleted; the room is left last).
    for name in [
        "http-health",
        "http-open-direct-conversation",
        "http-list-messages",
        "http-send-message",
        "http-get-me",
        "http-search-users",
        "http-get-presence",
        "http-list-rooms",
        "http-list-conversations",
        "http-create-conversation",
        "http-get-conversation",
        "http-update-conversation",
        "http-list-events",
        "http-mark-read",
        "http-conversation-stats",
        "http-conversation-connections",
        "http-unread-counts",
        "http-search-messages",
        "http-edit-message",
        "http-delete-message",
        "http-add-members",
        "http-join-conversation",
        "http-leave-conversation",
    ] {
        let request = lambda_http::request::from_str(&event_text(name, &live)).unwrap();
        let response = run_http(&services, name, &request).await;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert!((200..300).contains(&status), "{name}: {status} {body}");
        match name {
            "http-health" => assert_eq!(body["status"], "ok"),
            "http-open-direct-conversation" => assert_eq!(body["conversation"]["context_type"], "listing"),
            "http-list-messages" => assert_eq!(body["messages"].as_array().unwrap().len(), 1),
            "http-send-message" => live.message = body["message"]["id"].as_str().unwrap().to_string(),
            "http-search-messages" => assert!(!body["results"].as_array().unwrap().is_empty(), "{body}"),
            "http-edit-message" => assert_eq!(body["message"]["body"], "Hello over REST (edited)"),
            "http-delete-message" => assert!(body["message"]["body"].is_null()),
            _ => {}
        }
        replayed.push(name);
    }

    // Every file in events/ was replayed above.
    let mut on_disk: Vec<String> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}
