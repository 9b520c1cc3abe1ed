//! Starting, watching and stopping the processes of one function.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{millis, FunctionPool, Instance, Pending, Phase, PoolState};
use crate::lambda::process::describe_exit;
use crate::lambda::runtime_api;
use crate::lambda::stats::InstanceColdStart;
use crate::lambda::InvokeError;

impl FunctionPool {
    /// Reserves instance slots for queued invocations nothing else will pick up.
    pub(super) fn reserve_spawns(&self, st: &mut PoolState) -> Vec<u64> {
        let mut ids = Vec::new();
        if st.stopping {
            return ids;
        }
        loop {
            let coming = st
                .instances
                .values()
                .filter(|i| matches!(i.phase, Phase::Starting | Phase::Returning) && !i.reclaimed)
                .count();
            if st.queue.len() <= coming || st.instances.len() >= self.max_instances {
                return ids;
            }
            let id = st.next_instance;
            st.next_instance += 1;
            st.instances.insert(
                id,
                Instance {
                    pid: None,
                    spawned_at: Instant::now(),
                    phase: Phase::Starting,
                    kill: Arc::new(Notify::new()),
                    init_error: None,
                    reclaimed: false,
                    gone: watch::Sender::new(()),
                },
            );
            ids.push(id);
        }
    }

    pub(super) fn start_instance(self: &Arc<Self>, id: u64) {
        if let Err(error) = self.try_start_instance(id) {
            tracing::error!(function = %self.spec.logical_id, %error, executable = %self.launch.executable.display(), "cannot start function instance");
            let failed = {
                let mut st = self.lock();
                st.instances.remove(&id);
                st.queue.pop_front()
            };
            if let Some(pending) = failed {
                let _ = pending.reply.send(Err(InvokeError::Unavailable(format!(
                    "cannot start the function: {error}"
                ))));
            }
        }
    }

    fn try_start_instance(self: &Arc<Self>, id: u64) -> std::io::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let runtime_api_addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let router = runtime_api::router(Arc::clone(self), id);
        let server = tokio::spawn(async move {
            let _ = axum::serve(crate::no_delay(listener), router).await;
        });
        // Recorded before the spawn: the runtime may call in before it returns.
        {
            let mut st = self.lock();
            st.cold_starts.insert(id, InstanceColdStart::default());
            if let Some(instance) = st.instances.get_mut(&id) {
                instance.spawned_at = Instant::now();
            }
        }
        // Its own credentials: its @connections calls say who made them.
        let session_token = self.tokens.issue(&self.spec.logical_id, id);
        let mut child = match self.launch.spawn(runtime_api_addr, &session_token) {
            Ok(child) => child,
            Err(error) => {
                server.abort();
                self.lock().cold_starts.remove(&id);
                return Err(error);
            }
        };
        let pid = child.id();
        let kill = {
            let mut st = self.lock();
            let st = &mut *st;
            st.stats.instances_started += 1;
            if let Some(entry) = st.cold_starts.get_mut(&id) {
                entry.pid = pid.unwrap_or_default();
            }
            let instance = st.instances.get_mut(&id).expect("reserved before start");
            instance.pid = pid;
            if st.stopping {
                instance.kill.notify_one();
            }
            Arc::clone(&instance.kill)
        };
        tracing::debug!(function = %self.spec.logical_id, pid, runtime_api = %runtime_api_addr, "instance started");
        let pool = Arc::clone(self);
        let monitor = tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill.notified() => {
                    pool.sample_peak_rss(pid);
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            server.abort();
            pool.on_exit(id, describe_exit(status));
        });
        let mut monitors = self.monitors.lock().unwrap_or_else(|p| p.into_inner());
        monitors.retain(|m| !m.is_finished());
        monitors.push(monitor);
        Ok(())
    }

    fn on_exit(self: &Arc<Self>, id: u64, status: String) {
        let (failed, spawns) = {
            let mut st = self.lock();
            let st = &mut *st;
            let Some(instance) = st.instances.remove(&id) else {
                return;
            };
            let reason = match &instance.init_error {
                Some(init_error) => init_error.clone(),
                None => format!("Runtime exited with error: {status}"),
            };
            if !st.stopping && !instance.reclaimed {
                tracing::warn!(function = %self.spec.logical_id, pid = instance.pid, %status, "function instance exited");
            }
            let failed = match instance.phase {
                Phase::Busy(active) => {
                    active.stop_timers();
                    st.stats.record_handler_time(millis(active.started.elapsed()));
                    Some(active.reply)
                }
                // It was started for a queued invocation and never took one.
                Phase::Starting => st.queue.pop_front().map(|p| p.reply),
                Phase::Waiting(_) | Phase::Returning | Phase::Dying => None,
            };
            (failed.map(|reply| (reply, reason)), self.reserve_spawns(st))
        };
        if let Some((reply, reason)) = failed {
            let _ = reply.send(Err(InvokeError::RuntimeExited(reason)));
        }
        for id in spawns {
            self.start_instance(id);
        }
    }

    /// Fails queued invocations and kills every instance, without waiting.
    pub fn kill_all(&self) {
        let queued: Vec<Pending> = {
            let mut st = self.lock();
            st.stopping = true;
            for instance in st.instances.values() {
                instance.kill.notify_one();
            }
            st.queue.drain(..).collect()
        };
        for pending in queued {
            let _ = pending
                .reply
                .send(Err(InvokeError::Unavailable("the emulator is stopping".into())));
        }
    }

    /// Stops every instance that is waiting for work, as Lambda reclaims idle
    /// execution environments: the next invocation starts a new one, so a
    /// benchmark can time cold starts one at a time on a warm stack. Waits
    /// until they have exited; answers how many there were. An instance that
    /// has answered and is on its way back to `GET /next` is idle too: its
    /// caller may already have the answer and ask for a reclaim before the
    /// runtime asks for more work.
    pub async fn reclaim_idle(&self) -> usize {
        let mut gone = Vec::new();
        {
            let mut st = self.lock();
            for instance in st.instances.values_mut() {
                if matches!(instance.phase, Phase::Waiting(_) | Phase::Returning) && !instance.reclaimed {
                    // Its `GET /next` stays open until the process is killed:
                    // answering it would have the runtime fail loudly first.
                    // `deliver` passes it over from now on.
                    instance.reclaimed = true;
                    instance.kill.notify_one();
                    gone.push(instance.gone.subscribe());
                }
            }
        }
        let reclaimed = gone.len();
        for mut receiver in gone {
            // Err once the sender is dropped with the instance.
            while receiver.changed().await.is_ok() {}
        }
        reclaimed
    }

    /// Kills every instance and waits until all have exited.
    pub async fn stop(&self) {
        self.kill_all();
        loop {
            let monitors: Vec<JoinHandle<()>> =
                std::mem::take(&mut *self.monitors.lock().unwrap_or_else(|p| p.into_inner()));
            if monitors.is_empty() {
                if self.lock().instances.is_empty() {
                    return;
                }
                // An instance between reservation and spawn; its monitor appears shortly.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            for monitor in monitors {
                let _ = monitor.await;
            }
        }
    }
}
