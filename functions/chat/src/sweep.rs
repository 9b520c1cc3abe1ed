//! The connection sweep (`sweep-connections`, on a schedule: every minute).
//!
//! API Gateway delivers `$disconnect` on a best-effort basis, so a connection
//! row can outlive its socket: its user stays online to every contact, health
//! counts it, it counts toward the user's connection cap, and every fan-out
//! posts to it. A push to it is answered 410 and forgets it, but only when
//! something is pushed to it. The sweep finds the rest:
//!
//! - connections whose token has expired: they get nothing and count for
//!   nothing, but their socket stays open until its next frame; the sweep
//!   closes the socket (DeleteConnection) and forgets the row;
//! - live connections not seen (connect, ping, an earlier sweep) for the
//!   threshold (`STALE_CONNECTION_SECONDS`): it asks API Gateway
//!   (`GET @connections/{id}`); 410 forgets the row, 200 marks it seen now.
//!
//! Forgetting a user's last live connection tells the contacts the user is
//! offline, and the conversations where the user was typing that the typing
//! stopped, as `$disconnect` would have; those events are pushed like any
//! write's.

use serde::Serialize;

use crate::config::Config;
use crate::delivery::deliver;
use crate::push::{close_connections, probe_connections, ConnectionPusher, FanOutPolicy, PushError};
use crate::store::{ConnectionRegistry, StoreError};

/// Connections of each kind (expired, stale) one run takes at most, the
/// longest in doubt first; more wait for the next run. At the fan-out's 32
/// calls in flight this is a few seconds of Management API calls.
pub const SWEEP_BATCH: u32 = 1000;

/// What one run did (the function's answer, and its log line).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Connections whose token had expired: closed and forgotten.
    pub expired: usize,
    /// Live connections not seen for the threshold, asked about.
    pub probed: usize,
    /// Of those, the ones API Gateway no longer knows (410).
    pub gone: usize,
    /// Of those, the ones it still knows (200).
    pub alive: usize,
    /// Of those, the ones it could not say anything about (left for the next run).
    pub unanswered: usize,
    /// Rows forgotten (connections past their `$connect` only).
    pub removed: usize,
    /// Rows marked seen now.
    pub refreshed: usize,
    /// Users told offline (last connection forgotten).
    pub went_offline: usize,
}

/// One run, as the scheduled function makes it.
pub async fn run<S, P>(store: &S, pusher: &P, config: &Config) -> Result<SweepReport, String>
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    let threshold = config
        .stale_connection_seconds
        .ok_or("STALE_CONNECTION_SECONDS is required by the sweep (template parameter StaleConnectionSeconds)")?;
    let report = sweep(store, pusher, threshold).await.map_err(|e| {
        tracing::error!(error = %e, "sweep failed");
        e.to_string()
    })?;
    tracing::info!(?report, "connections swept");
    Ok(report)
}

