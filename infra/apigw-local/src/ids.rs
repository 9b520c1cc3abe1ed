//! Identifiers and timestamps in the formats API Gateway and Lambda use.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use chrono::{DateTime, Utc};

/// A connection, request or message id like API Gateway's (`L0SM9cOFvHcCIhw=`):
/// 11 random bytes in URL-safe base64, 16 characters.
pub(crate) fn short_id() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    URL_SAFE.encode(&bytes[..11])
}

/// A stable API id like API Gateway's (10 lower-case alphanumerics), derived
/// from the API's logical id so URLs and ARNs stay the same across restarts.
pub(crate) fn api_id(logical_id: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // FNV-1a: tiny, deterministic, good enough to spread ids.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in logical_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % 36) as usize] as char;
            hash /= 36;
            if hash == 0 {
                hash = 0x9e37_79b9_7f4a_7c15;
            }
            c
        })
        .collect()
}

/// Lambda's request id (a UUID).
pub(crate) fn lambda_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An X-Ray trace header: `Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=0`.
pub(crate) fn trace_id() -> String {
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        Utc::now().timestamp(),
        &root[..24],
        &parent[..16]
    )
}

/// Just the root part, for `X-Amzn-Trace-Id` request headers.
pub(crate) fn trace_root() -> String {
    let root = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{}", Utc::now().timestamp(), &root[..24])
}

/// `21/Nov/2026:07:00:00 +0000`, as in `requestContext.time` / `requestTime`.
pub(crate) fn request_time(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

/// ISO-8601 with milliseconds, as the Management API returns timestamps.
pub(crate) fn iso_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn short_ids_look_like_aws_and_are_unique() {
        let ids: HashSet<String> = (0..10_000).map(|_| short_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
            assert!(id[..15]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn api_ids_are_stable_and_aws_shaped() {
        let id = api_id("WebSocketApi");
        assert_eq!(id, api_id("WebSocketApi"));
        assert_ne!(id, api_id("HttpApi"));
        assert_eq!(id.len(), 10);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn time_formats() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T07:00:00.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(request_time(at), "21/Nov/2026:07:00:00 +0000");
        assert_eq!(iso_time(at), "2026-11-21T07:00:00.123Z");
    }

    #[test]
    fn trace_ids() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-"));
        assert!(t.ends_with(";Sampled=0"));
        assert_eq!(t.split(';').count(), 3);
    }
}
