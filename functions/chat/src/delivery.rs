//! Pushing the events a write caused. Every write returns them the same way
//! (`{result, deliveries}`: the envelope and its recipients, decided by the
//! database in the transaction that made the change), whichever entry point
//! made it, and [`deliver`] is the one place they are pushed.
//!
//! Delivered or told: a durable event (one with a `seq`) that cannot be given
//! to a connection after the retry budget, for any reason but 410 (throttled
//! throughout, an error, a timeout, too large), closes that connection
//! (DeleteConnection): its client sees the socket close, reconnects and
//! replays from its last seq, instead of missing the event without knowing.
//! Transient events (`typing`, `presence`, `read`) are not worth a close.
//!
//! Connections API Gateway no longer knows (410) are forgotten. When one was
//! a user's last, forgetting it returns what that tells the others (`presence`
//! offline, `typing` stopped), which is pushed in turn; a 410 met while pushing
//! that is forgotten too, for a bounded number of rounds.

use std::collections::BTreeSet;

use crate::push::{close_connections, fan_out, ConnectionPusher, FanOutPolicy, PushError};
use crate::store::{ConnectionRegistry, Delivery};

/// Rounds of pushing: the deliveries given, then what forgetting the
/// connections found gone tells, and so on. Each further round needs a user's
/// last connection to go unnoticed while another user's removal is told, so
/// three is plenty; what a removal in the last round tells is not pushed (it
/// is transient, and `GET /v1/presence` answers it).
const MAX_ROUNDS: usize = 3;

/// Pushes each event to its recipients concurrently, the events in the order
/// the database listed them (so one connection sees `member.joined` seq 5
/// before seq 6). `sending_connection` is left out: the WebSocket sender gets
/// its answer (the ack) instead.
pub async fn deliver<S, P>(store: &S, pusher: &P, deliveries: &[Delivery], sending_connection: Option<&str>)
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    let mut gone = push(pusher, deliveries, sending_connection).await;
    let mut rounds = 1;
    while !gone.is_empty() {
        let told = match store.remove_connections(&gone).await {
            Ok(removed) => {
                tracing::info!(
                    gone = gone.len(),
                    removed = removed.result.removed,
                    "gone connections forgotten"
                );
                removed.deliveries
            }
            Err(e) => {
                tracing::warn!(error = %e, count = gone.len(), "forgetting gone connections failed");
                return;
            }
        };
        if told.is_empty() {
            return;
        }
        if rounds == MAX_ROUNDS {
            tracing::warn!(
                events = told.len(),
                "not pushed: what forgetting gone connections tells, after {MAX_ROUNDS} rounds"
            );
            return;
        }
        gone = push(pusher, &told, None).await;
        rounds += 1;
    }
}

