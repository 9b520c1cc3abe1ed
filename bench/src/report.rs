//! Everything one run measured, as written to `bench/results/*.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::client::Record;
use crate::cost::CostFigures;
use crate::cpu::CpuFigures;
use crate::floor::{Floor, Ratio};
use crate::functions::{BinaryFigures, FunctionFigures};
use crate::latency::{Samples, Summary};
use crate::machine::{Commit, Machine};
use crate::options::Options;
use crate::round_trips::RoundTrips;
use crate::steps::StepFigures;
use crate::topology::{Kind, Topology};

/// Bumped when a field changes meaning, so old results are not misread.
/// 2: binary sizes per executable (`binaries`), not per function; no
/// `gb_seconds_per_million` per function (see `cost`); `steps`.
pub const SCHEMA: u32 = 2;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub started_at: DateTime<Utc>,
    /// The checkout measured (its template, SQL and, normally, binaries).
    pub git: Commit,
    /// The load generator's own checkout, when it ran another one (`--checkout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench_git: Option<Commit>,
    pub machine: Machine,
    pub settings: Settings,
    pub stack_ready_s: f64,
    pub connect: ConnectFigures,
    /// With `--step`: the highest step held (else the first step).
    pub load: LoadFigures,
    /// With `--step`: every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<StepFigures>,
    pub unloaded: UnloadedFigures,
    pub floor: Floor,
    pub vs_floor: VsFloor,
    pub rest: Vec<RestFigures>,
    pub disconnect: DisconnectFigures,
    pub functions: Vec<FunctionFigures>,
    pub binaries: Vec<BinaryFigures>,
    /// CPU by process kind over the load's measured window; `None` without `/proc`.
    pub cpu: Option<CpuFigures>,
    /// Lambda cost by memory size, modelled from the CPU and handler time per
    /// invocation over the whole run; `None` without `/proc`.
    pub cost: Option<CostFigures>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub clients: usize,
    pub clients_in_direct: usize,
    pub clients_in_groups: usize,
    pub direct_conversations: usize,
    pub group_conversations: usize,
    pub group_size: usize,
    pub room_size: usize,
    /// Every client in the room, sending to it at the client's rate.
    pub fan_out_heavy: bool,
    pub rate_per_client: f64,
    pub room_rate_per_member: f64,
    /// Measured sending time; with `--step`, of each step.
    pub duration_s: f64,
    pub warmup_s: f64,
    pub drain_s: f64,
    pub rest_requests: usize,
    pub sequential_sends: usize,
    pub cold_rounds: usize,
    pub floor_samples: usize,
    pub connect_concurrency: usize,
    /// `None`: the stack's default.
    pub max_instances: Option<usize>,
    pub offline_share: f64,
    /// Users who are members of a group or the room but never connect.
    pub offline_users: usize,
    /// Template parameters set for the run (`--parameter`; step mode's lifted limits).
    pub parameters: std::collections::BTreeMap<String, String>,
}

