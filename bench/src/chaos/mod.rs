//! `chat-bench --chaos`: the load's clients and conversations on a stack
//! whose emulator injects faults — function instances killed at random and
//! right after `sendMessage`'s commit, `@connections` calls answered 410 (the
//! socket cut), 429 and 500, `$disconnect` dropped — while every client cuts
//! its own socket now and then and recovers as the protocol says
//! ([`client`]). After a drain and a final catch-up, what every member
//! applied is compared with what the database stored ([`verify`]): nothing
//! lost, nothing twice, nothing out of order.

mod client;
mod outbox;
mod report;
mod sequencer;
mod verify;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

pub use report::{render, ChaosReport};

use self::client::{ChaosClient, Command, Plan, Record, Settings, Shared};
use self::report::{ChaosFigures, ChaosSettings};
use self::verify::{Conversation, StoredRow};
use crate::api::Api;
use crate::machine::{Commit, Machine};
use crate::options::Options;
use crate::run::{create_conversations, progress};
use crate::stack::{self, Stack};
use crate::topology::{Kind, Topology};
use crate::users;

/// The function killed right after its commit.
const SEND_FUNCTION: &str = "ws-send-message";
/// Longest wait for every client to be connected and caught up before writing.
const READY_WAIT: Duration = Duration::from_secs(120);
/// After the sockets close, invocations still queued or running may store
/// what they were sent: the final catch-up waits until the stored messages
/// have not changed for this long…
const QUIET: Duration = Duration::from_secs(2);
/// …or this long at most.
const QUIET_WAIT: Duration = Duration::from_secs(60);

pub async fn run(options: &Options) -> Result<ChaosReport, String> {
    let started_at = chrono::Utc::now();
    let root = options.checkout_dir();
    let bin_dir = options.bin_dir.clone().unwrap_or_else(stack::default_bin_dir);
    let bin_dir = std::path::absolute(&bin_dir).unwrap_or(bin_dir);
    let topology = Topology::plan(
        options.clients,
        options.direct_share,
        options.group_size,
        options.room_size,
    );
    let faults = fault_flags(options);
    progress(&format!(
        "starting an isolated stack from {} with {}",
        bin_dir.display(),
        faults.join(" ")
    ));
    let stack = Stack::start(
        &bin_dir,
        &root,
        options.max_instances,
        &options.template_parameters(),
        &faults,
    )
    .await?;
    let outcome = scenario(options, &stack, &topology).await;
    let stats = stack.emulator_stats_json().await;
    progress("stopping the stack");
    stack.stop().await;
    let (machine, outcome) = outcome?;
    let stats = stats?;
    Ok(ChaosReport {
        schema: crate::report::SCHEMA,
        started_at,
        git: Commit::of(&root),
        machine,
        settings: ChaosSettings::new(options, &topology),
        chaos: ChaosFigures::new(outcome, &stats),
    })
}

/// `chat-local up` options for the faults asked for.
fn fault_flags(options: &Options) -> Vec<String> {
    let mut flags = Vec::new();
    let mut share = |flag: &str, value: f64| {
        if value > 0.0 {
            flags.extend([flag.to_owned(), value.to_string()]);
        }
    };
    share("--fault-kill", options.fault_kill);
    share("--fault-push-gone", options.fault_push_gone);
    share("--fault-push-throttle", options.fault_push_throttle);
    share("--fault-push-error", options.fault_push_error);
    share("--fault-drop-disconnect", options.fault_drop_disconnect);
    if options.fault_kill_after_commit > 0.0 {
        flags.extend([
            "--fault-kill-after-commit".to_owned(),
            format!("{SEND_FUNCTION}={}", options.fault_kill_after_commit),
        ]);
    }
    if options.fault_push_latency > 0 {
        flags.extend([
            "--fault-push-latency".to_owned(),
            options.fault_push_latency.to_string(),
        ]);
    }
    if let Some(seed) = options.fault_seed {
        flags.extend(["--fault-seed".to_owned(), seed.to_string()]);
    }
    flags
}

/// What the run saw, for the figures.
pub struct Outcome {
    pub records: Vec<Record>,
    pub conversations: Vec<Conversation>,
    pub stored: Vec<StoredRow>,
    /// Sending stopped → every message acknowledged and every client caught up; `None`: the drain timed out.
    pub drained_after: Option<Duration>,
}

