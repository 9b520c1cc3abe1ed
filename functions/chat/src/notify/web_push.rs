//! Web Push (RFC 8030) to one browser: the payload encrypted for its keys
//! (RFC 8291, `aes128gcm`), the request signed by the application server's
//! VAPID key (RFC 8292: an ES256 JWT for the push service's origin).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use uuid::Uuid;

use super::config::VapidKey;
use super::Attempt;

/// A subscription as `notification_targets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub user_id: Uuid,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// The largest plaintext one `aes128gcm` record of a 4096-byte push message
/// holds (RFC 8291 §4: 4096 less the 86-byte header, the 16-byte tag and the
/// padding delimiter).
pub const MAX_PLAINTEXT_BYTES: usize = 4096 - 86 - 16 - 1;
/// How long the push service keeps a message for a browser that is away: a
/// chat notification a day old is news nobody needs.
const TTL_SECONDS: u64 = 24 * 60 * 60;
/// The VAPID token's lifetime (RFC 8292 §2: at most 24 hours).
const TOKEN_LIFETIME_SECONDS: i64 = 12 * 60 * 60;

/// Signs VAPID tokens with the application server's key.
pub struct VapidSigner {
    key: EncodingKey,
    public_key: String,
    subject: String,
}

impl VapidSigner {
    pub fn new(vapid: &VapidKey) -> Result<Self, String> {
        let der = vapid
            .private_key
            .to_pkcs8_der()
            .map_err(|e| format!("VAPID key: {e}"))?;
        Ok(Self {
            key: EncodingKey::from_ec_der(der.as_bytes()),
            public_key: vapid.public_key.clone(),
            subject: vapid.subject.clone(),
        })
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push to `endpoint`:
    /// the token's audience is the push service's origin.
    pub fn authorization(&self, endpoint: &Url, now: i64) -> Result<String, String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: String,
            exp: i64,
            sub: &'a str,
        }
        let claims = Claims {
            aud: endpoint.origin().ascii_serialization(),
            exp: now + TOKEN_LIFETIME_SECONDS,
            sub: &self.subject,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        let token = jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| format!("VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// The `Topic` of a user's notifications of one conversation (RFC 8030 §5.4:
/// at most 32 base64url characters): a newer one replaces an older one the
/// push service still holds, so a busy group does not stack up.
pub fn topic(user_id: Uuid, conversation_id: Uuid) -> String {
    let digest = Sha256::new()
        .chain_update(user_id.as_bytes())
        .chain_update(conversation_id.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)[..32].to_string()
}

/// The message encrypted for the subscription's browser.
pub fn encrypt(subscription: &Subscription, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let point = URL_SAFE_NO_PAD
        .decode(&subscription.p256dh)
        .map_err(|_| "p256dh is not base64url".to_string())?;
    let public = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| "p256dh is not a P-256 point".to_string())?;
    let auth: [u8; 16] = URL_SAFE_NO_PAD
        .decode(&subscription.auth)
        .ok()
        .and_then(|a| a.try_into().ok())
        .ok_or_else(|| "auth is not a 16-byte secret".to_string())?;
    web_push_native::encrypt(plaintext.to_vec(), &public, &web_push_native::Auth::from(auth)).map_err(|e| e.to_string())
}

/// Posts one notification to one browser's push service.
pub async fn send(
    http: &reqwest::Client,
    signer: &VapidSigner,
    subscription: &Subscription,
    topic: &str,
    plaintext: &[u8],
) -> Attempt {
    let endpoint = match Url::parse(&subscription.endpoint) {
        Ok(url) => url,
        Err(_) => return Attempt::Fatal("the endpoint is not a URL".into()),
    };
    let (body, authorization) = match encrypt(subscription, plaintext)
        .and_then(|body| Ok((body, signer.authorization(&endpoint, chrono::Utc::now().timestamp())?)))
    {
        Ok(ready) => ready,
        // A subscription whose keys cannot be used never will be.
        Err(e) => return Attempt::Gone(e),
    };
    let response = http
        .post(endpoint)
        .header("ttl", TTL_SECONDS)
        .header("topic", topic)
        .header("urgency", "high")
        .header("content-encoding", "aes128gcm")
        .header("content-type", "application/octet-stream")
        .header("authorization", authorization)
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match status {
                200..=299 => Attempt::Done,
                // The subscription expired or the browser unsubscribed.
                404 | 410 => Attempt::Gone(format!("HTTP {status}")),
                429 | 500..=599 => Attempt::Retry {
                    reason: format!("HTTP {status}"),
                    after: retry_after,
                },
                // 400, 401/403 (a token or key the service refuses), 413: the
                // same request would be refused again.
                _ => Attempt::Fatal(format!("HTTP {status}")),
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
    use crate::notify::config::tests::{public_of, PRIVATE};
    use jsonwebtoken::{DecodingKey, Validation};

    fn signer() -> VapidSigner {
        let private_key = p256::SecretKey::from_slice(&URL_SAFE_NO_PAD.decode(PRIVATE).unwrap()).unwrap();
        VapidSigner::new(&VapidKey {
            private_key,
            public_key: public_of(PRIVATE),
            subject: "mailto:ops@example.com".into(),
        })
        .unwrap()
    }

    #[test]
    fn the_vapid_token_is_es256_for_the_push_services_origin() {
        let endpoint = Url::parse("https://push.example.net:8443/wpush/v2/abc?x=1").unwrap();
        let header = signer().authorization(&endpoint, 1_000).unwrap();
        let (token, key) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap();
        assert_eq!(key, public_of(PRIVATE));
        // Verified with the public key alone, as a push service does.
        let point = URL_SAFE_NO_PAD.decode(key).unwrap();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["https://push.example.net:8443"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_ec_components(&x, &y).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "mailto:ops@example.com");
        assert_eq!(claims["exp"], 1_000 + TOKEN_LIFETIME_SECONDS);
    }

    #[test]
    fn a_topic_is_32_base64url_characters_per_user_and_conversation() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let topic_ab = topic(a, b);
        assert_eq!(topic_ab.len(), 32);
        assert!(topic_ab
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(topic(a, b), topic_ab);
        assert_ne!(topic(a, c), topic_ab);
        assert_ne!(topic(b, a), topic_ab);
    }

    /// RFC 8291 Appendix A: the receiver's keys decrypt what we encrypt for them.
    #[test]
    fn the_payload_is_encrypted_for_the_browsers_keys() {
        let receiver_private = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
        let subscription = Subscription {
            user_id: Uuid::nil(),
            endpoint: "https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV".into(),
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
        };
        let plaintext = b"When I grow up, I want to be a watermelon";
        let body = encrypt(&subscription, plaintext).unwrap();
        assert_eq!(body.len(), 86 + plaintext.len() + 1 + 16);
        let secret = p256::SecretKey::from_slice(&URL_SAFE_NO_PAD.decode(receiver_private).unwrap()).unwrap();
        let auth: [u8; 16] = URL_SAFE_NO_PAD.decode(&subscription.auth).unwrap().try_into().unwrap();
        let decrypted = web_push_native::decrypt(body, &secret, &web_push_native::Auth::from(auth)).unwrap();
        assert_eq!(decrypted, plaintext);

        let broken = Subscription {
            p256dh: "BAAA".into(),
            ..subscription
        };
        assert!(encrypt(&broken, plaintext).is_err());
    }
}
