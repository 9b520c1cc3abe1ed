//! `$connect`: the REQUEST authorizer, then the route's function; the upgrade
//! completes only if both agree, with the function's headers on the 101.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;

use super::authorizer::{self, Decision};
use super::events::{self, ConnectRequest};
use super::registry::ConnectionInfo;
use super::{connection, message, WsApi};
use crate::ids;
use crate::query::Pairs;

/// How much one read from a client's socket asks for. tungstenite zeroes
/// this much of its buffer before every read attempt, and the connection's
/// task attempts one each time it wakes, for every post it delivers too: at
/// the default (128 KiB) that memset was a seventh of the emulator's CPU under
/// a fan-out load. Client frames are small; a bigger one takes more reads.
const READ_CHUNK_BYTES: usize = 4096;

/// Headers of the `$connect` answer that must not reach the 101 response.
const NOT_FORWARDED: [&str; 6] = [
    "connection",
    "upgrade",
    "content-length",
    "transfer-encoding",
    "sec-websocket-accept",
    "content-type",
];

pub(super) async fn handshake(
    api: Arc<WsApi>,
    peer: SocketAddr,
    query: Pairs,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let source_ip = peer.ip().to_string();
    let request = ConnectRequest::new(headers, query, &source_ip, api.local_port);
    let domain_name = request
        .header("host")
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{}", api.local_port));
    let user_agent = request.header("user-agent").map(str::to_string);
    let mut info = ConnectionInfo::new(
        api.registry.new_id(),
        Utc::now(),
        source_ip,
        user_agent,
        domain_name,
        None,
    );
    let connect_route = api.route("$connect").cloned();
    if connect_route.is_some() && !api.throttle.admit("$connect") {
        return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    }

    if let Some(authorizer_function) = connect_route.as_ref().and_then(|r| r.authorizer.as_deref()) {
        let event = events::authorizer_event(&api.identity(), &info, &request, &ids::short_id(), Utc::now());
        let started = Instant::now();
        let answer = api.functions.invoke(authorizer_function, to_payload(&event)).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match authorizer::decide(answer, &events::connect_method_arn(&api.identity()), latency_ms) {
            Decision::Allow(context) => info.authorizer = Some(context),
            Decision::Deny => return message(StatusCode::FORBIDDEN, "Forbidden"),
            Decision::Unauthorized => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            Decision::Failed(reason) => {
                tracing::warn!(function = authorizer_function, %reason, "authorizer failed");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            }
        }
    }
    let info = Arc::new(info);

    let mut extra_headers = HeaderMap::new();
    if let Some(route) = &connect_route {
        let event = events::connect_event(&api.identity(), &info, &request, &ids::short_id(), Utc::now());
        let answer = match api.functions.invoke(&route.function, to_payload(&event)).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(function = %route.function, %error, "$connect integration failed");
                return message(StatusCode::BAD_GATEWAY, "Internal server error");
            }
        };
        match ConnectAnswer::parse(&answer) {
            Some(answer) if answer.status.is_success() => extra_headers = answer.headers,
            Some(answer) => return answer.into_rejection(),
            None => {
                tracing::warn!(function = %route.function, "$connect returned a malformed response");
                return message(StatusCode::BAD_GATEWAY, "Internal server error");
            }
        }
    }

    let failed_api = Arc::clone(&api);
    let failed_info = Arc::clone(&info);
    let mut response = upgrade
        .max_frame_size(api.limits.max_frame_bytes)
        .max_message_size(api.limits.max_message_bytes)
        .read_buffer_size(READ_CHUNK_BYTES)
        .on_failed_upgrade(move |error| {
            tracing::warn!(connection_id = %failed_info.id, %error, "websocket upgrade failed");
            tokio::spawn(connection::disconnect(
                failed_api,
                failed_info,
                1006,
                "Connection closed abnormally".into(),
            ));
        })
        .on_upgrade(move |socket| connection::run(api, info, socket));
    for (name, value) in &extra_headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

fn to_payload(event: &Value) -> Vec<u8> {
    serde_json::to_vec(event).expect("events serialize")
}

/// The `$connect` function's answer: `{statusCode, headers, body}`; an answer
/// without `statusCode` (e.g. `null`) accepts the connection.
struct ConnectAnswer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl ConnectAnswer {
    fn parse(payload: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(payload).ok()?;
        let status = match value.get("statusCode") {
            None | Some(Value::Null) => StatusCode::OK,
            Some(Value::Number(n)) => StatusCode::from_u16(u16::try_from(n.as_u64()?).ok()?).ok()?,
            Some(Value::String(s)) => StatusCode::from_u16(s.trim().parse().ok()?).ok()?,
            Some(_) => return None,
        };
        let mut headers = HeaderMap::new();
        if let Some(Value::Object(map)) = value.get("headers") {
            for (name, value) in map {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                headers.insert(name, HeaderValue::from_str(&text).ok()?);
            }
        }
        let body = value
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Some(ConnectAnswer { status, headers, body })
    }

    fn into_rejection(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if !["connection", "upgrade", "content-length", "transfer-encoding"].contains(&name.as_str()) {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_answers() {
        let ok = ConnectAnswer::parse(br#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat"}}"#).unwrap();
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.headers["sec-websocket-protocol"], "chat");
        let rejected = ConnectAnswer::parse(br#"{"statusCode":429,"body":"slow down"}"#).unwrap();
        assert_eq!(rejected.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(rejected.body, "slow down");
        assert_eq!(ConnectAnswer::parse(b"null").unwrap().status, StatusCode::OK);
        assert!(ConnectAnswer::parse(b"nope").is_none());
        assert!(ConnectAnswer::parse(br#"{"statusCode":true}"#).is_none());
    }
}
