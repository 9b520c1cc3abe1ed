//! Instances of one function and the invocations waiting for them.
//!
//! An invocation goes to an instance blocked in `GET /next` when there is one;
//! otherwise it queues, and one instance is started for every queued
//! invocation not already covered by an instance that is starting or about to
//! ask for its next invocation, up to the function's limit.

mod lifecycle;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{AbortHandle, JoinHandle};

use super::process::LaunchConfig;
use super::rss;
use super::session::InstanceTokens;
use super::stats::{FunctionStats, InstanceColdStart};
use super::InvokeError;
use crate::faults::{FaultInjector, KillKind, KillPlan};
use crate::ids;
use crate::template::{function_arn, FunctionSpec};

/// The handler time assumed before any invocation has answered: where a
/// random kill lands.
const FIRST_TYPICAL_HANDLER_TIME: Duration = Duration::from_millis(50);

type Reply = oneshot::Sender<Result<Bytes, InvokeError>>;

/// What `GET /runtime/invocation/next` hands to the runtime.
#[derive(Debug, Clone)]
pub(crate) struct NextInvocation {
    pub request_id: String,
    pub payload: Bytes,
    pub deadline_ms: u128,
    pub function_arn: String,
    pub trace_id: String,
}

/// A Runtime API call that does not fit the instance's state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RuntimeCallError {
    UnknownInstance,
    InvalidRequestId,
}

struct Pending {
    request_id: String,
    payload: Bytes,
    reply: Reply,
}

struct Active {
    request_id: String,
    reply: Reply,
    started: Instant,
    timer: AbortHandle,
    /// What fault injection has in store for this invocation.
    kill_plan: KillPlan,
    /// Fires a random kill.
    kill_timer: Option<AbortHandle>,
    /// The instance is being killed: its answer is discarded and its
    /// `@connections` calls are not served.
    killing: bool,
}

impl Active {
    fn stop_timers(&self) {
        self.timer.abort();
        if let Some(timer) = &self.kill_timer {
            timer.abort();
        }
    }
}

enum Phase {
    /// Spawned; its runtime has not asked for an invocation yet.
    Starting,
    /// Blocked in `GET /next`.
    Waiting(oneshot::Sender<NextInvocation>),
    Busy(Active),
    /// Answered; expected back in `GET /next` at once.
    Returning,
    /// Being killed after a timeout.
    Dying,
}

struct Instance {
    pid: Option<u32>,
    spawned_at: Instant,
    phase: Phase,
    kill: Arc<Notify>,
    init_error: Option<String>,
    /// Stopped for being idle ([`FunctionPool::reclaim_idle`]), not for a fault.
    reclaimed: bool,
    /// Dropped with the instance once its process has exited: subscribers
    /// learn it is gone.
    gone: watch::Sender<()>,
}

#[derive(Default)]
struct PoolState {
    stopping: bool,
    next_instance: u64,
    queue: VecDeque<Pending>,
    instances: BTreeMap<u64, Instance>,
    /// By instance id, so they list in start order.
    cold_starts: BTreeMap<u64, InstanceColdStart>,
    stats: FunctionStats,
    /// A moving average of handler times.
    typical_handler_time: Option<Duration>,
}

/// How a pool's instances are run beyond what the template says.
pub(crate) struct PoolSettings {
    pub max_instances: usize,
    pub faults: Arc<FaultInjector>,
    /// Share of this function's invocations killed right after their commit.
    pub kill_after_commit: f64,
    pub tokens: Arc<InstanceTokens>,
}

/// What becomes of an `@connections` call an instance makes.
pub(crate) enum CallVerdict {
    Serve,
    /// Not served: the instance is being killed; this resolves once it is gone.
    Refuse(watch::Receiver<()>),
}

pub(crate) struct FunctionPool {
    spec: FunctionSpec,
    launch: LaunchConfig,
    function_arn: String,
    max_instances: usize,
    faults: Arc<FaultInjector>,
    kill_after_commit: f64,
    tokens: Arc<InstanceTokens>,
    state: Mutex<PoolState>,
    monitors: Mutex<Vec<JoinHandle<()>>>,
}

