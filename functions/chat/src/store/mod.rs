//! Storage, behind narrow traits. The only implementation talks to PostgREST
//! ([`PostgrestStore`]); each operation is one RPC, i.e. one database round trip.
//!
//! Two kinds of calls exist. User-facing reads and writes carry the caller's own
//! token, so Row Level Security decides. Operations that need other users'
//! connection ids (fan-out, the connection registry) are internal RPCs granted
//! to `service_role` only; they take the verified caller's id and re-check
//! membership in SQL.

mod rest;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{HistoryQuery, NewMessage};
use crate::error::ApiError;

pub use self::rest::PostgrestStore;

/// A stored message as every API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    /// None for system messages and once the sender's account is deleted.
    pub sender_id: Option<Uuid>,
    pub client_msg_id: Option<String>,
    pub kind: String,
    pub body: Option<String>,
    pub attachment: Option<serde_json::Value>,
    pub reply_to_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A live WebSocket connection of a user who should receive an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub user_id: Uuid,
    pub connection_id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SendOutcome {
    pub message: Message,
    /// The same `client_msg_id` was stored before: nothing new was written.
    pub duplicate: bool,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    pub context_type: Option<String>,
    pub context_id: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_seq: i64,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpenedConversation {
    pub conversation: Conversation,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthStats {
    pub live_connections: i64,
    pub users_online: i64,
    pub active_conversations: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Registered {
    pub first_connection: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Unregistered {
    pub user_id: Option<Uuid>,
    pub last_connection: bool,
}

/// A direct conversation may be about something (a listing, a trip…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationContext {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The caller's access token, forwarded so that RLS applies to the call.
#[derive(Clone, Copy)]
pub struct UserToken<'a>(pub &'a str);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused the operation for a domain reason (`not_a_participant`, …).
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// PostgREST refused the token.
    #[error("the data API refused the credentials")]
    Unauthorized,
    /// The database refused a value (a data or integrity error, SQLSTATE class 22 or 23).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("the data API is unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected answer from the data API: {0}")]
    Unexpected(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected { code, message } => match domain_status(&code) {
                Some((status, code)) => ApiError::new(status, code, message),
                None => {
                    tracing::error!(%code, %message, "unmapped database error");
                    ApiError::internal()
                }
            },
            StoreError::Unauthorized => ApiError::new(401, "invalid_token", "the access token was refused"),
            StoreError::InvalidInput(detail) => {
                tracing::info!(%detail, "database refused a value");
                ApiError::unprocessable("invalid_input", "a value in the request cannot be stored")
            }
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "data API unavailable");
                ApiError::unavailable()
            }
            StoreError::Unexpected(detail) => {
                tracing::error!(%detail, "unexpected data API answer");
                ApiError::internal()
            }
        }
    }
}

/// The error codes the SQL functions raise, and the HTTP status each means.
fn domain_status(code: &str) -> Option<(u16, &'static str)> {
    Some(match code {
        "not_a_participant" => (403, "not_a_participant"),
        "user_not_found" => (404, "user_not_found"),
        "invalid_participant" => (422, "invalid_participant"),
        "invalid_body" => (422, "invalid_body"),
        "invalid_kind" => (422, "invalid_kind"),
        "invalid_attachment" => (422, "invalid_attachment"),
        "invalid_reply" => (422, "invalid_reply"),
        "invalid_client_msg_id" => (422, "invalid_client_msg_id"),
        "idempotency_conflict" => (409, "idempotency_conflict"),
        "unknown_connection" => (410, "unknown_connection"),
        "invalid_argument" => (400, "invalid_argument"),
        _ => return None,
    })
}

type StoreResult<T> = Result<T, StoreError>;

/// Who is connected where. Internal: service_role only.
pub trait ConnectionRegistry: Send + Sync {
    fn register_connection(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Registered>> + Send;
    fn unregister_connection(&self, connection_id: &str) -> impl Future<Output = StoreResult<Unregistered>> + Send;
    fn touch_connection(&self, connection_id: &str) -> impl Future<Output = StoreResult<()>> + Send;
    /// Forgets connections API Gateway says are gone (410).
    fn remove_connections(&self, connection_ids: &[String]) -> impl Future<Output = StoreResult<usize>> + Send;
}

/// Messages: storing them and finding who must hear about them.
pub trait MessageStore: Send + Sync {
    fn send_message(&self, sender: Uuid, message: &NewMessage) -> impl Future<Output = StoreResult<SendOutcome>> + Send;
    fn typing_recipients(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
    ) -> impl Future<Output = StoreResult<Vec<Recipient>>> + Send;
    fn list_messages(
        &self,
        token: UserToken<'_>,
        conversation_id: Uuid,
        query: HistoryQuery,
    ) -> impl Future<Output = StoreResult<HistoryPage>> + Send;
}

pub trait ConversationStore: Send + Sync {
    fn open_direct_conversation(
        &self,
        token: UserToken<'_>,
        other_user_id: Uuid,
        context: Option<&ConversationContext>,
    ) -> impl Future<Output = StoreResult<OpenedConversation>> + Send;
}

pub trait HealthProbe: Send + Sync {
    fn health_stats(&self) -> impl Future<Output = StoreResult<HealthStats>> + Send;
}
