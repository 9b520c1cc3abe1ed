//! Storage: [`PostgrestStore`] talks to PostgREST; each operation is one RPC,
//! i.e. one database round trip. The few ports are below the types.
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
use serde_json::Value;
use uuid::Uuid;

use crate::domain::NewMessage;
use crate::error::ApiError;

#[cfg(test)]
pub mod memory;

pub use self::rest::PostgrestStore;

/// A stored message. Clients get the database's JSON as it is, so a response,
/// a pushed event and a replayed one are the same text (timestamps included);
/// the fields the functions themselves read are parsed beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub client_msg_id: Option<String>,
    json: Value,
}

impl Message {
    /// The message as clients see it.
    pub fn json(&self) -> &Value {
        &self.json
    }

    pub fn created_at(&self) -> &Value {
        &self.json["created_at"]
    }
}

impl TryFrom<Value> for Message {
    type Error = serde_json::Error;

    fn try_from(json: Value) -> Result<Self, Self::Error> {
        #[derive(Deserialize)]
        struct Key {
            id: Uuid,
            conversation_id: Uuid,
            seq: i64,
            client_msg_id: Option<String>,
        }
        let key = Key::deserialize(&json)?;
        Ok(Self {
            id: key.id,
            conversation_id: key.conversation_id,
            seq: key.seq,
            client_msg_id: key.client_msg_id,
            json,
        })
    }
}

impl From<Message> for Value {
    fn from(message: Message) -> Self {
        message.json
    }
}

/// A live WebSocket connection of a user who should receive an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub user_id: Uuid,
    pub connection_id: String,
}

/// What `send_message` returns to the sender (the REST body, and the ack's content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    pub message: Message,
    /// The same `client_msg_id` was stored before: nothing new was written.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpenedConversation {
    pub conversation: Json,
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
    /// `presence` (online) to the user's contacts when this is their first connection.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Unregistered {
    pub user_id: Option<Uuid>,
    pub last_connection: bool,
    /// `presence` (offline, last seen) to the user's contacts when their last connection went.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
}

/// What `remove_connections` did: how many of the connections it was given
/// it forgot (those past their `$connect`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Removed {
    pub removed: usize,
}

/// The connections the sweep looks at (`sweep_candidates`), the longest in
/// doubt first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SweepCandidates {
    /// The token the socket connected with has expired: close it, forget it.
    pub expired: Vec<String>,
    /// Live, but not seen for the threshold: ask API Gateway.
    pub stale: Vec<String>,
}

/// What `sweep_connections` did.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Swept {
    /// Connections forgotten (those past their `$connect`).
    pub removed: usize,
    /// Connections API Gateway still knows, whose last seen time moved to now.
    pub refreshed: usize,
}

/// One event to push and the live connections to push it to, as a write RPC
/// returns it: the database decides both in the transaction that made the change.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delivery {
    /// The complete server → client envelope (`type`, `conversation_id`, `seq`, `data`).
    pub event: Value,
    pub recipients: Vec<Recipient>,
}

/// What a write returns: its result for the caller and the events it caused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Outcome<T> {
    pub result: T,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    /// Who is offline and to be told of it (`send_message` only).
    #[serde(default)]
    pub notify: Option<crate::notify::NotificationRequest>,
}

/// A read's answer, passed to the client as the database shaped it (the shapes
/// are documented in the OpenAPI document and built by one SQL function each).
pub type Json = Value;

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
    Rejected {
        code: String,
        message: String,
        /// From the error's hint, with `rate_limited`.
        retry_after_ms: Option<u64>,
    },
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
            StoreError::Rejected {
                code,
                message,
                retry_after_ms,
            } => match domain_status(&code) {
                Some((status, code)) => ApiError {
                    retry_after_ms,
                    ..ApiError::new(status, code, message)
                },
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

/// The error codes the SQL functions raise (`public.api_error(code, …)`), and
/// the HTTP status each means. The test below reads the SQL: a code raised there
/// and missing here, or listed here and raised nowhere, fails it.
const DOMAIN_STATUS: &[(&str, u16)] = &[
    ("invalid_argument", 400),
    ("invalid_cursor", 400),
    ("invalid_query", 400),
    ("not_a_participant", 403),
    ("not_owner", 403),
    ("not_author", 403),
    ("blocked", 403),
    ("conversation_not_found", 404),
    ("message_not_found", 404),
    ("user_not_found", 404),
    ("room_name_taken", 409),
    ("message_deleted", 409),
    ("idempotency_conflict", 409),
    ("unknown_connection", 410),
    ("message_too_long", 413),
    ("rate_limited", 429),
    ("too_many_connections", 429),
    ("unsupported_for_kind", 422),
    ("invalid_name", 422),
    ("too_many_members", 422),
    ("too_many_blocks", 422),
    ("invalid_participant", 422),
    ("invalid_body", 422),
    ("invalid_kind", 422),
    ("invalid_attachment", 422),
    ("invalid_reply", 422),
    ("invalid_client_msg_id", 422),
    ("invalid_push_subscription", 422),
];

fn domain_status(code: &str) -> Option<(u16, &'static str)> {
    DOMAIN_STATUS
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(known, status)| (*status, *known))
}

pub type StoreResult<T> = Result<T, StoreError>;

