//! Open connections by id: what the Management API and the socket tasks share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Message;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::ids;

/// What every event of one connection repeats.
#[derive(Debug)]
pub(crate) struct ConnectionInfo {
    pub id: String,
    pub connected_at: DateTime<Utc>,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The `Host` the client connected to; `domainName` in events.
    pub domain_name: String,
    /// `requestContext.authorizer` from the `$connect` authorizer, if any.
    pub authorizer: Option<Value>,
    last_active_at: Mutex<DateTime<Utc>>,
}

impl ConnectionInfo {
    pub fn new(
        id: String,
        connected_at: DateTime<Utc>,
        source_ip: String,
        user_agent: Option<String>,
        domain_name: String,
        authorizer: Option<Value>,
    ) -> Self {
        ConnectionInfo {
            id,
            connected_at,
            source_ip,
            user_agent,
            domain_name,
            authorizer,
            last_active_at: Mutex::new(connected_at),
        }
    }

    pub fn connected_at_ms(&self) -> i64 {
        self.connected_at.timestamp_millis()
    }

    pub fn last_active_at(&self) -> DateTime<Utc> {
        *self.last_active_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn touch(&self) {
        *self.last_active_at.lock().unwrap_or_else(|p| p.into_inner()) = Utc::now();
    }
}

/// Asks a connection's task to do something with its socket.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Message),
    Close {
        code: u16,
        reason: &'static str,
    },
    /// Drop the connection without a close frame, as when the client vanished.
    Abort,
}

#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    pub info: Arc<ConnectionInfo>,
    commands: mpsc::UnboundedSender<Command>,
}

impl ConnectionHandle {
    pub fn new(info: Arc<ConnectionInfo>) -> (Self, mpsc::UnboundedReceiver<Command>) {
        let (commands, receiver) = mpsc::unbounded_channel();
        (ConnectionHandle { info, commands }, receiver)
    }

    /// `false` when the connection's task has already ended.
    pub fn send(&self, message: Message) -> bool {
        self.commands.send(Command::Send(message)).is_ok()
    }

    pub fn close(&self, code: u16, reason: &'static str) -> bool {
        self.commands.send(Command::Close { code, reason }).is_ok()
    }

    pub fn abort(&self) -> bool {
        self.commands.send(Command::Abort).is_ok()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    connections: Mutex<HashMap<String, ConnectionHandle>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ConnectionHandle>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh id no open connection has.
    pub fn new_id(&self) -> String {
        let connections = self.lock();
        loop {
            let id = ids::short_id();
            if !connections.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn insert(&self, handle: ConnectionHandle) {
        self.lock().insert(handle.info.id.clone(), handle);
    }

    pub fn get(&self, id: &str) -> Option<ConnectionHandle> {
        self.lock().get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<ConnectionHandle> {
        self.lock().remove(id)
    }

    pub fn all(&self) -> Vec<ConnectionHandle> {
        self.lock().values().cloned().collect()
    }
}
