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

pub use authorizer::{authorize, AuthorizerRequest, AuthorizerResponse};
pub use connect::{connect, disconnect};
pub use routes::{default_route, mark_read, ping, send_message, typing};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::push::{post_with_retry, ConnectionPusher, FanOutPolicy, PushError};

/// The parts of an API Gateway WebSocket event the routes use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsEvent {
    pub request_context: WsRequestContext,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
    #[serde(default)]
    pub headers: Option<std::collections::HashMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsRequestContext {
    pub connection_id: String,
    #[serde(default)]
    pub route_key: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub authorizer: Option<AuthorizerContext>,
}

/// What the `$connect` authorizer put in its context, as API Gateway hands it on
/// (our context keys are snake_case; API Gateway's own are camelCase).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizerContext {
    #[serde(default, rename = "principalId")]
    pub principal_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    /// Seconds since the epoch; API Gateway may pass numbers as strings.
    #[serde(default)]
    pub token_exp: Option<Value>,
}

/// The identity established at `$connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    pub user_id: Uuid,
    pub token_exp: i64,
}

impl WsEvent {
    pub fn connection_id(&self) -> &str {
        &self.request_context.connection_id
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_context.request_id.as_deref()
    }

    pub fn route_key(&self) -> &str {
        self.request_context.route_key.as_deref().unwrap_or("$default")
    }

    /// Who is speaking, from the authorizer context; `None` if the event did not
    /// come through the authorizer (misconfiguration), which routes refuse.
    pub fn speaker(&self) -> Option<Speaker> {
        let context = self.request_context.authorizer.as_ref()?;
        let user_id = context.user_id.as_deref().or(context.principal_id.as_deref())?;
        let token_exp = match context.token_exp.as_ref()? {
            Value::Number(n) => n.as_i64()?,
            Value::String(s) => s.parse().ok()?,
            _ => return None,
        };
        Some(Speaker {
            user_id: Uuid::parse_str(user_id).ok()?,
            token_exp,
        })
    }

    /// The message body as text.
    pub fn body_text(&self) -> Result<String, ApiError> {
        let raw = self.body.clone().unwrap_or_default();
        if !self.is_base64_encoded {
            return Ok(raw);
        }
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| ApiError::bad_request("invalid_json", "the frame is not valid base64"))?;
        String::from_utf8(bytes).map_err(|_| ApiError::bad_request("invalid_json", "the frame is not UTF-8 text"))
    }
}

/// What a WebSocket route returns to API Gateway.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WsResponse {
    pub status_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl WsResponse {
    pub fn ok() -> Self {
        Self {
            status_code: 200,
            headers: None,
            body: None,
        }
    }
    pub fn status(status_code: u16) -> Self {
        Self {
            status_code,
            headers: None,
            body: None,
        }
    }
}

/// Sends one event to the connection that asked; a vanished client is not an error.
pub async fn reply<P: ConnectionPusher>(pusher: &P, connection_id: &str, event: &ServerEvent) {
    match post_with_retry(pusher, connection_id, &event.to_bytes(), FanOutPolicy::default()).await {
        Ok(()) | Err(PushError::Gone) => {}
        Err(e) => tracing::warn!(connection_id, error = %e, event = event.kind, "reply failed"),
    }
}

/// The identity of the speaker, or — when the token behind the socket has
/// expired — an `error` event `token_expired` followed by closing the socket.
pub async fn current_speaker<P: ConnectionPusher>(pusher: &P, event: &WsEvent) -> Option<Speaker> {
    let Some(speaker) = event.speaker() else {
        let error = ApiError::new(401, "unauthorized", "this connection has no verified identity");
        reply(
            pusher,
            event.connection_id(),
            &ServerEvent::error(&error, Some(event.route_key()), event.request_id()),
        )
        .await;
        return None;
    };
    if speaker.token_exp < Utc::now().timestamp() {
        let error = ApiError::new(
            401,
            "token_expired",
            "the access token has expired; reconnect with a fresh one",
        );
        reply(
            pusher,
            event.connection_id(),
            &ServerEvent::error(&error, Some(event.route_key()), event.request_id()),
        )
        .await;
        if let Err(e) = pusher.delete_connection(event.connection_id()).await {
            tracing::warn!(error = %e, "closing an expired connection failed");
        }
        return None;
    }
    Some(speaker)
}

/// Answers a route with an `error` event and a 200 (the client gets the event;
/// API Gateway must not turn it into "Internal server error").
pub async fn reply_error<P: ConnectionPusher>(pusher: &P, event: &WsEvent, error: &ApiError) -> WsResponse {
    if error.status >= 500 {
        tracing::error!(code = error.code, "route failed");
    } else {
        tracing::info!(code = error.code, "route refused");
    }
    reply(
        pusher,
        event.connection_id(),
        &ServerEvent::error(error, Some(event.route_key()), event.request_id()),
    )
    .await;
    WsResponse::ok()
}

/// Parses a frame as a JSON object of type `T`.
pub fn parse_frame<T: serde::de::DeserializeOwned>(event: &WsEvent) -> Result<T, ApiError> {
    crate::domain::parse_json(event.body_text()?.as_bytes())
}
