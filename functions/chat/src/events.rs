//! The server → client WebSocket events made in Rust: the answers to one
//! connection (ack, pong, error, an unmoved read or delivered watermark). Every event a
//! write causes, transient `typing` included, is made by the database with the
//! write (`public.event_envelope`), in the same envelope:
//! `{"type": "...", "conversation_id": "...", "seq": 42, "data": {...}}`,
//! with `seq` only on durable events (those a client can replay).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Message;

#[derive(Debug, Serialize)]
pub struct ServerEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub data: Value,
}

impl ServerEvent {
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of plain JSON values cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// To the sending connection: its `client_msg_id` is now this id and seq,
    /// and `message` is the message as stored (the JSON the other connections
    /// get as `message.created` data, normalised by the server: trimmed
    /// attachment name, lower-case MIME type), so the sender shows what
    /// everyone else sees rather than its draft.
    pub fn message_ack(message: &Message, duplicate: bool) -> Self {
        Self {
            kind: "message.ack",
            conversation_id: Some(message.conversation_id),
            seq: None,
            data: json!({
                "client_msg_id": message.client_msg_id,
                "id": message.id,
                "seq": message.seq,
                "created_at": message.created_at(),
                "duplicate": duplicate,
                "message": message.json(),
            }),
        }
    }

    /// A read watermark; the database sends it to the members when it moves,
    /// and `markRead` answers with it when it did not.
    pub fn read(conversation_id: Uuid, user_id: Uuid, last_read_seq: i64, read_at: DateTime<Utc>) -> Self {
        Self {
            kind: "read",
            conversation_id: Some(conversation_id),
            seq: None,
            data: json!({"user_id": user_id, "last_read_seq": last_read_seq, "read_at": read_at}),
        }
    }

    /// A delivered watermark; the database sends it when it moves, and
    /// `markDelivered` answers with it when it did not.
    pub fn delivered(
        conversation_id: Uuid,
        user_id: Uuid,
        last_delivered_seq: i64,
        delivered_at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind: "delivered",
            conversation_id: Some(conversation_id),
            seq: None,
            data: json!({"user_id": user_id, "last_delivered_seq": last_delivered_seq, "delivered_at": delivered_at}),
        }
    }

    pub fn pong(server_time: DateTime<Utc>) -> Self {
        Self {
            kind: "pong",
            conversation_id: None,
            seq: None,
            data: json!({"server_time": server_time}),
        }
    }

    /// An error answering `action` (the route the client called), with
    /// `retry_after_ms` when rate limited.
    pub fn error(error: &ApiError, action: Option<&str>, request_id: Option<&str>) -> Self {
        let mut data = json!({
            "code": error.code,
            "message": error.message,
            "status": error.status,
            "action": action,
            "request_id": request_id,
        });
        if let Some(ms) = error.retry_after_ms {
            data["retry_after_ms"] = json!(ms);
        }
        Self {
            kind: "error",
            conversation_id: None,
            seq: None,
            data,
        }
    }

    /// Names the message an `error` refuses (the `client_msg_id` of the
    /// refused `sendMessage` frame), so a client with several sends in flight
    /// knows which one failed. Nothing is added when there is none.
    pub fn refusing(mut self, client_msg_id: Option<&str>) -> Self {
        if let Some(id) = client_msg_id {
            self.data["client_msg_id"] = json!(id);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_to_one_connection_carry_no_seq() {
        let message: Message = serde_json::from_value(json!({
            "id": "6f1c1c52-8a4c-4d5c-9a51-0d1f4b0e6a11", "conversation_id": "0f1c1c52-8a4c-4d5c-9a51-0d1f4b0e6a11",
            "seq": 7, "sender_id": "00000000-0000-4000-8000-00000000a11c", "client_msg_id": "c1",
            "kind": "text", "body": "hi", "attachment": null, "reply_to_id": null,
            "created_at": "2026-11-21T07:00:00.123456+00:00", "edited_at": null, "deleted_at": null
        }))
        .unwrap();
        // A deleted sender's messages still read (sender_id null).
        let mut orphan = serde_json::to_value(&message).unwrap();
        orphan["sender_id"] = Value::Null;
        assert!(serde_json::from_value::<Message>(orphan).unwrap().json()["sender_id"].is_null());
        // The database's timestamp text goes out as it came in.
        assert_eq!(
            serde_json::to_value(&message).unwrap()["created_at"],
            "2026-11-21T07:00:00.123456+00:00"
        );
        let ack: Value = serde_json::from_slice(&ServerEvent::message_ack(&message, false).to_bytes()).unwrap();
        assert_eq!(ack["type"], "message.ack");
        assert!(ack.get("seq").is_none());
        assert_eq!(ack["data"]["seq"], 7);
        assert_eq!(ack["data"]["id"], "6f1c1c52-8a4c-4d5c-9a51-0d1f4b0e6a11");
        assert_eq!(ack["data"]["created_at"], "2026-11-21T07:00:00.123456+00:00");
        assert_eq!(ack["data"]["client_msg_id"], "c1");
        assert_eq!(ack["data"]["duplicate"], false);
        // The stored message itself, as message.created carries it.
        assert_eq!(&ack["data"]["message"], message.json());
        assert_eq!(ack["data"]["message"]["body"], "hi");
        let error: Value = serde_json::from_slice(
            &ServerEvent::error(
                &ApiError::bad_request("invalid_json", "nope"),
                Some("sendMessage"),
                None,
            )
            .to_bytes(),
        )
        .unwrap();
        assert_eq!(error["data"]["code"], "invalid_json");
        assert_eq!(error["data"]["action"], "sendMessage");
        assert!(error["data"].get("retry_after_ms").is_none());
        assert!(error["data"].get("client_msg_id").is_none());
        let refused = ServerEvent::error(
            &ApiError::bad_request("invalid_json", "nope"),
            Some("sendMessage"),
            None,
        )
        .refusing(Some("m-7"))
        .to_value();
        assert_eq!(refused["data"]["client_msg_id"], "m-7");
        let limited = ApiError {
            retry_after_ms: Some(1500),
            ..ApiError::new(429, "rate_limited", "slow down")
        };
        let error = ServerEvent::error(&limited, Some("typing"), None).to_value();
        assert_eq!(error["data"]["retry_after_ms"], 1500);
    }
}
