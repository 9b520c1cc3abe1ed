//! Stand-ins for what notifications reach: a Web Push service (RFC 8030) that
//! records every push to the subscriptions the tests make, and the
//! deployment's webhook receiver. One server for the whole run, on its own
//! thread, started before the stack (the stack is told its webhook URL).
//!
//! Nothing here trusts what it receives: a test checks a push's VAPID token
//! (ES256, for this origin, unexpired, with a contact) with the stack's public
//! key, and decrypts its payload (RFC 8291) with the subscriber's private key,
//! written here from the RFC, not with the crate the functions encrypt with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use super::stack::ARRIVAL;

/// The webhook's secret on the test stack.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789abcdef";

/// One request the push service received.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// One request the webhook receiver received.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Recorded {
    pushes: BTreeMap<Uuid, Vec<ReceivedPush>>,
    /// Subscriptions answered with this status instead of 201.
    push_status: BTreeMap<Uuid, u16>,
    webhooks: Vec<ReceivedWebhook>,
    /// Conversations whose notifications the receiver answers 500.
    failing_conversations: BTreeSet<String>,
}

pub struct PushService {
    pub origin: String,
    recorded: Arc<Mutex<Recorded>>,
}

/// A browser's subscription: its key pair and auth secret, made in the test.
pub struct Subscriber {
    pub id: Uuid,
    pub endpoint: String,
    private_key: p256::SecretKey,
    pub p256dh: String,
    pub auth: String,
}

impl Subscriber {
    /// `PushSubscription.toJSON()`, as a browser gives it.
    pub fn subscription_json(&self) -> Value {
        json!({"endpoint": self.endpoint, "expirationTime": null, "keys": {"p256dh": self.p256dh, "auth": self.auth}})
    }
}

/// The server, started on first use.
pub fn push_service() -> &'static PushService {
    static SERVICE: OnceLock<PushService> = OnceLock::new();
    SERVICE.get_or_init(start)
}

