//! An in-memory [`ConnectionPusher`] for unit tests: it records every post and
//! close, and answers each connection as scripted (default: delivered).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use super::{ConnectionPusher, PushError};

#[derive(Default)]
pub struct RecordingPusher {
    answers: Mutex<HashMap<String, VecDeque<Result<(), PushError>>>>,
    /// Every attempt, in order: (connection, payload, answer given).
    attempts: Mutex<Vec<(String, Vec<u8>, Result<(), PushError>)>>,
    closed: Mutex<Vec<String>>,
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

    /// A connection that is gone (API Gateway answers 410 for it, every time).
    pub fn gone(&self, connection: &str) {
        self.answer(connection, std::iter::repeat_n(Err(PushError::Gone), 16));
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

    /// How many posts were attempted, retries included.
    pub fn attempts(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }

    pub fn closed(&self) -> Vec<String> {
        self.closed.lock().unwrap().clone()
    }

    /// The most posts ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }
}

impl ConnectionPusher for RecordingPusher {
    async fn post_to_connection(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        // Lets other posts of a fan-out start, so the bound on them is observable.
        tokio::task::yield_now().await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .unwrap()
            .get_mut(connection_id)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(()));
        self.attempts
            .lock()
            .unwrap()
            .push((connection_id.into(), payload.to_vec(), answer.clone()));
        answer
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), PushError> {
        self.closed.lock().unwrap().push(connection_id.into());
        Ok(())
    }
}
