//! One client of the chaos scenario: a user with one socket who writes on a
//! schedule and recovers from everything as docs/websocket-protocol.md says
//! (the TypeScript client in `client/` does the same): it tracks the applied
//! seq per conversation and de-duplicates by it, replays a gap that stays
//! open, replays every conversation after each (re)connect, compares its
//! position with every conversation's `last_seq` periodically, resends
//! unacknowledged messages with their `client_msg_id` after an ack timeout,
//! API Gateway's crash frame or a reconnect, and reconnects with backoff and
//! full jitter whenever its socket ends, however it ends. Meanwhile it cuts
//! its own socket now and then (TCP reset, no close frame).
//!
//! Frames and bodies are the benchmark's own (`crate::client::send_frame`),
//! so every member can tell who wrote a message, which one, and when.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::MaybeTlsStream;
use uuid::Uuid;

use super::outbox::{Attempt, Outbox};
use super::sequencer::{Applied, Durable, Offered, Sequencer, Source};
use super::verify::{Ack, ClientLog, LogEntry};
use crate::api::Api;
use crate::client::{parse_body, parse_client_msg_id, send_frame, Socket};
use crate::latency::Samples;
use crate::random::Random;

/// How often the client looks at its timers.
const TICK: Duration = Duration::from_millis(50);
/// A gap may stay open this long before a replay: pushes of concurrent writes overtake each other.
const GAP_WAIT: Duration = Duration::from_millis(1500);
/// Reconnect backoff: a random time up to this, doubling per failed attempt…
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// …up to this. (The TypeScript client goes up to 20 s; a run is short.)
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Page size of a replay, the largest the events endpoint gives.
const REPLAY_PAGE: u32 = 500;
/// The final catch-up tries a conversation this often before giving up.
const FINAL_ATTEMPTS: u32 = 20;
/// How long a stopping client waits for the server's close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub struct Settings {
    pub ack_timeout: Duration,
    /// Mean time between two cuts of the socket; `None`: never.
    pub cut_every: Option<Duration>,
    pub resync_every: Duration,
    /// Messages before this are counted from this moment (µs since it).
    pub epoch: Instant,
}

/// What the clients share with the coordinator.
pub struct Shared {
    /// Messages written and not acknowledged yet, over every client.
    pub unacked: AtomicI64,
    /// Clients whose socket is down or not caught up since it came back.
    pub recovering: AtomicI64,
    /// Clients connected and caught up once.
    pub ready: AtomicI64,
    /// For every message acknowledged, the members besides its sender.
    pub owed: AtomicI64,
    /// Messages of others applied, over every client.
    pub applied: AtomicI64,
    /// Handshakes in flight at once.
    pub handshakes: Arc<Semaphore>,
}

/// When and where a client writes.
pub struct Plan {
    /// Each conversation it writes to, and the time between two messages there.
    pub schedules: Vec<(Uuid, Duration)>,
    pub start: Instant,
    pub send_until: Instant,
}

pub enum Command {
    /// Start writing (and cutting) on this plan.
    Start(Plan),
    /// Stop writing and cutting, and close the socket.
    Stop(oneshot::Sender<()>),
    /// Catch up on every conversation over REST and hand over the record.
    Finish(oneshot::Sender<Record>),
}

/// How a socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// This client cut it.
    Cut,
    /// The server sent a close frame (e.g. 1000 after DeleteConnection).
    ServerClose,
    /// It ended without a close frame (the emulator cut it, or a send failed).
    Dropped,
}

/// Why a replay ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Gap,
    Connect,
    Resync,
    Again,
    Retry,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub written: u64,
    pub frames: u64,
    pub resent_after_timeout: u64,
    pub resent_after_hold: u64,
    pub resent_after_reconnect: u64,
    pub acks: u64,
    pub duplicate_acks: u64,
    /// Acks for a message acknowledged before.
    pub late_acks: u64,
    /// Frames without `type`, by their `message` (API Gateway's crash frame is "Internal server error").
    pub gateway_frames: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Messages given up after a refusal no retry changes.
    pub refused: u64,
    pub cuts: u64,
    pub server_closes: BTreeMap<u16, u64>,
    pub dropped: u64,
    pub handshakes: u64,
    pub handshake_failures: BTreeMap<String, u64>,
    pub replays_after_gap: u64,
    /// The first catch-up, from seq 0.
    pub initial_replays: u64,
    pub replays_after_connect: u64,
    /// Periodic checks that found a conversation behind.
    pub resync_found_behind: u64,
    pub resyncs: u64,
    pub final_replays: u64,
    pub replay_failures: u64,
    /// Pushes of a seq applied already (re-deliveries, pushes a replay overtook).
    pub pushes_already_applied: u64,
}

