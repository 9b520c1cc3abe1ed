//! The signed webhook: the deployment's own server gets each notification as
//! JSON (and sends it on through FCM, APNs, e-mail…). The body is signed with
//! HMAC-SHA256 over `<timestamp>.<body>` and the timestamp travels beside it,
//! so a receiver can check both who sent it and that it is fresh (and refuse
//! a recorded request replayed later).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::WebhookTarget;
use super::Attempt;

/// Unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "chat-webhook-timestamp";
/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "chat-webhook-signature";

/// The signature header's value for a body sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={digest}")
}

/// Posts one notification; a 2xx answer is delivered.
pub async fn send(http: &reqwest::Client, target: &WebhookTarget, body: &[u8]) -> Attempt {
    let timestamp = chrono::Utc::now().timestamp();
    let response = http
        .post(target.url.clone())
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(
            SIGNATURE_HEADER,
            signature(target.secret.expose().as_bytes(), timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => Attempt::Done,
        Ok(response) => {
            let status = response.status().as_u16();
            let after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // The receiver is the deployment's own: whatever it answers may
            // pass (a deploy, a restart), so every failure is retried.
            Attempt::Retry {
                reason: format!("HTTP {status}"),
                after,
            }
        }
        // Without the URL: a push endpoint or the webhook's query string
        // is not for the logs or the failure destination.
        Err(e) => Attempt::Retry {
            reason: e.without_url().to_string(),
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_timestamp_and_the_body() {
        // HMAC-SHA256(key "key", "1700000000.{}"), as any HMAC library computes it.
        let signed = signature(b"key", 1_700_000_000, b"{}");
        assert_eq!(
            signed,
            "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert_ne!(signature(b"key", 1_700_000_001, b"{}"), signed);
        assert_ne!(signature(b"key", 1_700_000_000, b"{ }"), signed);
        assert_ne!(signature(b"other", 1_700_000_000, b"{}"), signed);
    }
}
