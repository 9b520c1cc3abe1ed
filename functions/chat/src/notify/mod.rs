//! Notifications to people who are offline: Web Push to their browsers and a
//! signed webhook to the deployment's own server.
//!
//! Off the send's path: `send_message` returns, with the message, who is to be
//! notified (decided in SQL in the same transaction: `notification_request`
//! in sql/schemas/65_push.sql), and the sending function hands that to the
//! notification function with Lambda's asynchronous invocation
//! ([`LambdaInvoke`]) while it pushes to the live sockets. The notification
//! function ([`notify`]) reads what to say and to which browsers, sends, and
//! forgets the subscriptions the push service no longer knows (404, 410).
//! A failure that may pass is retried here with backoff; what still fails
//! fails the invocation, and Lambda retries it twice and then sends the event
//! to the function's on-failure destination (an SQS queue, template.yaml).

mod config;
mod lambda_invoke;
#[cfg(test)]
pub mod memory;
pub mod web_push;
pub mod webhook;

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

pub use config::{vapid_public_key, NotifyConfig, PreviewMode, VapidKey, WebhookTarget};
pub use lambda_invoke::LambdaInvoke;
use web_push::{Subscription, VapidSigner};

use crate::store::StoreResult;

/// Who is to be told of a message: what `send_message` returns as `notify`,
/// and the notification function's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandOffError {
    #[error("the Invoke API refused the event: HTTP {status} {kind}")]
    Refused { status: u16, kind: String },
    #[error("the event could not be handed off: {0}")]
    Failed(String),
}

/// Where a send's notification request goes: the notification function,
/// invoked asynchronously ([`LambdaInvoke`]); in unit tests, a recorder.
pub trait NotificationQueue: Send + Sync {
    fn enqueue(&self, request: &NotificationRequest) -> impl Future<Output = Result<(), HandOffError>> + Send;
}

/// A function that is not told where notifications go notifies nobody.
impl<Q: NotificationQueue> NotificationQueue for Option<Q> {
    async fn enqueue(&self, request: &NotificationRequest) -> Result<(), HandOffError> {
        match self {
            Some(queue) => queue.enqueue(request).await,
            None => Ok(()),
        }
    }
}

/// Hands a send's notification request, if it has one, to the notification
/// function. The message is stored and pushed whatever happens here, so a
/// failure is logged, not answered.
pub async fn hand_off<Q: NotificationQueue>(queue: &Q, request: Option<&NotificationRequest>) {
    let Some(request) = request else {
        return;
    };
    match queue.enqueue(request).await {
        Ok(()) => {
            tracing::debug!(message_id = %request.message_id, users = request.user_ids.len(), "notification handed off")
        }
        Err(error) => tracing::error!(
            %error,
            message_id = %request.message_id,
            users = request.user_ids.len(),
            "notification hand-off failed"
        ),
    }
}

/// What the notification function reads: the notification (null when the
/// message is gone) and the recipients' browsers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Targets {
    pub notification: Option<Value>,
    pub subscriptions: Vec<Subscription>,
}

/// The notification function's calls. Internal: service_role only.
pub trait NotificationStore: Send + Sync {
    fn notification_targets(
        &self,
        message_id: Uuid,
        user_ids: &[Uuid],
        preview: PreviewMode,
    ) -> impl Future<Output = StoreResult<Targets>> + Send;
    /// Forgets subscriptions the push service answered 404 or 410 for.
    fn remove_push_subscriptions(&self, endpoints: &[String]) -> impl Future<Output = StoreResult<usize>> + Send;
}

/// One try at a delivery, as the channel judged the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Done,
    /// The subscription is dead (404, 410, or keys that cannot be used).
    Gone(String),
    /// Might pass later (network, 429, 5xx); `after`: the server's Retry-After.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Would be refused again (400, 401, 403, 413).
    Fatal(String),
}

