//! Replays every sample event in `events/` (the ones `sam local invoke -e` uses)
//! through its handler, against the test stack. Placeholders in the samples (the
//! access token, the conversation id) are replaced with live values.

use std::path::PathBuf;

use chat::config::Config;
use chat::lambda::Services;
use chat::ws::{AuthorizerRequest, WsEvent};
use chat_e2e::{stack, User};
use serde_json::Value;

const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_ACCESS_TOKEN";
const CONVERSATION_PLACEHOLDER: &str = "c0ffee00-0000-4000-8000-000000000001";
/// Seeded local user the samples speak as (sql/seed.sql).
const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";
const SAMPLE_CONNECTION: &str = "L0SM9cOFvHcCIhw=";

fn event_text(name: &str, token: &str, conversation: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{name}.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace(TOKEN_PLACEHOLDER, token)
        .replace(CONVERSATION_PLACEHOLDER, conversation)
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
    let conversation = stack.direct_conversation(&alice, &bob).await.to_string();
    let load = |name: &str| event_text(name, &alice.token, &conversation);
    let mut replayed = Vec::new();

    // $connect authorizer: allowed with a real token, refused with the placeholder.
    let request: AuthorizerRequest = serde_json::from_str(&load("ws-authorizer")).unwrap();
    let allowed = chat::ws::authorize(&services.verifier, request).await.expect("allowed");
    assert_eq!(allowed.principal_id, ALICE);
    assert_eq!(allowed.context["user_id"], ALICE);
    let placeholder: AuthorizerRequest =
        serde_json::from_str(&event_text("ws-authorizer", TOKEN_PLACEHOLDER, &conversation)).unwrap();
    assert!(chat::ws::authorize(&services.verifier, placeholder).await.is_err());
    replayed.push("ws-authorizer");

    let ws = |name: &str| -> WsEvent { serde_json::from_str(&load(name)).unwrap() };
    assert_eq!(chat::ws::connect(&services.store, &ws("ws-connect")).await.status_code, 200);
    assert!(stack.connection_ids(&alice).await.contains(&SAMPLE_CONNECTION.to_string()));
    replayed.push("ws-connect");

    // The sample connection is not a live socket, so replies to it get 410 and are dropped.
    let sent = chat::ws::send_message(&services.store, &services.pusher, &ws("ws-send-message")).await;
    assert_eq!(sent.status_code, 200);
    assert_eq!(stack.message_count(conversation.parse().unwrap()).await, 1);
    replayed.push("ws-send-message");
    for (name, response) in [
        ("ws-typing", chat::ws::typing(&services.store, &services.pusher, &ws("ws-typing")).await),
        ("ws-ping", chat::ws::ping(&services.store, &services.pusher, &ws("ws-ping")).await),
        ("ws-default", chat::ws::default_route(&services.pusher, &ws("ws-default")).await),
    ] {
        assert_eq!(response.status_code, 200, "{name}");
        replayed.push(name);
    }
    assert_eq!(chat::ws::disconnect(&services.store, &ws("ws-disconnect")).await.status_code, 200);
    assert!(!stack.connection_ids(&alice).await.contains(&SAMPLE_CONNECTION.to_string()));
    replayed.push("ws-disconnect");

    let http = |name: &str| lambda_http::request::from_str(&load(name)).unwrap();
    let body = |response: lambda_http::Response<lambda_http::Body>| -> (u16, Value) {
        let status = response.status().as_u16();
        (status, serde_json::from_slice(response.body().as_ref()).unwrap())
    };
    let (status, health) = body(chat::http::health(&services.store).await);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    replayed.push("http-health");
    let (status, opened) =
        body(chat::http::open_direct_conversation(&services.verifier, &services.store, &http("http-open-direct-conversation")).await);
    assert!(status == 201 || status == 200, "{opened}");
    assert_eq!(opened["conversation"]["context_type"], "listing");
    replayed.push("http-open-direct-conversation");
    let (status, page) = body(chat::http::list_messages(&services.verifier, &services.store, &http("http-list-messages")).await);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    replayed.push("http-list-messages");
    let (status, sent) = body(
        chat::http::send_message(&services.verifier, &services.store, &services.pusher, &http("http-send-message")).await,
    );
    assert_eq!(status, 201, "{sent}");
    replayed.push("http-send-message");

    // Every file in events/ was replayed above.
    let mut on_disk: Vec<String> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}