pub struct Record {
    pub log: ClientLog,
    pub stats: Stats,
    /// Messages still without an ack when the client stopped.
    pub unacked: u64,
    /// Socket gone → connected again and caught up, by how it went.
    pub recovery: BTreeMap<Cause, Samples>,
    /// API Gateway's crash frame → every message then in flight acknowledged.
    pub recovery_after_crash: Samples,
    /// The final catch-up could not finish.
    pub final_catch_up_failed: bool,
}

struct ReplayDone {
    conversation: Uuid,
    started: Instant,
    result: Result<Vec<Durable>, String>,
}

/// Since when the socket has been down (or not caught up), and why.
struct Outage {
    since: Instant,
    cause: Cause,
}

/// After a (re)connect: the conversations not yet replayed since.
struct CatchUp {
    connected_at: Instant,
    waiting: HashSet<Uuid>,
}

pub struct ChaosClient {
    index: usize,
    url: String,
    token: String,
    api: Api,
    /// Per conversation, its members besides this client.
    recipients: HashMap<Uuid, i64>,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    random: Random,
    socket: Option<Socket>,
    sequencer: Sequencer,
    outbox: Outbox,
    next_n: u32,
    log: ClientLog,
    stats: Stats,
    /// Failed handshakes since the last good one.
    attempts: u32,
    reconnect_at: Option<Instant>,
    outage: Option<Outage>,
    catch_up: Option<CatchUp>,
    connected_once: bool,
    /// Crash frames still waiting for the acks of what was then in flight.
    crashes: Vec<(Instant, HashSet<u32>)>,
    replay_retries: HashMap<Uuid, (Instant, u32)>,
    next_cut: Option<Instant>,
    next_resync: Instant,
    stopped: bool,
    recovery: BTreeMap<Cause, Samples>,
    recovery_after_crash: Samples,
}

type Replays = FuturesUnordered<BoxFuture<'static, ReplayDone>>;

impl ChaosClient {
    pub fn new(
        index: usize,
        url: String,
        token: String,
        api: Api,
        conversations: &[(Uuid, usize)],
        settings: Arc<Settings>,
        shared: Arc<Shared>,
    ) -> ChaosClient {
        let mut random = Random::new();
        let mut sequencer = Sequencer::default();
        for &(conversation, _) in conversations {
            // From the start: the first catch-up replays `conversation.created` on.
            sequencer.track(conversation, 0);
        }
        let now = Instant::now();
        let next_resync = now + settings.resync_every.mul_f64(random.unit());
        ChaosClient {
            index,
            url,
            token,
            api,
            recipients: conversations
                .iter()
                .map(|&(c, members)| (c, members as i64 - 1))
                .collect(),
            settings,
            shared,
            random,
            socket: None,
            sequencer,
            outbox: Outbox::default(),
            next_n: 0,
            log: ClientLog::default(),
            stats: Stats::default(),
            attempts: 0,
            reconnect_at: Some(now),
            outage: None,
            catch_up: None,
            connected_once: false,
            crashes: Vec::new(),
            replay_retries: HashMap::new(),
            next_cut: None,
            next_resync,
            stopped: false,
            recovery: BTreeMap::new(),
            recovery_after_crash: Samples::default(),
        }
    }