/// One round: every delivery pushed; a connection that failed a durable event
/// closed. Returns the connections found gone (410), each once.
async fn push<P: ConnectionPusher>(
    pusher: &P,
    deliveries: &[Delivery],
    sending_connection: Option<&str>,
) -> Vec<String> {
    let mut gone = BTreeSet::new();
    let mut closed = BTreeSet::new();
    for delivery in deliveries {
        // Collected first: a borrowing iterator held across the fan-out's awaits
        // makes the future's Send bound unprovable. A connection found gone or
        // closed for an earlier event is not posted to again.
        let targets: Vec<String> = delivery
            .recipients
            .iter()
            .map(|r| &r.connection_id)
            .filter(|id| Some(id.as_str()) != sending_connection && !gone.contains(*id) && !closed.contains(*id))
            .cloned()
            .collect();
        if targets.is_empty() {
            continue;
        }
        let payload = serde_json::to_vec(&delivery.event).unwrap_or_default();
        let report = fan_out(pusher, targets, &payload, FanOutPolicy::default()).await;
        let seq = delivery.event.get("seq").and_then(|s| s.as_i64());
        tracing::info!(
            event = delivery.event.get("type").and_then(|t| t.as_str()).unwrap_or("?"),
            seq,
            delivered = report.delivered,
            gone = report.gone.len(),
            failed = report.failed.len(),
            "event delivered"
        );
        gone.extend(report.gone);
        if seq.is_some() && !report.failed.is_empty() {
            for (id, result) in close_connections(pusher, report.failed, FanOutPolicy::default()).await {
                match result {
                    Ok(()) => {
                        tracing::warn!(connection_id = %id, seq, "closed a connection that missed a durable event");
                        closed.insert(id);
                    }
                    Err(PushError::Gone) => {
                        gone.insert(id);
                    }
                    Err(e) => {
                        tracing::error!(connection_id = %id, seq, error = %e, "a connection missed a durable event and could not be closed");
                    }
                }
            }
        }
    }
    gone.into_iter().collect()
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
        serde_json::from_value(told(event, connections)).unwrap()
    }

    /// A delivery as the database returns it.
    fn told(event: Value, connections: &[&str]) -> Value {
        json!({
            "event": event,
            "recipients": connections
                .iter()
                .map(|c| json!({"user_id": Uuid::nil(), "connection_id": c}))
                .collect::<Vec<_>>(),
        })
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

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_cannot_be_given_a_durable_event_is_closed() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let policy = FanOutPolicy::default();
        pusher.answer("error", [Err(PushError::Failed("HTTP 500".into()))]);
        pusher.answer("large", [Err(PushError::TooLarge)]);
        // Throttled on every attempt of the retry budget.
        pusher.answer(
            "throttled",
            vec![Err(PushError::Throttled); policy.max_retries as usize + 1],
        );
        let created = json!({"type": "message.created", "conversation_id": Uuid::nil(), "seq": 7, "data": {}});
        let updated = json!({"type": "message.updated", "conversation_id": Uuid::nil(), "seq": 8, "data": {}});
        let deliveries = [
            delivery(created.clone(), &["ok", "error", "large", "throttled"]),
            delivery(updated.clone(), &["ok", "error", "large", "throttled"]),
        ];
        deliver(&store, &pusher, &deliveries, None).await;
        let mut closed = pusher.closed();
        closed.sort();
        assert_eq!(closed, vec!["error", "large", "throttled"]);
        assert_eq!(pusher.received("ok"), vec![created, updated]);
        // Closed after seq 7: not posted seq 8, which its client replays.
        assert_eq!(pusher.attempts(), 4 + policy.max_retries as usize + 1);
        assert!(
            store.calls("remove_connections").is_empty(),
            "a closed connection goes by its $disconnect"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_event_that_cannot_be_given_closes_nothing() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        for kind in ["typing", "presence", "read"] {
            pusher.answer("flaky", [Err(PushError::Failed("HTTP 500".into()))]);
            let event = json!({"type": kind, "data": {}});
            deliver(&store, &pusher, &[delivery(event, &["flaky"])], None).await;
        }
        assert!(pusher.closed().is_empty());
        assert!(pusher.received("flaky").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_gone_when_it_is_being_closed_is_forgotten() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.connect("vanishing", Uuid::nil());
        // The post times out; by the close, API Gateway no longer knows it.
        pusher.answer("vanishing", [Err(PushError::Failed("timeout".into()))]);
        pusher.answer_close("vanishing", [Err(PushError::Gone)]);
        let event = json!({"type": "member.left", "conversation_id": Uuid::nil(), "seq": 3, "data": {}});
        deliver(&store, &pusher, &[delivery(event, &["vanishing"])], None).await;
        assert!(pusher.closed().is_empty());
        assert_eq!(
            store.calls("remove_connections"),
            vec![json!({"connection_ids": ["vanishing"]})]
        );
        assert!(store.connection_ids().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn what_forgetting_a_last_connection_tells_is_pushed_and_its_own_410s_forgotten_in_bounded_rounds() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let offline = |user: &str| json!({"type": "presence", "data": {"user": user, "online": false}});
        // alice-1 is gone: forgetting it tells bob-1 (gone too) and carol-1 that
        // alice is offline; forgetting bob-1 tells dave-1 (gone) of bob; and so
        // on, each removal's news reaching one more ghost.
        for ghost in ["alice-1", "bob-1", "dave-1", "erin-1"] {
            pusher.gone(ghost);
        }
        store.answer(
            "remove_connections",
            Ok(json!({"result": {"removed": 1},
                      "deliveries": [told(offline("alice"), &["bob-1", "carol-1"])]})),
        );
        store.answer(
            "remove_connections",
            Ok(json!({"result": {"removed": 1}, "deliveries": [told(offline("bob"), &["dave-1"])]})),
        );
        store.answer(
            "remove_connections",
            Ok(json!({"result": {"removed": 1}, "deliveries": [told(offline("dave"), &["erin-1"])]})),
        );
        let event = json!({"type": "message.created", "conversation_id": Uuid::nil(), "seq": 2, "data": {}});
        deliver(&store, &pusher, &[delivery(event, &["alice-1"])], None).await;
        assert_eq!(pusher.received("carol-1"), vec![offline("alice")]);
        let removed: Vec<Value> = store.calls("remove_connections");
        assert_eq!(
            removed,
            vec![
                json!({"connection_ids": ["alice-1"]}),
                json!({"connection_ids": ["bob-1"]}),
                json!({"connection_ids": ["dave-1"]}),
            ]
        );
        // The third removal's news is not pushed: erin-1 is never posted to.
        assert!(!pusher.posted_to().contains(&"erin-1".to_string()));
        assert!(pusher.closed().is_empty(), "presence is not worth a close");
    }
}
