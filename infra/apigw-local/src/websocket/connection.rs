//! One open socket: routes client messages to functions (concurrently, as
//! API Gateway gives no ordering), delivers Management API posts, enforces
//! the limits, and runs `$disconnect` exactly once at the end.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use serde_json::json;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite;

use super::events::{self, MessageBody};
use super::registry::{Command, ConnectionHandle, ConnectionInfo};
use super::WsApi;
use crate::ids;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After an oversized frame the stream is unreadable; give the client a
/// moment to read the close frame before the TCP connection goes.
const ABORT_LINGER: Duration = Duration::from_millis(200);

/// Decrements the live-connection count however the task ends.
struct LiveGuard(Arc<WsApi>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

pub(super) async fn run(api: Arc<WsApi>, info: Arc<ConnectionInfo>, mut socket: WebSocket) {
    api.live.send_modify(|n| *n += 1);
    let _live = LiveGuard(Arc::clone(&api));
    let (handle, mut commands) = ConnectionHandle::new(Arc::clone(&info));
    api.registry.insert(handle.clone());
    tracing::info!(connection_id = %info.id, "websocket connected");

    let (code, reason) = if api.is_closing() {
        close_by_server(&api, &info, &mut socket, 1001, "Going away").await
    } else {
        serve(&api, &handle, &mut socket, &mut commands).await
    };
    api.registry.remove(&info.id);
    drop(socket);
    disconnect(api, info, code, reason).await;
}

async fn serve(
    api: &Arc<WsApi>,
    handle: &ConnectionHandle,
    socket: &mut WebSocket,
    commands: &mut tokio::sync::mpsc::UnboundedReceiver<Command>,
) -> (u16, String) {
    let info = &handle.info;
    let limits = api.limits;
    let lifetime_end = Instant::now() + limits.max_lifetime;
    let mut idle_end = Instant::now() + limits.idle_timeout;
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let message = match frame {
                    Some(Ok(message)) => message,
                    Some(Err(error)) if is_too_big(&error) => {
                        tracing::info!(connection_id = %info.id, %error, "frame or message over the limit");
                        let closed = close_by_server(api, info, socket, 1009, "Message too big").await;
                        tokio::time::sleep(ABORT_LINGER).await;
                        return closed;
                    }
                    Some(Err(_)) | None => return (1006, "Connection closed abnormally".into()),
                };
                if !matches!(message, Message::Close(_)) {
                    idle_end = Instant::now() + limits.idle_timeout;
                    info.touch();
                }
                match message {
                    Message::Text(text) => {
                        let body = MessageBody { body: text.to_string(), is_base64_encoded: false };
                        dispatch(api, handle, Some(text.as_str()), body);
                    }
                    Message::Binary(data) => {
                        let body = MessageBody { body: STANDARD.encode(&data), is_base64_encoded: true };
                        dispatch(api, handle, None, body);
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(frame) => {
                        api.registry.remove(&info.id);
                        // Reading on sends tungstenite's queued close reply.
                        let _ = timeout(CLOSE_GRACE, async { while socket.recv().await.is_some() {} }).await;
                        return match frame {
                            Some(frame) => (frame.code, frame.reason.to_string()),
                            None => (1005, "Client-side close frame status not set".into()),
                        };
                    }
                }
            }
            Some(command) = commands.recv() => match command {
                Command::Send(message) => {
                    // A failed write shows up as a read error next.
                    let _ = socket.send(message).await;
                }
                Command::Close { code, reason } => return close_by_server(api, info, socket, code, reason).await,
                // The caller drops the socket: no close frame.
                Command::Abort => return (1006, "Connection closed abnormally".into()),
            },
            _ = sleep_until(idle_end) => return close_by_server(api, info, socket, 1001, "Going away").await,
            _ = sleep_until(lifetime_end) => return close_by_server(api, info, socket, 1001, "Going away").await,
        }
    }
}

fn is_too_big(error: &axum::Error) -> bool {
    matches!(
        error.source().and_then(|e| e.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

async fn close_by_server(
    api: &WsApi,
    info: &ConnectionInfo,
    socket: &mut WebSocket,
    code: u16,
    reason: &'static str,
) -> (u16, String) {
    // From now on the Management API answers 410 for this connection.
    api.registry.remove(&info.id);
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = timeout(CLOSE_GRACE, async { while let Some(Ok(_)) = socket.recv().await {} }).await;
    }
    (code, reason.to_string())
}

/// Routes one client message and invokes its function in the background.
fn dispatch(api: &Arc<WsApi>, handle: &ConnectionHandle, text: Option<&str>, body: MessageBody) {
    let request_id = ids::short_id();
    let info = &handle.info;
    let route = api
        .selector
        .select(text)
        .and_then(|key| api.route(&key).map(|route| (key, route.function.clone())));
    let Some((route_key, function)) = route else {
        let reply = json!({"message": "Forbidden", "connectionId": info.id, "requestId": request_id});
        handle.send(Message::Text(reply.to_string().into()));
        return;
    };
    if !api.throttle.admit(&route_key) {
        // What API Gateway sends the client when the stage throttles a route.
        let reply = json!({"message": "Too Many Requests", "connectionId": info.id, "requestId": request_id});
        handle.send(Message::Text(reply.to_string().into()));
        return;
    }
    let (api, handle) = (Arc::clone(api), handle.clone());
    tokio::spawn(async move {
        let info = &handle.info;
        let event = events::message_event(&api.identity(), info, &route_key, &body, &request_id, Utc::now());
        let payload = serde_json::to_vec(&event).expect("events serialize");
        if let Err(error) = api.functions.invoke(&function, payload).await {
            tracing::warn!(connection_id = %info.id, route_key, %function, %error, "route integration failed");
            let reply = json!({"message": "Internal server error", "connectionId": info.id, "requestId": request_id});
            handle.send(Message::Text(reply.to_string().into()));
        }
    });
}

/// Runs `$disconnect` for a connection that is gone, unless fault
/// injection drops it (API Gateway delivers `$disconnect` on a best-effort basis).
pub(super) async fn disconnect(api: Arc<WsApi>, info: Arc<ConnectionInfo>, code: u16, reason: String) {
    tracing::info!(connection_id = %info.id, code, %reason, "websocket disconnected");
    let Some(route) = api.route("$disconnect") else {
        return;
    };
    if api.functions.faults().drop_disconnect() {
        tracing::info!(connection_id = %info.id, "fault injected: $disconnect not invoked");
        return;
    }
    let event = events::disconnect_event(&api.identity(), &info, code, &reason, &ids::short_id(), Utc::now());
    let payload = serde_json::to_vec(&event).expect("events serialize");
    if let Err(error) = api.functions.invoke(&route.function, payload).await {
        tracing::warn!(connection_id = %info.id, function = %route.function, %error, "$disconnect integration failed");
    }
}
