//! Lambda's asynchronous invocation (`InvocationType: Event`): the event is
//! queued and answered 202 at once; the function runs it later, a failed run
//! (an error, a crash, a timeout) is retried as the function's
//! `EventInvokeConfig` says (AWS: twice, about a minute and then two minutes
//! later; here `retry_delay` and twice it), and an event that still fails, or
//! grows older than its maximum age, goes to the on-failure destination as
//! Lambda's invocation record. Destinations are recorded (in the stats, at
//! `GET /__emulator/stats`) and logged, not sent anywhere.

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids;
use crate::lambda::{FunctionSet, InvokeError};

/// The asynchronous invocations so far, served with the functions' stats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsyncInvocationStats {
    /// Events accepted (202).
    pub accepted: u64,
    /// Events whose run succeeded, first time or on a retry.
    pub succeeded: u64,
    /// Runs retried after a failure.
    pub retries: u64,
    /// What went to an on-failure destination (or was dropped, without one), oldest first.
    pub failures: Vec<AsyncFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncFailure {
    /// The function's logical id.
    pub function: String,
    /// The `OnFailure` destination it went to; `None`: dropped.
    pub destination: Option<String>,
    /// Lambda's invocation record: `requestContext` (condition
    /// `RetriesExhausted` or `EventAgeExceeded`, `approximateInvokeCount`),
    /// `requestPayload`, `responseContext` and `responsePayload`.
    pub record: Value,
}

pub(crate) struct AsyncInvoker {
    functions: Arc<FunctionSet>,
    region: String,
    /// Before the first retry; the second waits twice as long.
    retry_delay: Duration,
}

impl AsyncInvoker {
    pub fn new(functions: Arc<FunctionSet>, region: String, retry_delay: Duration) -> Self {
        Self {
            functions,
            region,
            retry_delay,
        }
    }

    fn stats_mut(&self) -> MutexGuard<'_, AsyncInvocationStats> {
        self.functions
            .async_stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues the event for the function and returns its request id at once.
    pub fn enqueue(self: &Arc<Self>, logical_id: &str, payload: Bytes) -> String {
        let request_id = ids::lambda_request_id();
        self.stats_mut().accepted += 1;
        let (invoker, logical_id, id) = (Arc::clone(self), logical_id.to_string(), request_id.clone());
        tokio::spawn(async move { invoker.run(&logical_id, &id, payload).await });
        request_id
    }

    async fn run(&self, logical_id: &str, request_id: &str, payload: Bytes) {
        let Some((function_name, policy)) = self
            .functions
            .spec(logical_id)
            .map(|spec| (spec.function_name.clone(), spec.event_invoke.clone()))
        else {
            return;
        };
        let accepted = Instant::now();
        let mut invocations = 0u32;
        loop {
            invocations += 1;
            let error = match self.functions.invoke(logical_id, payload.clone()).await {
                Ok(_) => {
                    self.stats_mut().succeeded += 1;
                    return;
                }
                Err(error) => error,
            };
            let delay = self.retry_delay.saturating_mul(invocations);
            let condition = if invocations > policy.maximum_retry_attempts {
                Some("RetriesExhausted")
            } else if accepted.elapsed() + delay > policy.maximum_event_age {
                Some("EventAgeExceeded")
            } else {
                None
            };
            if let Some(condition) = condition {
                let record = invocation_record(
                    &crate::template::function_arn(&self.region, &function_name),
                    request_id,
                    condition,
                    invocations,
                    &payload,
                    &error,
                );
                tracing::warn!(
                    function = logical_id,
                    request_id,
                    condition,
                    invocations,
                    destination = policy.on_failure.as_deref().unwrap_or("-"),
                    %error,
                    "asynchronous invocation failed for good"
                );
                self.stats_mut().failures.push(AsyncFailure {
                    function: logical_id.to_string(),
                    destination: policy.on_failure.clone(),
                    record,
                });
                return;
            }
            tracing::info!(function = logical_id, request_id, invocations, %error, delay_ms = delay.as_millis() as u64,
                "asynchronous invocation failed; retrying");
            self.stats_mut().retries += 1;
            tokio::time::sleep(delay).await;
        }
    }
}

/// What Lambda sends an on-failure destination.
fn invocation_record(
    function_arn: &str,
    request_id: &str,
    condition: &str,
    invocations: u32,
    payload: &[u8],
    error: &InvokeError,
) -> Value {
    let request_payload = serde_json::from_slice::<Value>(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    json!({
        "version": "1.0",
        "timestamp": ids::iso_time(chrono::Utc::now()),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{function_arn}:$LATEST"),
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "requestPayload": request_payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": error.error_type(), "errorMessage": error.error_message()},
    })
}
