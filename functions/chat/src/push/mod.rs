//! Pushing events to WebSocket clients through the API Gateway Management API.
//!
//! [`fan_out`] posts one payload to many connections concurrently, with a bound
//! on requests in flight. A `410 Gone` means the client left without a
//! `$disconnect` reaching us: that connection is reported stale and delivery to
//! the others goes on. A `429` is retried with exponential backoff and full
//! jitter inside a fixed budget, so one slow fan-out cannot eat the Lambda's
//! timeout; what still fails is reported as failed (the caller decides
//! whether that connection must be closed: see [`crate::delivery`]).

mod management_api;
#[cfg(test)]
pub mod memory;

use std::future::Future;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

pub use management_api::{Http1Client, ManagementApi};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the connection is gone")]
    Gone,
    #[error("throttled")]
    Throttled,
    #[error("the payload is too large")]
    TooLarge,
    #[error("push failed: {0}")]
    Failed(String),
}

/// Sends bytes to one connection, closes it, or asks whether it is still
/// there. Implemented by [`ManagementApi`], and in unit tests by
/// `memory::RecordingPusher`.
pub trait ConnectionPusher: Send + Sync {
    fn post_to_connection(
        &self,
        connection_id: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<(), PushError>> + Send;
    fn delete_connection(&self, connection_id: &str) -> impl Future<Output = Result<(), PushError>> + Send;
    /// `GET @connections/{id}`: `Ok` while API Gateway knows the connection,
    /// [`PushError::Gone`] once it does not.
    fn get_connection(&self, connection_id: &str) -> impl Future<Output = Result<(), PushError>> + Send;
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct FanOutPolicy {
    pub max_in_flight: usize,
    pub max_retries: u32,
    pub base_backoff: Duration,
    /// Total time one connection may spend waiting between retries.
    pub retry_budget: Duration,
}

impl Default for FanOutPolicy {
    fn default() -> Self {
        Self {
            max_in_flight: 32,
            max_retries: 4,
            base_backoff: Duration::from_millis(25),
            retry_budget: Duration::from_millis(1500),
        }
    }
}

/// What happened to one fan-out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanOutReport {
    pub delivered: usize,
    /// Connections API Gateway no longer knows (410): forget them.
    pub gone: Vec<String>,
    /// Connections that could not be given the payload for another reason
    /// (throttled past the retry budget, an error, a timeout, too large): logged.
    pub failed: Vec<String>,
}

pub async fn fan_out<P: ConnectionPusher>(
    pusher: &P,
    connection_ids: impl IntoIterator<Item = String>,
    payload: &[u8],
    policy: FanOutPolicy,
) -> FanOutReport {
    let results: Vec<(String, Result<(), PushError>)> = stream::iter(connection_ids)
        .map(|id| async move {
            let result = post_with_retry(pusher, &id, payload, policy).await;
            (id, result)
        })
        .buffer_unordered(policy.max_in_flight.max(1))
        .collect()
        .await;
    let mut report = FanOutReport::default();
    for (id, result) in results {
        match result {
            Ok(()) => report.delivered += 1,
            Err(PushError::Gone) => report.gone.push(id),
            Err(e) => {
                tracing::warn!(connection_id = %id, error = %e, "push failed");
                report.failed.push(id);
            }
        }
    }
    report
}

/// Closes each connection (DeleteConnection), concurrently and bounded as a
/// fan-out, throttling retried: each connection's answer (`Gone` when API
/// Gateway no longer knew it).
pub async fn close_connections<P: ConnectionPusher>(
    pusher: &P,
    connection_ids: Vec<String>,
    policy: FanOutPolicy,
) -> Vec<(String, Result<(), PushError>)> {
    each_connection(pusher, connection_ids, Call::Close, policy).await
}

/// Asks API Gateway about each connection (`GET @connections/{id}`), as
/// [`close_connections`] closes them: `Ok` for those it still knows.
pub async fn probe_connections<P: ConnectionPusher>(
    pusher: &P,
    connection_ids: Vec<String>,
    policy: FanOutPolicy,
) -> Vec<(String, Result<(), PushError>)> {
    each_connection(pusher, connection_ids, Call::Probe, policy).await
}

#[derive(Clone, Copy)]
enum Call {
    Close,
    Probe,
}

async fn each_connection<P: ConnectionPusher>(
    pusher: &P,
    connection_ids: Vec<String>,
    call: Call,
    policy: FanOutPolicy,
) -> Vec<(String, Result<(), PushError>)> {
    stream::iter(connection_ids)
        .map(|id| async move {
            let connection_id = id.as_str();
            let result = retry_throttled(policy, || async move {
                match call {
                    Call::Close => pusher.delete_connection(connection_id).await,
                    Call::Probe => pusher.get_connection(connection_id).await,
                }
            })
            .await;
            (id, result)
        })
        .buffer_unordered(policy.max_in_flight.max(1))
        .collect()
        .await
}

/// Posts to one connection, retrying throttling only.
pub async fn post_with_retry<P: ConnectionPusher>(
    pusher: &P,
    connection_id: &str,
    payload: &[u8],
    policy: FanOutPolicy,
) -> Result<(), PushError> {
    retry_throttled(policy, || pusher.post_to_connection(connection_id, payload)).await
}

/// Runs one Management API call, retrying it while it is throttled, within
/// the policy's retries and budget.
pub async fn retry_throttled<F, Fut>(policy: FanOutPolicy, mut call: F) -> Result<(), PushError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), PushError>>,
{
    let mut waited = Duration::ZERO;
    let mut attempt = 0;
    loop {
        match call().await {
            Err(PushError::Throttled) if attempt < policy.max_retries => {
                let ceiling = policy.base_backoff.saturating_mul(1 << attempt.min(16));
                let delay = full_jitter(ceiling);
                if waited + delay > policy.retry_budget {
                    return Err(PushError::Throttled);
                }
                tokio::time::sleep(delay).await;
                waited += delay;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A uniformly random duration in [0, ceiling] ("full jitter"), so that retries
/// of many concurrent senders spread out instead of colliding again.
pub(crate) fn full_jitter(ceiling: Duration) -> Duration {
    let random = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default());
    let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) })
}

