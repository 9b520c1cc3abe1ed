//! The HTTP API: routes from the template's `HttpApi` events, payload format
//! 2.0, CORS from its `CorsConfiguration`, plus `GET /__emulator/stats`.

mod cors;
mod event;
mod response;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::json;

use crate::lambda::FunctionSet;
use crate::query::{self, Pairs};
use crate::template::{CorsSpec, HttpRouteSpec, StageThrottling};
use crate::throttle::Throttle;
use crate::{ids, redact};
use cors::Cors;
use routes::RouteTable;

/// API Gateway's payload quota for HTTP APIs.
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Beyond this an oversized body is not even read to the end.
const DRAIN_BOUND: usize = 8 * MAX_REQUEST_BYTES;

pub(crate) struct HttpApi {
    routes: RouteTable,
    cors: Option<Cors>,
    throttle: Throttle,
    functions: Arc<FunctionSet>,
    api_id: String,
    local_port: u16,
}

impl HttpApi {
    pub fn new(
        routes: &[HttpRouteSpec],
        cors: Option<CorsSpec>,
        throttling: StageThrottling,
        functions: Arc<FunctionSet>,
        api_id: String,
        local_port: u16,
    ) -> Self {
        HttpApi {
            routes: RouteTable::new(routes),
            cors: cors.map(Cors::new),
            throttle: Throttle::new(throttling),
            functions,
            api_id,
            local_port,
        }
    }
}

pub(crate) fn router(api: Arc<HttpApi>) -> Router {
    Router::new()
        .route("/__emulator/stats", get(stats))
        .route("/__emulator/reclaim-idle", post(reclaim_idle))
        .fallback(handle)
        .with_state(api)
}

async fn stats(State(api): State<Arc<HttpApi>>) -> Response {
    Json(api.functions.stats()).into_response()
}

/// Stops every idle instance, as Lambda does to environments it reclaims:
/// each function's next invocation is a cold start.
async fn reclaim_idle(State(api): State<Arc<HttpApi>>) -> Response {
    Json(serde_json::json!({ "reclaimed": api.functions.reclaim_idle().await })).into_response()
}

async fn handle(
    State(api): State<Arc<HttpApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let request_id = ids::short_id();
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_string();
    let query = query::parse(parts.uri.query().unwrap_or_default());
    let method = parts.method.as_str().to_string();
    let authorization = parts
        .headers
        .get("authorization")
        .map(|v| redact::authorization(&String::from_utf8_lossy(v.as_bytes())));

    let mut response = match &api.cors {
        Some(cors) if Cors::is_preflight(&parts.method, &parts.headers) && !api.routes.routes_preflight(&raw_path) => {
            cors.preflight(&parts.headers)
        }
        _ => {
            let mut response = match respond(&api, peer, &parts, &query, body, &request_id).await {
                Ok(response) | Err(response) => response,
            };
            // Every response, the gateway's own errors included.
            if let Some(cors) = &api.cors {
                cors.decorate(&parts.headers, response.headers_mut());
            }
            response
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    tracing::info!(
        %method,
        path = %redact::path_and_query(&raw_path, &query),
        authorization = authorization.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id,
        "http api"
    );
    response
}

async fn respond(
    api: &HttpApi,
    peer: SocketAddr,
    parts: &axum::http::request::Parts,
    query: &Pairs,
    body: Body,
    request_id: &str,
) -> Result<Response, Response> {
    let body = read_body(body)
        .await
        .ok_or_else(|| message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"))?;

    let route = api
        .routes
        .find(parts.method.as_str(), parts.uri.path())
        .ok_or_else(|| message(StatusCode::NOT_FOUND, "Not Found"))?;
    if !api.throttle.admit(&route.route_key) {
        return Err(message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"));
    }

    let protocol = format!("{:?}", parts.version);
    let request = event::HttpRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or_default(),
        query,
        protocol: &protocol,
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        local_port: api.local_port,
    };
    let context = event::EventContext {
        api_id: &api.api_id,
        request_id,
        at: chrono::Utc::now(),
    };
    let event = event::build(&request, &route, &context);
    let payload = serde_json::to_vec(&event).expect("events serialize");

    let internal_error = || message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    let answer = api.functions.invoke(&route.function, payload).await.map_err(|error| {
        tracing::warn!(function = %route.function, %error, request_id, "integration failed");
        internal_error()
    })?;
    response::from_lambda(&answer).map_err(|error| {
        tracing::warn!(function = %route.function, %error, request_id, "malformed Lambda response");
        internal_error()
    })
}

/// The body, or `None` when it is over the quota. An oversized body is still
/// read (up to a bound) so the client finishes sending and sees the 413
/// instead of a reset connection.
async fn read_body(body: Body) -> Option<Bytes> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        seen += chunk.len();
        if seen > DRAIN_BOUND {
            return None;
        }
        if seen <= MAX_REQUEST_BYTES {
            collected.extend_from_slice(&chunk);
        }
    }
    (seen <= MAX_REQUEST_BYTES).then(|| Bytes::from(collected))
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}
