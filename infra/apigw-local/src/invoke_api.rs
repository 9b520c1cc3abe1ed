//! Lambda's `Invoke` API (`POST /2015-03-31/functions/{name}/invocations`),
//! served beside the Management API, for functions that invoke others: as on
//! AWS, only requests signed (SigV4, service `lambda`) with the functions'
//! key. `X-Amz-Invocation-Type: Event` queues the event and answers 202
//! ([`AsyncInvoker`]); `RequestResponse` (the default) runs it and answers
//! with what the handler returned; `DryRun` answers 204.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::async_invoke::AsyncInvoker;
use crate::lambda::FunctionSet;
use crate::sigv4::{self, Credentials, Incoming};

const SERVICE: &str = "lambda";
/// Lambda's payload quotas: 256 KiB for an event, 6 MiB for a request-response call.
const MAX_EVENT_BYTES: usize = 256 * 1024;
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

pub(crate) struct InvokeApi {
    pub functions: Arc<FunctionSet>,
    pub invoker: Arc<AsyncInvoker>,
    pub credentials: Credentials,
    pub region: String,
}

pub(crate) fn router(api: Arc<InvokeApi>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(api)
}

async fn invoke(
    State(api): State<Arc<InvokeApi>>,
    Path(function): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload_hash = sigv4::hex(&Sha256::digest(&body));
    let request = Incoming {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &headers,
        payload_hash: &payload_hash,
    };
    // The role's own session token, or one issued to a function instance.
    let instance_session = |token: &str| api.functions.is_instance_session(token);
    let now = chrono::Utc::now();
    if let Err(refusal) =
        sigv4::verify_with_sessions(&request, &api.credentials, &api.region, SERVICE, now, instance_session)
    {
        tracing::warn!(%function, error_type = refusal.error_type, "Invoke request refused");
        return aws_error(StatusCode::FORBIDDEN, refusal.error_type, &refusal.message);
    }
    let Some(logical_id) = api.functions.find(&function) else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {function}"),
        );
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    match invocation_type {
        "Event" => {
            if body.len() > MAX_EVENT_BYTES {
                return too_large(body.len(), MAX_EVENT_BYTES);
            }
            let request_id = api.invoker.enqueue(&logical_id, body);
            with_request_id(StatusCode::ACCEPTED.into_response(), &request_id)
        }
        "RequestResponse" => {
            if body.len() > MAX_REQUEST_BYTES {
                return too_large(body.len(), MAX_REQUEST_BYTES);
            }
            let request_id = crate::ids::lambda_request_id();
            let response = match api.functions.invoke(&logical_id, body).await {
                Ok(answer) => (StatusCode::OK, answer).into_response(),
                Err(error) => {
                    let mut response = (
                        StatusCode::OK,
                        Json(json!({"errorType": error.error_type(), "errorMessage": error.error_message()})),
                    )
                        .into_response();
                    response
                        .headers_mut()
                        .insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
                    response
                }
            };
            with_request_id(response, &request_id)
        }
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        other => aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Unsupported invocation type {other}"),
        ),
    }
}

fn too_large(size: usize, limit: usize) -> Response {
    aws_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestTooLargeException",
        &format!("Request must be smaller than {limit} bytes for the InvokeFunction operation (got {size})"),
    )
}

/// A restJson1 error, as the Lambda API answers one.
fn aws_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut response = (status, Json(json!({"Type": "User", "message": message}))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    with_request_id(response, &crate::ids::lambda_request_id())
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}