#[cfg(test)]
mod tests {
    use super::memory::RecordingPusher;
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn gone_connections_are_reported_and_the_rest_still_get_it() {
        let pusher = RecordingPusher::default();
        pusher.gone("c1");
        pusher.answer("c3", [Err(PushError::Failed("boom".into()))]);
        let report = fan_out(&pusher, ids(5), b"{}", FanOutPolicy::default()).await;
        assert_eq!(report.delivered, 3);
        assert_eq!(report.gone, vec!["c1".to_string()]);
        assert_eq!(report.failed, vec!["c3".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_within_the_budget() {
        let pusher = RecordingPusher::default();
        pusher.answer("c0", [Err(PushError::Throttled), Err(PushError::Throttled)]);
        let report = fan_out(&pusher, ids(1), b"{}", FanOutPolicy::default()).await;
        assert_eq!(report.delivered, 1);
        assert_eq!(pusher.attempts(), 3);

        let always = RecordingPusher::default();
        always.answer("c0", vec![Err(PushError::Throttled); 100]);
        let policy = FanOutPolicy::default();
        let report = fan_out(&always, ids(1), b"{}", policy).await;
        assert_eq!(report.failed, vec!["c0".to_string()]);
        assert!(always.attempts() as u32 <= policy.max_retries + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_are_bounded() {
        let pusher = RecordingPusher::default();
        let policy = FanOutPolicy {
            max_in_flight: 4,
            ..Default::default()
        };
        let report = fan_out(&pusher, ids(50), b"{}", policy).await;
        assert_eq!(report.delivered, 50);
        let peak = pusher.peak_in_flight();
        assert!((1..=4).contains(&peak), "peak {peak}");
    }

    #[test]
    fn jitter_stays_under_the_ceiling() {
        for _ in 0..1000 {
            assert!(full_jitter(Duration::from_millis(10)) <= Duration::from_millis(10));
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