// The ports: the calls whose answers the functions act on in Rust (which
// connection gets the ack, who is excluded, what a refusal or an unmoved
// watermark becomes, whether health is 503). Each has the PostgREST adapter
// and the in-memory double (`memory::MemoryStore`) the handlers' unit tests
// use. Every other call is passed through as the database answers it, so it
// is a plain method of [`PostgrestStore`], tested end to end.

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
    /// Forgets connections API Gateway says are gone (410); `presence`
    /// offline and `typing` stopped for users whose last connection they were.
    fn remove_connections(
        &self,
        connection_ids: &[String],
    ) -> impl Future<Output = StoreResult<Outcome<Removed>>> + Send;
    /// The connections in doubt: expired tokens, and live ones not seen for
    /// `stale_after_seconds`; at most `limit` of each.
    fn sweep_candidates(
        &self,
        stale_after_seconds: u32,
        limit: u32,
    ) -> impl Future<Output = StoreResult<SweepCandidates>> + Send;
    /// Forgets `gone` (with what `remove_connections` tells) and marks `alive` seen now.
    fn sweep_connections(
        &self,
        gone: &[String],
        alive: &[String],
    ) -> impl Future<Output = StoreResult<Outcome<Swept>>> + Send;
}

/// The writes of the message routes (`sendMessage`, `typing`, `markRead`,
/// `markDelivered` and their REST twins). Internal: they take the verified caller's id and return
/// other users' connections, which only service_role may see.
pub trait MessageStore: Send + Sync {
    /// Idempotent per (sender, `client_msg_id`); `message.created` to every live
    /// connection of the members, none for a repeat.
    fn send_message(
        &self,
        sender: Uuid,
        message: &NewMessage,
    ) -> impl Future<Output = StoreResult<Outcome<Sent>>> + Send;
    /// A typing indicator (or its stop): `typing` to the other members' live
    /// connections, its `expires_at` decided by the database.
    fn send_typing(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        is_typing: bool,
    ) -> impl Future<Output = StoreResult<Outcome<Json>>> + Send;
    /// Moves the read watermark forward (never back); `seq` None means the latest.
    fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: Option<i64>,
    ) -> impl Future<Output = StoreResult<Outcome<ReadState>>> + Send;
    /// Moves the delivered watermark forward (never back) to `seq`.
    fn mark_delivered(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: i64,
    ) -> impl Future<Output = StoreResult<Outcome<DeliveredState>>> + Send;
}

/// The caller's read position in one conversation after `mark_read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadState {
    pub conversation_id: Uuid,
    pub last_read_seq: i64,
    pub unread_count: i64,
    pub changed: bool,
}

/// The caller's delivered position in one conversation after `mark_delivered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveredState {
    pub conversation_id: Uuid,
    pub last_delivered_seq: i64,
    pub changed: bool,
}

/// Whether the database answers, and the aggregate counts `/v1/health` reports.
pub trait HealthProbe: Send + Sync {
    fn health_stats(&self) -> impl Future<Output = StoreResult<HealthStats>> + Send;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every `api_error('<code>'` in the SQL that defines the database: the
    /// schema files once they exist, the migrations until then.
    fn codes_raised_in_sql() -> BTreeSet<String> {
        let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql");
        let dir = ["schemas", "migrations"]
            .into_iter()
            .map(|d| sql.join(d))
            .find(|d| d.is_dir())
            .expect("sql/schemas or sql/migrations");
        let mut codes = BTreeSet::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "sql") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (_, rest) in text
                .match_indices("api_error(")
                .map(|(i, _)| text.split_at(i + "api_error(".len()))
            {
                let rest = rest.trim_start();
                // The helper's own definition takes a parameter, not a literal.
                let Some(literal) = rest.strip_prefix('\'') else {
                    continue;
                };
                let code = &literal[..literal.find('\'').unwrap()];
                codes.insert(code.to_owned());
            }
        }
        assert!(files > 0, "no SQL files in {}", dir.display());
        codes
    }

    #[test]
    fn every_sql_error_code_has_a_status_and_every_status_a_code() {
        let raised = codes_raised_in_sql();
        let mapped: BTreeSet<String> = DOMAIN_STATUS.iter().map(|(c, _)| c.to_string()).collect();
        assert_eq!(mapped.len(), DOMAIN_STATUS.len(), "a code is listed twice");
        let unmapped: Vec<_> = raised.difference(&mapped).collect();
        assert!(
            unmapped.is_empty(),
            "raised in SQL without an HTTP status: {unmapped:?}"
        );
        let unused: Vec<_> = mapped.difference(&raised).collect();
        assert!(unused.is_empty(), "mapped but raised nowhere in SQL: {unused:?}");
    }

    #[test]
    fn sql_codes_keep_their_code_and_get_their_status() {
        let api = ApiError::from(StoreError::Rejected {
            code: "message_too_long".into(),
            message: "The body must be at most 5000 characters.".into(),
            retry_after_ms: None,
        });
        assert_eq!((api.status, api.code), (413, "message_too_long"));
        let api = ApiError::from(StoreError::Rejected {
            code: "rate_limited".into(),
            message: "Too many message requests; try again in 1200 ms.".into(),
            retry_after_ms: Some(1200),
        });
        assert_eq!(
            (api.status, api.code, api.retry_after_ms),
            (429, "rate_limited", Some(1200))
        );
        let api = ApiError::from(StoreError::Rejected {
            code: "no_such_code".into(),
            message: String::new(),
            retry_after_ms: None,
        });
        assert_eq!((api.status, api.code), (500, "internal_error"));
    }
}
