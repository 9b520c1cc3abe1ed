//! An in-memory [`ConnectionPusher`] for unit tests: it records every post,
//! close and probe, and answers each connection as scripted (default:
//! delivered, closed, there).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use super::{ConnectionPusher, PushError};

/// A post tried: the connection, the payload, the answer given.
type Attempt = (String, Vec<u8>, Result<(), PushError>);

#[derive(Default)]
pub struct RecordingPusher {
    answers: Mutex<HashMap<String, VecDeque<Result<(), PushError>>>>,
    /// Every attempt, in order: (connection, payload, answer given).
    attempts: Mutex<Vec<Attempt>>,
    closed: Mutex<Vec<String>>,
    /// Connections API Gateway does not know: every call about them is 410.
    gone: Mutex<HashSet<String>>,
    /// The next answers of `get_connection`, per connection; then it is there.
    probe_answers: Mutex<HashMap<String, VecDeque<Result<(), PushError>>>>,
    /// The next answers of `delete_connection`, per connection; then it closes.
    close_answers: Mutex<HashMap<String, VecDeque<Result<(), PushError>>>>,
    probed: Mutex<Vec<String>>,
    /// Posts as they start and finish: `start:<connection>`, `done:<connection>`.
    timeline: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl RecordingPusher {
    /// The next answers `connection` gives, in order; then it accepts again.
    pub fn answer(&self, connection: &str, answers: impl IntoIterator<Item = Result<(), PushError>>) {
        self.answers
            .lock()
            .unwrap()
            .entry(connection.into())
            .or_default()
            .extend(answers);
    }

    /// A connection that is gone: API Gateway answers 410 for it to every
    /// post, close and probe.
    pub fn gone(&self, connection: &str) {
        self.gone.lock().unwrap().insert(connection.into());
    }

    /// The next answers `get_connection` gives about `connection`, in order;
    /// then it is there again.
    pub fn answer_probe(&self, connection: &str, answers: impl IntoIterator<Item = Result<(), PushError>>) {
        self.probe_answers
            .lock()
            .unwrap()
            .entry(connection.into())
            .or_default()
            .extend(answers);
    }

    /// The next answers `delete_connection` gives for `connection`, in order;
    /// then it closes it.
    pub fn answer_close(&self, connection: &str, answers: impl IntoIterator<Item = Result<(), PushError>>) {
        self.close_answers
            .lock()
            .unwrap()
            .entry(connection.into())
            .or_default()
            .extend(answers);
    }

    fn is_gone(&self, connection: &str) -> bool {
        self.gone.lock().unwrap().contains(connection)
    }

    /// The events `connection` received (accepted posts), parsed as JSON.
    pub fn received(&self, connection: &str) -> Vec<Value> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _, answer)| id == connection && answer.is_ok())
            .map(|(_, payload, _)| serde_json::from_slice(payload).expect("a pushed payload is JSON"))
            .collect()
    }

    /// Every connection that received anything, sorted, with how many events.
    pub fn receivers(&self) -> Vec<(String, usize)> {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for (id, _, answer) in self.attempts.lock().unwrap().iter() {
            if answer.is_ok() {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Every connection a post was attempted to, each once, sorted.
    pub fn posted_to(&self) -> Vec<String> {
        let ids: std::collections::BTreeSet<String> = self
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _, _)| id.clone())
            .collect();
        ids.into_iter().collect()
    }

    /// How many posts were attempted, retries included.
    pub fn attempts(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }

    /// The connections closed (DeleteConnection accepted), in order.
    pub fn closed(&self) -> Vec<String> {
        self.closed.lock().unwrap().clone()
    }

    /// The connections asked about (`get_connection`), in order.
    pub fn probed(&self) -> Vec<String> {
        self.probed.lock().unwrap().clone()
    }

    /// Posts as they started and finished, in order: `start:<connection>`,
    /// `done:<connection>`.
    pub fn timeline(&self) -> Vec<String> {
        self.timeline.lock().unwrap().clone()
    }

    /// The most posts ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }
}

impl ConnectionPusher for RecordingPusher {
    async fn post_to_connection(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        self.timeline.lock().unwrap().push(format!("start:{connection_id}"));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        // Lets other posts of a fan-out start, so the bound on them is observable.
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let scripted = self
            .answers
            .lock()
            .unwrap()
            .get_mut(connection_id)
            .and_then(VecDeque::pop_front);
        let answer = match scripted {
            _ if self.is_gone(connection_id) => Err(PushError::Gone),
            Some(answer) => answer,
            None => Ok(()),
        };
        self.attempts
            .lock()
            .unwrap()
            .push((connection_id.into(), payload.to_vec(), answer.clone()));
        self.timeline.lock().unwrap().push(format!("done:{connection_id}"));
        answer
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), PushError> {
        if self.is_gone(connection_id) {
            return Err(PushError::Gone);
        }
        let scripted = self
            .close_answers
            .lock()
            .unwrap()
            .get_mut(connection_id)
            .and_then(VecDeque::pop_front);
        if let Some(Err(e)) = scripted {
            return Err(e);
        }
        self.closed.lock().unwrap().push(connection_id.into());
        // A closed connection is gone for the Management API at once.
        self.gone(connection_id);
        Ok(())
    }

    async fn get_connection(&self, connection_id: &str) -> Result<(), PushError> {
        self.probed.lock().unwrap().push(connection_id.into());
        if self.is_gone(connection_id) {
            return Err(PushError::Gone);
        }
        self.probe_answers
            .lock()
            .unwrap()
            .get_mut(connection_id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()))
    }
}