fn start() -> PushService {
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let state = Arc::clone(&recorded);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let router = Router::new()
                .route("/push/{id}", post(push))
                .route("/webhook", post(webhook))
                .with_state(state);
            axum::serve(listener, router).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    PushService {
        origin: format!("http://{addr}"),
        recorded,
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect()
}

async fn push(
    State(recorded): State<Arc<Mutex<Recorded>>>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut recorded = recorded.lock().unwrap();
    recorded.pushes.entry(id).or_default().push(ReceivedPush {
        headers: header_map(&headers),
        body: body.to_vec(),
    });
    StatusCode::from_u16(recorded.push_status.get(&id).copied().unwrap_or(201)).unwrap()
}

async fn webhook(State(recorded): State<Arc<Mutex<Recorded>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut recorded = recorded.lock().unwrap();
    let conversation = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["conversation"]["id"].as_str().map(str::to_string))
        .unwrap_or_default();
    let failing = recorded.failing_conversations.contains(&conversation);
    recorded.webhooks.push(ReceivedWebhook {
        headers: header_map(&headers),
        body: body.to_vec(),
    });
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl PushService {
    pub fn webhook_url(&self) -> String {
        format!("{}/webhook", self.origin)
    }

    /// A new browser: a P-256 key pair and a 16-byte auth secret, and an endpoint here.
    pub fn subscriber(&self) -> Subscriber {
        let id = Uuid::new_v4();
        let private_key = p256::SecretKey::from_slice(&Sha256Random::bytes()).unwrap();
        let auth = &Sha256Random::bytes()[..16];
        Subscriber {
            id,
            endpoint: format!("{}/push/{id}", self.origin),
            p256dh: URL_SAFE_NO_PAD.encode(private_key.public_key().to_encoded_point(false).as_bytes()),
            auth: URL_SAFE_NO_PAD.encode(auth),
            private_key,
        }
    }

    /// From now on the push service answers `status` for this subscription.
    pub fn answer(&self, subscriber: &Subscriber, status: u16) {
        self.recorded.lock().unwrap().push_status.insert(subscriber.id, status);
    }

    /// The webhook receiver answers 500 to notifications of this conversation.
    pub fn fail_webhook_for(&self, conversation_id: Uuid) {
        self.recorded
            .lock()
            .unwrap()
            .failing_conversations
            .insert(conversation_id.to_string());
    }

    pub fn pushes(&self, subscriber: &Subscriber) -> Vec<ReceivedPush> {
        self.recorded
            .lock()
            .unwrap()
            .pushes
            .get(&subscriber.id)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the subscription has received `count` pushes; returns them.
    pub async fn await_pushes(&self, subscriber: &Subscriber, count: usize) -> Vec<ReceivedPush> {
        let deadline = Instant::now() + ARRIVAL;
        loop {
            let pushes = self.pushes(subscriber);
            if pushes.len() >= count {
                return pushes;
            }
            assert!(
                Instant::now() < deadline,
                "{} pushes arrived, not {count}",
                pushes.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The webhook's requests about a conversation, as they came.
    pub fn webhooks(&self, conversation_id: Uuid) -> Vec<ReceivedWebhook> {
        self.recorded
            .lock()
            .unwrap()
            .webhooks
            .iter()
            .filter(|w| {
                serde_json::from_slice::<Value>(&w.body)
                    .ok()
                    .and_then(|b| b["conversation"]["id"].as_str().map(str::to_string))
                    == Some(conversation_id.to_string())
            })
            .cloned()
            .collect()
    }

    pub async fn await_webhooks(&self, conversation_id: Uuid, count: usize) -> Vec<ReceivedWebhook> {
        let deadline = Instant::now() + ARRIVAL;
        loop {
            let received = self.webhooks(conversation_id);
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} webhooks arrived, not {count}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// 32 random bytes (a UUID's randomness, hashed): enough for a test key.
struct Sha256Random;

impl Sha256Random {
    fn bytes() -> [u8; 32] {
        use sha2::Digest;
        Sha256::new()
            .chain_update(Uuid::new_v4().as_bytes())
            .chain_update(Uuid::new_v4().as_bytes())
            .finalize()
            .into()
    }
}

/// Checks the VAPID `Authorization` of a push (RFC 8292) with the
/// application server's public key; returns the token's claims.
pub fn verify_vapid(push: &ReceivedPush, vapid_public_key: &str, origin: &str) -> Value {
    let authorization = &push.headers["authorization"];
    let (token, key) = authorization
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .unwrap_or_else(|| panic!("not a VAPID authorization: {authorization}"));
    assert_eq!(key, vapid_public_key, "k= is the stack's public key");
    let point = URL_SAFE_NO_PAD.decode(key).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .unwrap_or_else(|e| panic!("the VAPID token does not verify: {e}"))
        .claims;
    let exp = claims["exp"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(exp > now && exp <= now + 24 * 3600, "exp within 24 hours: {claims}");
    let sub = claims["sub"].as_str().unwrap();
    assert!(sub.starts_with("mailto:") || sub.starts_with("https:"), "{claims}");
    claims
}

/// Decrypts a push's `aes128gcm` body (RFC 8291, RFC 8188) with the
/// subscriber's private key and auth secret.
pub fn decrypt(push: &ReceivedPush, subscriber: &Subscriber) -> Value {
    assert_eq!(push.headers["content-encoding"], "aes128gcm");
    let body = &push.body;
    assert!(body.len() <= 4096, "a push message is at most 4096 bytes");
    let (salt, rest) = body.split_at(16);
    let record_size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
    let key_id_len = rest[4] as usize;
    let (as_public_bytes, ciphertext) = rest[5..].split_at(key_id_len);
    assert_eq!(key_id_len, 65, "the key id is the sender's public key");
    assert!(ciphertext.len() <= record_size, "one record");
    let as_public = p256::PublicKey::from_sec1_bytes(as_public_bytes).unwrap();
    let shared = p256::ecdh::diffie_hellman(subscriber.private_key.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = subscriber.private_key.public_key().to_encoded_point(false);
    let auth = URL_SAFE_NO_PAD.decode(&subscriber.auth).unwrap();

    // RFC 8291 §3.4: IKM from the shared secret, keyed by the auth secret.
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public.as_bytes());
    key_info.extend_from_slice(as_public_bytes);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .unwrap();
    // RFC 8188 §2.2, 2.3: the content key and nonce from the salt.
    let content = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    content.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
    content.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
    let padded = Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(&Nonce::from(nonce), ciphertext)
        .expect("the payload decrypts with the subscriber's key");
    // The last record ends with the delimiter 2 and zero padding.
    let end = padded.iter().rposition(|b| *b != 0).unwrap();
    assert_eq!(padded[end], 2, "the last record's delimiter");
    serde_json::from_slice(&padded[..end]).expect("the payload is JSON")
}

/// Checks the webhook's signature and timestamp as a receiver must; returns its JSON.
pub fn verify_webhook(received: &ReceivedWebhook) -> Value {
    let timestamp = &received.headers["chat-webhook-timestamp"];
    let seconds: i64 = timestamp.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - seconds).abs() <= 300,
        "a fresh timestamp: {timestamp}"
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(received.headers["chat-webhook-signature"], format!("v1={expected}"));
    assert_eq!(received.headers["content-type"], "application/json");
    serde_json::from_slice(&received.body).unwrap()
}
