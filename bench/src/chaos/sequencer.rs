//! Exactly-once, in-order application of each conversation's durable events,
//! as docs/websocket-protocol.md ("Recovering after a reconnect or a gap")
//! asks and the TypeScript client's `Sequencer` does: keep the highest seq
//! applied with every earlier one applied too; ignore what is at or below it;
//! apply the next one and whatever buffered events follow; buffer what lies
//! beyond a gap and, if the gap stays open, replay
//! `GET /v1/conversations/{id}/events?after_seq=`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

/// How an event reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Pushed over the socket (`message.created` and the other durable events).
    Live,
    /// The sender's own `message.ack`, which stands in for its `message.created`.
    Ack,
    /// Returned by the events endpoint.
    Replay,
}

/// A durable event, reduced to what the accounting needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Durable {
    pub conversation: Uuid,
    pub seq: i64,
    /// Set for `message.created` (and an ack).
    pub message: Option<StoredMessage>,
}

/// A message as the server stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: Uuid,
    /// `data.seq`: where the message sits in the history.
    pub seq: i64,
    pub body: Option<String>,
}

impl Durable {
    /// A durable event from a pushed envelope or a replayed one; `None` for
    /// a transient event (no `seq`) or one of another shape.
    pub fn from_event(event: &Value) -> Option<Durable> {
        let seq = event.get("seq")?.as_i64()?;
        let conversation = Uuid::parse_str(event.get("conversation_id")?.as_str()?).ok()?;
        let message = match event.get("type")?.as_str()? {
            "message.created" => Some(StoredMessage::from_data(&event["data"])?),
            _ => None,
        };
        Some(Durable {
            conversation,
            seq,
            message,
        })
    }

    /// A `message.ack`: its `message.created` at `data.seq`, `data.message` as its data.
    pub fn from_ack(ack: &Value) -> Option<Durable> {
        let data = &ack["data"];
        let conversation = Uuid::parse_str(ack.get("conversation_id")?.as_str()?).ok()?;
        Some(Durable {
            conversation,
            seq: data.get("seq")?.as_i64()?,
            message: Some(StoredMessage::from_data(&data["message"])?),
        })
    }
}