/// How hard each delivery is tried within one invocation.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_backoff: Duration,
    /// The longest wait before a retry, a server's Retry-After included.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_wait: Duration::from_secs(2),
        }
    }
}

/// Tries until the channel says done, gone or fatal, or the attempts run
/// out; waits between tries with exponential backoff and full jitter (or
/// the server's Retry-After), each wait capped.
pub async fn with_retries<F, Fut>(policy: RetryPolicy, mut attempt: F) -> Attempt
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Attempt::Retry { reason, after } if tries < policy.attempts => {
                let ceiling = policy.base_backoff.saturating_mul(1 << (tries - 1).min(16));
                let wait = after
                    .unwrap_or_else(|| crate::push::full_jitter(ceiling))
                    .min(policy.max_wait);
                tracing::info!(%reason, attempt = tries, wait_ms = wait.as_millis() as u64, "delivery will be retried");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// How the notification function reaches people: what it shows, and the
/// channels configured (either may be off).
pub struct Channels {
    pub preview: PreviewMode,
    pub web_push: Option<VapidSigner>,
    pub webhook: Option<WebhookTarget>,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
}

/// A push service or receiver that takes longer than this is given up on (and retried).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pushes in flight at once.
const MAX_IN_FLIGHT: usize = 16;

/// The HTTP client pushes and webhook posts go through. No redirects: an
/// endpoint is a user's input, and a redirect would let its server send this
/// function anywhere (its own machine included). Push services do not
/// redirect; a 3xx answer fails.
fn delivery_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

impl Channels {
    pub fn new(config: &NotifyConfig) -> Result<Self, String> {
        Ok(Self {
            preview: config.preview,
            web_push: config.vapid.as_ref().map(VapidSigner::new).transpose()?,
            webhook: config.webhook.clone(),
            http: delivery_client()?,
            retry: RetryPolicy::default(),
        })
    }
}

/// What one notification did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub pushed: usize,
    pub gone: usize,
    /// Refused for good (logged, not retried).
    pub refused: usize,
    /// Still failing after the retries: the invocation fails, for Lambda to retry.
    pub unfinished: Vec<String>,
    /// Whether the webhook took it (`None`: no webhook).
    pub webhook: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("reading the notification failed: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{} deliveries still failing: {}", .0.len(), .0.join("; "))]
    Unfinished(Vec<String>),
}

