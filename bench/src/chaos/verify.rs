//! The end of a chaos run: what every member applied, against what the
//! database stored. Every stored message (every acknowledged one among
//! them) must be at every member of its conversation exactly once, at its
//! seq, in seq order, and each sender's messages in the order written.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use super::sequencer::Source;
use crate::client::parse_body;
use crate::latency::Samples;

/// A conversation of the run and its members (client indexes).
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: Uuid,
    pub members: Vec<usize>,
}

/// A message row of the database.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub conversation: Uuid,
    pub seq: i64,
    pub id: Uuid,
}

/// A message a client applied, in the order it applied them.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub conversation: Uuid,
    pub seq: i64,
    pub id: Uuid,
    pub body: Option<String>,
    pub source: Source,
    /// When it was applied, µs since the run's epoch.
    pub at_us: u64,
}

/// An acknowledgement a sender received.
#[derive(Debug, Clone)]
pub struct Ack {
    pub conversation: Uuid,
    pub id: Uuid,
    pub seq: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ClientLog {
    pub entries: Vec<LogEntry>,
    pub acks: Vec<Ack>,
}

/// Must all be 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Integrity {
    /// (member, message) pairs: a stored or acknowledged message a member never applied.
    pub lost: u64,
    /// (member, message) pairs applied more than once: the same message at
    /// two seqs (stored twice), or one seq applied twice.
    pub duplicated: u64,
    /// Messages a member applied out of seq order, at another seq than the
    /// stored one, or out of their sender's order; acks naming another seq
    /// than the stored one.
    pub reordered: u64,
}

impl Integrity {
    pub fn is_clean(&self) -> bool {
        self.lost + self.duplicated + self.reordered == 0
    }
}

/// How the messages reached their members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deliveries {
    /// For every stored message, the members besides its sender.
    pub owed: u64,
    /// Applied from a push (`message.created` over the socket).
    pub live: u64,
    /// Applied from the events endpoint: the push never came, or came after the replay.
    pub by_replay: u64,
    /// The senders' own messages, applied from their ack.
    pub own_by_ack: u64,
    /// The senders' own messages, applied from a replay (the ack was lost, or came after it).
    pub own_by_replay: u64,
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub integrity: Integrity,
    pub deliveries: Deliveries,
    /// Written → applied at another member, for messages applied from a push.
    pub live_latency: Samples,
    /// The same, for messages applied from a replay.
    pub replay_latency: Samples,
}

/// Who wrote a message and its number: `bench <client>.<n> <µs>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Identity {
    Bench(u32, u32),
    Other(Uuid),
}

fn identity(id: Uuid, body: Option<&str>) -> (Identity, Option<u64>) {
    match body.and_then(parse_body) {
        Some((client, n, written_us)) => (Identity::Bench(client, n), Some(written_us)),
        None => (Identity::Other(id), None),
    }
}

/// `logs[i]` is client `i`'s.
pub fn verify(conversations: &[Conversation], stored: &[StoredRow], logs: &[ClientLog]) -> Verdict {
    let mut verdict = Verdict::default();
    let stored_seq: HashMap<Uuid, i64> = stored.iter().map(|row| (row.id, row.seq)).collect();
    for conversation in conversations {
        let rows: Vec<&StoredRow> = stored.iter().filter(|r| r.conversation == conversation.id).collect();
        verdict.deliveries.owed += rows.len() as u64 * (conversation.members.len() as u64).saturating_sub(1);
        // Acknowledged but not stored: every member lacks it.
        let acked: Vec<&Ack> = conversation
            .members
            .iter()
            .filter_map(|&m| logs.get(m))
            .flat_map(|log| &log.acks)
            .filter(|ack| ack.conversation == conversation.id)
            .collect();
        for ack in &acked {
            match stored_seq.get(&ack.id) {
                None => verdict.integrity.lost += conversation.members.len() as u64,
                Some(&seq) if seq != ack.seq => verdict.integrity.reordered += 1,
                Some(_) => {}
            }
        }
        for &member in &conversation.members {
            let empty = ClientLog::default();
            let log = logs.get(member).unwrap_or(&empty);
            check_member(
                &mut verdict,
                member,
                &rows,
                &stored_seq,
                log.entries.iter().filter(|e| e.conversation == conversation.id),
            );
        }
    }
    verdict
}

