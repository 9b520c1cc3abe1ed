//! One benchmark run, phase by phase, on a stack of its own:
//! set-up → connect (with the CPU of every process kind per connection) →
//! floor → load, or steps of load (with the CPU of every process kind over
//! the measured window) → one-at-a-time sends → REST → other routes →
//! disconnect → cold starts one at a time → per-function figures, and their
//! cost by memory size from the CPU each function used over the whole run
//! (before the cold starts).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use uuid::Uuid;

use crate::api::Api;
use crate::client::Membership;
use crate::cold;
use crate::cost::{self, CostFigures};
use crate::cpu::{self, CpuFigures, Snapshot, Tally};
use crate::fleet::{Fleet, LoadPlan, Member};
use crate::floor::{self, Ratio};
use crate::functions::{self, TemplateFunctions};
use crate::latency::Samples;
use crate::machine::{Commit, Machine};
use crate::options::{Options, MAX_MEMBERS_BESIDES_CREATOR};
use crate::random::Random;
use crate::report::{
    merge, ConnectFigures, DisconnectFigures, LoadFigures, NotificationFigures, Report, RestFigures, Settings,
    UnloadedFigures, VsFloor, SCHEMA,
};
use crate::round_trips::{RoundTrips, StatementCounter};
use crate::stack::{self, Stack};
use crate::steps::{self, Decision, Step, StepFigures, StepSettings};
use crate::topology::{Kind, Topology};
use crate::users::{self, User};

/// Conversations created at once over REST.
const CREATE_CONCURRENCY: usize = 4;
/// Time for pushes that follow a handshake (presence) to finish.
const CONNECT_SETTLE: Duration = Duration::from_secs(1);
/// Longest wait for every `$disconnect` to have run.
const DISCONNECT_WAIT: Duration = Duration::from_secs(15);
pub(crate) const DISCONNECT_FUNCTION: &str = "WsDisconnectFunction";
/// The notification function's handler (its logical id comes from the template).
const NOTIFY_HANDLER: &str = "notify";
/// Longest wait, once the clients have settled, for the notifications they
/// handed off to have run.
const NOTIFY_WAIT: Duration = Duration::from_secs(10);

pub async fn run(options: &Options) -> Result<Report, String> {
    let started_at = chrono::Utc::now();
    let root = options.checkout_dir();
    let bench_root = stack::workspace_root();
    let bin_dir = options.bin_dir.clone().unwrap_or_else(stack::default_bin_dir);
    let bin_dir = std::path::absolute(&bin_dir).unwrap_or(bin_dir);
    let template = TemplateFunctions::read(&root.join("template.yaml"))?;
    let notify_function = template.id_of(NOTIFY_HANDLER);
    if notify_function.is_none() && options.offline_share > 0.0 {
        progress("this template has no notification function: nothing will be handed off");
    }
    let topology = Topology::plan(
        options.clients,
        options.direct_share,
        options.group_size,
        options.room_members(),
    );
    progress(&format!("starting an isolated stack from {}", bin_dir.display()));
    let mut stack = Stack::start(
        &bin_dir,
        &root,
        options.max_instances,
        &options.template_parameters(),
        &[],
    )
    .await?;
    let measured = measure(options, &stack, &topology, &template, notify_function.as_deref()).await;
    // Read while every instance is alive: their peak memory is sampled now.
    let stats = match &measured {
        Ok(_) => stack.emulator_stats().await.ok(),
        Err(_) => None,
    };
    let ready_after = stack.ready_after;
    progress("stopping the stack");
    // A stack that went away mid-run shows as refused connections; say so.
    let measured = measured.map_err(|message| match stack.exit_status() {
        Some(status) => format!("{message} (chat-local had exited: {status})"),
        None => message,
    });
    stack.stop().await;
    let measured = measured?;
    let stats = stats.ok_or("the emulator's stats could not be read")?;
    let vs_floor = VsFloor {
        deliver: measured
            .load
            .deliver
            .as_ref()
            .map(|d| Ratio::of(d, &measured.floor.insert_and_push)),
        ack: measured
            .load
            .ack
            .as_ref()
            .map(|a| Ratio::of(a, &measured.floor.insert_and_push)),
    };
    Ok(Report {
        schema: SCHEMA,
        started_at,
        git: Commit::of(&root),
        bench_git: (std::fs::canonicalize(&root).ok() != std::fs::canonicalize(&bench_root).ok())
            .then(|| Commit::of(&bench_root)),
        machine: measured.machine,
        settings: Settings::new(options, &topology, measured.offline_users),
        stack_ready_s: hundredths(ready_after.as_secs_f64()),
        connect: measured.connect,
        load: measured.load,
        steps: measured.steps,
        unloaded: measured.unloaded,
        floor: measured.floor,
        vs_floor,
        rest: measured.rest,
        disconnect: measured.disconnect,
        functions: functions::figures(&stats, &template, measured.alone_from.as_ref()),
        binaries: functions::binaries(&template, &bin_dir),
        cpu: measured.cpu,
        cost: measured.cost,
    })
}

