//! REST endpoints (API Gateway HTTP API, payload 2.0). Every handler returns a
//! response, never `Err`: API Gateway would turn an `Err` into a bare 500/502.
//! Errors are `{"error": {"code", "message", "request_id"}}`, plus
//! `retry_after_ms` (and the `Retry-After` header) when rate limited.

mod blocks;
mod conversations;
mod health;
mod messages;
mod push;
mod read_state;
mod users;

pub use blocks::{block_user, list_blocks, unblock_user};
pub use conversations::{
    add_members, conversation_connections, conversation_stats, create_conversation, get_conversation,
    join_conversation, leave_conversation, list_conversations, list_events, list_rooms, open_direct_conversation,
    update_conversation,
};
pub use health::health;
pub use messages::{delete_message, edit_message, list_messages, search_messages, send_message};
pub use push::{delete_push_subscription, save_push_subscription, vapid_public_key};
pub use read_state::{mark_read, unread_counts};
pub use users::{get_me, get_presence, search_users};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{bearer_token, Caller, TokenVerifier};
use crate::delivery::deliver;
use crate::domain::parse_uuid;
use crate::error::ApiError;
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, Delivery, Json, Outcome, UserToken};

/// What an endpoint's body produces; [`signed_in`] turns the error into the JSON error response.
pub type Handled = Result<Response<Body>, ApiError>;

/// Request bodies larger than this are refused before parsing; the largest
/// valid body (5000 four-byte characters plus metadata) is far below it.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// API Gateway's id for this request, echoed in error bodies for support.
pub fn request_id(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        _ => None,
    }
}

pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(serde_json::to_string(body).unwrap_or_default()))
        .unwrap_or_default()
}

pub fn error_response(request: &Request, error: &ApiError) -> Response<Body> {
    if error.status >= 500 {
        tracing::error!(code = error.code, "request failed");
    } else {
        tracing::info!(code = error.code, status = error.status, "request refused");
    }
    let mut body = json!({"error": {"code": error.code, "message": error.message, "request_id": request_id(request)}});
    if let Some(ms) = error.retry_after_ms {
        body["error"]["retry_after_ms"] = json!(ms);
    }
    let mut response = json_response(error.status, &body);
    if let Some(ms) = error.retry_after_ms {
        // Whole seconds, rounded up (RFC 9110 §10.2.3): retrying after the
        // rounded-down time would be refused again.
        response.headers_mut().insert(
            "retry-after",
            lambda_http::http::HeaderValue::from(ms.div_ceil(1000).max(1)),
        );
    }
    if error.status == 401 {
        response.headers_mut().insert(
            "www-authenticate",
            lambda_http::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Runs a handler body and turns its error into the JSON error response.
pub fn respond(request: &Request, result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(|error| error_response(request, &error))
}

/// The verified caller and the raw token (forwarded to PostgREST for RLS).
pub async fn authenticate<'r>(verifier: &TokenVerifier, request: &'r Request) -> Result<(Caller, &'r str), ApiError> {
    let header = request
        .headers()
        .get("authorization")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::new(401, "invalid_token", "the Authorization header is not text"))
        })
        .transpose()?;
    let token = bearer_token(header)?;
    Ok((verifier.verify(token).await?, token))
}

/// Runs an endpoint for a verified caller, whose token goes on to PostgREST.
pub async fn signed_in(
    verifier: &TokenVerifier,
    request: &Request,
    handler: impl AsyncFnOnce(Caller, UserToken<'_>) -> Handled,
) -> Response<Body> {
    let result = match authenticate(verifier, request).await {
        Ok((caller, token)) => handler(caller, UserToken(token)).await,
        Err(error) => Err(error),
    };
    respond(request, result)
}

/// A read of one conversation (`/v1/conversations/{id}/…`), answered as the
/// database shaped it; membership is checked in SQL with the caller's token.
pub async fn conversation_read(
    verifier: &TokenVerifier,
    request: &Request,
    read: impl AsyncFnOnce(UserToken<'_>, Uuid) -> Result<Json, ApiError>,
) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let id = path_uuid(request, "id")?;
        Ok(json_response(200, &read(token, id).await?))
    })
    .await
}

/// A write on one resource named by the `{id}` path parameter (a conversation
/// or a message), answered with its result once the events it caused are pushed.
pub async fn write_by_id<S, P, T>(
    verifier: &TokenVerifier,
    store: &S,
    pusher: &P,
    request: &Request,
    write: impl AsyncFnOnce(Uuid, Uuid) -> Result<Outcome<T>, ApiError>,
) -> Response<Body>
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
    T: Serialize,
{
    signed_in(verifier, request, async |caller, _token| {
        let id = path_uuid(request, "id")?;
        let outcome = write(caller.user_id, id).await?;
        Ok(delivered(store, pusher, 200, &outcome.result, &outcome.deliveries).await)
    })
    .await
}

/// Answers a write after pushing the events it caused, so a client that gets
/// the response can count on the others having been sent theirs.
pub async fn delivered<S, P>(
    store: &S,
    pusher: &P,
    status: u16,
    body: &impl Serialize,
    deliveries: &[Delivery],
) -> Response<Body>
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    deliver(store, pusher, deliveries, None).await;
    json_response(status, body)
}

/// The `{id}` path parameter as a UUID.
pub fn path_uuid(request: &Request, name: &str) -> Result<Uuid, ApiError> {
    let raw = request
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .ok_or_else(|| ApiError::bad_request("invalid_argument", format!("missing path parameter `{name}`")))?;
    parse_uuid(name, raw)
}

pub fn query<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.query_string_parameters_ref()?.first(name)
}

/// The body as JSON of type `T`, with the size checked first.
pub fn json_body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::too_large(
            "payload_too_large",
            format!("the request body may be at most {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    crate::domain::parse_json(bytes)
}

/// A body that may be absent (empty); when present it must parse as `T`.
pub fn optional_json_body<T: serde::de::DeserializeOwned + Default>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_answers_carry_retry_after_in_whole_seconds_rounded_up() {
        let request = Request::default();
        for (ms, seconds) in [(1, "1"), (1000, "1"), (1001, "2"), (59_999, "60")] {
            let error = ApiError {
                retry_after_ms: Some(ms),
                ..ApiError::new(429, "rate_limited", "slow down")
            };
            let response = error_response(&request, &error);
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], seconds, "{ms} ms");
            let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
            assert_eq!(body["error"]["retry_after_ms"], ms);
        }
        let other = error_response(&request, &ApiError::bad_request("invalid_argument", "no"));
        assert!(other.headers().get("retry-after").is_none());
    }
}
