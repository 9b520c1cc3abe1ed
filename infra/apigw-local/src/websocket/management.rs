//! The API Gateway Management API (`@connections`, restJson1), enough for
//! `aws-sdk-apigatewaymanagement`: errors carry `x-amzn-ErrorType` so the SDK
//! reports `GoneException` and friends. As on AWS, only requests signed
//! (SigV4, service `execute-api`) with the functions' key are served; the
//! session token says which function instance made the call.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::Message;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::WsApi;
use crate::faults::PushFault;
use crate::ids;
use crate::lambda::CallVerdict;
use crate::sigv4::{self, Incoming};

/// The service name requests are signed for.
const SERVICE: &str = "execute-api";
/// An oversized body is still read (and hashed, to check its signature) up
/// to this many times the limit, so the client finishes sending and gets its
/// 413 rather than a reset connection; beyond it the 413 goes at once,
/// without reading the rest.
const DRAIN_FACTOR: usize = 8;
/// A call from an instance being killed is answered once the process is
/// gone, or after this long at most.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn at_root(
    State(api): State<Arc<WsApi>>,
    Path(connection_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    manage(&api, &connection_id, method, &uri, &headers, body).await
}

pub(super) async fn at_stage(
    State(api): State<Arc<WsApi>>,
    Path((stage, connection_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if stage != api.spec.stage {
        return aws_error(StatusCode::FORBIDDEN, "ForbiddenException", Some("Forbidden"));
    }
    manage(&api, &connection_id, method, &uri, &headers, body).await
}

/// AWS's answer to a message over the limit.
fn too_large(limit: usize) -> Response {
    aws_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLargeException",
        Some(&format!("Message too long. Maximum size is {limit} bytes")),
    )
}

/// The body (`None` when over `limit`) and the SHA-256 of all of it, or the
/// answer to a body that cannot be read: 413 beyond the drain bound (too
/// large whatever its signature), 400 when the client broke off.
async fn read_body(body: Body, limit: usize) -> Result<(Option<Bytes>, String), Response> {
    let mut stream = body.into_data_stream();
    let mut hash = Sha256::new();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            aws_error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                Some("Unreadable request body"),
            )
        })?;
        seen += chunk.len();
        if seen > limit.saturating_mul(DRAIN_FACTOR) {
            return Err(too_large(limit));
        }
        hash.update(&chunk);
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    let digest = sigv4::hex(&hash.finalize());
    Ok(((seen <= limit).then(|| Bytes::from(kept)), digest))
}

/// Refuses what AWS would refuse before looking at the connection.
fn authenticate(
    api: &WsApi,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    payload_hash: &str,
) -> Result<(), Response> {
    let request = Incoming {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers,
        payload_hash,
    };
    // The role's own session token, or one issued to a function instance.
    let instance_session = |token: &str| api.functions.is_instance_session(token);
    sigv4::verify_with_sessions(
        &request,
        &api.credentials,
        &api.region,
        SERVICE,
        chrono::Utc::now(),
        instance_session,
    )
    .map_err(|refusal| {
        tracing::warn!(path = %uri.path(), error_type = refusal.error_type, "@connections request refused");
        aws_error(StatusCode::FORBIDDEN, refusal.error_type, Some(&refusal.message))
    })
}

/// What fault injection does to an authenticated call: kills the instance
/// that makes it (after its commit), holds it back, or answers it with an
/// error instead of serving it (`Some`).
async fn inject_faults(api: &WsApi, connection_id: &str, method: &Method, headers: &HeaderMap) -> Option<Response> {
    let caller = headers
        .get("x-amz-security-token")
        .and_then(|token| token.to_str().ok())
        .and_then(|token| api.functions.instance_of(token));
    if let Some((pool, instance)) = caller {
        if let CallVerdict::Refuse(mut gone) = pool.on_management_call(instance) {
            // Answered only once the caller is dead: nothing it does may follow from this call.
            let _ = tokio::time::timeout(KILL_WAIT, gone.changed()).await;
            return Some(internal_error());
        }
    }
    let faults = api.functions.faults();
    if let Some(delay) = faults.push_delay() {
        let delay_ms = delay.as_millis() as u64;
        tracing::info!(connection_id, %method, delay_ms, "fault injected: @connections call delayed");
        tokio::time::sleep(delay).await;
    }
    let fault = faults.push_fault()?;
    tracing::info!(connection_id, %method, ?fault, "fault injected: @connections call answered with an error");
    Some(match fault {
        PushFault::Gone => {
            // As a client that vanished: its socket is cut, and gone from now on.
            if let Some(connection) = api.registry.remove(connection_id) {
                connection.abort();
            }
            aws_error(StatusCode::GONE, "GoneException", None)
        }
        PushFault::Throttled => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            Some("Rate exceeded"),
        ),
        PushFault::Error => internal_error(),
    })
}