/// The notification function: tells the users of `request` of its message
/// through every configured channel. Fails (for Lambda to retry the whole
/// event) when a delivery that may still pass did not; receivers tell a
/// repeat by the notification's `id`, browsers by its tag.
pub async fn notify<S: NotificationStore>(
    store: &S,
    channels: &Channels,
    request: &NotificationRequest,
) -> Result<Report, NotifyError> {
    let mut report = Report::default();
    if channels.web_push.is_none() && channels.webhook.is_none() {
        tracing::debug!("no notification channel is configured");
        return Ok(report);
    }
    let targets = store
        .notification_targets(request.message_id, &request.user_ids, channels.preview)
        .await?;
    let Some(notification) = targets.notification else {
        tracing::info!(message_id = %request.message_id, "the message is gone: nothing to tell");
        return Ok(report);
    };

    let webhook = async {
        let target = channels.webhook.as_ref()?;
        let body = webhook_body(&notification, request);
        Some(with_retries(channels.retry, || webhook::send(&channels.http, target, &body)).await)
    };
    let pushes = async {
        let Some(signer) = &channels.web_push else {
            return Vec::new();
        };
        let payload = push_payload(&notification);
        stream::iter(&targets.subscriptions)
            .map(|subscription| {
                let topic = web_push::topic(subscription.user_id, request.conversation_id);
                let payload = &payload;
                async move {
                    let attempt = with_retries(channels.retry, || {
                        web_push::send(&channels.http, signer, subscription, &topic, payload)
                    })
                    .await;
                    (subscription, attempt)
                }
            })
            .buffer_unordered(MAX_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
    };
    let (webhook, pushes) = tokio::join!(webhook, pushes);

    let mut gone = Vec::new();
    for (subscription, attempt) in pushes {
        match attempt {
            Attempt::Done => report.pushed += 1,
            Attempt::Gone(reason) => {
                tracing::info!(user_id = %subscription.user_id, %reason, "push subscription gone");
                gone.push(subscription.endpoint.clone());
            }
            Attempt::Fatal(reason) => {
                tracing::warn!(user_id = %subscription.user_id, %reason, "push refused");
                report.refused += 1;
            }
            Attempt::Retry { reason, .. } => report.unfinished.push(format!("push: {reason}")),
        }
    }
    report.gone = gone.len();
    if !gone.is_empty() {
        if let Err(e) = store.remove_push_subscriptions(&gone).await {
            tracing::warn!(error = %e, count = gone.len(), "forgetting gone push subscriptions failed");
        }
    }
    if let Some(attempt) = webhook {
        report.webhook = Some(attempt == Attempt::Done);
        if let Attempt::Retry { reason, .. } | Attempt::Fatal(reason) | Attempt::Gone(reason) = attempt {
            report.unfinished.push(format!("webhook: {reason}"));
        }
    }
    tracing::info!(
        message_id = %request.message_id,
        users = request.user_ids.len(),
        pushed = report.pushed,
        gone = report.gone,
        refused = report.refused,
        unfinished = report.unfinished.len(),
        webhook = ?report.webhook,
        "notified"
    );
    if report.unfinished.is_empty() {
        Ok(report)
    } else {
        Err(NotifyError::Unfinished(report.unfinished))
    }
}

/// The webhook's JSON: the notification, whom it is for, and an `id` a
/// receiver tells a repeat by (a retried event, a repeated send).
pub fn webhook_body(notification: &Value, request: &NotificationRequest) -> Vec<u8> {
    let mut body = notification.clone();
    body["id"] = json!(request.message_id);
    body["user_ids"] = json!(request.user_ids);
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The notification as one browser gets it, its body cut (with …) so that the
/// JSON fits one push message.
pub fn push_payload(notification: &Value) -> Vec<u8> {
    let mut payload = notification.clone();
    loop {
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        let Some(body) = payload["message"]["body"].as_str() else {
            return bytes;
        };
        if bytes.len() <= web_push::MAX_PLAINTEXT_BYTES {
            return bytes;
        }
        // Bytes of the body to keep, making room for the three of …; cut
        // on a character boundary. A body JSON escapes takes another round.
        let mut keep = body
            .len()
            .saturating_sub(bytes.len() - web_push::MAX_PLAINTEXT_BYTES + 3);
        while !body.is_char_boundary(keep) {
            keep -= 1;
        }
        payload["message"]["body"] = json!(format!("{}…", body[..keep].trim_end()));
        if keep == 0 {
            return serde_json::to_vec(&payload).unwrap_or_default();
        }
    }
}

/// The notification function's `main`: an asynchronously invoked Lambda whose
/// event is a [`NotificationRequest`].
pub async fn run() -> Result<(), lambda_runtime::Error> {
    use crate::config::{Config, ProcessEnv};
    use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

    crate::logging::init();
    let configured = Config::from_env().and_then(|config| {
        let store = crate::store::PostgrestStore::new(&config)?;
        Ok((store, NotifyConfig::from(&ProcessEnv)?))
    });
    let (store, notify_config) = configured.inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let channels =
        Channels::new(&notify_config).inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let (store, channels): (&'static _, &'static _) = (Box::leak(Box::new(store)), Box::leak(Box::new(channels)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request: NotificationRequest = serde_json::from_value(event.payload).map_err(|e| {
            tracing::error!(error = %e, "not a notification request");
            Diagnostic {
                error_type: "InvalidEvent".into(),
                error_message: e.to_string(),
            }
        })?;
        match notify(store, channels, &request).await {
            Ok(report) => Ok(
                json!({"pushed": report.pushed, "gone": report.gone, "refused": report.refused,
                                    "webhook": report.webhook}),
            ),
            Err(error) => {
                tracing::warn!(%error, message_id = %request.message_id, "notification incomplete; Lambda retries it");
                Err(Diagnostic {
                    error_type: "NotificationIncomplete".into(),
                    error_message: error.to_string(),
                })
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every request with `answer` and counts them.
    async fn answering(answer: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn a_redirect_from_an_endpoint_is_not_followed() {
        let (inside, inside_hits) = answering("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let redirect: &'static str = Box::leak(
            format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {inside}\r\ncontent-length: 0\r\n\r\n")
                .into_boxed_str(),
        );
        let (endpoint, endpoint_hits) = answering(redirect).await;
        let response = delivery_client()
            .unwrap()
            .post(&endpoint)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 307);
        assert_eq!(endpoint_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            inside_hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[test]
    fn a_long_body_is_cut_to_fit_one_push_message() {
        let long = "é".repeat(5000);
        let notification = json!({"type": "message.created", "message": {"id": Uuid::nil(), "body": long}});
        let payload = push_payload(&notification);
        assert!(payload.len() <= web_push::MAX_PLAINTEXT_BYTES, "{}", payload.len());
        assert!(payload.len() > web_push::MAX_PLAINTEXT_BYTES - 16, "{}", payload.len());
        let parsed: Value = serde_json::from_slice(&payload).unwrap();
        let body = parsed["message"]["body"].as_str().unwrap();
        assert!(body.ends_with('…') && body.starts_with("éé"));

        let short = json!({"message": {"body": "hi"}});
        assert_eq!(push_payload(&short), serde_json::to_vec(&short).unwrap());
        let none = json!({"message": {"body": null}});
        assert_eq!(push_payload(&none), serde_json::to_vec(&none).unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn retries_what_may_pass_and_stops_at_what_will_not() {
        let policy = RetryPolicy::default();
        let tries = std::sync::atomic::AtomicU32::new(0);
        let count = || tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let answer = with_retries(policy, || async {
            match count() {
                1 => Attempt::Retry {
                    reason: "HTTP 503".into(),
                    after: Some(Duration::from_secs(60)),
                },
                _ => Attempt::Done,
            }
        })
        .await;
        assert_eq!(
            (answer, tries.load(std::sync::atomic::Ordering::SeqCst)),
            (Attempt::Done, 2)
        );

        tries.store(0, std::sync::atomic::Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let answer = with_retries(policy, || async {
            count();
            Attempt::Retry {
                reason: "HTTP 500".into(),
                after: None,
            }
        })
        .await;
        assert!(matches!(answer, Attempt::Retry { .. }));
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), policy.attempts);
        assert!(started.elapsed() <= policy.max_wait * policy.attempts);

        tries.store(0, std::sync::atomic::Ordering::SeqCst);
        let answer = with_retries(policy, || async {
            count();
            Attempt::Gone("HTTP 410".into())
        })
        .await;
        assert_eq!(
            (answer, tries.load(std::sync::atomic::Ordering::SeqCst)),
            (Attempt::Gone("HTTP 410".into()), 1)
        );
    }

    #[tokio::test]
    async fn nothing_is_read_when_no_channel_is_configured() {
        let store = crate::store::memory::MemoryStore::default();
        let channels = Channels::new(&NotifyConfig::from(&[("X", "y")]).unwrap()).unwrap();
        let request = NotificationRequest {
            conversation_id: Uuid::nil(),
            message_id: Uuid::nil(),
            user_ids: vec![Uuid::nil()],
        };
        assert_eq!(notify(&store, &channels, &request).await.unwrap(), Report::default());
        assert!(store.calls("notification_targets").is_empty());
    }
}
