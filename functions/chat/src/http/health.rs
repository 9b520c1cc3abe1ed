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
