//! An in-memory double of the store ports for the handlers' unit tests.
//!
//! The connection registry behaves like the table (register, forget, touch).
//! What the other calls decide — membership, sequence numbers, idempotency,
//! who hears about a write — is the database's rule and is not imitated here:
//! a test scripts the answer, written as the JSON the SQL function returns, and
//! reads back the calls the handler made.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;

#[derive(Default)]
pub struct MemoryStore {
    /// connection id → user: the registry's rows.
    connections: Mutex<BTreeMap<String, Uuid>>,
    answers: Mutex<HashMap<&'static str, VecDeque<StoreResult<Value>>>>,
    calls: Mutex<Vec<(&'static str, Value)>>,
}

impl MemoryStore {
    /// The next answer of the RPC `function`, as the database would return it.
    pub fn answer(&self, function: &'static str, answer: StoreResult<Value>) {
        self.answers
            .lock()
            .unwrap()
            .entry(function)
            .or_default()
            .push_back(answer);
    }

    /// The RPC `function` refuses with a domain error, as `public.api_error` raises it.
    pub fn refuse(&self, function: &'static str, code: &str) {
        self.answer(
            function,
            Err(StoreError::Rejected {
                code: code.into(),
                message: format!("refused: {code}"),
                retry_after_ms: None,
            }),
        );
    }

    /// A registered connection, as if `$connect` had run.
    pub fn connect(&self, connection_id: &str, user_id: Uuid) {
        self.connections.lock().unwrap().insert(connection_id.into(), user_id);
    }

    pub fn connection_ids(&self) -> Vec<String> {
        self.connections.lock().unwrap().keys().cloned().collect()
    }

    /// The arguments of every call of `function` the handler made, in order.
    pub fn calls(&self, function: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| *name == function)
            .map(|(_, args)| args.clone())
            .collect()
    }

    /// Deletes the registry's rows of these connections; how many there were.
    fn forget(&self, connection_ids: &[String]) -> usize {
        let mut connections = self.connections.lock().unwrap();
        connection_ids
            .iter()
            .filter(|id| connections.remove(*id).is_some())
            .count()
    }

    /// Records the call and gives the scripted answer; `otherwise` when none is scripted.
    fn call<T: DeserializeOwned>(
        &self,
        function: &'static str,
        args: Value,
        otherwise: impl FnOnce() -> Option<Value>,
    ) -> StoreResult<T> {
        self.calls.lock().unwrap().push((function, args));
        let scripted = self
            .answers
            .lock()
            .unwrap()
            .get_mut(function)
            .and_then(VecDeque::pop_front);
        let answer = match scripted {
            Some(answer) => answer?,
            None => otherwise().ok_or_else(|| StoreError::Unexpected(format!("{function}: no answer scripted")))?,
        };
        serde_json::from_value(answer).map_err(|e| StoreError::Unexpected(format!("{function}: {e}")))
    }
}

impl ConnectionRegistry for MemoryStore {
    async fn register_connection(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: DateTime<Utc>,
    ) -> StoreResult<Registered> {
        let args = json!({"connection_id": connection_id, "user_id": user_id, "token_exp": token_exp});
        let first = !self.connections.lock().unwrap().values().any(|u| *u == user_id);
        let registered: Registered =
            self.call("register_connection", args, || Some(json!({"first_connection": first})))?;
        self.connect(connection_id, user_id);
        Ok(registered)
    }

    async fn unregister_connection(&self, connection_id: &str) -> StoreResult<Unregistered> {
        let removed = self.connections.lock().unwrap().remove(connection_id);
        let last = removed.is_some_and(|user| !self.connections.lock().unwrap().values().any(|u| *u == user));
        self.call("unregister_connection", json!({"connection_id": connection_id}), || {
            Some(json!({"user_id": removed, "last_connection": last}))
        })
    }

    async fn touch_connection(&self, connection_id: &str) -> StoreResult<()> {
        let known = self.connections.lock().unwrap().contains_key(connection_id);
        let _: Value = self.call("touch_connection", json!({"connection_id": connection_id}), || {
            known.then(|| json!({}))
        })?;
        Ok(())
    }

    async fn remove_connections(&self, connection_ids: &[String]) -> StoreResult<Outcome<Removed>> {
        let removed = self.forget(connection_ids);
        self.call("remove_connections", json!({"connection_ids": connection_ids}), || {
            Some(json!({"result": {"removed": removed}, "deliveries": []}))
        })
    }

    async fn sweep_candidates(&self, stale_after_seconds: u32, limit: u32) -> StoreResult<SweepCandidates> {
        let args = json!({"stale_after_seconds": stale_after_seconds, "limit": limit});
        self.call("sweep_candidates", args, || None)
    }

    async fn sweep_connections(&self, gone: &[String], alive: &[String]) -> StoreResult<Outcome<Swept>> {
        let removed = self.forget(gone);
        let known = self.connections.lock().unwrap();
        let refreshed = alive.iter().filter(|id| known.contains_key(*id)).count();
        drop(known);
        self.call("sweep_connections", json!({"gone": gone, "alive": alive}), || {
            Some(json!({"result": {"removed": removed, "refreshed": refreshed}, "deliveries": []}))
        })
    }
}

impl MessageStore for MemoryStore {
    async fn send_message(&self, sender: Uuid, message: &NewMessage) -> StoreResult<Outcome<Sent>> {
        let args = json!({
            "sender": sender,
            "conversation_id": message.conversation_id,
            "client_msg_id": message.client_msg_id,
            "kind": message.kind.as_str(),
            "body": message.body,
            "attachment": message.attachment,
            "reply_to_id": message.reply_to_id,
        });
        self.call("send_message", args, || None)
    }

    async fn send_typing(&self, user_id: Uuid, conversation_id: Uuid, is_typing: bool) -> StoreResult<Outcome<Json>> {
        let args = json!({"user_id": user_id, "conversation_id": conversation_id, "is_typing": is_typing});
        self.call("send_typing", args, || None)
    }

    async fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: Option<i64>,
    ) -> StoreResult<Outcome<ReadState>> {
        let args = json!({"user_id": user_id, "conversation_id": conversation_id, "seq": seq});
        self.call("mark_read", args, || None)
    }

    async fn mark_delivered(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: i64,
    ) -> StoreResult<Outcome<DeliveredState>> {
        let args = json!({"user_id": user_id, "conversation_id": conversation_id, "seq": seq});
        self.call("mark_delivered", args, || None)
    }
}

impl crate::notify::NotificationStore for MemoryStore {
    async fn notification_targets(
        &self,
        message_id: Uuid,
        user_ids: &[Uuid],
        preview: crate::notify::PreviewMode,
    ) -> StoreResult<crate::notify::Targets> {
        let args = json!({"message_id": message_id, "user_ids": user_ids, "preview": preview.as_str()});
        self.call("notification_targets", args, || None)
    }

    async fn remove_push_subscriptions(&self, endpoints: &[String]) -> StoreResult<usize> {
        self.call("remove_push_subscriptions", json!({"endpoints": endpoints}), || {
            Some(json!(endpoints.len()))
        })
    }
}

impl HealthProbe for MemoryStore {
    async fn health_stats(&self) -> StoreResult<HealthStats> {
        self.call("health_stats", json!({}), || None)
    }
}
