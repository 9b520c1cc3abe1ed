//! What every test module shares, written once: the stack and its users
//! (`stack`), the REST client (`http`) with the API's calls typed (`api`), the
//! WebSocket client (`ws`), the real function binaries run on raw events
//! (`functions`), `template.yaml` as the tests read it (`template`), and small
//! readers of JSON answers (below).

pub mod api;
pub mod functions;
pub mod http;
pub mod push_service;
pub mod stack;
pub mod template;
pub mod ws;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

pub use stack::{stack, Stack, User, ARRIVAL, SILENCE};
pub use ws::{Closed, WsClient};

pub fn uuid_of(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))).unwrap()
}

/// The `id`s of a JSON array of objects, in order.
pub fn ids(items: &Value) -> Vec<Uuid> {
    items.as_array().unwrap().iter().map(|c| uuid_of(&c["id"])).collect()
}

/// The `id`s of some messages, as a set.
pub fn message_ids(messages: &[&Value]) -> BTreeSet<String> {
    messages.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

pub fn timestamp(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp: {value}: {e}"))
}

/// A short random tag, to make names and words unique to one test.
pub fn tag() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A name no other test (or earlier run) uses; room names are unique.
pub fn unique_name(label: &str) -> String {
    format!("{label} {}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Percent-encodes a query-string value.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Asserts an error answer: its status, its code, and the error shape.
pub fn assert_error(answer: (u16, Value), status: u16, code: &str, what: &str) -> Value {
    let (got_status, body) = answer;
    assert_eq!(got_status, status, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
    body
}

pub fn attachment(url: &str, name: &str, mime_type: &str, size_bytes: u64) -> Value {
    json!({"url": url, "name": name, "mime_type": mime_type, "size_bytes": size_bytes})
}

/// A `sendMessage` WebSocket frame.
pub fn send_frame(conversation_id: Uuid, body: &str, client_msg_id: &str) -> Value {
    json!({"action": "sendMessage", "conversation_id": conversation_id, "body": body, "client_msg_id": client_msg_id})
}

/// A `markRead` WebSocket frame, with or without a `seq`.
pub fn mark_read_frame(conversation: Uuid, seq: Option<i64>) -> Value {
    match seq {
        Some(seq) => json!({"action": "markRead", "conversation_id": conversation, "seq": seq}),
        None => json!({"action": "markRead", "conversation_id": conversation}),
    }
}