async fn scenario(options: &Options, stack: &Stack, topology: &Topology) -> Result<(Machine, Outcome), String> {
    let db = stack.db().await?;
    let postgres = db
        .query_one("select current_setting('server_version')", &[])
        .await
        .ok()
        .map(|row| row.get::<_, String>(0));
    let machine = Machine::describe(postgres);
    let api = Api::new(&stack.info.http_url);
    progress(&format!(
        "creating {} users and {} conversations",
        options.clients,
        topology.conversations.len()
    ));
    let users = users::create(&db, options.clients, &stack.info.jwt_secret).await?;
    let ids = create_conversations(&api, topology, &users, &[]).await?;
    let conversations: Vec<Conversation> = topology
        .conversations
        .iter()
        .zip(&ids)
        .map(|(planned, &id)| Conversation {
            id,
            members: planned.members.clone(),
        })
        .collect();

    let settings = Arc::new(Settings {
        ack_timeout: options.ack_timeout,
        cut_every: (!options.cut_every.is_zero()).then_some(options.cut_every),
        resync_every: options.resync_every,
        epoch: Instant::now(),
    });
    let shared = Arc::new(Shared {
        unacked: AtomicI64::new(0),
        recovering: AtomicI64::new(0),
        ready: AtomicI64::new(0),
        owed: AtomicI64::new(0),
        applied: AtomicI64::new(0),
        handshakes: Arc::new(Semaphore::new(options.connect_concurrency)),
    });
    progress(&format!(
        "connecting {} recovering clients, {} handshakes at a time",
        users.len(),
        options.connect_concurrency
    ));
    let mut clients = Vec::with_capacity(users.len());
    for (index, user) in users.iter().enumerate() {
        let mine: Vec<(Uuid, usize)> = topology
            .conversations_of(index)
            .into_iter()
            .map(|i| (ids[i], topology.conversations[i].members.len()))
            .collect();
        let client = ChaosClient::new(
            index,
            format!("{}?token={}", stack.info.websocket_url, user.token),
            user.token.clone(),
            api.clone(),
            &mine,
            Arc::clone(&settings),
            Arc::clone(&shared),
        );
        let (commands, receiver) = mpsc::channel(4);
        tokio::spawn(client.run(receiver));
        clients.push(commands);
    }
    let waited = Instant::now();
    while shared.ready.load(Ordering::Relaxed) < users.len() as i64 {
        if waited.elapsed() > READY_WAIT {
            return Err(format!(
                "only {} of {} clients connected and caught up in {} s",
                shared.ready.load(Ordering::Relaxed),
                users.len(),
                READY_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    progress(&format!(
        "writing for {} s while sockets are cut, instances killed and @connections calls fail",
        options.duration.as_secs_f64()
    ));
    let start = Instant::now();
    let send_until = start + options.duration;
    for (index, commands) in clients.iter().enumerate() {
        let schedules = topology
            .conversations_of(index)
            .into_iter()
            .filter_map(|i| {
                let rate = match topology.conversations[i].kind {
                    Kind::Room => options.room_rate,
                    Kind::Direct | Kind::Group => options.rate,
                };
                (rate > 0.0).then(|| (ids[i], Duration::from_secs_f64(1.0 / rate)))
            })
            .collect();
        let _ = commands
            .send(Command::Start(Plan {
                schedules,
                start,
                send_until,
            }))
            .await;
    }
    tokio::time::sleep_until(send_until.into()).await;
    progress(&format!(
        "draining: waiting up to {} s for every ack, every delivery and every client to be caught up",
        options.drain.as_secs_f64()
    ));
    let drained_after = loop {
        let load = |counter: &AtomicI64| counter.load(Ordering::Relaxed);
        let settled =
            load(&shared.unacked) <= 0 && load(&shared.recovering) <= 0 && load(&shared.applied) >= load(&shared.owed);
        if settled {
            break Some(send_until.elapsed());
        }
        if send_until.elapsed() > options.drain {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    progress("closing every socket, then a final catch-up of every client");
    futures_util::future::join_all(clients.iter().map(|commands| async move {
        let (reply, answer) = oneshot::channel();
        if commands.send(Command::Stop(reply)).await.is_ok() {
            let _ = answer.await;
        }
    }))
    .await;
    wait_until_nothing_is_stored(&db, &ids).await?;
    let records: Vec<Record> = futures_util::future::join_all(clients.iter().map(|commands| async move {
        let (reply, answer) = oneshot::channel();
        commands.send(Command::Finish(reply)).await.ok()?;
        answer.await.ok()
    }))
    .await
    .into_iter()
    .collect::<Option<Vec<Record>>>()
    .ok_or("a client stopped before handing over its record")?;
    let stored = stored_messages(&db, &ids).await?;
    Ok((
        machine,
        Outcome {
            records,
            conversations,
            stored,
            drained_after,
        },
    ))
}

/// Waits until the count of stored messages stays the same for [`QUIET`].
async fn wait_until_nothing_is_stored(db: &tokio_postgres::Client, conversations: &[Uuid]) -> Result<(), String> {
    let started = Instant::now();
    let mut last = None;
    let mut since = Instant::now();
    while started.elapsed() < QUIET_WAIT {
        let count: i64 = db
            .query_one(
                "select count(*) from public.messages where conversation_id = any($1)",
                &[&conversations],
            )
            .await
            .map_err(|e| format!("counting the stored messages: {e}"))?
            .get(0);
        if last != Some(count) {
            last = Some(count);
            since = Instant::now();
        } else if since.elapsed() >= QUIET {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress("messages were still being stored when the final catch-up began");
    Ok(())
}

async fn stored_messages(db: &tokio_postgres::Client, conversations: &[Uuid]) -> Result<Vec<StoredRow>, String> {
    let rows = db
        .query(
            "select conversation_id, seq, id from public.messages
             where conversation_id = any($1) order by conversation_id, seq",
            &[&conversations],
        )
        .await
        .map_err(|e| format!("reading the stored messages: {e}"))?;
    Ok(rows
        .iter()
        .map(|row| StoredRow {
            conversation: row.get(0),
            seq: row.get(1),
            id: row.get(2),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn faults_asked_for_become_chat_local_options_and_zero_means_none() {
        let options = Options::try_parse_from(
            "chat-bench --chaos --fault-kill 0.02 --fault-kill-after-commit 0.5 --fault-push-gone 0 --fault-seed 7"
                .split(' '),
        )
        .unwrap();
        let flags = fault_flags(&options).join(" ");
        assert!(flags.contains("--fault-kill 0.02"), "{flags}");
        assert!(
            flags.contains("--fault-kill-after-commit ws-send-message=0.5"),
            "{flags}"
        );
        assert!(flags.contains("--fault-push-throttle 0.05"), "the default: {flags}");
        assert!(flags.contains("--fault-seed 7"), "{flags}");
        assert!(!flags.contains("--fault-push-gone"), "{flags}");
        assert!(!flags.contains("--fault-push-latency"), "{flags}");
    }
}