/// Finds the connections in doubt, settles each with API Gateway, forgets
/// the gone ones and pushes what that tells.
pub async fn sweep<S, P>(store: &S, pusher: &P, stale_after_seconds: u32) -> Result<SweepReport, StoreError>
where
    S: ConnectionRegistry,
    P: ConnectionPusher,
{
    let candidates = store.sweep_candidates(stale_after_seconds, SWEEP_BATCH).await?;
    let policy = FanOutPolicy::default();
    let mut report = SweepReport {
        expired: candidates.expired.len(),
        probed: candidates.stale.len(),
        ..SweepReport::default()
    };
    let (closes, probes) = tokio::join!(
        close_connections(pusher, candidates.expired, policy),
        probe_connections(pusher, candidates.stale, policy),
    );

    let mut gone = Vec::new();
    let mut alive = Vec::new();
    for (id, closed) in closes {
        // Forgotten whatever the close answered: an expired connection is
        // dead to the registry, and if its socket is still open, its next
        // frame is answered token_expired and closes it.
        match closed {
            Ok(()) | Err(PushError::Gone) => {}
            Err(e) => tracing::warn!(connection_id = %id, error = %e, "closing an expired connection failed"),
        }
        gone.push(id);
    }
    for (id, probed) in probes {
        match probed {
            Ok(()) => alive.push(id),
            Err(PushError::Gone) => {
                report.gone += 1;
                gone.push(id);
            }
            Err(e) => {
                tracing::warn!(connection_id = %id, error = %e, "asking about a connection failed; next run");
                report.unanswered += 1;
            }
        }
    }
    report.alive = alive.len();
    gone.sort();
    alive.sort();

    let swept = store.sweep_connections(&gone, &alive).await?;
    report.removed = swept.result.removed;
    report.refreshed = swept.result.refreshed;
    report.went_offline = swept
        .deliveries
        .iter()
        .filter(|d| d.event.get("type").and_then(|t| t.as_str()) == Some("presence"))
        .count();
    deliver(store, pusher, &swept.deliveries, None).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::push::memory::RecordingPusher;
    use crate::store::memory::MemoryStore;
    use crate::testing::{delivery, ALICE, BOB};

    fn presence_offline(user: Uuid) -> serde_json::Value {
        json!({"type": "presence", "data": {"user_id": user, "online": false}})
    }

    #[tokio::test(start_paused = true)]
    async fn expired_connections_are_closed_and_stale_ones_asked_about_and_the_gone_forgotten() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        for id in ["expired-1", "expired-2", "ghost-1", "quiet-1", "flaky-1", "bob-1"] {
            store.connect(id, ALICE);
        }
        store.answer(
            "sweep_candidates",
            Ok(json!({"expired": ["expired-1", "expired-2"], "stale": ["ghost-1", "quiet-1", "flaky-1"]})),
        );
        // expired-2's socket is already gone; ghost-1's $disconnect never came;
        // quiet-1 is open but silent; API Gateway fails to answer about flaky-1.
        pusher.gone("expired-2");
        pusher.gone("ghost-1");
        pusher.answer_probe("flaky-1", vec![Err(PushError::Failed("HTTP 500".into()))]);
        let offline = presence_offline(ALICE);
        store.answer(
            "sweep_connections",
            Ok(json!({"result": {"removed": 3, "refreshed": 1},
                      "deliveries": [delivery(offline.clone(), &[(BOB, "bob-1")])]})),
        );

        let report = sweep(&store, &pusher, 360).await.unwrap();

        assert_eq!(
            store.calls("sweep_candidates"),
            vec![json!({"stale_after_seconds": 360, "limit": SWEEP_BATCH})]
        );
        assert_eq!(pusher.closed(), vec!["expired-1"]);
        let mut probed = pusher.probed();
        probed.sort();
        assert_eq!(probed, vec!["flaky-1", "ghost-1", "quiet-1"]);
        assert_eq!(
            store.calls("sweep_connections"),
            vec![json!({"gone": ["expired-1", "expired-2", "ghost-1"], "alive": ["quiet-1"]})]
        );
        // What forgetting alice's last connection tells is pushed.
        assert_eq!(pusher.received("bob-1"), vec![offline]);
        assert_eq!(
            report,
            SweepReport {
                expired: 2,
                probed: 3,
                gone: 1,
                alive: 1,
                unanswered: 1,
                removed: 3,
                refreshed: 1,
                went_offline: 1,
            }
        );
        // Nothing is ever posted to the connections in doubt themselves.
        assert_eq!(pusher.posted_to(), vec!["bob-1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_registry_costs_two_calls_and_no_management_api_call() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.answer("sweep_candidates", Ok(json!({"expired": [], "stale": []})));
        let report = sweep(&store, &pusher, 360).await.unwrap();
        assert_eq!(report, SweepReport::default());
        assert_eq!(store.calls("sweep_connections"), vec![json!({"gone": [], "alive": []})]);
        assert!(pusher.closed().is_empty() && pusher.probed().is_empty() && pusher.attempts() == 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_database_failure_fails_the_run_and_a_missing_threshold_is_named() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.answer("sweep_candidates", Err(StoreError::Unavailable("down".into())));
        assert!(sweep(&store, &pusher, 360).await.is_err());
        assert!(store.calls("sweep_connections").is_empty());

        let config = Config::from(&[("SUPABASE_URL", "https://x.supabase.co"), ("SUPABASE_ANON_KEY", "anon")]).unwrap();
        let refused = run(&store, &pusher, &config).await.unwrap_err();
        assert!(refused.contains("STALE_CONNECTION_SECONDS"), "{refused}");
        assert_eq!(
            store.calls("sweep_candidates").len(),
            1,
            "nothing is asked without a threshold"
        );
    }
}