fn internal_error() -> Response {
    aws_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerErrorException",
        Some("Internal server error"),
    )
}

async fn manage(
    api: &WsApi,
    connection_id: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    // Unsigned requests are refused before their body is read.
    if !headers.contains_key("authorization") {
        return aws_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            Some("Missing Authentication Token"),
        );
    }
    let limit = api.limits.max_message_bytes;
    let (data, payload_hash) = match read_body(body, limit).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    if let Err(refused) = authenticate(api, &method, uri, headers, &payload_hash) {
        return refused;
    }
    if let Some(answer) = inject_faults(api, connection_id, &method, headers).await {
        return answer;
    }
    let gone = || aws_error(StatusCode::GONE, "GoneException", None);
    let response = match method {
        Method::POST => {
            let Some(data) = data else {
                return too_large(limit);
            };
            let Some(connection) = api.registry.get(connection_id) else {
                return gone();
            };
            let message = match String::from_utf8(data.to_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => Message::Binary(data),
            };
            if !connection.send(message) {
                return gone();
            }
            StatusCode::OK.into_response()
        }
        Method::GET => {
            let Some(connection) = api.registry.get(connection_id) else {
                return gone();
            };
            let info = &connection.info;
            Json(json!({
                "connectedAt": ids::iso_time(info.connected_at),
                "identity": {
                    "sourceIp": info.source_ip,
                    "userAgent": info.user_agent,
                },
                "lastActiveAt": ids::iso_time(info.last_active_at()),
            }))
            .into_response()
        }
        Method::DELETE => {
            // Gone for the Management API at once, even before the socket closes.
            let Some(connection) = api.registry.remove(connection_id) else {
                return gone();
            };
            if !connection.close(1000, "") {
                return gone();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => {
            return aws_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestException",
                Some("Method not allowed"),
            )
        }
    };
    with_request_id(response)
}

/// A restJson1 error: the type in `x-amzn-ErrorType`, `{"message": …}` in the body.
fn aws_error(status: StatusCode, error_type: &'static str, message: Option<&str>) -> Response {
    let mut response = (status, Json(json!({ "message": message }))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    with_request_id(response)
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn status_type_and_body(response: Response) -> (u16, String, serde_json::Value) {
        let status = response.status().as_u16();
        let error_type = response.headers()["x-amzn-errortype"].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, error_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_body_far_over_the_limit_is_refused_as_too_large_not_as_unreadable() {
        let limit = 16;
        let (kept, hash) = read_body(Body::from(vec![b'a'; limit]), limit).await.unwrap();
        assert_eq!(kept.as_deref(), Some(&[b'a'; 16][..]));
        assert_eq!(hash.len(), 64);
        // Over the limit but within the drain bound: read to the end (for its signature), not kept.
        let (kept, _) = read_body(Body::from(vec![b'a'; limit * DRAIN_FACTOR]), limit)
            .await
            .unwrap();
        assert_eq!(kept, None);

        let refused = read_body(Body::from(vec![b'a'; limit * DRAIN_FACTOR + 1]), limit)
            .await
            .unwrap_err();
        assert_eq!(
            status_type_and_body(refused).await,
            (
                413,
                "PayloadTooLargeException".to_string(),
                json!({"message": "Message too long. Maximum size is 16 bytes"})
            )
        );

        // A client that breaks off mid-body: unreadable.
        let broken = futures_util::stream::iter([
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let refused = read_body(Body::from_stream(broken), limit).await.unwrap_err();
        assert_eq!(status_type_and_body(refused).await.0, 400);
    }
}
