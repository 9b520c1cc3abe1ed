//! All the simulated clients: connecting them, driving a load, asking one of
//! them to send, collecting what they recorded, closing them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Client, Command, Counters, Membership, Record, Schedule};
use crate::latency::Samples;
use crate::random::Random;

/// A single send waits this long for its ack before it counts as lost.
const ACK_WAIT: Duration = Duration::from_secs(10);

pub struct Fleet {
    clients: Vec<mpsc::Sender<Command>>,
    pub counters: Arc<Counters>,
}

pub struct Connected {
    pub fleet: Fleet,
    /// Handshake (authorizer + `$connect` + upgrade) per client.
    pub handshakes: Samples,
}

/// One client to connect: its URL (token included) and its conversations.
pub struct Member {
    pub url: String,
    pub memberships: Vec<Membership>,
}

/// Load settings, all relative to the moment the load starts.
pub struct LoadPlan {
    /// Per client: conversation and messages per second (0 = never).
    pub rates: Vec<Vec<(Membership, f64)>>,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
}

pub struct LoadWindow {
    pub measure_from: Instant,
    pub send_until: Instant,
    /// Sending stopped → every owed delivery and ack arrived; `None` if the drain timed out.
    pub drained_after: Option<Duration>,
}

impl Fleet {
    /// Connects every member, `concurrency` handshakes (each running the
    /// authorizer and `$connect`) at a time; any failed handshake fails the run.
    pub async fn connect(members: Vec<Member>, concurrency: usize) -> Result<Connected, String> {
        let counters = Arc::new(Counters::default());
        let epoch = Instant::now();
        let attempts = stream::iter(members.into_iter().enumerate())
            .map(|(index, member)| async move {
                let started = Instant::now();
                let result = tokio_tungstenite::connect_async(member.url.as_str()).await;
                (index, member, started.elapsed(), result)
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut handshakes = Samples::default();
        let mut clients: Vec<Option<mpsc::Sender<Command>>> = vec![None; attempts.len()];
        for (index, member, elapsed, result) in attempts {
            let (socket, _) = result.map_err(|e| format!("client {index} could not connect: {e}"))?;
            handshakes.push(elapsed);
            let (commands, receiver) = mpsc::channel(16);
            let client = Client::new(index, socket, &member.memberships, Arc::clone(&counters), epoch);
            tokio::spawn(client.run(receiver));
            clients[index] = Some(commands);
        }
        Ok(Connected {
            fleet: Fleet {
                clients: clients.into_iter().flatten().collect(),
                counters,
            },
            handshakes,
        })
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Every client sends on its schedule (open loop, each stream starting at
    /// a random point of its first period so that clients do not fire in
    /// step) until warm-up plus duration are over; then waits for the
    /// stragglers up to `drain`.
    pub async fn run_load(&self, plan: &LoadPlan, start: Instant, random: &mut Random) -> LoadWindow {
        let measure_from = start + plan.warmup;
        let send_until = measure_from + plan.duration;
        for (client, rates) in self.clients.iter().zip(&plan.rates) {
            let schedules = rates
                .iter()
                .filter(|(_, rate)| *rate > 0.0)
                .map(|(conversation, rate)| {
                    let period = Duration::from_secs_f64(1.0 / rate);
                    Schedule {
                        conversation: *conversation,
                        first: start + period.mul_f64(random.unit()),
                        period,
                    }
                })
                .collect();
            let _ = client
                .send(Command::Load {
                    schedules,
                    measure_from,
                    until: send_until,
                })
                .await;
        }
        tokio::time::sleep_until(send_until.into()).await;
        let drained_after = self.settle(plan.drain).await;
        LoadWindow {
            measure_from,
            send_until,
            drained_after,
        }
    }

    /// Waits until every send is acked and every owed delivery arrived, up
    /// to `limit`; how long that took, or `None` if it never happened.
    pub async fn settle(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        loop {
            let c = &self.counters;
            if c.acked.load(Ordering::Relaxed) >= c.sent.load(Ordering::Relaxed)
                && c.delivered.load(Ordering::Relaxed) >= c.expected.load(Ordering::Relaxed)
            {
                return Some(started.elapsed());
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One message from `client`, timed to its ack; `None` if none came.
    pub async fn send_one(&self, client: usize, conversation: Membership) -> Option<Duration> {
        let (reply, answer) = oneshot::channel();
        self.clients[client]
            .send(Command::SendOne { conversation, reply })
            .await
            .ok()?;
        tokio::time::timeout(ACK_WAIT, answer).await.ok()?.ok()
    }

    pub async fn send_frame(&self, client: usize, frame: String) {
        let _ = self.clients[client].send(Command::Frame(frame)).await;
    }

    pub async fn take_records(&self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.clients.len());
        for client in &self.clients {
            let (reply, answer) = oneshot::channel();
            if client.send(Command::TakeRecord(reply)).await.is_ok() {
                if let Ok(record) = answer.await {
                    records.push(record);
                }
            }
        }
        records
    }

    /// Closes every socket; how many the server closed in time.
    pub async fn close(self) -> usize {
        let closing = self.clients.into_iter().map(|client| async move {
            let (reply, answer) = oneshot::channel();
            client.send(Command::Close(reply)).await.ok()?;
            answer.await.ok()
        });
        futures_util::future::join_all(closing)
            .await
            .into_iter()
            .filter(|closed| *closed == Some(true))
            .count()
    }
}