impl Settings {
    pub fn new(options: &Options, topology: &Topology, offline_users: usize) -> Settings {
        Settings {
            clients: options.clients,
            clients_in_direct: topology.clients_in(Kind::Direct),
            clients_in_groups: topology.clients_in(Kind::Group),
            direct_conversations: topology.count(Kind::Direct),
            group_conversations: topology.count(Kind::Group),
            group_size: options.group_size,
            room_size: options.room_members(),
            fan_out_heavy: options.fan_out_heavy,
            rate_per_client: options.rate,
            room_rate_per_member: options.room_rate_per_member(),
            duration_s: options.step.unwrap_or(options.duration).as_secs_f64(),
            parameters: options.template_parameters().into_iter().collect(),
            warmup_s: options.warmup.as_secs_f64(),
            drain_s: options.drain.as_secs_f64(),
            rest_requests: options.rest_requests,
            sequential_sends: options.sequential_sends,
            cold_rounds: options.cold_rounds,
            floor_samples: options.floor_samples,
            connect_concurrency: options.connect_concurrency,
            max_instances: options.max_instances,
            offline_share: options.offline_share,
            offline_users,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectFigures {
    pub clients: usize,
    /// Connections in the registry once every client is connected; fewer
    /// than `clients` means messages to the others are lost.
    pub registered: u64,
    /// WebSocket handshake: authorizer, `$connect`, upgrade.
    pub handshake: Option<Summary>,
    pub round_trips: Option<RoundTrips>,
    /// CPU by process kind while the clients connected, per connection
    /// (`us_per_send`); `None` without `/proc`.
    pub cpu: Option<CpuFigures>,
}

#[derive(Debug, Serialize)]
pub struct LoadFigures {
    /// From the end of the warm-up to the last measured delivery (at least the duration).
    pub measured_s: f64,
    pub sent: u64,
    pub sent_measured: u64,
    pub sends_per_s: f64,
    pub deliveries_measured: u64,
    pub deliveries_per_s: f64,
    /// Send → `message.created`, once per recipient of every measured message.
    pub deliver: Option<Summary>,
    pub deliver_by_kind: BTreeMap<&'static str, Summary>,
    /// Send → the sender's `message.ack`.
    pub ack: Option<Summary>,
    pub integrity: Integrity,
    /// Sending stopped → the last owed delivery or ack; `None`: the drain timed out.
    pub drained_after_s: Option<f64>,
    /// What the load's sends handed to the notification function (warm-up included).
    pub notifications: NotificationFigures,
}

/// Notifications handed off during the load, by the clients' count and by
/// the emulator's (`GET /__emulator/stats`).
#[derive(Debug, Default, Serialize)]
pub struct NotificationFigures {
    /// Sends into a conversation with offline members: each should hand off one.
    pub expected: u64,
    /// The offline members over those sends: users to be told.
    pub users_to_notify: u64,
    /// Events Lambda's Invoke API accepted (`async_invocations.accepted`).
    pub handed_off: u64,
    /// Invocations of the notification function and how many failed;
    /// `None`: the template has no notification function.
    pub notify_invocations: Option<u64>,
    pub notify_errors: Option<u64>,
    /// Events whose run succeeded, runs retried, and events that failed for good.
    pub succeeded: u64,
    pub retries: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct UnloadedFigures {
    /// Messages sent one at a time, each after the previous one's ack.
    pub sends: u64,
    pub ack: Option<Summary>,
    pub deliver: Option<Summary>,
    pub integrity: Integrity,
    pub round_trips: Option<RoundTrips>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Integrity {
    /// `error` events received.
    pub errors: u64,
    /// Deliveries owed but never received.
    pub lost: u64,
    /// The same message received twice by the same recipient.
    pub duplicates: u64,
    pub acks_missing: u64,
    pub ack_duplicates: u64,
    /// Messages received by a client that should not have them.
    pub strays: u64,
    /// Sockets that ended without being asked to.
    pub dropped_sockets: u64,
    /// The first few error texts, for diagnosis.
    pub error_samples: Vec<String>,
}

impl Integrity {
    /// Nothing received twice or by the wrong client: what must hold at any
    /// load (a loss, a refusal or a missing ack can be the load's doing).
    pub fn is_correct(&self) -> bool {
        self.duplicates + self.ack_duplicates + self.strays == 0
    }

    pub fn is_clean(&self) -> bool {
        self.errors
            + self.lost
            + self.duplicates
            + self.acks_missing
            + self.ack_duplicates
            + self.strays
            + self.dropped_sockets
            == 0
    }
}

#[derive(Debug, Serialize)]
pub struct VsFloor {
    pub deliver: Option<Ratio>,
    pub ack: Option<Ratio>,
}

#[derive(Debug, Serialize)]
pub struct RestFigures {
    pub operation: String,
    pub requests: usize,
    /// Answers other than 200 (or the endpoint is missing: all 404).
    pub failures: u64,
    pub latency: Option<Summary>,
    pub round_trips: Option<RoundTrips>,
}

#[derive(Debug, Serialize)]
pub struct DisconnectFigures {
    pub clients: usize,
    /// Sockets the server closed after the client's close.
    pub closed: usize,
    pub round_trips: Option<RoundTrips>,
}

/// The records of every client, merged.
pub struct Merged {
    pub sent: u64,
    pub sent_measured: u64,
    pub acks: Samples,
    pub deliveries: BTreeMap<&'static str, Samples>,
    pub all_deliveries: Samples,
    pub last_delivery: Option<std::time::Instant>,
    pub integrity: Integrity,
}

/// Merges records; `lost` is what the counters owed minus what arrived.
pub fn merge(records: Vec<Record>, lost: u64) -> Merged {
    let mut merged = Merged {
        sent: 0,
        sent_measured: 0,
        acks: Samples::default(),
        deliveries: BTreeMap::new(),
        all_deliveries: Samples::default(),
        last_delivery: None,
        integrity: Integrity {
            lost,
            ..Integrity::default()
        },
    };
    for record in records {
        merged.sent += record.sent;
        merged.sent_measured += record.sent_measured;
        merged.acks.extend(record.acks);
        for (kind, samples) in record.deliveries {
            merged.all_deliveries.extend(samples.clone());
            merged.deliveries.entry(kind.name()).or_default().extend(samples);
        }
        merged.last_delivery = merged.last_delivery.max(record.last_delivery);
        let i = &mut merged.integrity;
        i.errors += record.errors;
        i.duplicates += record.duplicates;
        i.acks_missing += record.ack_missing;
        i.ack_duplicates += record.ack_duplicates;
        i.strays += record.strays;
        i.dropped_sockets += u64::from(record.dropped);
        for sample in record.error_samples {
            if i.error_samples.len() < 10 {
                i.error_samples.push(sample);
            }
        }
    }
    merged
}