impl StoredMessage {
    fn from_data(data: &Value) -> Option<StoredMessage> {
        Some(StoredMessage {
            id: Uuid::parse_str(data.get("id")?.as_str()?).ok()?,
            seq: data.get("seq")?.as_i64()?,
            body: data.get("body").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// An event applied, in seq order.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub event: Durable,
    pub source: Source,
}

/// What became of an offered event.
#[derive(Debug, PartialEq)]
pub enum Offered {
    /// Applied, with the buffered events it released.
    Applied(Vec<Applied>),
    /// At or below the applied seq: seen already (a re-delivery, or a push a replay overtook).
    AlreadyApplied,
    /// Beyond a gap: kept until the gap is filled.
    Buffered,
}

#[derive(Debug, Default)]
struct Track {
    applied: i64,
    buffer: BTreeMap<i64, Applied>,
    /// Since when the buffer has waited for a missing seq.
    gap_since: Option<Instant>,
    replaying: bool,
    /// Another replay is wanted once the one under way is over (it may have
    /// read the log before what made this one necessary).
    again: bool,
}

#[derive(Debug, Default)]
pub struct Sequencer {
    tracks: HashMap<Uuid, Track>,
}

impl Sequencer {
    /// Starts tracking a conversation known up to `applied` (0: from its start).
    pub fn track(&mut self, conversation: Uuid, applied: i64) {
        self.tracks.entry(conversation).or_insert_with(|| Track {
            applied,
            ..Track::default()
        });
    }

    pub fn tracked(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.tracks.keys().copied()
    }

    pub fn applied(&self, conversation: Uuid) -> Option<i64> {
        self.tracks.get(&conversation).map(|t| t.applied)
    }

    /// A pushed event or an ack. Events of untracked conversations are none
    /// of this client's business.
    pub fn offer(&mut self, event: Durable, source: Source, now: Instant) -> Offered {
        let Some(track) = self.tracks.get_mut(&event.conversation) else {
            return Offered::AlreadyApplied;
        };
        if event.seq <= track.applied {
            return Offered::AlreadyApplied;
        }
        if event.seq > track.applied + 1 {
            track.buffer.entry(event.seq).or_insert(Applied { event, source });
            track.gap_since.get_or_insert(now);
            return Offered::Buffered;
        }
        let mut applied = vec![apply(track, Applied { event, source })];
        drain(track, &mut applied, now);
        Offered::Applied(applied)
    }

    /// Marks a replay as started; the seq to replay after, or `None` when one
    /// is under way already (it is done again when that one is over).
    pub fn start_replay(&mut self, conversation: Uuid) -> Option<i64> {
        let track = self.tracks.get_mut(&conversation)?;
        if track.replaying {
            track.again = true;
            return None;
        }
        track.replaying = true;
        Some(track.applied)
    }

    /// The events a replay returned, in seq order; what they applied. True
    /// in the second place when another replay is wanted.
    pub fn replayed(&mut self, conversation: Uuid, events: Vec<Durable>, now: Instant) -> (Vec<Applied>, bool) {
        let Some(track) = self.tracks.get_mut(&conversation) else {
            return (Vec::new(), false);
        };
        track.replaying = false;
        let mut applied = Vec::new();
        for event in events {
            if event.seq == track.applied + 1 {
                applied.push(apply(
                    track,
                    Applied {
                        event,
                        source: Source::Replay,
                    },
                ));
                // A buffered push of the next seq counts as live.
                drain(track, &mut applied, now);
            } else if event.seq > track.applied {
                track.buffer.entry(event.seq).or_insert(Applied {
                    event,
                    source: Source::Replay,
                });
            }
        }
        drain(track, &mut applied, now);
        (applied, std::mem::take(&mut track.again))
    }

    /// A replay failed; it may be started again.
    pub fn replay_failed(&mut self, conversation: Uuid) {
        if let Some(track) = self.tracks.get_mut(&conversation) {
            track.replaying = false;
        }
    }

    /// Conversations whose gap has stayed open `wait` or longer with no replay under way.
    pub fn gaps_due(&self, now: Instant, wait: Duration) -> Vec<Uuid> {
        self.tracks
            .iter()
            .filter(|(_, t)| !t.replaying && t.gap_since.is_some_and(|since| now.duration_since(since) >= wait))
            .map(|(id, _)| *id)
            .collect()
    }
}

fn apply(track: &mut Track, applied: Applied) -> Applied {
    track.applied = applied.event.seq;
    applied
}

/// Applies the buffered events that are next, forgets those at or below the
/// applied seq, and restarts the gap clock if something is still missing.
fn drain(track: &mut Track, applied: &mut Vec<Applied>, now: Instant) {
    while let Some(next) = track.buffer.remove(&(track.applied + 1)) {
        applied.push(apply(track, next));
    }
    let keep = track.buffer.split_off(&(track.applied + 1));
    track.buffer = keep;
    track.gap_since = match track.buffer.is_empty() {
        true => None,
        false => Some(track.gap_since.unwrap_or(now)),
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(conversation: Uuid, seq: i64) -> Durable {
        Durable {
            conversation,
            seq,
            message: None,
        }
    }

    fn seqs(offered: Offered) -> Vec<i64> {
        match offered {
            Offered::Applied(applied) => applied.iter().map(|a| a.event.seq).collect(),
            other => panic!("nothing applied: {other:?}"),
        }
    }

    #[test]
    fn in_order_events_apply_and_repeats_are_ignored() {
        let c = Uuid::new_v4();
        let mut s = Sequencer::default();
        s.track(c, 0);
        let now = Instant::now();
        assert_eq!(seqs(s.offer(event(c, 1), Source::Live, now)), vec![1]);
        assert_eq!(seqs(s.offer(event(c, 2), Source::Ack, now)), vec![2]);
        assert_eq!(s.offer(event(c, 2), Source::Live, now), Offered::AlreadyApplied);
        assert_eq!(s.offer(event(c, 1), Source::Live, now), Offered::AlreadyApplied);
        assert_eq!(s.applied(c), Some(2));
        assert_eq!(
            s.offer(event(Uuid::new_v4(), 1), Source::Live, now),
            Offered::AlreadyApplied,
            "not tracked"
        );
    }

    #[test]
    fn a_gap_buffers_until_filled_and_is_due_for_a_replay_after_the_wait() {
        let c = Uuid::new_v4();
        let mut s = Sequencer::default();
        s.track(c, 3);
        let t0 = Instant::now();
        let wait = Duration::from_millis(1500);
        assert_eq!(s.offer(event(c, 5), Source::Live, t0), Offered::Buffered);
        assert_eq!(s.offer(event(c, 6), Source::Live, t0), Offered::Buffered);
        assert!(s.gaps_due(t0 + Duration::from_millis(1499), wait).is_empty());
        assert_eq!(s.gaps_due(t0 + wait, wait), vec![c]);
        // The missing push arrives late: everything buffered follows it.
        assert_eq!(seqs(s.offer(event(c, 4), Source::Live, t0)), vec![4, 5, 6]);
        assert!(s.gaps_due(t0 + wait * 2, wait).is_empty());
    }

    #[test]
    fn a_replay_fills_the_gap_releases_the_buffer_and_only_one_runs_at_a_time() {
        let c = Uuid::new_v4();
        let mut s = Sequencer::default();
        s.track(c, 1);
        let now = Instant::now();
        assert_eq!(s.offer(event(c, 4), Source::Live, now), Offered::Buffered);
        assert_eq!(s.start_replay(c), Some(1));
        assert_eq!(s.start_replay(c), None, "one at a time");
        assert!(
            s.gaps_due(now + Duration::from_secs(9), Duration::ZERO).is_empty(),
            "a replay is under way"
        );
        // The replay read the log up to 3, before 4 was written.
        let (applied, again) = s.replayed(c, vec![event(c, 1), event(c, 2), event(c, 3)], now);
        let applied: Vec<(i64, Source)> = applied.iter().map(|a| (a.event.seq, a.source)).collect();
        assert_eq!(
            applied,
            vec![(2, Source::Replay), (3, Source::Replay), (4, Source::Live)]
        );
        assert!(again, "asked for while the first was under way");
        assert_eq!(s.start_replay(c), Some(4));
        let (applied, again) = s.replayed(c, vec![], now);
        assert!(applied.is_empty() && !again);
    }

    #[test]
    fn a_failed_replay_may_start_again() {
        let c = Uuid::new_v4();
        let mut s = Sequencer::default();
        s.track(c, 0);
        assert_eq!(s.start_replay(c), Some(0));
        s.replay_failed(c);
        assert_eq!(s.start_replay(c), Some(0));
    }

    #[test]
    fn events_and_acks_are_read_from_their_json() {
        let c = Uuid::new_v4();
        let id = Uuid::new_v4();
        let message = json!({"id": id, "conversation_id": c, "seq": 7, "body": "bench 1.2 3"});
        let created = json!({"type": "message.created", "conversation_id": c, "seq": 7, "data": message});
        let expected = Durable {
            conversation: c,
            seq: 7,
            message: Some(StoredMessage {
                id,
                seq: 7,
                body: Some("bench 1.2 3".into()),
            }),
        };
        assert_eq!(Durable::from_event(&created), Some(expected.clone()));
        let ack = json!({"type": "message.ack", "conversation_id": c,
                         "data": {"client_msg_id": "b1.2", "seq": 7, "duplicate": true, "message": message}});
        assert_eq!(Durable::from_ack(&ack), Some(expected));
        let joined = json!({"type": "member.joined", "conversation_id": c, "seq": 2, "data": {}});
        assert_eq!(
            Durable::from_event(&joined),
            Some(Durable {
                conversation: c,
                seq: 2,
                message: None
            })
        );
        let typing = json!({"type": "typing", "conversation_id": c, "data": {}});
        assert_eq!(Durable::from_event(&typing), None, "transient");
    }
}
