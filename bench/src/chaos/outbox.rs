//! Messages waiting for their `message.ack`, as docs/websocket-protocol.md
//! ("Idempotent sending with `client_msg_id`") and the TypeScript client's
//! `Outbox` handle them: each keeps its `client_msg_id` on every attempt; one
//! frame in flight per conversation, so a conversation's messages are stored
//! in the order they were written; sent again after an ack timeout, after
//! API Gateway's crash frame (after a backoff: it never proves a failure)
//! and on the next socket; a retryable refusal waits and goes again.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// A message the user wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub conversation: Uuid,
    /// This client's counter: `client_msg_id` `b<client>.<n>`.
    pub n: u32,
    /// When it was written, µs since the run's epoch (it is in the body).
    pub written_us: u64,
    pub attempts: u32,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// To be sent as soon as a socket is open.
    Ready,
    InFlight {
        since: Instant,
    },
    /// Waiting out a backoff before the next attempt.
    Holding {
        until: Instant,
    },
}

/// Why a frame goes out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    First,
    /// No answer within the ack timeout.
    AfterTimeout,
    /// After a backoff: API Gateway's crash frame, or a retryable error.
    AfterHold,
    /// It was in flight when the socket went.
    AfterReconnect,
}

#[derive(Debug, Default)]
pub struct Outbox {
    queues: BTreeMap<Uuid, VecDeque<(Outgoing, Attempt)>>,
}

impl Outbox {
    pub fn add(&mut self, conversation: Uuid, n: u32, written_us: u64) {
        self.queues.entry(conversation).or_default().push_back((
            Outgoing {
                conversation,
                n,
                written_us,
                attempts: 0,
                state: State::Ready,
            },
            Attempt::First,
        ));
    }

    /// Messages not acknowledged yet.
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// The frames to send now, at most one per conversation (its oldest
    /// message), each marked in flight from `now`.
    pub fn due(&mut self, now: Instant, ack_timeout: Duration) -> Vec<(Outgoing, Attempt)> {
        let mut due = Vec::new();
        for queue in self.queues.values_mut() {
            let Some((head, why)) = queue.front_mut() else {
                continue;
            };
            let attempt = match head.state {
                State::Ready => *why,
                State::Holding { until } if until <= now => Attempt::AfterHold,
                State::InFlight { since } if now.duration_since(since) >= ack_timeout => Attempt::AfterTimeout,
                _ => continue,
            };
            head.state = State::InFlight { since: now };
            head.attempts += 1;
            due.push((head.clone(), attempt));
        }
        due
    }

    /// An ack for message `n`: the message, unless it was acknowledged before.
    pub fn acknowledged(&mut self, n: u32) -> Option<Outgoing> {
        for queue in self.queues.values_mut() {
            if let Some(i) = queue.iter().position(|(o, _)| o.n == n) {
                return queue.remove(i).map(|(o, _)| o);
            }
        }
        None
    }

    /// API Gateway's crash frame: every frame in flight goes again after
    /// `backoff(attempts)`. The messages concerned, by `n`.
    pub fn crashed(&mut self, now: Instant, mut backoff: impl FnMut(u32) -> Duration) -> Vec<u32> {
        let mut held = Vec::new();
        for queue in self.queues.values_mut() {
            if let Some((head, _)) = queue.front_mut() {
                if matches!(head.state, State::InFlight { .. }) {
                    head.state = State::Holding {
                        until: now + backoff(head.attempts),
                    };
                    held.push(head.n);
                }
            }
        }
        held
    }

    /// A retryable refusal (`rate_limited`, `internal_error`…) of message `n`: it goes again at `until`.
    pub fn hold(&mut self, n: u32, until: Instant) -> bool {
        for queue in self.queues.values_mut() {
            if let Some((head, _)) = queue.front_mut().filter(|(o, _)| o.n == n) {
                head.state = State::Holding { until };
                return true;
            }
        }
        false
    }