    /// Connects and catches up at once; writes once started.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Each message stream starts at a random point of its first period,
        // so that clients do not write in step.
        let mut writes: Vec<(Uuid, Duration, Instant)> = Vec::new();
        let mut send_until = Instant::now();
        self.shared.recovering.fetch_add(1, Ordering::Relaxed);
        let mut connecting: Option<BoxFuture<'static, Result<Socket, String>>> = None;
        let mut replays: Replays = FuturesUnordered::new();
        let mut resync: Option<BoxFuture<'static, Result<HashMap<Uuid, i64>, String>>> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                frame = async { self.socket.as_mut().map(|s| s.next()).expect("guarded").await }, if self.socket.is_some() => {
                    let now = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), now),
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map_or(1005, |f| u16::from(f.code));
                            *self.stats.server_closes.entry(code).or_default() += 1;
                            self.socket_lost(Cause::ServerClose, now);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            self.stats.dropped += 1;
                            self.socket_lost(Cause::Dropped, now);
                        }
                    }
                    self.send_due(now).await;
                }
                result = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    let now = Instant::now();
                    match result {
                        Ok(socket) => self.connected(socket, now, &mut replays),
                        Err(why) => {
                            *self.stats.handshake_failures.entry(why).or_default() += 1;
                            self.reconnect_later(now);
                        }
                    }
                }
                Some(done) = replays.next(), if !replays.is_empty() => self.replayed(done, &mut replays),
                result = async { resync.as_mut().expect("guarded").await }, if resync.is_some() => {
                    resync = None;
                    self.resynced(result, &mut replays);
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if !self.stopped {
                        self.write_due(&mut writes, send_until, now);
                        if self.next_cut.is_some_and(|at| at <= now) {
                            self.next_cut = if now < send_until { self.draw_cut(now) } else { None };
                            self.cut(now);
                        }
                        if self.socket.is_none() && connecting.is_none() && self.reconnect_at.is_some_and(|at| at <= now) {
                            self.reconnect_at = None;
                            connecting = Some(self.dial());
                        }
                        if resync.is_none() && self.connected_once && self.next_resync <= now {
                            self.next_resync = now + self.settings.resync_every;
                            self.stats.resyncs += 1;
                            resync = Some(self.list_last_seqs());
                        }
                    }
                    self.send_due(now).await;
                    self.start_due_replays(now, &mut replays);
                }
                command = commands.recv() => match command {
                    Some(Command::Start(plan)) => {
                        writes = plan
                            .schedules
                            .iter()
                            .map(|&(c, period)| (c, period, plan.start + period.mul_f64(self.random.unit())))
                            .collect();
                        send_until = plan.send_until;
                        self.next_cut = self.draw_cut(plan.start);
                    }
                    Some(Command::Stop(reply)) => {
                        self.stop().await;
                        connecting = None;
                        let _ = reply.send(());
                    }
                    Some(Command::Finish(reply)) => {
                        let _ = reply.send(self.finish().await);
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    /// Messages due on the schedules, queued in the outbox.
    fn write_due(&mut self, writes: &mut [(Uuid, Duration, Instant)], until: Instant, now: Instant) {
        for (conversation, period, next) in writes.iter_mut() {
            while *next <= now && *next < until {
                let n = self.next_n;
                self.next_n += 1;
                self.outbox.add(*conversation, n, self.micros(now));
                self.stats.written += 1;
                self.shared.unacked.fetch_add(1, Ordering::Relaxed);
                *next += *period;
            }
        }
    }

    async fn send_due(&mut self, now: Instant) {
        if self.socket.is_none() {
            return;
        }
        for (message, attempt) in self.outbox.due(now, self.settings.ack_timeout) {
            match attempt {
                Attempt::First => {}
                Attempt::AfterTimeout => self.stats.resent_after_timeout += 1,
                Attempt::AfterHold => self.stats.resent_after_hold += 1,
                Attempt::AfterReconnect => self.stats.resent_after_reconnect += 1,
            }
            self.stats.frames += 1;
            let frame = send_frame(self.index, message.n, message.conversation, message.written_us);
            let Some(socket) = self.socket.as_mut() else {
                break;
            };
            if socket.send(Message::text(frame)).await.is_err() {
                self.stats.dropped += 1;
                self.socket_lost(Cause::Dropped, now);
                break;
            }
        }
    }

    fn on_text(&mut self, text: &str, now: Instant) {
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            *self.stats.errors.entry("a frame that is not JSON".into()).or_default() += 1;
            return;
        };
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            // API Gateway's own frame: a function failed (or the stage throttled
            // the frame). It proves nothing about a send: what was in flight goes
            // again, with the same ids, after a backoff.
            let message = event.get("message").and_then(Value::as_str).unwrap_or("?").to_owned();
            *self.stats.gateway_frames.entry(message).or_default() += 1;
            let random = &mut self.random;
            let held = self.outbox.crashed(now, |attempts| backoff(attempts, random));
            if !held.is_empty() {
                self.crashes.push((now, held.into_iter().collect()));
            }
            return;
        };
        match kind {
            "message.ack" => self.on_ack(&event, now),
            "error" => self.on_error(&event["data"], now),
            _ => {
                let Some(durable) = Durable::from_event(&event) else {
                    return; // Transient: presence, typing, read, pong.
                };
                let tracked = self.sequencer.applied(durable.conversation).is_some();
                match self.sequencer.offer(durable, Source::Live, now) {
                    Offered::Applied(applied) => self.record(applied, now),
                    Offered::AlreadyApplied if tracked => self.stats.pushes_already_applied += 1,
                    Offered::AlreadyApplied | Offered::Buffered => {}
                }
            }
        }
    }

    fn on_ack(&mut self, event: &Value, now: Instant) {
        let data = &event["data"];
        let own = data["client_msg_id"]
            .as_str()
            .and_then(parse_client_msg_id)
            .filter(|(client, _)| *client as usize == self.index);
        let Some((_, n)) = own else {
            *self
                .stats
                .errors
                .entry("an ack for another client's message".into())
                .or_default() += 1;
            return;
        };
        if data["duplicate"] == Value::Bool(true) {
            self.stats.duplicate_acks += 1;
        }
        let Some(durable) = Durable::from_ack(event) else {
            *self
                .stats
                .errors
                .entry("an ack without its message".into())
                .or_default() += 1;
            return;
        };
        match self.outbox.acknowledged(n) {
            Some(message) => {
                self.stats.acks += 1;
                self.shared.unacked.fetch_sub(1, Ordering::Relaxed);
                let owed = self.recipients.get(&message.conversation).copied().unwrap_or(0);
                self.shared.owed.fetch_add(owed, Ordering::Relaxed);
                if let Some(message) = &durable.message {
                    self.log.acks.push(Ack {
                        conversation: durable.conversation,
                        id: message.id,
                        seq: durable.seq,
                    });
                }
                self.settled(n, now);
            }
            None => self.stats.late_acks += 1,
        }
        if let Offered::Applied(applied) = self.sequencer.offer(durable, Source::Ack, now) {
            self.record(applied, now);
        }
    }

    fn on_error(&mut self, data: &Value, now: Instant) {
        let code = data["code"].as_str().unwrap_or("?").to_owned();
        *self.stats.errors.entry(code.clone()).or_default() += 1;
        let Some((_, n)) = data["client_msg_id"]
            .as_str()
            .and_then(parse_client_msg_id)
            .filter(|(client, _)| *client as usize == self.index)
        else {
            return;
        };
        let wait = match code.as_str() {
            "rate_limited" => Some(Duration::from_millis(data["retry_after_ms"].as_u64().unwrap_or(1000))),
            "internal_error" | "service_unavailable" => Some(backoff(1, &mut self.random)),
            _ => None,
        };
        match wait {
            Some(wait) => {
                self.outbox.hold(n, now + wait);
            }
            None => {
                if self.outbox.drop_message(n).is_some() {
                    self.stats.refused += 1;
                    self.shared.unacked.fetch_sub(1, Ordering::Relaxed);
                    self.settled(n, now);
                }
            }
        }
    }

    /// Message `n` needs nothing more: crash frames waiting only for it are recovered from.
    fn settled(&mut self, n: u32, now: Instant) {
        let samples = &mut self.recovery_after_crash;
        self.crashes.retain_mut(|(since, waiting)| {
            waiting.remove(&n);
            if waiting.is_empty() {
                samples.push(now.duration_since(*since));
            }
            !waiting.is_empty()
        });
    }

    fn record(&mut self, applied: Vec<Applied>, now: Instant) {
        let at_us = self.micros(now);
        for Applied { event, source } in applied {
            if let Some(message) = event.message {
                let sender = message
                    .body
                    .as_deref()
                    .and_then(parse_body)
                    .map(|(sender, _, _)| sender);
                if sender.is_some_and(|sender| sender as usize != self.index) {
                    self.shared.applied.fetch_add(1, Ordering::Relaxed);
                }
                self.log.entries.push(LogEntry {
                    conversation: event.conversation,
                    seq: event.seq,
                    id: message.id,
                    body: message.body,
                    source,
                    at_us,
                });
            }
        }
    }

    fn connected(&mut self, socket: Socket, now: Instant, replays: &mut Replays) {
        self.socket = Some(socket);
        self.attempts = 0;
        self.stats.handshakes += 1;
        // Open first, then replay every conversation: nothing that happens
        // meanwhile is missed (pushes and replays overlap; seqs sort them out).
        let conversations: Vec<Uuid> = self.sequencer.tracked().collect();
        self.catch_up = Some(CatchUp {
            connected_at: now,
            waiting: conversations.iter().copied().collect(),
        });
        for conversation in conversations {
            self.start_replay(conversation, Reason::Connect, now, replays);
        }
    }

    fn socket_lost(&mut self, cause: Cause, now: Instant) {
        self.socket = None;
        self.outbox.socket_lost();
        self.catch_up = None;
        if self.outage.is_none() && self.connected_once {
            self.shared.recovering.fetch_add(1, Ordering::Relaxed);
        }
        if self.connected_once {
            self.outage.get_or_insert(Outage { since: now, cause });
        }
        if !self.stopped {
            self.reconnect_later(now);
        }
    }

    fn reconnect_later(&mut self, now: Instant) {
        self.attempts += 1;
        self.reconnect_at = Some(now + backoff(self.attempts, &mut self.random));
    }

    /// Drops the TCP connection with a reset: no close frame, no goodbye.
    fn cut(&mut self, now: Instant) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        if let MaybeTlsStream::Plain(tcp) = socket.get_ref() {
            let _ = tcp.set_zero_linger();
        }
        drop(socket);
        self.stats.cuts += 1;
        self.socket_lost(Cause::Cut, now);
    }

    fn draw_cut(&mut self, from: Instant) -> Option<Instant> {
        let mean = self.settings.cut_every?;
        // Exponential: cuts come as a Poisson process, at any moment.
        Some(from + mean.mul_f64(-(1.0 - self.random.unit()).ln()))
    }

    fn dial(&self) -> BoxFuture<'static, Result<Socket, String>> {
        let url = self.url.clone();
        let gate = Arc::clone(&self.shared.handshakes);
        async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((socket, _)) => Ok(socket),
                Err(tungstenite::Error::Http(response)) => Err(format!("HTTP {}", response.status().as_u16())),
                Err(e) => Err(e.to_string()),
            }
        }
        .boxed()
    }

    fn start_replay(&mut self, conversation: Uuid, reason: Reason, now: Instant, replays: &mut Replays) {
        let Some(after) = self.sequencer.start_replay(conversation) else {
            return; // One is under way; it runs again when that one is over.
        };
        match reason {
            Reason::Gap => self.stats.replays_after_gap += 1,
            Reason::Connect if !self.connected_once => self.stats.initial_replays += 1,
            Reason::Connect => self.stats.replays_after_connect += 1,
            Reason::Resync => self.stats.resync_found_behind += 1,
            Reason::Again | Reason::Retry => {}
        }
        self.replay_retries.remove(&conversation);
        let api = self.api.clone();
        let token = self.token.clone();
        replays.push(
            async move {
                ReplayDone {
                    conversation,
                    started: now,
                    result: replay(&api, &token, conversation, after).await,
                }
            }
            .boxed(),
        );
    }

    fn start_due_replays(&mut self, now: Instant, replays: &mut Replays) {
        for conversation in self.sequencer.gaps_due(now, GAP_WAIT) {
            self.start_replay(conversation, Reason::Gap, now, replays);
        }
        let due: Vec<Uuid> = self
            .replay_retries
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(c, _)| *c)
            .collect();
        for conversation in due {
            self.start_replay(conversation, Reason::Retry, now, replays);
        }
    }

    fn replayed(&mut self, done: ReplayDone, replays: &mut Replays) {
        let now = Instant::now();
        let conversation = done.conversation;
        let events = match done.result {
            Ok(events) => events,
            Err(_) => {
                self.stats.replay_failures += 1;
                self.sequencer.replay_failed(conversation);
                let failures = self.replay_retries.get(&conversation).map_or(0, |(_, f)| *f) + 1;
                let at = now + backoff(failures, &mut self.random);
                self.replay_retries.insert(conversation, (at, failures));
                return;
            }
        };
        let (applied, again) = self.sequencer.replayed(conversation, events, now);
        self.record(applied, now);
        if again {
            self.start_replay(conversation, Reason::Again, now, replays);
        }
        if let Some(catch_up) = &mut self.catch_up {
            if done.started >= catch_up.connected_at {
                catch_up.waiting.remove(&conversation);
            }
            if catch_up.waiting.is_empty() {
                self.catch_up = None;
                self.caught_up(now);
            }
        }
    }

    /// Connected, and every conversation replayed since.
    fn caught_up(&mut self, now: Instant) {
        if !self.connected_once {
            self.connected_once = true;
            self.shared.ready.fetch_add(1, Ordering::Relaxed);
            self.shared.recovering.fetch_sub(1, Ordering::Relaxed);
        } else if let Some(outage) = self.outage.take() {
            self.recovery
                .entry(outage.cause)
                .or_default()
                .push(now.duration_since(outage.since));
            self.shared.recovering.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn list_last_seqs(&self) -> BoxFuture<'static, Result<HashMap<Uuid, i64>, String>> {
        let api = self.api.clone();
        let token = self.token.clone();
        async move { last_seqs(&api, &token).await }.boxed()
    }

    /// The periodic check: replay what is behind the server's `last_seq`.
    fn resynced(&mut self, result: Result<HashMap<Uuid, i64>, String>, replays: &mut Replays) {
        let Ok(last_seqs) = result else {
            self.stats.replay_failures += 1;
            return;
        };
        let now = Instant::now();
        let behind: Vec<Uuid> = self
            .sequencer
            .tracked()
            .filter(|c| {
                last_seqs
                    .get(c)
                    .is_some_and(|&last| Some(last) > self.sequencer.applied(*c))
            })
            .collect();
        for conversation in behind {
            self.start_replay(conversation, Reason::Resync, now, replays);
        }
    }

    async fn stop(&mut self) {
        self.stopped = true;
        self.next_cut = None;
        if let Some(mut socket) = self.socket.take() {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let _ = socket.close(None).await;
                while let Some(Ok(_)) = socket.next().await {}
            })
            .await;
        }
    }

    /// Every conversation replayed to its end, over REST.
    async fn finish(mut self) -> Record {
        self.stop().await;
        let mut failed = false;
        let conversations: Vec<Uuid> = self.sequencer.tracked().collect();
        for conversation in conversations {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let after = self.sequencer.applied(conversation).unwrap_or(0);
                match replay(&self.api, &self.token, conversation, after).await {
                    Ok(events) => {
                        self.stats.final_replays += 1;
                        let now = Instant::now();
                        let (applied, _) = self.sequencer.replayed(conversation, events, now);
                        self.record(applied, now);
                        break;
                    }
                    Err(_) if attempt < FINAL_ATTEMPTS => {
                        self.stats.replay_failures += 1;
                        tokio::time::sleep(backoff(attempt.min(4), &mut self.random)).await;
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        if self.outage.is_some() || !self.connected_once {
            self.shared.recovering.fetch_sub(1, Ordering::Relaxed);
        }
        Record {
            unacked: self.outbox.len() as u64,
            log: self.log,
            stats: self.stats,
            recovery: self.recovery,
            recovery_after_crash: self.recovery_after_crash,
            final_catch_up_failed: failed,
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.settings.epoch).as_micros() as u64
    }
}

/// Full jitter: a random time up to `BACKOFF_BASE` × 2^(attempts−1), at most `BACKOFF_CAP`.
fn backoff(attempts: u32, random: &mut Random) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(random.unit())
}

/// Every durable event after `after`, page by page, as the events endpoint
/// returns them; any answer but 200 fails the replay (it is tried again).
async fn replay(api: &Api, token: &str, conversation: Uuid, after: i64) -> Result<Vec<Durable>, String> {
    let mut events = Vec::new();
    let mut cursor = after;
    loop {
        let path = format!("/v1/conversations/{conversation}/events?after_seq={cursor}&limit={REPLAY_PAGE}");
        let (status, page) = api.get_json(token, &path).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {page}"));
        }
        let listed = page["events"].as_array().ok_or_else(|| format!("GET {path}: {page}"))?;
        for event in listed {
            let durable =
                Durable::from_event(event).ok_or_else(|| format!("GET {path}: an event without seq: {event}"))?;
            cursor = cursor.max(durable.seq);
            events.push(durable);
        }
        if listed.is_empty() || page["has_more"] != Value::Bool(true) {
            return Ok(events);
        }
    }
}

/// `last_seq` of the user's conversations (the first page of `GET /v1/conversations`).
async fn last_seqs(api: &Api, token: &str) -> Result<HashMap<Uuid, i64>, String> {
    let (status, page) = api.get_json(token, "/v1/conversations?limit=100").await?;
    if status != 200 {
        return Err(format!("GET /v1/conversations: {status}"));
    }
    Ok(page["conversations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let id = Uuid::parse_str(c["id"].as_str()?).ok()?;
            Some((id, c["last_seq"].as_i64()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_has_full_jitter_and_a_ceiling() {
        let mut random = Random::new();
        for attempts in 0..40u32 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << attempts.saturating_sub(1).min(16))
                .min(BACKOFF_CAP);
            for _ in 0..20 {
                assert!(backoff(attempts, &mut random) <= ceiling);
            }
        }
        assert!(
            (0..200).map(|_| backoff(30, &mut random)).any(|d| d > BACKOFF_CAP / 2),
            "spread over the whole range"
        );
    }
}
