//! The Lambda Runtime API (2018-06-01) one instance talks to. Each instance
//! gets its own listener, so every call is attributed to exactly one process.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::pool::{FunctionPool, RuntimeCallError};
use super::InvokeError;

/// Lambda accepts 6 MB responses; leave room for larger local experiments.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct InstanceApi {
    pool: Arc<FunctionPool>,
    instance: u64,
}

pub(super) fn router(pool: Arc<FunctionPool>, instance: u64) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{request_id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{request_id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(InstanceApi { pool, instance })
}

async fn next(State(api): State<InstanceApi>) -> Response {
    let Some(next) = api.pool.next(api.instance).await else {
        return (
            StatusCode::GONE,
            Json(json!({"errorMessage": "instance stopped", "errorType": "InstanceStopped"})),
        )
            .into_response();
    };
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &next.request_id);
    set("lambda-runtime-deadline-ms", &next.deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &next.function_arn);
    set("lambda-runtime-trace-id", &next.trace_id);
    set("content-type", "application/json");
    (StatusCode::OK, headers, next.payload).into_response()
}

async fn response(State(api): State<InstanceApi>, Path(request_id): Path<String>, body: Bytes) -> Response {
    accepted(api.pool.complete(api.instance, &request_id, Ok(body)))
}

async fn error(
    State(api): State<InstanceApi>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = function_error(&headers, &body);
    tracing::debug!(function = api.pool.logical_id(), %error, "function returned an error");
    accepted(api.pool.complete(api.instance, &request_id, Err(error)))
}

async fn init_error(State(api): State<InstanceApi>, headers: HeaderMap, body: Bytes) -> Response {
    accepted(api.pool.init_failed(api.instance, function_error(&headers, &body)))
}

/// The error a runtime posts: `{"errorMessage", "errorType"}`, with the type
/// also (or only) in `Lambda-Runtime-Function-Error-Type`.
fn function_error(headers: &HeaderMap, body: &[u8]) -> InvokeError {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| parsed.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    InvokeError::Function {
        error_type: field("errorType").or(header_type).unwrap_or_else(|| "Unhandled".into()),
        error_message: field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    }
}

fn accepted(result: Result<(), RuntimeCallError>) -> Response {
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response(),
        Err(RuntimeCallError::InvalidRequestId) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})),
        )
            .into_response(),
        Err(RuntimeCallError::UnknownInstance) => (
            StatusCode::GONE,
            Json(json!({"errorMessage": "instance stopped", "errorType": "InstanceStopped"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runtime_errors() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Runtime.Custom"),
        );
        assert_eq!(
            function_error(&headers, br#"{"errorMessage":"Unauthorized","errorType":"&str"}"#),
            InvokeError::Function {
                error_type: "&str".into(),
                error_message: "Unauthorized".into()
            }
        );
        assert_eq!(
            function_error(&headers, b"boom"),
            InvokeError::Function {
                error_type: "Runtime.Custom".into(),
                error_message: "boom".into()
            }
        );
    }
}
