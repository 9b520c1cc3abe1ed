//! One simulated user: a WebSocket connection that sends on a schedule or on
//! command, and records what arrives. Every frame it sends names itself and
//! the moment it was sent (`client_msg_id` `b<client>.<n>`, body
//! `bench <client>.<n> <µs since the run's epoch>`), so each recipient can
//! tell the latency, a loss or a duplicate from the frame alone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::latency::Samples;
use crate::topology::Kind;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Errors kept verbatim per client, for the report; the rest are counted.
const KEPT_ERRORS: usize = 3;
/// How long a closing client waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Totals across all clients, for the coordinator to see when traffic has settled.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    /// Sends answered: acknowledged, or refused by an error that names them.
    pub acked: AtomicU64,
    /// Deliveries owed: for every message sent and not refused, the members besides the sender.
    pub expected: AtomicU64,
    /// Distinct deliveries received.
    pub delivered: AtomicU64,
    /// Messages sent (and not refused) to a conversation with members who never
    /// connect: each should hand one notification to the notification function.
    pub sends_to_offline: AtomicU64,
    /// Those members, summed over those messages.
    pub offline_recipients: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    fn sub(counter: &AtomicU64, value: u64) {
        counter.fetch_sub(value, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Membership {
    pub id: Uuid,
    pub kind: Kind,
    /// Members who should receive a message sent there by this client.
    pub recipients: u64,
    /// Members who never connect (told by a notification instead).
    pub offline: u64,
}

/// Sends to one conversation every `period`, from `first` on.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub conversation: Membership,
    pub first: Instant,
    pub period: Duration,
}

pub enum Command {
    /// Send on these schedules until `until`; messages sent before
    /// `measure_from` (by anyone) are warm-up: counted, not timed.
    Load {
        schedules: Vec<Schedule>,
        measure_from: Instant,
        until: Instant,
    },
    /// Send one message; the answer is the time to its ack.
    SendOne {
        conversation: Membership,
        reply: oneshot::Sender<Duration>,
    },
    /// Send a frame for its side effect (invoking a route); answers are ignored.
    Frame(String),
    /// Hand over what was recorded so far and start afresh.
    TakeRecord(oneshot::Sender<Record>),
    /// Close the socket, wait for the server's close, and stop.
    Close(oneshot::Sender<bool>),
}

/// What one client saw between two `TakeRecord`s.
#[derive(Debug, Default)]
pub struct Record {
    pub sent: u64,
    pub sent_measured: u64,
    /// Send → `message.ack`, for measured sends.
    pub acks: Samples,
    /// Sends still without an ack when the record was taken.
    pub ack_missing: u64,
    /// Acks for a message already acked, or flagged `duplicate`.
    pub ack_duplicates: u64,
    /// Send → `message.created` at this recipient, for measured messages, by conversation kind.
    pub deliveries: HashMap<Kind, Samples>,
    /// Distinct messages received (measured or not).
    pub delivered: u64,
    /// The same message received again.
    pub duplicates: u64,
    /// A message for a conversation this client is not in, or its own.
    pub strays: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// The socket ended without being asked to.
    pub dropped: bool,
    pub last_delivery: Option<Instant>,
}

pub struct Client {
    index: usize,
    socket: Socket,
    memberships: HashMap<Uuid, Kind>,
    counters: Arc<Counters>,
    epoch: Instant,
    /// Messages sent before this (µs since `epoch`) are warm-up: counted, not
    /// timed. Until a load says otherwise, every message is timed.
    measure_from_us: u64,
    next_n: u32,
    pending: HashMap<u32, Pending>,
    /// Sends still pending when a record was taken (counted there as missing):
    /// an ack for one of them later is late, not a duplicate.
    written_off: HashSet<u32>,
    seen: HashSet<u64>,
    record: Record,
    open: bool,
}

struct Pending {
    sent_at: Instant,
    conversation: Membership,
    measured: bool,
    reply: Option<oneshot::Sender<Duration>>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    conversation_id: Option<Uuid>,
    #[serde(default)]
    data: IncomingData,
}

#[derive(Deserialize, Default)]
struct IncomingData {
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    duplicate: Option<bool>,
    #[serde(default)]
    code: Option<String>,
    /// An error's text; on `message.ack` the stored message (an object), which
    /// the bench does not read.
    #[serde(default)]
    message: Option<serde_json::Value>,
}

impl Client {
    pub fn new(
        index: usize,
        socket: Socket,
        memberships: &[Membership],
        counters: Arc<Counters>,
        epoch: Instant,
    ) -> Client {
        Client {
            index,
            socket,
            memberships: memberships.iter().map(|m| (m.id, m.kind)).collect(),
            counters,
            epoch,
            measure_from_us: 0,
            next_n: 0,
            pending: HashMap::new(),
            written_off: HashSet::new(),
            seen: HashSet::new(),
            record: Record::default(),
            open: true,
        }
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut schedules: Vec<(Instant, Schedule)> = Vec::new();
        let mut until = self.epoch;
        loop {
            let due = schedules
                .iter()
                .enumerate()
                .filter(|(_, (next, _))| *next < until)
                .min_by_key(|(_, (next, _))| *next)
                .map(|(i, (next, _))| (i, *next));
            tokio::select! {
                frame = self.socket.next(), if self.open => {
                    let at = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), at),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            self.open = false;
                            self.record.dropped = true;
                        }
                        Some(Ok(_)) => {}
                    }
                }
                _ = sleep_until(due.map(|(_, at)| at)), if due.is_some() => {
                    if let Some((i, _)) = due {
                        let (next, schedule) = &mut schedules[i];
                        *next += schedule.period;
                        let conversation = schedule.conversation;
                        self.send(conversation, None).await;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Load { schedules: given, measure_from, until: given_until }) => {
                        schedules = given.into_iter().map(|s| (s.first, s)).collect();
                        until = given_until;
                        self.measure_from_us = micros_since(self.epoch, measure_from);
                    }
                    Some(Command::SendOne { conversation, reply }) => self.send(conversation, Some(reply)).await,
                    Some(Command::Frame(frame)) => {
                        if self.open && self.socket.send(Message::text(frame)).await.is_err() {
                            self.open = false;
                        }
                    }
                    Some(Command::TakeRecord(reply)) => {
                        let mut record = std::mem::take(&mut self.record);
                        record.ack_missing = self.pending.len() as u64;
                        self.written_off.extend(self.pending.drain().map(|(n, _)| n));
                        let _ = reply.send(record);
                    }
                    Some(Command::Close(reply)) => {
                        let _ = reply.send(self.close().await);
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    async fn send(&mut self, conversation: Membership, reply: Option<oneshot::Sender<Duration>>) {
        let n = self.next_n;
        self.next_n += 1;
        let sent_at = Instant::now();
        let sent_us = micros_since(self.epoch, sent_at);
        let frame = send_frame(self.index, n, conversation.id, sent_us);
        let measured = sent_us >= self.measure_from_us;
        self.pending.insert(
            n,
            Pending {
                sent_at,
                conversation,
                measured,
                reply,
            },
        );
        self.record.sent += 1;
        self.record.sent_measured += u64::from(measured);
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.owe(conversation, Counters::add);
        if !self.open || self.socket.send(Message::text(frame)).await.is_err() {
            self.open = false;
            self.record.dropped = true;
        }
    }

    fn on_text(&mut self, text: &str, at: Instant) {
        let Ok(event) = serde_json::from_str::<Incoming>(text) else {
            self.error(format!("a frame that is not an event: {text}"));
            return;
        };
        match event.kind.as_str() {
            "message.ack" => self.on_ack(&event, at),
            "message.created" => self.on_created(&event, at),
            "error" => {
                let data = &event.data;
                self.error(format!(
                    "{}: {}",
                    data.code.as_deref().unwrap_or("?"),
                    data.message.as_ref().and_then(|m| m.as_str()).unwrap_or("")
                ));
                self.on_refused(&event);
            }
            // Presence, membership, typing, pong: not what is measured.
            _ => {}
        }
    }

    /// What a message sent to `conversation` owes (or, refused, no longer
    /// owes): its deliveries and its notification.
    fn owe(&self, conversation: Membership, change: fn(&AtomicU64, u64)) {
        let c = &self.counters;
        change(&c.expected, conversation.recipients);
        if conversation.offline > 0 {
            change(&c.sends_to_offline, 1);
            change(&c.offline_recipients, conversation.offline);
        }
    }

    /// A refusal naming one of this client's pending sends answers it: it
    /// stays counted as an error, and owes no ack, delivery or notification.
    fn on_refused(&mut self, event: &Incoming) {
        let Some((client, n)) = event.data.client_msg_id.as_deref().and_then(parse_client_msg_id) else {
            return;
        };
        if client as usize != self.index {
            return;
        }
        if let Some(pending) = self.pending.remove(&n) {
            self.counters.acked.fetch_add(1, Ordering::Relaxed);
            self.owe(pending.conversation, Counters::sub);
        } else if self.written_off.remove(&n) {
            // Its record already counted it missing, and what it owed lost.
            self.counters.acked.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_ack(&mut self, event: &Incoming, at: Instant) {
        let own = event
            .data
            .client_msg_id
            .as_deref()
            .and_then(parse_client_msg_id)
            .filter(|(client, _)| *client as usize == self.index);
        let Some((_, n)) = own else {
            self.error(format!(
                "an ack for a message this client did not send: {:?}",
                event.data.client_msg_id
            ));
            return;
        };
        if event.data.duplicate == Some(true) {
            self.record.ack_duplicates += 1;
        }
        let Some(pending) = self.pending.remove(&n) else {
            if self.written_off.remove(&n) {
                // Counted as missing in an earlier record; owed no more.
                self.counters.acked.fetch_add(1, Ordering::Relaxed);
            } else {
                self.record.ack_duplicates += 1;
            }
            return;
        };
        let latency = at.duration_since(pending.sent_at);
        self.counters.acked.fetch_add(1, Ordering::Relaxed);
        if pending.measured {
            self.record.acks.push(latency);
        }
        if let Some(reply) = pending.reply {
            let _ = reply.send(latency);
        }
    }

    fn on_created(&mut self, event: &Incoming, at: Instant) {
        let kind = event.conversation_id.and_then(|id| self.memberships.get(&id).copied());
        let parsed = event.data.body.as_deref().and_then(parse_body);
        let (Some(kind), Some((sender, n, sent_us))) = (kind, parsed) else {
            self.record.strays += 1;
            return;
        };
        if sender as usize == self.index {
            self.record.strays += 1;
            return;
        }
        if !self.seen.insert((u64::from(sender) << 32) | u64::from(n)) {
            self.record.duplicates += 1;
            return;
        }
        self.record.delivered += 1;
        self.record.last_delivery = Some(at);
        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        if sent_us >= self.measure_from_us {
            let sent_at = self.epoch + Duration::from_micros(sent_us);
            self.record
                .deliveries
                .entry(kind)
                .or_default()
                .push(at.saturating_duration_since(sent_at));
        }
    }

    fn error(&mut self, text: String) {
        self.record.errors += 1;
        if self.record.error_samples.len() < KEPT_ERRORS {
            self.record.error_samples.push(text);
        }
    }

    /// True when the server closed its side in time (so `$disconnect` ran).
    async fn close(mut self) -> bool {
        if !self.open {
            return false;
        }
        let _ = self.socket.close(None).await;
        tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(_)) = self.socket.next().await {}
        })
        .await
        .is_ok()
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn micros_since(epoch: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_micros() as u64
}

/// The `sendMessage` frame of message `n` of client `index`, written at
/// `sent_us` µs since the run's epoch: what every client of the benchmark sends.
pub fn send_frame(index: usize, n: u32, conversation: Uuid, sent_us: u64) -> String {
    format!(
        r#"{{"action":"sendMessage","conversation_id":"{conversation}","client_msg_id":"b{index}.{n}","body":"bench {index}.{n} {sent_us}"}}"#
    )
}

/// `b<client>.<n>`
pub fn parse_client_msg_id(id: &str) -> Option<(u32, u32)> {
    let (client, n) = id.strip_prefix('b')?.split_once('.')?;
    Some((client.parse().ok()?, n.parse().ok()?))
}

/// `bench <client>.<n> <µs>`
pub fn parse_body(body: &str) -> Option<(u32, u32, u64)> {
    let mut words = body.strip_prefix("bench ")?.split(' ');
    let (client, n) = words.next()?.split_once('.')?;
    let sent_us = words.next()?.parse().ok()?;
    Some((client.parse().ok()?, n.parse().ok()?, sent_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_their_sender_and_send_time() {
        assert_eq!(parse_client_msg_id("b12.7"), Some((12, 7)));
        assert_eq!(parse_client_msg_id("x12.7"), None);
        assert_eq!(parse_body("bench 3.9 123456"), Some((3, 9, 123456)));
        assert_eq!(parse_body("hello"), None);
        assert_eq!(parse_body("bench 3.9"), None);
        let frame: serde_json::Value = serde_json::from_str(&send_frame(3, 9, Uuid::nil(), 123456)).unwrap();
        assert_eq!(frame["action"], "sendMessage");
        assert_eq!(frame["conversation_id"], Uuid::nil().to_string());
        assert_eq!(
            parse_client_msg_id(frame["client_msg_id"].as_str().unwrap()),
            Some((3, 9))
        );
        assert_eq!(parse_body(frame["body"].as_str().unwrap()), Some((3, 9, 123456)));
    }

    /// `message` is the stored message on an ack and a sentence on an error;
    /// both must parse, or every ack would count as a stray frame.
    #[test]
    fn acks_carrying_the_stored_message_and_errors_both_parse() {
        let ack: Incoming = serde_json::from_str(
            r#"{"type":"message.ack","conversation_id":"6157eee8-1688-4883-8305-0b4004917332",
                "data":{"client_msg_id":"b0.1","duplicate":false,"seq":5,
                        "message":{"id":"4cee6033-18c0-4106-8b86-815f170a1924","body":"bench 0.1 4357898"}}}"#,
        )
        .unwrap();
        assert_eq!(ack.kind, "message.ack");
        assert_eq!(ack.data.client_msg_id.as_deref(), Some("b0.1"));
        let error: Incoming =
            serde_json::from_str(r#"{"type":"error","data":{"code":"rate_limited","message":"slow down"}}"#).unwrap();
        assert_eq!(error.data.message.as_ref().and_then(|m| m.as_str()), Some("slow down"));
    }
}
