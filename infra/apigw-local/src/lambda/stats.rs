use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters per function (by logical id), also served as JSON at
/// `GET /__emulator/stats` on the HTTP API port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmulatorStats {
    pub functions: BTreeMap<String, FunctionStats>,
    /// Every fault injected so far (all 0 unless the run asked for faults).
    #[serde(default)]
    pub faults: FaultStats,
    /// Scheduled runs by function (logical id), for functions with a
    /// `Schedule` or `ScheduleV2` event that is enabled.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleStats>,
    /// Lambda's asynchronous invocations (`InvocationType: Event`).
    #[serde(default)]
    pub async_invocations: crate::async_invoke::AsyncInvocationStats,
}

/// Injected faults by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// `@connections` calls answered 410 (each also cut its socket, if open).
    pub push_gone: u64,
    /// `@connections` calls answered 429.
    pub push_throttled: u64,
    /// `@connections` calls answered 500.
    pub push_error: u64,
    /// `@connections` calls held back before being handled.
    pub push_delayed: u64,
    /// Instances killed at a random point of an invocation.
    pub kills: u64,
    /// Instances killed right after their database commit.
    pub kills_after_commit: u64,
    /// Closed sockets whose `$disconnect` was not invoked.
    pub disconnects_dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStats {
    /// Scheduled invocations started.
    pub runs: u64,
    /// Those that failed (handler error, crash, timeout, no concurrency).
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionStats {
    /// Processes spawned so far.
    pub instances_started: u64,
    /// One entry per instance started, in start order.
    pub cold_starts: Vec<InstanceColdStart>,
    /// Invocations requested (HTTP requests, WebSocket events, authorizer calls).
    pub invocations: u64,
    /// Invocations that failed: handler error, crash, timeout, throttling.
    pub errors: u64,
    /// Sum of handler times (invocation handed to the runtime -> its answer).
    pub total_handler_ms: f64,
    pub max_handler_ms: f64,
    /// Instances alive now.
    pub live_pids: Vec<u32>,
    /// Largest peak resident set size (`VmHWM`) of any instance, in KiB:
    /// sampled whenever stats are read and just before an instance is
    /// stopped. `None` until a sample was taken (or without `/proc`).
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceColdStart {
    pub pid: u32,
    /// Spawn -> the runtime's first `GET /runtime/invocation/next` (init done).
    pub init_ms: Option<f64>,
    /// Spawn -> the runtime's first response or error (init + first invocation).
    pub first_response_ms: Option<f64>,
    /// Spawn -> its first invocation handed to it: later than `init_ms` when
    /// the instance, ready, waited for work (another instance had taken the
    /// invocation it was started for), a wait that is nobody's cold start.
    #[serde(default)]
    pub first_started_ms: Option<f64>,
}

impl FunctionStats {
    pub(crate) fn record_peak_rss(&mut self, kib: Option<u64>) {
        if let Some(kib) = kib {
            self.peak_rss_kib = Some(self.peak_rss_kib.map_or(kib, |peak| peak.max(kib)));
        }
    }

    pub(crate) fn record_handler_time(&mut self, ms: f64) {
        self.total_handler_ms += ms;
        if ms > self.max_handler_ms {
            self.max_handler_ms = ms;
        }
    }
}
