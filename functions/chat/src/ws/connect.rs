//! `$connect` and `$disconnect`: the connection registry. Nothing is posted
//! from `$connect`: the socket is not open until this function returns.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use chrono::DateTime;

use super::{caller, connection_id, status};
use crate::auth::token_from_subprotocols;
use crate::delivery::deliver_all;
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, StoreError};

/// Registers the connection; on the user's first one, `presence` online goes to
/// their contacts (other people's sockets: this one is not open yet).
pub async fn connect<R: ConnectionRegistry, P: ConnectionPusher>(
    registry: &R,
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(caller) = caller(event) else {
        tracing::error!("$connect without authorizer context: is the authorizer attached to the route?");
        return status(401);
    };
    let token_exp = DateTime::from_timestamp(caller.token_exp, 0).unwrap_or_default();
    match registry
        .register_connection(connection_id(event), caller.user_id, token_exp)
        .await
    {
        Ok(registered) => deliver_all(registry, pusher, &registered.deliveries).await,
        Err(StoreError::Rejected { code, .. }) if code == "user_not_found" => {
            tracing::info!(user_id = %caller.user_id, "valid token for a user that does not exist");
            return status(403);
        }
        Err(e) => {
            tracing::error!(error = %e, "registering the connection failed");
            return status(500);
        }
    }
    let mut response = status(200);
    // A browser that offered subprotocols fails the handshake unless one is echoed.
    let offered = event
        .headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok());
    if let Some((token, protocol)) = offered.map(token_from_subprotocols) {
        if let Some(chosen) = protocol.or(token).and_then(|p| HeaderValue::from_str(p).ok()) {
            response.headers.insert("sec-websocket-protocol", chosen);
        }
    }
    response
}

/// Forgets the connection; when it was the user's last, `presence` offline
/// (with last seen) goes to their contacts.
pub async fn disconnect<R: ConnectionRegistry, P: ConnectionPusher>(
    registry: &R,
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    // $disconnect is best effort on API Gateway's side too; a failure here leaves
    // a row the stale-connection sweep (410 on push) removes later.
    match registry.unregister_connection(connection_id(event)).await {
        Ok(unregistered) => {
            deliver_all(registry, pusher, &unregistered.deliveries).await;
            status(200)
        }
        Err(e) => {
            tracing::error!(error = %e, "unregistering the connection failed");
            status(500)
        }
    }
}
