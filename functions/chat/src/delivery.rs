//! Pushing the events a write caused. Every write returns them the same way
//! (`{result, deliveries}`: the envelope and its recipients, decided by the
//! database in the transaction that made the change), whichever entry point
//! made it, and [`deliver`] is the one place they are pushed.

use crate::push::{fan_out, ConnectionPusher, FanOutPolicy};
use crate::store::{ConnectionRegistry, Delivery};

/// Pushes each event to its recipients concurrently, the events in the order
/// the database listed them (so one connection sees `member.joined` seq 5
/// before seq 6). `sending_connection` is left out: the WebSocket sender gets
/// its answer (the ack) instead. Connections API Gateway no longer knows (410)
/// are forgotten.
pub async fn deliver<S, P>(store: &S, pusher: &P, deliveries: &[Delivery], sending_connection: Option<&str>)
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    let mut gone = Vec::new();
    for delivery in deliveries {
        // Collected first: a borrowing iterator held across the fan-out's awaits
        // makes the future's Send bound unprovable.
        let targets: Vec<String> = delivery
            .recipients
            .iter()
            .filter(|r| Some(r.connection_id.as_str()) != sending_connection)
            .map(|r| r.connection_id.clone())
            .collect();
        if targets.is_empty() {
            continue;
        }
        let payload = serde_json::to_vec(&delivery.event).unwrap_or_default();
        let report = fan_out(pusher, targets, &payload, FanOutPolicy::default()).await;
        tracing::info!(
            event = delivery.event.get("type").and_then(|t| t.as_str()).unwrap_or("?"),
            seq = delivery.event.get("seq").and_then(|s| s.as_i64()),
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

/// Removes connections API Gateway answered 410 for.
async fn forget_gone<S: ConnectionRegistry>(store: &S, gone: &[String]) {
    if gone.is_empty() {
        return;
    }
    if let Err(e) = store.remove_connections(gone).await {
        tracing::warn!(error = %e, count = gone.len(), "forgetting stale connections failed");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use uuid::Uuid;

    use super::*;
    use crate::push::memory::RecordingPusher;
    use crate::push::PushError;
    use crate::store::memory::MemoryStore;

    fn delivery(event: Value, connections: &[&str]) -> Delivery {
        serde_json::from_value(json!({
            "event": event,
            "recipients": connections
                .iter()
                .map(|c| json!({"user_id": Uuid::nil(), "connection_id": c}))
                .collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn each_event_reaches_its_recipients_in_order_except_the_sending_connection() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let first = json!({"type": "member.joined", "conversation_id": Uuid::nil(), "seq": 5, "data": {}});
        let second = json!({"type": "member.joined", "conversation_id": Uuid::nil(), "seq": 6, "data": {}});
        let deliveries = [
            delivery(first.clone(), &["a", "b", "me"]),
            delivery(second.clone(), &["b", "me"]),
        ];
        deliver(&store, &pusher, &deliveries, Some("me")).await;
        assert_eq!(pusher.received("a"), vec![first.clone()]);
        assert_eq!(pusher.received("b"), vec![first, second]);
        assert!(pusher.received("me").is_empty());
        assert!(store.calls("remove_connections").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_gone_connection_is_forgotten_once_and_the_others_still_get_every_event() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        for id in ["a", "stale", "b"] {
            store.connect(id, Uuid::nil());
        }
        pusher.gone("stale");
        // Throttling is retried: "b" gets the event on the third attempt.
        pusher.answer("b", [Err(PushError::Throttled), Err(PushError::Throttled)]);
        let event = json!({"type": "read", "conversation_id": Uuid::nil(), "data": {}});
        let deliveries = [
            delivery(event.clone(), &["a", "stale", "b"]),
            delivery(event.clone(), &["stale"]),
        ];
        deliver(&store, &pusher, &deliveries, None).await;
        assert_eq!(pusher.received("a"), vec![event.clone()]);
        assert_eq!(pusher.received("b"), vec![event]);
        assert_eq!(
            store.calls("remove_connections"),
            vec![json!({"connection_ids": ["stale"]})]
        );
        assert_eq!(store.connection_ids(), vec!["a", "b"]);
    }
}