impl FunctionPool {
    pub fn new(spec: FunctionSpec, launch: LaunchConfig, region: &str, settings: PoolSettings) -> Arc<Self> {
        Arc::new(FunctionPool {
            function_arn: function_arn(region, &spec.function_name),
            spec,
            launch,
            max_instances: settings.max_instances,
            faults: settings.faults,
            kill_after_commit: settings.kill_after_commit,
            tokens: settings.tokens,
            state: Mutex::new(PoolState::default()),
            monitors: Mutex::new(Vec::new()),
        })
    }

    pub fn logical_id(&self) -> &str {
        &self.spec.logical_id
    }

    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the function on `payload` and returns what its handler answered.
    pub async fn invoke(self: &Arc<Self>, payload: impl Into<Bytes>) -> Result<Bytes, InvokeError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            request_id: ids::lambda_request_id(),
            payload: payload.into(),
            reply,
        };
        let spawns = {
            let mut st = self.lock();
            st.stats.invocations += 1;
            let refusal = if st.stopping {
                Some("the emulator is stopping".to_string())
            } else if self.max_instances == 0 {
                Some(format!("Rate Exceeded: {} has no concurrency", self.spec.logical_id))
            } else {
                None
            };
            if let Some(reason) = refusal {
                st.stats.errors += 1;
                return Err(InvokeError::Unavailable(reason));
            }
            if let Some(pending) = self.deliver(&mut st, pending) {
                st.queue.push_back(pending);
            }
            self.reserve_spawns(&mut st)
        };
        for id in spawns {
            self.start_instance(id);
        }
        let result = answer
            .await
            .unwrap_or_else(|_| Err(InvokeError::Unavailable("the invocation was dropped".into())));
        if result.is_err() {
            self.lock().stats.errors += 1;
        }
        result
    }

    /// Hands `pending` to an instance blocked in `GET /next`, if any.
    fn deliver(self: &Arc<Self>, st: &mut PoolState, pending: Pending) -> Option<Pending> {
        let waiting: Vec<u64> = st
            .instances
            .iter()
            .filter(|(_, instance)| matches!(instance.phase, Phase::Waiting(_)) && !instance.reclaimed)
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            let instance = st.instances.get_mut(&id).expect("listed above");
            let Phase::Waiting(next_tx) = std::mem::replace(&mut instance.phase, Phase::Returning) else {
                continue;
            };
            // A closed sender means the runtime's request went away; it will ask again.
            if next_tx.is_closed() || next_tx.send(self.next_invocation(&pending)).is_err() {
                continue;
            }
            self.start_active(st, id, pending);
            return None;
        }
        Some(pending)
    }

    fn next_invocation(&self, pending: &Pending) -> NextInvocation {
        let deadline = SystemTime::now() + self.spec.timeout;
        NextInvocation {
            request_id: pending.request_id.clone(),
            payload: pending.payload.clone(),
            deadline_ms: deadline.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis(),
            function_arn: self.function_arn.clone(),
            trace_id: ids::trace_id(),
        }
    }

    fn start_active(self: &Arc<Self>, st: &mut PoolState, id: u64, pending: Pending) {
        let pool = Arc::clone(self);
        let request_id = pending.request_id.clone();
        let timeout = self.spec.timeout;
        let timer = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            pool.on_timeout(id, &request_id);
        });
        let typical = st.typical_handler_time.unwrap_or(FIRST_TYPICAL_HANDLER_TIME);
        let kill_plan = self.faults.kill_plan(self.kill_after_commit, typical);
        let kill_timer = match kill_plan {
            KillPlan::Random(after) => {
                let pool = Arc::clone(self);
                let request_id = pending.request_id.clone();
                let timer = tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    pool.kill_at_random(id, &request_id);
                });
                Some(timer.abort_handle())
            }
            KillPlan::Spare | KillPlan::AfterCommit => None,
        };
        if let Some(instance) = st.instances.get_mut(&id) {
            if let Some(entry) = st.cold_starts.get_mut(&id).filter(|e| e.first_started_ms.is_none()) {
                entry.first_started_ms = Some(millis(instance.spawned_at.elapsed()));
            }
            instance.phase = Phase::Busy(Active {
                request_id: pending.request_id,
                reply: pending.reply,
                started: Instant::now(),
                timer: timer.abort_handle(),
                kill_plan,
                kill_timer,
                killing: false,
            });
        }
    }

    /// A random kill's moment has come: kills the instance if it is still
    /// running that invocation.
    fn kill_at_random(&self, id: u64, request_id: &str) {
        let mut st = self.lock();
        if let Some(instance) = st.instances.get_mut(&id) {
            if matches!(&instance.phase, Phase::Busy(a) if a.request_id == request_id && !a.killing) {
                self.kill_instance(instance, KillKind::Random, "mid-invocation");
            }
        }
    }

    /// Kills a busy instance for fault injection: from now on its answer is
    /// discarded and its `@connections` calls go unserved; the invocation
    /// fails as any crash does once the process is gone.
    fn kill_instance(&self, instance: &mut Instance, kind: KillKind, moment: &str) {
        let Phase::Busy(active) = &mut instance.phase else {
            return;
        };
        active.killing = true;
        if let Some(timer) = active.kill_timer.take() {
            timer.abort();
        }
        self.faults.count_kill(kind);
        tracing::info!(
            function = %self.spec.logical_id,
            pid = instance.pid,
            request_id = %active.request_id,
            moment,
            "fault injected: instance killed"
        );
        instance.kill.notify_one();
    }

    /// An `@connections` call signed with instance `id`'s session token:
    /// served, unless the instance is being killed, or this is the first
    /// call of an invocation to be killed after its commit (which kills it).
    pub fn on_management_call(&self, id: u64) -> CallVerdict {
        let mut st = self.lock();
        let Some(instance) = st.instances.get_mut(&id) else {
            return CallVerdict::Serve;
        };
        match &instance.phase {
            Phase::Busy(active) if active.killing => {}
            Phase::Busy(active) if active.kill_plan == KillPlan::AfterCommit => {
                self.kill_instance(instance, KillKind::AfterCommit, "at its first @connections call");
            }
            Phase::Dying => {}
            _ => return CallVerdict::Serve,
        }
        CallVerdict::Refuse(instance.gone.subscribe())
    }

    /// `GET /runtime/invocation/next`: the next invocation for instance `id`,
    /// waiting for one if none is queued. `None` once the instance is gone.
    pub async fn next(self: &Arc<Self>, id: u64) -> Option<NextInvocation> {
        let next_rx = {
            let mut st = self.lock();
            let st = &mut *st;
            let instance = st.instances.get_mut(&id)?;
            let reclaimed = instance.reclaimed;
            let previous = std::mem::replace(&mut instance.phase, Phase::Returning);
            match previous {
                Phase::Starting => {
                    if let Some(entry) = st.cold_starts.get_mut(&id) {
                        entry.init_ms = Some(millis(instance.spawned_at.elapsed()));
                    }
                }
                Phase::Dying => {
                    instance.phase = Phase::Dying;
                    return None;
                }
                // Being killed: no more work.
                Phase::Busy(active) if active.killing => {
                    instance.phase = Phase::Busy(active);
                    return None;
                }
                Phase::Busy(active) => {
                    // The runtime asked for more work without answering this one.
                    active.stop_timers();
                    st.stats.record_handler_time(millis(active.started.elapsed()));
                    let _ = active.reply.send(Err(InvokeError::Function {
                        error_type: "Runtime.NoResponse".into(),
                        error_message: "the runtime asked for the next invocation without answering".into(),
                    }));
                }
                Phase::Waiting(_) | Phase::Returning => {}
            }
            // A reclaimed instance takes no more work: it waits here until it
            // is killed (reclaim_idle).
            let pending = if reclaimed { None } else { st.queue.pop_front() };
            if let Some(pending) = pending {
                let next = self.next_invocation(&pending);
                self.start_active(st, id, pending);
                return Some(next);
            }
            let (next_tx, next_rx) = oneshot::channel();
            if let Some(instance) = st.instances.get_mut(&id) {
                instance.phase = Phase::Waiting(next_tx);
            }
            next_rx
        };
        next_rx.await.ok()
    }

    /// `POST /runtime/invocation/{request_id}/response` or `/error`.
    pub fn complete(
        &self,
        id: u64,
        request_id: &str,
        result: Result<Bytes, InvokeError>,
    ) -> Result<(), RuntimeCallError> {
        let active = {
            let mut st = self.lock();
            let st = &mut *st;
            let instance = st.instances.get_mut(&id).ok_or(RuntimeCallError::UnknownInstance)?;
            let kill = match &instance.phase {
                Phase::Busy(active) if active.request_id == request_id => match active.kill_plan {
                    _ if active.killing => return Ok(()),
                    KillPlan::Spare => None,
                    KillPlan::Random(_) => Some(KillKind::Random),
                    KillPlan::AfterCommit => Some(KillKind::AfterCommit),
                },
                _ => return Err(RuntimeCallError::InvalidRequestId),
            };
            if let Some(kind) = kill {
                // Its time had not come yet, or it made no @connections call: the answer is lost.
                self.kill_instance(instance, kind, "as it answered");
                return Ok(());
            }
            let Phase::Busy(active) = std::mem::replace(&mut instance.phase, Phase::Returning) else {
                unreachable!("checked above");
            };
            active.stop_timers();
            if let Some(entry) = st.cold_starts.get_mut(&id).filter(|e| e.first_response_ms.is_none()) {
                entry.first_response_ms = Some(millis(instance.spawned_at.elapsed()));
            }
            let handler_time = active.started.elapsed();
            st.stats.record_handler_time(millis(handler_time));
            st.typical_handler_time = Some(match st.typical_handler_time {
                Some(typical) => typical.mul_f64(0.8) + handler_time.mul_f64(0.2),
                None => handler_time,
            });
            active
        };
        let _ = active.reply.send(result);
        Ok(())
    }

    /// `POST /runtime/init/error`: remember why, and stop the instance; the
    /// invocation that started it fails with that error.
    pub fn init_failed(&self, id: u64, error: InvokeError) -> Result<(), RuntimeCallError> {
        let mut st = self.lock();
        let instance = st.instances.get_mut(&id).ok_or(RuntimeCallError::UnknownInstance)?;
        tracing::warn!(function = %self.spec.logical_id, pid = instance.pid, %error, "function init failed");
        instance.init_error = Some(error.error_message());
        instance.kill.notify_one();
        Ok(())
    }

    fn on_timeout(&self, id: u64, request_id: &str) {
        let active = {
            let mut st = self.lock();
            let st = &mut *st;
            let Some(instance) = st.instances.get_mut(&id) else {
                return;
            };
            match &instance.phase {
                Phase::Busy(active) if active.request_id == request_id => {}
                _ => return,
            }
            let Phase::Busy(active) = std::mem::replace(&mut instance.phase, Phase::Dying) else {
                unreachable!("checked above");
            };
            tracing::warn!(function = %self.spec.logical_id, pid = instance.pid, request_id, "invocation timed out; killing the instance");
            active.stop_timers();
            instance.kill.notify_one();
            st.stats.record_handler_time(millis(active.started.elapsed()));
            active
        };
        let _ = active.reply.send(Err(InvokeError::Timeout(self.spec.timeout)));
    }

    pub fn stats(&self) -> FunctionStats {
        let live_pids: Vec<u32> = self.lock().instances.values().filter_map(|i| i.pid).collect();
        // Read outside the lock: /proc is quick, but invocations must not wait on it.
        let samples: Vec<Option<u64>> = live_pids.iter().map(|pid| rss::peak_rss_kib(*pid)).collect();
        let mut st = self.lock();
        for sample in samples {
            st.stats.record_peak_rss(sample);
        }
        let mut stats = st.stats.clone();
        stats.cold_starts = st.cold_starts.values().cloned().collect();
        stats.live_pids = st.instances.values().filter_map(|i| i.pid).collect();
        stats
    }

    /// Keeps an instance's peak memory before it is stopped: its `/proc`
    /// entry goes with it.
    fn sample_peak_rss(&self, pid: Option<u32>) {
        let sample = pid.and_then(rss::peak_rss_kib);
        self.lock().stats.record_peak_rss(sample);
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
