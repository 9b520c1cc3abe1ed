//! Delivering a stored message to everyone who should see it, whichever entry
//! point stored it (WebSocket `sendMessage` or REST `POST …/messages`).

use crate::events::ServerEvent;
use crate::push::{fan_out, ConnectionPusher, FanOutPolicy};
use crate::store::{ConnectionRegistry, Delivery, SendOutcome};

/// Pushes `message.created` to every live connection of every participant, the
/// sender's other devices included, except `sending_connection` (it gets the
/// ack). A duplicate send pushes nothing: the first one already did.
pub async fn deliver_message<S, P>(store: &S, pusher: &P, outcome: &SendOutcome, sending_connection: Option<&str>)
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    if outcome.duplicate {
        return;
    }
    let payload = ServerEvent::message_created(&outcome.message).to_bytes();
    // Collected first: a borrowing iterator held across the fan-out's awaits
    // makes the future's Send bound unprovable.
    let targets: Vec<String> = outcome
        .recipients
        .iter()
        .filter(|r| Some(r.connection_id.as_str()) != sending_connection)
        .map(|r| r.connection_id.clone())
        .collect();
    let report = fan_out(pusher, targets, &payload, FanOutPolicy::default()).await;
    tracing::info!(
        message_id = %outcome.message.id,
        seq = outcome.message.seq,
        delivered = report.delivered,
        gone = report.gone.len(),
        failed = report.failed,
        "message delivered"
    );
    forget_gone(store, &report.gone).await;
}

/// Removes connections API Gateway answered 410 for.
pub async fn forget_gone<S: ConnectionRegistry>(store: &S, gone: &[String]) {
    if gone.is_empty() {
        return;
    }
    if let Err(e) = store.remove_connections(gone).await {
        tracing::warn!(error = %e, count = gone.len(), "forgetting stale connections failed");
    }
}

/// Pushes the events a write caused, in the order the database listed them
/// (so one connection sees `member.joined` seq 5 before seq 6), each to its
/// recipients concurrently.
pub async fn deliver_all<S, P>(store: &S, pusher: &P, deliveries: &[Delivery])
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    let mut gone = Vec::new();
    for delivery in deliveries {
        if delivery.recipients.is_empty() {
            continue;
        }
        let payload = serde_json::to_vec(&delivery.event).unwrap_or_default();
        let targets: Vec<String> = delivery.recipients.iter().map(|r| r.connection_id.clone()).collect();
        let report = fan_out(pusher, targets, &payload, FanOutPolicy::default()).await;
        tracing::info!(
            event = delivery.event.get("type").and_then(|t| t.as_str()).unwrap_or("?"),
            delivered = report.delivered,
            gone = report.gone.len(),
            failed = report.failed,
            "event delivered"
        );
        gone.extend(report.gone);
    }
    gone.sort();
    gone.dedup();
    forget_gone(store, &gone).await;
}