/// What the phases on the running stack found.
struct Measured {
    machine: Machine,
    offline_users: usize,
    connect: ConnectFigures,
    load: LoadFigures,
    steps: Option<StepFigures>,
    cpu: Option<CpuFigures>,
    cost: Option<CostFigures>,
    unloaded: UnloadedFigures,
    floor: floor::Floor,
    rest: Vec<RestFigures>,
    disconnect: DisconnectFigures,
    /// Per function, its cold starts before the one-at-a-time rounds.
    alone_from: Option<std::collections::BTreeMap<String, usize>>,
}

async fn measure(
    options: &Options,
    stack: &Stack,
    topology: &Topology,
    template: &TemplateFunctions,
    notify_function: Option<&str>,
) -> Result<Measured, String> {
    let run_start = RunMark::take(stack).await?;
    let db = stack.db().await?;
    let postgres = db
        .query_one("select current_setting('server_version')", &[])
        .await
        .ok()
        .map(|row| row.get::<_, String>(0));
    let machine = Machine::describe(postgres);
    let counter = StatementCounter::new(&db).await;
    if counter.is_none() {
        progress("pg_stat_statements is not available: database round trips will not be counted");
    }
    let api = Api::new(&stack.info.http_url);

    let offline = topology.offline_counts(options.offline_share);
    let offline_users: usize = offline.iter().sum();
    progress(&format!(
        "creating {} users ({offline_users} of them never connecting) and {} conversations",
        options.clients + offline_users,
        topology.conversations.len()
    ));
    let all_users = users::create(&db, options.clients + offline_users, &stack.info.jwt_secret).await?;
    // The offline users come after the clients, each in one conversation.
    let mut next_offline = options.clients;
    let offline_members: Vec<Vec<usize>> = offline
        .iter()
        .map(|&count| {
            next_offline += count;
            (next_offline - count..next_offline).collect()
        })
        .collect();
    let conversation_ids = create_conversations(&api, topology, &all_users, &offline_members).await?;
    let users = &all_users[..options.clients];
    let memberships: Vec<Vec<Membership>> = (0..options.clients)
        .map(|client| {
            topology
                .conversations_of(client)
                .into_iter()
                .map(|index| membership(topology, &conversation_ids, &offline, index))
                .collect()
        })
        .collect();

    progress(&format!(
        "connecting {} WebSocket clients, {} at a time",
        options.clients, options.connect_concurrency
    ));
    reset(&counter).await?;
    let connect_start = RunMark::take(stack).await?;
    let members = users
        .iter()
        .zip(&memberships)
        .map(|(user, memberships)| Member {
            url: format!("{}?token={}", stack.info.websocket_url, user.token),
            memberships: memberships.clone(),
        })
        .collect();
    let connected = Fleet::connect(members, options.connect_concurrency).await?;
    let fleet = connected.fleet;
    tokio::time::sleep(CONNECT_SETTLE).await;
    let cpu = RunMark::take(stack)
        .await?
        .cpu_since(&connect_start, fleet.len() as u64);
    let round_trips = read(&counter, fleet.len() as u64).await?;
    let connect = ConnectFigures {
        clients: fleet.len(),
        registered: registered_connections(&db, users).await?,
        handshake: connected.handshakes.summary(),
        round_trips,
        cpu,
    };

    progress(&format!(
        "measuring the floor ({} raw INSERTs and pushes)",
        options.floor_samples
    ));
    let floor = floor::measure(&db, users[0].id, options.floor_samples).await?;

    let (load, cpu, steps) = match options.step {
        None => {
            progress(&format!(
                "sending for {} s after a {} s warm-up",
                options.duration.as_secs_f64(),
                options.warmup.as_secs_f64()
            ));
            let run = run_load(
                options,
                stack,
                (&fleet, &memberships),
                1.0,
                (options.warmup, options.duration),
                notify_function,
            )
            .await?;
            (run.figures, run.cpu, None)
        }
        Some(step) => {
            let (run, steps) = run_steps(options, step, stack, (&fleet, &memberships), notify_function).await?;
            (run.figures, run.cpu, Some(steps))
        }
    };
    let ids = (conversation_ids.as_slice(), offline.as_slice());
    let unloaded = sequential_sends(options, stack, &fleet, topology, ids, &counter, notify_function).await?;
    let rest = rest_operations(options, &api, topology, &conversation_ids, users, &counter).await?;
    touch_other_routes(&fleet, &api, conversation_ids[topology.home[0]]).await;

    progress("disconnecting");
    let before = stack.emulator_stats().await?;
    let disconnects_before = invocations(&before, DISCONNECT_FUNCTION);
    reset(&counter).await?;
    let clients = fleet.len();
    let closed = fleet.close().await;
    let waited = Instant::now();
    while waited.elapsed() < DISCONNECT_WAIT {
        let now = stack.emulator_stats().await?;
        if invocations(&now, DISCONNECT_FUNCTION) >= disconnects_before + clients as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Counted when invoked; give the last ones time to finish their statements.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let disconnect = DisconnectFigures {
        clients,
        closed,
        round_trips: read(&counter, clients as u64).await?,
    };
    let cost = RunMark::take(stack).await?.cost_since(&run_start, template);
    let cast = cold::Cast {
        websocket_url: &stack.info.websocket_url,
        users,
        memberships: &memberships,
    };
    let alone_from = cold::measure(options.cold_rounds, stack, &api, &cast).await?;

    Ok(Measured {
        machine,
        offline_users,
        connect,
        load,
        steps,
        cpu,
        cost,
        unloaded,
        floor,
        rest,
        disconnect,
        alone_from,
    })
}

/// Creates the planned conversations; `offline[i]` (if there) are more
/// members of conversation `i`, added after its planned ones (beyond what
/// one creation takes, in further calls by its creator).
pub(crate) async fn create_conversations(
    api: &Api,
    topology: &Topology,
    users: &[User],
    offline: &[Vec<usize>],
) -> Result<Vec<Uuid>, String> {
    let run = Uuid::new_v4().simple().to_string();
    let created: Vec<Result<(usize, Uuid), String>> = stream::iter(topology.conversations.iter().enumerate())
        .map(|(index, planned)| {
            let run = &run;
            async move {
                let creator = &users[planned.members[0]];
                let others: Vec<&User> = planned.members[1..]
                    .iter()
                    .chain(offline.get(index).into_iter().flatten())
                    .map(|&m| &users[m])
                    .collect();
                let (now, later) = others.split_at(others.len().min(MAX_MEMBERS_BESIDES_CREATOR));
                let name = format!("bench {} {index} {}", planned.kind.name(), &run[..8]);
                let id = api.create_conversation(planned.kind, creator, now, &name).await?;
                for more in later.chunks(MAX_MEMBERS_BESIDES_CREATOR) {
                    api.add_members(creator, id, more).await?;
                }
                Ok((index, id))
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let mut ids = vec![Uuid::nil(); topology.conversations.len()];
    for result in created {
        let (index, id) = result?;
        ids[index] = id;
    }
    Ok(ids)
}

/// `offline`: per conversation, its members who never connect.
fn membership(topology: &Topology, ids: &[Uuid], offline: &[usize], index: usize) -> Membership {
    let planned = &topology.conversations[index];
    Membership {
        id: ids[index],
        kind: planned.kind,
        recipients: planned.members.len() as u64 - 1,
        offline: offline[index] as u64,
    }
}

/// What one load (or one step) measured.
struct LoadRun {
    figures: LoadFigures,
    /// What every process kind used from the end of the warm-up until the
    /// load settled and the notifications it handed off had run.
    cpu: Option<CpuFigures>,
    /// Measured sends acknowledged later than `--ack-timeout`.
    late_acks: u64,
}

/// The load at the options' rates multiplied by `scale`, for `duration`
/// after `warmup`, then drained.
async fn run_load(
    options: &Options,
    stack: &Stack,
    (fleet, memberships): (&Fleet, &[Vec<Membership>]),
    scale: f64,
    (warmup, duration): (Duration, Duration),
    notify_function: Option<&str>,
) -> Result<LoadRun, String> {
    let plan = LoadPlan {
        rates: memberships
            .iter()
            .map(|conversations| {
                conversations
                    .iter()
                    .map(|m| {
                        (
                            *m,
                            scale
                                * if m.kind == Kind::Room {
                                    options.room_rate_per_member()
                                } else {
                                    options.rate
                                },
                        )
                    })
                    .collect()
            })
            .collect(),
        warmup,
        duration,
        drain: options.drain,
    };
    let (expected_before, delivered_before) = owed(fleet);
    let handed_off_before = handed_off(fleet);
    let stats_before = stack.emulator_stats().await?;
    let start = Instant::now();
    let (runner, load_generator) = (stack.pid().unwrap_or(0), std::process::id());
    let measure_from = start + warmup;
    let cpu_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let snapshot = Snapshot::take();
        snapshot
            .tally(runner, load_generator)
            .map(|tally| (tally, snapshot.taken))
    });
    let window = fleet.run_load(&plan, start, &mut Random::new()).await;
    let handed_off_now = handed_off(fleet);
    let stats_after = settle_notifications(
        stack,
        &stats_before,
        handed_off_now.0 - handed_off_before.0,
        notify_function,
    )
    .await?;
    let cpu_end = Snapshot::take();
    // Read after the snapshot, so that every instance in it is named.
    let instances = stack.emulator_stats().await?;
    let records = fleet.take_records().await;
    let (expected, delivered) = owed(fleet);
    let lost = (expected - expected_before).saturating_sub(delivered - delivered_before);
    let merged = merge(records, lost);
    let end = merged.last_delivery.unwrap_or(window.send_until).max(window.send_until);
    let measured_s = end.duration_since(window.measure_from).as_secs_f64();
    let deliveries_measured = merged.all_deliveries.len() as u64;
    let cpu = match (cpu_start.await.ok().flatten(), cpu_end.tally(runner, load_generator)) {
        (Some(start), Some(end)) => Some(cpu::window(
            (&start.0, start.1),
            (&end, cpu_end.taken),
            &instance_names(&instances),
            cpu::ticks_per_second(),
            merged.sent_measured,
            deliveries_measured,
        )),
        _ => None,
    };
    let late_acks = merged.acks.count_over(options.ack_timeout);
    let figures = LoadFigures {
        measured_s: hundredths(measured_s),
        sent: merged.sent,
        sent_measured: merged.sent_measured,
        sends_per_s: hundredths(merged.sent_measured as f64 / duration.as_secs_f64()),
        deliveries_measured,
        deliveries_per_s: hundredths(deliveries_measured as f64 / measured_s),
        deliver: merged.all_deliveries.summary(),
        deliver_by_kind: merged
            .deliveries
            .iter()
            .filter_map(|(kind, samples)| Some((*kind, samples.summary()?)))
            .collect(),
        ack: merged.acks.summary(),
        integrity: merged.integrity,
        drained_after_s: window.drained_after.map(|d| hundredths(d.as_secs_f64())),
        notifications: notification_figures(
            &stats_before,
            &stats_after,
            notify_function,
            (
                handed_off_now.0 - handed_off_before.0,
                handed_off_now.1 - handed_off_before.1,
            ),
        ),
    };
    Ok(LoadRun {
        figures,
        cpu,
        late_acks,
    })
}

/// `--step`: loads of `step` each, every rate raised by the factor after
/// each step held, until one is not (see [`steps::decide`]). Each step is
/// drained before the next, so its deliveries are its own. Answers the
/// highest step held (the first if none was) and every step's row; then
/// waits, up to `--drain`, for what the last step still owed, so that the
/// phases after it do not receive it.
async fn run_steps(
    options: &Options,
    step: Duration,
    stack: &Stack,
    clients: (&Fleet, &[Vec<Membership>]),
    notify_function: Option<&str>,
) -> Result<(LoadRun, StepFigures), String> {
    let settings = StepSettings {
        step_s: step.as_secs_f64(),
        factor: options.step_factor,
        p99_bound_ms: options.step_p99_ms,
        ack_timeout_s: options.ack_timeout.as_secs_f64(),
        max_steps: options.max_steps,
    };
    let mut runs = Vec::new();
    let mut rows: Vec<Step> = Vec::new();
    let mut scale = 1.0;
    let stopped_because = loop {
        let index = rows.len();
        let warmup = if index == 0 { options.warmup } else { Duration::ZERO };
        progress(&format!(
            "step {}: {:.3} msg/s per client (room {:.3}) for {} s{}",
            index + 1,
            options.rate * scale,
            options.room_rate_per_member() * scale,
            settings.step_s,
            if warmup.is_zero() {
                String::new()
            } else {
                format!(" after a {} s warm-up", warmup.as_secs_f64())
            }
        ));
        let run = run_load(options, stack, clients, scale, (warmup, step), notify_function).await?;
        let figures = &run.figures;
        let unacked = figures.integrity.acks_missing + run.late_acks;
        let row = Step {
            rate_per_client: options.rate * scale,
            room_rate_per_member: options.room_rate_per_member() * scale,
            sends_per_s: figures.sends_per_s,
            deliveries_per_s: figures.deliveries_per_s,
            deliver: figures.deliver,
            unacked,
            integrity: figures.integrity.clone(),
            failed_because: steps::failures(figures.deliver.as_ref(), unacked, &figures.integrity, &settings),
        };
        progress(&format!(
            "step {}: {} sends/s, {} deliveries/s, p99 {} ms, {unacked} unacknowledged{}",
            index + 1,
            row.sends_per_s,
            row.deliveries_per_s,
            row.deliver.map_or("—".to_owned(), |d| d.p99_ms.to_string()),
            if row.held() { ": held" } else { ": not held" }
        ));
        let decision = steps::decide(&row, index, &settings);
        rows.push(row);
        runs.push(run);
        match decision {
            Decision::Raise(factor) => scale *= factor,
            Decision::Stop(why) => break why,
        }
    };
    let (fleet, _) = clients;
    if fleet.settle(options.drain).await.is_none() {
        progress("the last step still owes acks or deliveries after --drain; the phases after it may receive them");
    }
    // What arrived meanwhile belongs to no step.
    let _late = fleet.take_records().await;
    let highest_held = rows.iter().take_while(|row| row.held()).count().checked_sub(1);
    let chosen = runs.swap_remove(highest_held.unwrap_or(0));
    Ok((
        chosen,
        StepFigures {
            settings,
            steps: rows,
            highest_held,
            stopped_because,
        },
    ))
}

/// The stack's CPU by process and the emulator's counters at one moment:
/// two of them give each function's CPU, invocations and handler time in between.
struct RunMark {
    tally: Option<(Tally, Instant)>,
    stats: apigw_local::EmulatorStats,
}

impl RunMark {
    async fn take(stack: &Stack) -> Result<RunMark, String> {
        let snapshot = Snapshot::take();
        let tally = snapshot
            .tally(stack.pid().unwrap_or(0), std::process::id())
            .map(|tally| (tally, snapshot.taken));
        // Read after the snapshot, so that every instance in it is named.
        Ok(RunMark {
            tally,
            stats: stack.emulator_stats().await?,
        })
    }

    /// CPU by process kind between `start` and this mark, per `operations`
    /// (the figures' `us_per_send`).
    fn cpu_since(&self, start: &RunMark, operations: u64) -> Option<CpuFigures> {
        let (Some(from), Some(to)) = (&start.tally, &self.tally) else {
            return None;
        };
        Some(cpu::window(
            (&from.0, from.1),
            (&to.0, to.1),
            &instance_names(&self.stats),
            cpu::ticks_per_second(),
            operations,
            0,
        ))
    }

    /// The cost model's figures for what ran between `start` and this mark.
    fn cost_since(&self, start: &RunMark, template: &TemplateFunctions) -> Option<CostFigures> {
        let window = self.cpu_since(start, 0)?;
        let measured = cost::measured(&window.functions, &start.stats, &self.stats, |id| {
            template.memory_of(id)
        });
        Some(cost::figures(&measured))
    }
}

/// Waits, up to [`NOTIFY_WAIT`], until the emulator has accepted the
/// `expected` notifications handed off since `before` and each accepted one
/// has run once (succeeded or failed); answers the stats last read. Without
/// a notification function nothing is handed off, and nothing waited for.
async fn settle_notifications(
    stack: &Stack,
    before: &apigw_local::EmulatorStats,
    expected: u64,
    notify_function: Option<&str>,
) -> Result<apigw_local::EmulatorStats, String> {
    let waited = Instant::now();
    loop {
        let now = stack.emulator_stats().await?;
        let (a, b) = (&now.async_invocations, &before.async_invocations);
        let accepted = a.accepted.saturating_sub(b.accepted);
        let ran = a.succeeded.saturating_sub(b.succeeded)
            + notify_function.map_or(0, |f| errors(&now, f).saturating_sub(errors(before, f)));
        let done = notify_function.is_none() || (accepted >= expected && ran >= accepted);
        if done || waited.elapsed() > NOTIFY_WAIT {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `expected`: the sends that should have handed off, and their offline members.
fn notification_figures(
    before: &apigw_local::EmulatorStats,
    after: &apigw_local::EmulatorStats,
    notify_function: Option<&str>,
    (expected, users_to_notify): (u64, u64),
) -> NotificationFigures {
    let (a, b) = (&after.async_invocations, &before.async_invocations);
    NotificationFigures {
        expected,
        users_to_notify,
        handed_off: a.accepted.saturating_sub(b.accepted),
        notify_invocations: notify_function.map(|f| invocations(after, f).saturating_sub(invocations(before, f))),
        notify_errors: notify_function.map(|f| errors(after, f).saturating_sub(errors(before, f))),
        succeeded: a.succeeded.saturating_sub(b.succeeded),
        retries: a.retries.saturating_sub(b.retries),
        failed: a.failures.len().saturating_sub(b.failures.len()) as u64,
    }
}

/// Which function each instance the emulator ever started belongs to.
fn instance_names(stats: &apigw_local::EmulatorStats) -> std::collections::HashMap<u32, String> {
    stats
        .functions
        .iter()
        .flat_map(|(id, f)| f.cold_starts.iter().map(move |start| (start.pid, id.clone())))
        .collect()
}

/// Messages sent one at a time across direct, group and room conversations:
/// latency without load, and the statements one send costs. `(ids,
/// offline)`: the conversations' ids and offline members. The statements are
/// read once the notifications handed off have run: theirs are counted too,
/// and shown apart.
async fn sequential_sends(
    options: &Options,
    stack: &Stack,
    fleet: &Fleet,
    topology: &Topology,
    (ids, offline): (&[Uuid], &[usize]),
    counter: &Option<StatementCounter<'_>>,
    notify_function: Option<&str>,
) -> Result<UnloadedFigures, String> {
    progress(&format!("sending {} messages one at a time", options.sequential_sends));
    let by_kind: Vec<Vec<usize>> = Kind::ALL
        .iter()
        .map(|kind| {
            (0..topology.conversations.len())
                .filter(|&i| topology.conversations[i].kind == *kind)
                .collect()
        })
        .filter(|found: &Vec<usize>| !found.is_empty())
        .collect();
    let (expected_before, delivered_before) = owed(fleet);
    let handed_off_before = handed_off(fleet).0;
    let stats_before = stack.emulator_stats().await?;
    reset(counter).await?;
    for n in 0..options.sequential_sends {
        let of_kind = &by_kind[n % by_kind.len()];
        let index = of_kind[(n / by_kind.len()) % of_kind.len()];
        let members = &topology.conversations[index].members;
        let sender = members[(n / by_kind.len()) % members.len()];
        // A missing ack shows in the record's count.
        let _ = fleet.send_one(sender, membership(topology, ids, offline, index)).await;
    }
    fleet.settle(options.drain).await;
    let expected = handed_off(fleet).0 - handed_off_before;
    settle_notifications(stack, &stats_before, expected, notify_function).await?;
    let round_trips = read(counter, options.sequential_sends as u64).await?;
    let records = fleet.take_records().await;
    let (expected, delivered) = owed(fleet);
    let lost = (expected - expected_before).saturating_sub(delivered - delivered_before);
    let merged = merge(records, lost);
    Ok(UnloadedFigures {
        sends: merged.sent,
        ack: merged.acks.summary(),
        deliver: merged.all_deliveries.summary(),
        integrity: merged.integrity,
        round_trips,
    })
}

/// History and the conversation list, one request at a time, each user
/// asking about a conversation of theirs.
async fn rest_operations(
    options: &Options,
    api: &Api,
    topology: &Topology,
    ids: &[Uuid],
    users: &[User],
    counter: &Option<StatementCounter<'_>>,
) -> Result<Vec<RestFigures>, String> {
    progress(&format!("timing {} requests per REST operation", options.rest_requests));
    let history = |n: usize| {
        let index = n % ids.len();
        let member =
            topology.conversations[index].members[(n / ids.len()) % topology.conversations[index].members.len()];
        (member, format!("/v1/conversations/{}/messages?limit=50", ids[index]))
    };
    let list = |n: usize| (n % users.len(), "/v1/conversations?limit=20".to_owned());
    let mut figures = Vec::new();
    for (operation, path_for) in [
        (
            "GET /v1/conversations/{id}/messages?limit=50",
            &history as &dyn Fn(usize) -> (usize, String),
        ),
        ("GET /v1/conversations?limit=20", &list),
    ] {
        reset(counter).await?;
        let mut latency = Samples::default();
        let mut failures = 0u64;
        for n in 0..options.rest_requests {
            let (user, path) = path_for(n);
            let (status, elapsed) = api.timed_get(&users[user], &path).await?;
            if status == 200 {
                latency.push(elapsed);
            } else {
                failures += 1;
                if status == 404 && n == 0 {
                    progress(&format!("{operation} answered 404: not measured"));
                    failures = options.rest_requests as u64;
                    break;
                }
            }
        }
        let round_trips = match latency.len() {
            0 => None,
            ok => read(counter, ok as u64).await?,
        };
        figures.push(RestFigures {
            operation: operation.to_owned(),
            requests: options.rest_requests,
            failures,
            latency: latency.summary(),
            round_trips,
        });
    }
    Ok(figures)
}

/// Invokes the routes the load does not use, so that every function has a
/// cold start and a warm time in the table.
async fn touch_other_routes(fleet: &Fleet, api: &Api, conversation: Uuid) {
    progress("invoking the remaining routes once");
    for frame in [
        r#"{"action":"ping"}"#.to_owned(),
        format!(r#"{{"action":"typing","conversation_id":"{conversation}","is_typing":true}}"#),
        r#"{"action":"benchUnknownAction"}"#.to_owned(),
    ] {
        fleet.send_frame(0, frame).await;
    }
    let _ = api.get_anonymous("/v1/health").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Connections of these users in the registry: one per client once all are
/// connected, or some were dropped (a push answered 410 removes a connection).
async fn registered_connections(db: &tokio_postgres::Client, users: &[User]) -> Result<u64, String> {
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let row = db
        .query_one(
            "select count(*) from public.connections where user_id = any($1)",
            &[&ids],
        )
        .await
        .map_err(|e| format!("counting registered connections: {e}"))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Seconds and rates need no more precision than this in the results.
fn hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn owed(fleet: &Fleet) -> (u64, u64) {
    let c = &fleet.counters;
    (c.expected.load(Ordering::Relaxed), c.delivered.load(Ordering::Relaxed))
}

/// Sends that should have handed off a notification so far, and the users
/// to be told.
fn handed_off(fleet: &Fleet) -> (u64, u64) {
    let c = &fleet.counters;
    (
        c.sends_to_offline.load(Ordering::Relaxed),
        c.offline_recipients.load(Ordering::Relaxed),
    )
}

fn invocations(stats: &apigw_local::EmulatorStats, function: &str) -> u64 {
    stats.functions.get(function).map_or(0, |f| f.invocations)
}

fn errors(stats: &apigw_local::EmulatorStats, function: &str) -> u64 {
    stats.functions.get(function).map_or(0, |f| f.errors)
}

async fn reset(counter: &Option<StatementCounter<'_>>) -> Result<(), String> {
    match counter {
        Some(counter) => counter.reset().await,
        None => Ok(()),
    }
}

async fn read(counter: &Option<StatementCounter<'_>>, operations: u64) -> Result<Option<RoundTrips>, String> {
    match counter {
        Some(counter) => counter.read(operations).await.map(Some),
        None => Ok(None),
    }
}

pub fn progress(text: &str) {
    eprintln!("chat-bench: {text}");
}
