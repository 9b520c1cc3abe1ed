//! The one error type every handler returns, mapped to an HTTP status for REST
//! and to an `error` event for WebSocket. Codes are stable API (see the OpenAPI
//! document and the WebSocket protocol document); messages are for people.

use crate::auth::AuthError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// With `rate_limited`: how long until the call would be accepted
    /// (REST: `Retry-After` and `retry_after_ms`; WebSocket: `retry_after_ms`).
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(413, code, message)
    }
    /// Something on our side failed; the details go to the log, not the client.
    pub fn internal() -> Self {
        Self::new(500, "internal_error", "something went wrong on our side; try again")
    }
    pub fn unavailable() -> Self {
        Self::new(
            503,
            "service_unavailable",
            "a backing service is unavailable; try again",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable => Self::unavailable(),
            _ => Self::new(401, e.code(), e.to_string()),
        }
    }
}