    /// The socket is gone: what was in flight goes again on the next one.
    pub fn socket_lost(&mut self) {
        for queue in self.queues.values_mut() {
            if let Some((head, why)) = queue.front_mut() {
                if matches!(head.state, State::InFlight { .. }) {
                    head.state = State::Ready;
                    *why = Attempt::AfterReconnect;
                }
            }
        }
    }

    /// Gives up message `n` (a refusal that no retry can change).
    pub fn drop_message(&mut self, n: u32) -> Option<Outgoing> {
        self.acknowledged(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn sent(due: &[(Outgoing, Attempt)]) -> Vec<(u32, Attempt)> {
        due.iter().map(|(o, why)| (o.n, *why)).collect()
    }

    #[test]
    fn one_frame_in_flight_per_conversation_in_the_order_written() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut outbox = Outbox::default();
        outbox.add(a, 0, 0);
        outbox.add(a, 1, 0);
        outbox.add(b, 2, 0);
        let now = Instant::now();
        assert_eq!(
            sent(&outbox.due(now, TIMEOUT)),
            vec![(0, Attempt::First), (2, Attempt::First)]
        );
        assert!(outbox.due(now, TIMEOUT).is_empty(), "waiting for the acks");
        assert_eq!(outbox.acknowledged(0).map(|o| o.n), Some(0));
        assert_eq!(outbox.acknowledged(0), None, "a second ack finds nothing");
        assert_eq!(sent(&outbox.due(now, TIMEOUT)), vec![(1, Attempt::First)]);
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn no_ack_within_the_timeout_sends_the_same_message_again() {
        let a = Uuid::from_u128(1);
        let mut outbox = Outbox::default();
        outbox.add(a, 7, 0);
        let t0 = Instant::now();
        outbox.due(t0, TIMEOUT);
        assert!(outbox.due(t0 + TIMEOUT - Duration::from_millis(1), TIMEOUT).is_empty());
        let again = outbox.due(t0 + TIMEOUT, TIMEOUT);
        assert_eq!(sent(&again), vec![(7, Attempt::AfterTimeout)]);
        assert_eq!(again[0].0.attempts, 2);
    }

    #[test]
    fn a_crash_frame_holds_what_was_in_flight_for_a_backoff_and_fails_nothing() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut outbox = Outbox::default();
        outbox.add(a, 0, 0);
        outbox.add(b, 1, 0);
        let t0 = Instant::now();
        outbox.due(t0, TIMEOUT);
        let held = outbox.crashed(t0, |attempts| Duration::from_millis(100 * u64::from(attempts)));
        assert_eq!(held, vec![0, 1]);
        assert!(outbox.due(t0 + Duration::from_millis(99), TIMEOUT).is_empty());
        assert_eq!(
            sent(&outbox.due(t0 + Duration::from_millis(100), TIMEOUT)),
            vec![(0, Attempt::AfterHold), (1, Attempt::AfterHold)]
        );
        assert_eq!(outbox.len(), 2);
    }

    #[test]
    fn what_was_in_flight_when_the_socket_went_goes_on_the_next_one() {
        let a = Uuid::from_u128(1);
        let mut outbox = Outbox::default();
        outbox.add(a, 0, 0);
        let t0 = Instant::now();
        outbox.due(t0, TIMEOUT);
        outbox.socket_lost();
        assert_eq!(sent(&outbox.due(t0, TIMEOUT)), vec![(0, Attempt::AfterReconnect)]);
    }

    #[test]
    fn a_retryable_refusal_holds_until_the_given_time() {
        let a = Uuid::from_u128(1);
        let mut outbox = Outbox::default();
        outbox.add(a, 3, 0);
        let t0 = Instant::now();
        outbox.due(t0, TIMEOUT);
        assert!(outbox.hold(3, t0 + Duration::from_secs(1)));
        assert!(!outbox.hold(4, t0), "not waiting");
        assert!(outbox.due(t0, TIMEOUT).is_empty());
        assert_eq!(
            sent(&outbox.due(t0 + Duration::from_secs(1), TIMEOUT)),
            vec![(3, Attempt::AfterHold)]
        );
        assert_eq!(outbox.drop_message(3).map(|o| o.n), Some(3));
        assert_eq!(outbox.len(), 0);
    }
}
