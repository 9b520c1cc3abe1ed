//! What a chaos run found, as written to `bench/results/*-chaos.json` and
//! printed as a few lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::client::{Cause, Record};
use super::verify::{verify, Deliveries, Integrity};
use super::Outcome;
use crate::latency::{Samples, Summary};
use crate::machine::{Commit, Machine};
use crate::options::Options;
use crate::topology::{Kind, Topology};

#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub schema: u32,
    pub started_at: DateTime<Utc>,
    pub git: Commit,
    pub machine: Machine,
    pub settings: ChaosSettings,
    pub chaos: ChaosFigures,
}

impl ChaosReport {
    /// Nothing lost, twice or out of order; every message acknowledged, none refused.
    pub fn is_clean(&self) -> bool {
        let c = &self.chaos;
        c.integrity.is_clean()
            && c.messages.unacknowledged == 0
            && c.messages.refused == 0
            && c.final_catch_up_failures == 0
    }
}

#[derive(Debug, Serialize)]
pub struct ChaosSettings {
    pub clients: usize,
    pub clients_in_direct: usize,
    pub clients_in_groups: usize,
    pub direct_conversations: usize,
    pub group_conversations: usize,
    pub group_size: usize,
    pub room_size: usize,
    pub rate_per_client: f64,
    pub room_rate_per_member: f64,
    pub duration_s: f64,
    pub drain_s: f64,
    /// Mean time between two cuts of one client's socket; 0: none.
    pub cut_every_s: f64,
    pub resync_every_s: f64,
    pub ack_timeout_s: f64,
    pub fault_kill: f64,
    pub fault_kill_after_commit: f64,
    pub fault_push_gone: f64,
    pub fault_push_throttle: f64,
    pub fault_push_error: f64,
    pub fault_push_latency_ms: u64,
    pub fault_drop_disconnect: f64,
    pub fault_seed: Option<u64>,
    pub connect_concurrency: usize,
    pub max_instances: Option<usize>,
}

