//! The WebSocket API (`/<stage>`, also `/`) and its Management API
//! (`/<stage>/@connections/{id}`, also `/@connections/{id}`) on one port.

mod authorizer;
mod connection;
mod events;
mod handshake;
mod management;
mod registry;
mod route_selection;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use crate::config::WsLimits;
use crate::lambda::FunctionSet;
use crate::sigv4::Credentials;
use crate::template::{WebSocketSpec, WsRouteSpec};
use crate::throttle::Throttle;
use crate::{query, redact};
use events::ApiIdentity;
use registry::Registry;
use route_selection::RouteSelector;

pub(crate) struct WsApi {
    spec: WebSocketSpec,
    api_id: String,
    region: String,
    /// The only key the Management API accepts.
    credentials: Credentials,
    limits: WsLimits,
    local_port: u16,
    functions: Arc<FunctionSet>,
    registry: Registry,
    selector: RouteSelector,
    throttle: Throttle,
    closing: AtomicBool,
    /// Connection tasks still running; shutdown waits for 0.
    live: watch::Sender<usize>,
}

impl WsApi {
    pub fn new(
        spec: WebSocketSpec,
        api_id: String,
        region: String,
        credentials: Credentials,
        limits: WsLimits,
        local_port: u16,
        functions: Arc<FunctionSet>,
    ) -> Self {
        WsApi {
            selector: RouteSelector::new(&spec.route_selection_expression, &spec.routes),
            throttle: Throttle::new(spec.throttling.clone()),
            spec,
            api_id,
            region,
            credentials,
            limits,
            local_port,
            functions,
            registry: Registry::default(),
            closing: AtomicBool::new(false),
            live: watch::Sender::new(0),
        }
    }

    fn identity(&self) -> ApiIdentity<'_> {
        ApiIdentity {
            api_id: &self.api_id,
            stage: &self.spec.stage,
            region: &self.region,
        }
    }

    fn route(&self, route_key: &str) -> Option<&WsRouteSpec> {
        self.spec.routes.get(route_key)
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Closes every socket with 1001 and waits (bounded) until each one's
    /// `$disconnect` has run.
    pub async fn close_all(&self, wait_at_most: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        for connection in self.registry.all() {
            connection.close(1001, "Going away");
        }
        let mut live = self.live.subscribe();
        let _ = tokio::time::timeout(wait_at_most, live.wait_for(|n| *n == 0)).await;
    }
}

pub(crate) fn router(api: Arc<WsApi>) -> Router {
    Router::new()
        .route("/", any(connect_at_root))
        .route("/{stage}", any(connect_at_stage))
        .route("/@connections/{connection_id}", any(management::at_root))
        .route("/{stage}/@connections/{connection_id}", any(management::at_stage))
        .fallback(|| async { message(StatusCode::FORBIDDEN, "Forbidden") })
        .with_state(api)
}

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

async fn connect_at_root(
    State(api): State<Arc<WsApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    connect(api, peer, uri, headers, upgrade).await
}

async fn connect_at_stage(
    State(api): State<Arc<WsApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Upgrade,
) -> Response {
    if stage != api.spec.stage {
        return message(StatusCode::FORBIDDEN, "Forbidden");
    }
    connect(api, peer, uri, headers, upgrade).await
}

async fn connect(api: Arc<WsApi>, peer: SocketAddr, uri: Uri, headers: HeaderMap, upgrade: Upgrade) -> Response {
    let Ok(upgrade) = upgrade else {
        return message(StatusCode::UPGRADE_REQUIRED, "Upgrade Required");
    };
    if api.is_closing() {
        return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    let query = query::parse(uri.query().unwrap_or_default());
    let protocols = headers
        .get("sec-websocket-protocol")
        .map(|v| redact::subprotocols(&String::from_utf8_lossy(v.as_bytes())));
    let path = redact::path_and_query(uri.path(), &query);
    let response = handshake::handshake(api, peer, query, &headers, upgrade).await;
    tracing::info!(
        %path,
        protocols = protocols.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        "websocket handshake"
    );
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}
