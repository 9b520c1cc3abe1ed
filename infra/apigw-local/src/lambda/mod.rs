//! Lambda: function instances as processes behind the Runtime API, with warm
//! reuse and scale-out up to a per-function limit.

mod pool;
mod process;
mod rss;
mod runtime_api;
pub(crate) mod session;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;

use crate::faults::FaultInjector;
use crate::schedule::RunCounts;
pub(crate) use pool::{CallVerdict, FunctionPool, PoolSettings};
pub(crate) use process::LaunchConfig;
use session::InstanceTokens;
use stats::EmulatorStats;

/// Every function of the template, by logical id, and what the run shares
/// across them: fault injection, the instances' session tokens, scheduled runs.
pub(crate) struct FunctionSet {
    pools: BTreeMap<String, Arc<FunctionPool>>,
    faults: Arc<FaultInjector>,
    tokens: Arc<InstanceTokens>,
    schedule_runs: RunCounts,
    /// Kept by `AsyncInvoker`, served with the functions' stats.
    pub(crate) async_stats: std::sync::Mutex<crate::async_invoke::AsyncInvocationStats>,
}

impl FunctionSet {
    pub fn new(
        pools: impl IntoIterator<Item = Arc<FunctionPool>>,
        faults: Arc<FaultInjector>,
        tokens: Arc<InstanceTokens>,
    ) -> Self {
        FunctionSet {
            pools: pools.into_iter().map(|p| (p.logical_id().to_string(), p)).collect(),
            faults,
            tokens,
            schedule_runs: RunCounts::default(),
            async_stats: Default::default(),
        }
    }

    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    pub fn schedule_runs(&self) -> RunCounts {
        Arc::clone(&self.schedule_runs)
    }

    /// Whether `token` is a session token issued to a function instance
    /// (by this emulator or another one with the same key).
    pub fn is_instance_session(&self, token: &str) -> bool {
        self.tokens.is_genuine(token)
    }

    /// The instance of this emulator that `token` belongs to, if any.
    pub fn instance_of(&self, token: &str) -> Option<(Arc<FunctionPool>, u64)> {
        let (logical_id, instance) = self.tokens.identify(token)?;
        Some((Arc::clone(self.pools.get(&logical_id)?), instance))
    }

    pub async fn invoke(&self, logical_id: &str, payload: impl Into<Bytes>) -> Result<Bytes, InvokeError> {
        match self.pools.get(logical_id) {
            Some(pool) => pool.invoke(payload).await,
            None => Err(InvokeError::Unavailable(format!("no function {logical_id}"))),
        }
    }

    /// The logical id of the function a name or ARN (`arn:aws:lambda:…:function:NAME`,
    /// optionally with `:$LATEST`) names, as the Invoke API takes it.
    pub fn find(&self, name_or_arn: &str) -> Option<String> {
        let name = match name_or_arn.strip_prefix("arn:aws:lambda:") {
            Some(rest) => rest.split(':').nth(3)?,
            None => name_or_arn,
        };
        self.pools
            .iter()
            .find(|(_, pool)| pool.spec().function_name == name)
            .map(|(id, _)| id.clone())
    }

    pub fn spec(&self, logical_id: &str) -> Option<&crate::template::FunctionSpec> {
        self.pools.get(logical_id).map(|pool| pool.spec())
    }

    pub fn stats(&self) -> EmulatorStats {
        EmulatorStats {
            functions: self.pools.iter().map(|(id, pool)| (id.clone(), pool.stats())).collect(),
            faults: self.faults.stats(),
            schedules: self.schedule_runs.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            async_invocations: self.async_stats.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Every function's idle instances stopped ([`FunctionPool::reclaim_idle`]); how many.
    pub async fn reclaim_idle(&self) -> usize {
        futures_util::future::join_all(self.pools.values().map(|pool| pool.reclaim_idle()))
            .await
            .into_iter()
            .sum()
    }

    pub fn kill_all(&self) {
        for pool in self.pools.values() {
            pool.kill_all();
        }
    }

    pub async fn stop_all(&self) {
        futures_util::future::join_all(self.pools.values().map(|pool| pool.stop())).await;
    }
}

/// Why an invocation produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The handler reported an error through `/invocation/{id}/error` or `/init/error`.
    Function { error_type: String, error_message: String },
    /// The instance's process exited before answering (`Runtime exited with error: …`).
    RuntimeExited(String),
    /// The function's Timeout passed; the instance was killed.
    Timeout(Duration),
    /// Not run at all: no concurrency, no process, or the emulator is stopping.
    Unavailable(String),
}

impl InvokeError {
    pub fn error_message(&self) -> String {
        match self {
            InvokeError::Function { error_message, .. } => error_message.clone(),
            InvokeError::RuntimeExited(reason) => reason.clone(),
            InvokeError::Timeout(timeout) => {
                format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
            }
            InvokeError::Unavailable(reason) => reason.clone(),
        }
    }

    pub fn error_type(&self) -> &str {
        match self {
            InvokeError::Function { error_type, .. } => error_type,
            InvokeError::RuntimeExited(_) => "Runtime.ExitError",
            InvokeError::Timeout(_) => "Sandbox.Timedout",
            InvokeError::Unavailable(_) => "ServiceException",
        }
    }
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.error_message())
    }
}
