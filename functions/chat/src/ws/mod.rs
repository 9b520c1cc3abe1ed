//! WebSocket routes. API Gateway invokes one function per route with a
//! WebSocket proxy event; the caller's identity comes from the `$connect`
//! authorizer's context, which API Gateway attaches to every later event, and
//! the connection id only ever from `requestContext` (never from a message).
//!
//! Route handlers answer the client through the Management API, never with
//! `Err`: an error becomes an `error` event and the function still returns 200.

mod authorizer;
mod connect;
mod routes;

pub use authorizer::{authorize, caller, offered_token};
pub use connect::{connect, disconnect};
pub use routes::{default_route, mark_delivered, mark_read, ping, send_message, typing};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chrono::Utc;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::push::{post_with_retry, ConnectionPusher, FanOutPolicy, PushError};

/// The connection the event came from. [`crate::lambda::run_websocket`] refuses
/// events without one, so a handler always sees it.
pub fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> &str {
    event.request_context.connection_id.as_deref().unwrap_or_default()
}

pub fn request_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    event.request_context.request_id.as_deref()
}

pub fn route_key(event: &ApiGatewayWebsocketProxyRequest) -> &str {
    event.request_context.route_key.as_deref().unwrap_or("$default")
}

/// The frame as text.
pub fn body_text(event: &ApiGatewayWebsocketProxyRequest) -> Result<String, ApiError> {
    let raw = event.body.clone().unwrap_or_default();
    if !event.is_base64_encoded {
        return Ok(raw);
    }
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| ApiError::bad_request("invalid_json", "the frame is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("invalid_json", "the frame is not UTF-8 text"))
}

/// What a route answers API Gateway: a status only (the client hears from us
/// through the Management API), plus headers on `$connect`.
pub fn status(status_code: u16) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status_code.into();
    response
}

/// Sends one event to the connection that asked; a vanished client is not an error.
pub async fn reply<P: ConnectionPusher>(pusher: &P, connection_id: &str, event: &ServerEvent) {
    match post_with_retry(pusher, connection_id, &event.to_bytes(), FanOutPolicy::default()).await {
        Ok(()) | Err(PushError::Gone) => {}
        Err(e) => tracing::warn!(connection_id, error = %e, event = event.kind, "reply failed"),
    }
}

/// The caller, or — when the token behind the socket has expired — an `error`
/// event `token_expired` followed by closing the socket.
pub async fn current_caller<P: ConnectionPusher>(
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Option<Caller> {
    let Some(caller) = caller(event) else {
        let error = ApiError::new(401, "unauthorized", "this connection has no verified identity");
        reply(pusher, connection_id(event), &error_event(event, &error)).await;
        return None;
    };
    if caller.token_exp < Utc::now().timestamp() {
        let error = ApiError::new(
            401,
            "token_expired",
            "the access token has expired; reconnect with a fresh one",
        );
        reply(pusher, connection_id(event), &error_event(event, &error)).await;
        if let Err(e) = pusher.delete_connection(connection_id(event)).await {
            tracing::warn!(error = %e, "closing an expired connection failed");
        }
        return None;
    }
    Some(caller)
}

/// Answers a route with an `error` event and a 200 (the client gets the event;
/// API Gateway must not turn it into "Internal server error").
pub async fn reply_error<P: ConnectionPusher>(
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
    error: &ApiError,
) -> ApiGatewayProxyResponse {
    if error.status >= 500 {
        tracing::error!(code = error.code, "route failed");
    } else {
        tracing::info!(code = error.code, "route refused");
    }
    reply(pusher, connection_id(event), &error_event(event, error)).await;
    status(200)
}

/// The `error` event answering this frame: the route it went to, API Gateway's
/// request id and, for `sendMessage`, the refused message's `client_msg_id`.
fn error_event(event: &ApiGatewayWebsocketProxyRequest, error: &ApiError) -> ServerEvent {
    ServerEvent::error(error, Some(route_key(event)), request_id(event))
        .refusing(refused_client_msg_id(event).as_deref())
}

/// The `client_msg_id` of a `sendMessage` frame, read on its own: the rest of
/// the frame may be what was refused (a missing body, a bad conversation id),
/// and the client still needs to know which of its messages that was. Any
/// string is given back as sent (even one `invalid_client_msg_id` refuses);
/// the 32 KiB frame limit bounds it.
fn refused_client_msg_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<String> {
    if route_key(event) != "sendMessage" {
        return None;
    }
    let frame: serde_json::Value = serde_json::from_str(&body_text(event).ok()?).ok()?;
    Some(frame.as_object()?.get("client_msg_id")?.as_str()?.to_owned())
}

/// Parses a frame as a JSON object of type `T`.
pub fn parse_frame<T: serde::de::DeserializeOwned>(event: &ApiGatewayWebsocketProxyRequest) -> Result<T, ApiError> {
    crate::domain::parse_json(body_text(event)?.as_bytes())
}
