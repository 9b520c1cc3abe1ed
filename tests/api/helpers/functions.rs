//! The real functions (`target/debug/chat-functions`, each with its own
//! `_HANDLER`) run on raw events, as `sam local invoke -e` runs them: each
//! function is started against the Lambda
//! Runtime API of an emulator in this process (`apigw-local`, the one the
//! stack runs), which hands it the event and takes its answer. The functions
//! get the environment the stack gives its own, so they use the stack's
//! database, and what they push reaches the stack's WebSocket clients.

use std::collections::BTreeMap;

use apigw_local::{Credentials, Emulator, EmulatorConfig, WsLimits};
use serde_json::Value;

use super::stack;
use super::stack::{binaries_dir, workspace_root};
use super::template::template_functions;

/// The stage the stack runs with (`chat-local`).
const STAGE: &str = "dev";

pub struct Functions {
    emulator: Emulator,
    /// Handler -> logical id in `template.yaml`.
    by_handler: BTreeMap<String, String>,
}

impl Functions {
    /// The template's functions, ready to run (each starts on its first event).
    pub async fn start() -> Functions {
        let info = &stack().info;
        let issuer = std::env::var("SUPABASE_JWT_ISSUER").unwrap_or_default();
        // The stack's values for the template's parameters and the variables it
        // adds to every function (infra/local-stack, `emulator::config`).
        let parameter_overrides = BTreeMap::from([
            ("StageName".to_owned(), STAGE.to_owned()),
            ("SupabaseUrl".to_owned(), info.postgrest_url.clone()),
            ("SupabaseAnonKey".to_owned(), info.anon_key.clone()),
            ("SupabaseServiceRoleKey".to_owned(), info.service_role_key.clone()),
            ("SupabaseJwtSecret".to_owned(), info.jwt_secret.clone()),
            ("SupabaseJwtIssuer".to_owned(), issuer.clone()),
            ("VapidPublicKey".to_owned(), info.vapid_public_key.clone()),
            ("VapidPrivateKey".to_owned(), info.vapid_private_key.clone()),
            ("VapidSubject".to_owned(), "mailto:chat-local@localhost".to_owned()),
            (
                "WebhookUrl".to_owned(),
                super::push_service::push_service().webhook_url(),
            ),
            (
                "WebhookSecret".to_owned(),
                super::push_service::WEBHOOK_SECRET.to_owned(),
            ),
        ]);
        let function_env = BTreeMap::from([
            ("SUPABASE_URL".to_owned(), info.postgrest_url.clone()),
            ("SUPABASE_REST_URL".to_owned(), info.postgrest_url.clone()),
            ("SUPABASE_ANON_KEY".to_owned(), info.anon_key.clone()),
            ("SUPABASE_JWT_SECRET".to_owned(), info.jwt_secret.clone()),
            ("SUPABASE_JWT_ISSUER".to_owned(), issuer),
            // The stack's Management API: pushes reach the test's sockets.
            ("WEBSOCKET_MANAGEMENT_ENDPOINT".to_owned(), info.management_url.clone()),
            (
                "RUST_LOG".to_owned(),
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]);
        let loopback = "127.0.0.1:0".parse().unwrap();
        let emulator = Emulator::start(EmulatorConfig {
            template_path: workspace_root().join("template.yaml"),
            bin_dir: binaries_dir(),
            http_addr: loopback,
            ws_addr: loopback,
            parameter_overrides,
            function_env,
            ws_limits: WsLimits::default(),
            default_max_instances: 1,
            region: info.aws_region.clone(),
            // The stack's key, so what the functions push reaches its sockets.
            credentials: Credentials {
                access_key_id: info.aws_access_key_id.clone(),
                secret_access_key: info.aws_secret_access_key.clone(),
                session_token: info.aws_session_token.clone(),
            },
            async_retry_delay: apigw_local::AWS_ASYNC_RETRY_DELAY,
        })
        .await
        .expect("start the function emulator");
        let by_handler = template_functions()
            .into_iter()
            .filter_map(|(id, function)| Some((function.handler?, id)))
            .collect();
        Functions { emulator, by_handler }
    }

    /// Runs the function whose Handler is `handler` on `event`: what it
    /// answered, or the error it reported (`errorType: errorMessage`).
    pub async fn invoke(&self, handler: &str, event: &str) -> Result<Value, String> {
        let logical_id = self
            .by_handler
            .get(handler)
            .unwrap_or_else(|| panic!("no function in template.yaml has the Handler {handler}"));
        let answer = self
            .emulator
            .invoke(logical_id, event.as_bytes().to_vec())
            .await
            .map_err(|error| error.to_string())?;
        Ok(serde_json::from_slice(&answer).unwrap_or_else(|e| panic!("{handler} answered with no JSON: {e}")))
    }
}
