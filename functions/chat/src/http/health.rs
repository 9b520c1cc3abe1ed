use lambda_http::{Body, Response};
use serde_json::json;

use super::json_response;
use crate::store::HealthProbe;

/// `GET /v1/health` — public. 200 when the database answers, 503 when it does not,
/// so load balancers and uptime checks can use it as is.
pub async fn health<H: HealthProbe>(probe: &H) -> Response<Body> {
    let version = env!("CARGO_PKG_VERSION");
    match probe.health_stats().await {
        Ok(stats) => json_response(
            200,
            &json!({
                "status": "ok",
                "database": "reachable",
                "version": version,
                "live_connections": stats.live_connections,
                "users_online": stats.users_online,
                "active_conversations": stats.active_conversations,
            }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            json_response(
                503,
                &json!({"status": "degraded", "database": "unreachable", "version": version}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::StoreError;

    #[tokio::test]
    async fn health_is_200_with_the_counts_and_503_when_the_database_does_not_answer() {
        let store = MemoryStore::default();
        store.answer(
            "health_stats",
            Ok(json!({"live_connections": 3, "users_online": 2, "active_conversations": 1})),
        );
        let up = health(&store).await;
        assert_eq!(up.status(), 200);
        let body: Value = serde_json::from_slice(up.body().as_ref()).unwrap();
        assert_eq!(
            (body["status"].clone(), body["live_connections"].clone()),
            (json!("ok"), json!(3))
        );

        store.answer(
            "health_stats",
            Err(StoreError::Unavailable("connection refused".into())),
        );
        let down = health(&store).await;
        assert_eq!(down.status(), 503);
        let body: Value = serde_json::from_slice(down.body().as_ref()).unwrap();
        assert_eq!(
            body,
            json!({"status": "degraded", "database": "unreachable", "version": env!("CARGO_PKG_VERSION")})
        );
    }
}