fn check_member<'a>(
    verdict: &mut Verdict,
    member: usize,
    rows: &[&StoredRow],
    stored_seq: &HashMap<Uuid, i64>,
    entries: impl Iterator<Item = &'a LogEntry>,
) {
    let mut applied_ids = HashSet::new();
    let mut seen = HashSet::new();
    let mut previous_seq = 0;
    let mut senders_last: HashMap<u32, u32> = HashMap::new();
    for entry in entries {
        applied_ids.insert(entry.id);
        let (who, written_us) = identity(entry.id, entry.body.as_deref());
        if !seen.insert(who) {
            verdict.integrity.duplicated += 1;
            continue;
        }
        let out_of_order = entry.seq <= previous_seq || stored_seq.get(&entry.id) != Some(&entry.seq);
        let out_of_senders_order = match who {
            Identity::Bench(sender, n) => senders_last.insert(sender, n).is_some_and(|last| last > n),
            Identity::Other(_) => false,
        };
        if out_of_order || out_of_senders_order {
            verdict.integrity.reordered += 1;
        }
        previous_seq = previous_seq.max(entry.seq);
        let own = matches!(who, Identity::Bench(sender, _) if sender as usize == member);
        let latency = written_us.map(|w| entry.at_us.saturating_sub(w) as f64 / 1000.0);
        let d = &mut verdict.deliveries;
        match (own, entry.source) {
            (true, Source::Replay) => d.own_by_replay += 1,
            (true, _) => d.own_by_ack += 1,
            (false, Source::Replay) => {
                d.by_replay += 1;
                if let Some(ms) = latency {
                    verdict.replay_latency.push_ms(ms);
                }
            }
            (false, _) => {
                d.live += 1;
                if let Some(ms) = latency {
                    verdict.live_latency.push_ms(ms);
                }
            }
        }
    }
    verdict.integrity.lost += rows.iter().filter(|row| !applied_ids.contains(&row.id)).count() as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct World {
        conversation: Uuid,
        stored: Vec<StoredRow>,
        /// What each stored message says: `bench <sender>.<n> <µs>`.
        bodies: Vec<String>,
    }

    impl World {
        /// Messages stored at seq 2, 3, … (1 is the conversation's creation),
        /// each `(sender, n)`.
        fn new(messages: &[(u32, u32)]) -> World {
            let conversation = Uuid::new_v4();
            let stored = messages
                .iter()
                .enumerate()
                .map(|(i, _)| StoredRow {
                    conversation,
                    seq: i as i64 + 2,
                    id: Uuid::new_v4(),
                })
                .collect();
            let bodies = messages
                .iter()
                .enumerate()
                .map(|(i, (sender, n))| format!("bench {sender}.{n} {}", 1000 * i))
                .collect();
            World {
                conversation,
                stored,
                bodies,
            }
        }

        fn entry(&self, index: usize, source: Source) -> LogEntry {
            let row = &self.stored[index];
            LogEntry {
                conversation: self.conversation,
                seq: row.seq,
                id: row.id,
                body: Some(self.bodies[index].clone()),
                source,
                at_us: 1000 * index as u64 + 500,
            }
        }

        /// Everyone applied everything in order: sender 0's own messages from
        /// its acks, the others' live, but the last one by replay.
        fn clean_logs(&self, members: usize) -> Vec<ClientLog> {
            (0..members)
                .map(|member| {
                    let mut log = ClientLog::default();
                    for (i, row) in self.stored.iter().enumerate() {
                        let sender = parse_body(&self.bodies[i]).unwrap().0 as usize;
                        let source = match (sender == member, i + 1 == self.stored.len()) {
                            (true, _) => Source::Ack,
                            (false, true) => Source::Replay,
                            (false, false) => Source::Live,
                        };
                        log.entries.push(self.entry(i, source));
                        if sender == member {
                            log.acks.push(Ack {
                                conversation: self.conversation,
                                id: row.id,
                                seq: row.seq,
                            });
                        }
                    }
                    log
                })
                .collect()
        }

        fn conversations(&self, members: usize) -> Vec<Conversation> {
            vec![Conversation {
                id: self.conversation,
                members: (0..members).collect(),
            }]
        }

        fn verify(&self, logs: &[ClientLog]) -> Verdict {
            verify(&self.conversations(logs.len()), &self.stored, logs)
        }
    }

    #[test]
    fn everything_everywhere_once_in_order_is_clean_and_counted_by_source() {
        let world = World::new(&[(0, 0), (1, 0), (0, 1), (2, 0)]);
        let verdict = world.verify(&world.clean_logs(3));
        assert_eq!(verdict.integrity, Integrity::default());
        assert!(verdict.integrity.is_clean());
        let d = verdict.deliveries;
        assert_eq!(d.owed, 4 * 2);
        // Each message reaches its two other members: the last one by replay.
        assert_eq!((d.live, d.by_replay), (6, 2));
        assert_eq!((d.own_by_ack, d.own_by_replay), (4, 0));
        assert_eq!(verdict.live_latency.len(), 6);
        assert_eq!(verdict.live_latency.summary().unwrap().max_ms, 0.5);
    }

    #[test]
    fn a_message_missing_at_a_member_is_lost() {
        let world = World::new(&[(0, 0), (1, 0), (0, 1)]);
        let mut logs = world.clean_logs(2);
        logs[1].entries.remove(2);
        assert_eq!(world.verify(&logs).integrity.lost, 1);
    }

    #[test]
    fn an_acknowledged_message_not_stored_is_lost_everywhere() {
        let world = World::new(&[(0, 0)]);
        let mut logs = world.clean_logs(3);
        logs[0].acks.push(Ack {
            conversation: world.conversation,
            id: Uuid::new_v4(),
            seq: 3,
        });
        assert_eq!(world.verify(&logs).integrity.lost, 3);
    }

    #[test]
    fn a_message_applied_twice_or_stored_twice_is_duplicated() {
        let world = World::new(&[(0, 0), (1, 0)]);
        let mut logs = world.clean_logs(2);
        let again = logs[1].entries[1].clone();
        logs[1].entries.push(again);
        assert_eq!(world.verify(&logs).integrity.duplicated, 1);

        // The same client_msg_id stored at two seqs: every member applies both.
        let world = World::new(&[(0, 0), (0, 0)]);
        let verdict = world.verify(&world.clean_logs(2));
        assert_eq!(verdict.integrity.duplicated, 2);
        assert_eq!(verdict.integrity.lost, 0);
    }

    #[test]
    fn out_of_seq_order_at_another_seq_or_out_of_the_senders_order_is_reordered() {
        let world = World::new(&[(0, 0), (1, 0), (0, 1)]);
        let mut logs = world.clean_logs(2);
        logs[1].entries.swap(0, 1);
        assert_eq!(world.verify(&logs).integrity.reordered, 1);

        let mut logs = world.clean_logs(2);
        logs[1].entries[2].seq = 9;
        assert_eq!(world.verify(&logs).integrity.reordered, 1);

        // Sender 0 wrote n=1 before n=0, yet 1 was stored first.
        let world = World::new(&[(0, 1), (1, 0), (0, 0)]);
        assert_eq!(world.verify(&world.clean_logs(2)).integrity.reordered, 2);

        let world = World::new(&[(0, 0)]);
        let mut logs = world.clean_logs(2);
        logs[0].acks[0].seq = 5;
        assert_eq!(world.verify(&logs).integrity.reordered, 1);
    }
}