impl ChaosSettings {
    pub fn new(options: &Options, topology: &Topology) -> ChaosSettings {
        ChaosSettings {
            clients: options.clients,
            clients_in_direct: topology.clients_in(Kind::Direct),
            clients_in_groups: topology.clients_in(Kind::Group),
            direct_conversations: topology.count(Kind::Direct),
            group_conversations: topology.count(Kind::Group),
            group_size: options.group_size,
            room_size: options.room_size,
            rate_per_client: options.rate,
            room_rate_per_member: options.room_rate,
            duration_s: options.duration.as_secs_f64(),
            drain_s: options.drain.as_secs_f64(),
            cut_every_s: options.cut_every.as_secs_f64(),
            resync_every_s: options.resync_every.as_secs_f64(),
            ack_timeout_s: options.ack_timeout.as_secs_f64(),
            fault_kill: options.fault_kill,
            fault_kill_after_commit: options.fault_kill_after_commit,
            fault_push_gone: options.fault_push_gone,
            fault_push_throttle: options.fault_push_throttle,
            fault_push_error: options.fault_push_error,
            fault_push_latency_ms: options.fault_push_latency,
            fault_drop_disconnect: options.fault_drop_disconnect,
            fault_seed: options.fault_seed,
            connect_concurrency: options.connect_concurrency,
            max_instances: options.max_instances,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ChaosFigures {
    pub messages: MessageFigures,
    /// Must be 0/0/0.
    pub integrity: Integrity,
    pub deliveries: DeliveryFigures,
    /// The emulator's fault counters (`faults` of `GET /__emulator/stats`), as it reports them.
    pub faults: BTreeMap<String, u64>,
    pub sockets: SocketFigures,
    pub replays: ReplayFigures,
    pub recovery: RecoveryFigures,
    /// Frames without `type` (API Gateway's own), by their `message`.
    pub gateway_frames: BTreeMap<String, u64>,
    /// `error` events, by code.
    pub errors: BTreeMap<String, u64>,
    /// Sending stopped → every message acknowledged and every client caught up; `None`: the drain timed out.
    pub drained_after_s: Option<f64>,
    /// Clients whose final catch-up could not finish.
    pub final_catch_up_failures: u64,
    /// Invocations, failures (kills included) and instances of each function invoked.
    pub functions: BTreeMap<String, FunctionCounts>,
}

#[derive(Debug, Default, Serialize)]
pub struct MessageFigures {
    /// Messages the clients wrote.
    pub written: u64,
    pub acknowledged: u64,
    /// Still without an ack when the clients stopped.
    pub unacknowledged: u64,
    /// Given up after a refusal no retry changes.
    pub refused: u64,
    /// Message rows in the database at the end.
    pub stored: u64,
    /// `sendMessage` frames sent, every attempt.
    pub frames: u64,
    pub resent_after_ack_timeout: u64,
    /// After API Gateway's crash frame or a retryable error, once its backoff was over.
    pub resent_after_crash_frame_or_error: u64,
    pub resent_after_reconnect: u64,
    /// Acks with `duplicate: true`: a resend of a stored message.
    pub duplicate_acks: u64,
    /// Acks of a message acknowledged before.
    pub late_acks: u64,
}

#[derive(Debug, Serialize)]
pub struct DeliveryFigures {
    #[serde(flatten)]
    pub counts: Deliveries,
    /// Pushes of a seq the member had applied already, ignored.
    pub pushes_already_applied: u64,
    /// Written → applied at another member, pushed.
    pub live_latency: Option<Summary>,
    /// Written → applied at another member, replayed.
    pub replay_latency: Option<Summary>,
}

#[derive(Debug, Default, Serialize)]
pub struct SocketFigures {
    pub cut_by_clients: u64,
    /// Close frames from the server, by code.
    pub closed_by_server: BTreeMap<u16, u64>,
    /// Ended without a close frame, not by the client.
    pub dropped: u64,
    pub handshakes: u64,
    pub handshake_failures: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct ReplayFigures {
    /// Each conversation from its start, once connected the first time.
    pub initial: u64,
    pub after_gap: u64,
    pub after_reconnect: u64,
    pub periodic_checks: u64,
    /// Periodic checks that found a conversation behind its `last_seq`.
    pub periodic_found_behind: u64,
    pub final_catch_up: u64,
    /// Replays and checks that failed (and were tried again).
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct RecoveryFigures {
    /// Cut by the client → connected again and every conversation replayed.
    pub after_cut: Option<Summary>,
    /// A close frame from the server → the same.
    pub after_server_close: Option<Summary>,
    /// Dropped without a close frame → the same.
    pub after_drop: Option<Summary>,
    /// API Gateway's crash frame → every message then in flight acknowledged.
    pub after_crash_frame: Option<Summary>,
    pub longest_ms: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct FunctionCounts {
    pub invocations: u64,
    pub errors: u64,
    pub instances_started: u64,
}

impl ChaosFigures {
    pub fn new(outcome: Outcome, stats: &Value) -> ChaosFigures {
        let logs: Vec<_> = outcome.records.iter().map(|r| r.log.clone()).collect();
        let verdict = verify(&outcome.conversations, &outcome.stored, &logs);
        let mut messages = MessageFigures {
            stored: outcome.stored.len() as u64,
            ..MessageFigures::default()
        };
        let mut sockets = SocketFigures::default();
        let mut replays = ReplayFigures::default();
        let mut gateway_frames = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut recovery: BTreeMap<Cause, Samples> = BTreeMap::new();
        let mut after_crash = Samples::default();
        let mut pushes_already_applied = 0;
        let mut final_catch_up_failures = 0;
        for Record {
            stats: s,
            unacked,
            recovery: by_cause,
            recovery_after_crash,
            final_catch_up_failed,
            ..
        } in outcome.records
        {
            messages.written += s.written;
            messages.acknowledged += s.acks;
            messages.unacknowledged += unacked;
            messages.refused += s.refused;
            messages.frames += s.frames;
            messages.resent_after_ack_timeout += s.resent_after_timeout;
            messages.resent_after_crash_frame_or_error += s.resent_after_hold;
            messages.resent_after_reconnect += s.resent_after_reconnect;
            messages.duplicate_acks += s.duplicate_acks;
            messages.late_acks += s.late_acks;
            sockets.cut_by_clients += s.cuts;
            add_all(&mut sockets.closed_by_server, s.server_closes);
            sockets.dropped += s.dropped;
            sockets.handshakes += s.handshakes;
            add_all(&mut sockets.handshake_failures, s.handshake_failures);
            replays.initial += s.initial_replays;
            replays.after_gap += s.replays_after_gap;
            replays.after_reconnect += s.replays_after_connect;
            replays.periodic_checks += s.resyncs;
            replays.periodic_found_behind += s.resync_found_behind;
            replays.final_catch_up += s.final_replays;
            replays.failed += s.replay_failures;
            add_all(&mut gateway_frames, s.gateway_frames);
            add_all(&mut errors, s.errors);
            pushes_already_applied += s.pushes_already_applied;
            for (cause, samples) in by_cause {
                recovery.entry(cause).or_default().extend(samples);
            }
            after_crash.extend(recovery_after_crash);
            final_catch_up_failures += u64::from(final_catch_up_failed);
        }
        let summary = |cause| recovery.get(&cause).and_then(Samples::summary);
        let recovery = RecoveryFigures {
            after_cut: summary(Cause::Cut),
            after_server_close: summary(Cause::ServerClose),
            after_drop: summary(Cause::Dropped),
            after_crash_frame: after_crash.summary(),
            longest_ms: None,
        };
        let longest_ms = [
            &recovery.after_cut,
            &recovery.after_server_close,
            &recovery.after_drop,
            &recovery.after_crash_frame,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.max_ms)
        .reduce(f64::max);
        ChaosFigures {
            messages,
            integrity: verdict.integrity,
            deliveries: DeliveryFigures {
                counts: verdict.deliveries,
                pushes_already_applied,
                live_latency: verdict.live_latency.summary(),
                replay_latency: verdict.replay_latency.summary(),
            },
            faults: counters(&stats["faults"]),
            sockets,
            replays,
            recovery: RecoveryFigures { longest_ms, ..recovery },
            gateway_frames,
            errors,
            drained_after_s: outcome.drained_after.map(|d| (d.as_secs_f64() * 100.0).round() / 100.0),
            final_catch_up_failures,
            functions: function_counts(stats),
        }
    }
}

fn add_all<K: Ord>(into: &mut BTreeMap<K, u64>, from: BTreeMap<K, u64>) {
    for (key, n) in from {
        *into.entry(key).or_default() += n;
    }
}

/// The numeric members of a JSON object.
fn counters(object: &Value) -> BTreeMap<String, u64> {
    object
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name.clone(), value.as_u64()?)))
        .collect()
}

fn function_counts(stats: &Value) -> BTreeMap<String, FunctionCounts> {
    stats["functions"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, f)| {
            let n = |key: &str| f[key].as_u64().unwrap_or(0);
            (
                name.clone(),
                FunctionCounts {
                    invocations: n("invocations"),
                    errors: n("errors"),
                    instances_started: n("instances_started"),
                },
            )
        })
        .filter(|(_, counts)| counts.invocations > 0)
        .collect()
}

/// The run in a few lines.
pub fn render(report: &ChaosReport) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let c = &report.chaos;
    let _ = writeln!(
        out,
        "chat-bench --chaos · {} · commit {}",
        report.started_at.format("%Y-%m-%d %H:%M UTC"),
        report.git.short()
    );
    let _ = writeln!(out, "machine    {}", report.machine.one_line());
    let room = if s.room_size > 0 {
        format!(", a room of {}", s.room_size)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "load       {} clients: {} in {} direct pairs, {} in {} groups of ≤{}{room}; {} msg/s each, {} into the room; {} s",
        s.clients,
        s.clients_in_direct,
        s.direct_conversations,
        s.clients_in_groups,
        s.group_conversations,
        s.group_size,
        s.rate_per_client,
        s.room_rate_per_member,
        s.duration_s
    );
    let cuts = if s.cut_every_s > 0.0 {
        format!("a cut every {} s per client (mean)", s.cut_every_s)
    } else {
        "no cuts".to_owned()
    };
    let _ = writeln!(
        out,
        "asked      kill {} · kill after commit {} (ws-send-message) · @connections 410 {} · 429 {} · 500 {} · latency ≤{} ms · $disconnect dropped {} · {cuts}",
        s.fault_kill,
        s.fault_kill_after_commit,
        s.fault_push_gone,
        s.fault_push_throttle,
        s.fault_push_error,
        s.fault_push_latency_ms,
        s.fault_drop_disconnect
    );
    let faults: Vec<String> = c.faults.iter().map(|(name, n)| format!("{name} {n}")).collect();
    let closes: u64 = c.sockets.closed_by_server.values().sum();
    let crash_frames: u64 = c.gateway_frames.values().sum();
    let _ = writeln!(
        out,
        "faults     {} · sockets cut by clients {} · closed by the server {closes} · dropped {} · gateway frames {crash_frames}",
        if faults.is_empty() {
            "the emulator reported none".to_owned()
        } else {
            faults.join(" · ")
        },
        c.sockets.cut_by_clients,
        c.sockets.dropped
    );
    let m = &c.messages;
    let _ = writeln!(
        out,
        "messages   {} written · {} acknowledged · {} stored · resent {} after an ack timeout, {} after a crash frame or error, {} after a reconnect · {} duplicate acks",
        m.written,
        m.acknowledged,
        m.stored,
        m.resent_after_ack_timeout,
        m.resent_after_crash_frame_or_error,
        m.resent_after_reconnect,
        m.duplicate_acks
    );
    let d = &c.deliveries;
    let latency = |s: &Option<Summary>| {
        s.map_or("—".to_owned(), |s| {
            format!("p50 {:.0} ms, max {:.0} ms", s.p50_ms, s.max_ms)
        })
    };
    let _ = writeln!(
        out,
        "deliveries {} owed · {} live ({}) · {} only by replay ({}) · {} pushes ignored as applied",
        d.counts.owed,
        d.counts.live,
        latency(&d.live_latency),
        d.counts.by_replay,
        latency(&d.replay_latency),
        d.pushes_already_applied
    );
    let r = &c.recovery;
    let recovered = |label: &str, s: &Option<Summary>| {
        s.map_or(format!("{label} —"), |s| {
            format!("{label} {} (longest {:.2} s)", s.count, s.max_ms / 1000.0)
        })
    };
    let _ = writeln!(
        out,
        "recovery   {} · {} · {} · {} · replays after a gap {}, a reconnect {}, a periodic check {}",
        recovered("after a cut", &r.after_cut),
        recovered("a server close", &r.after_server_close),
        recovered("a drop", &r.after_drop),
        recovered("a crash frame", &r.after_crash_frame),
        c.replays.after_gap,
        c.replays.after_reconnect,
        c.replays.periodic_found_behind
    );
    let drained = c
        .drained_after_s
        .map_or("the drain timed out".to_owned(), |s| format!("drained in {s:.2} s"));
    let _ = writeln!(
        out,
        "integrity  lost {} · duplicated {} · reordered {} · unacknowledged {} · refused {} · {drained}",
        c.integrity.lost, c.integrity.duplicated, c.integrity.reordered, m.unacknowledged, m.refused
    );
    for (code, n) in &c.errors {
        let _ = writeln!(out, "           error {code}: {n}");
    }
    out
}
