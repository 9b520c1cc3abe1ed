//! `$connect` and `$disconnect`: the connection registry. Nothing is posted
//! from `$connect`: the socket is not open until this function returns.

use std::collections::HashMap;

use chrono::DateTime;

use super::{WsEvent, WsResponse};
use crate::auth::token_from_subprotocols;
use crate::delivery::deliver_all;
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, StoreError};

/// Registers the connection; on the user's first one, `presence` online goes to
/// their contacts (other people's sockets: this one is not open yet).
pub async fn connect<R: ConnectionRegistry, P: ConnectionPusher>(
    registry: &R,
    pusher: &P,
    event: &WsEvent,
) -> WsResponse {
    let Some(speaker) = event.speaker() else {
        tracing::error!("$connect without authorizer context: is the authorizer attached to the route?");
        return WsResponse::status(401);
    };
    let token_exp = DateTime::from_timestamp(speaker.token_exp, 0).unwrap_or_default();
    match registry
        .register_connection(event.connection_id(), speaker.user_id, token_exp)
        .await
    {
        Ok(registered) => deliver_all(registry, pusher, &registered.deliveries).await,
        Err(StoreError::Rejected { code, .. }) if code == "user_not_found" => {
            tracing::info!(user_id = %speaker.user_id, "valid token for a user that does not exist");
            return WsResponse::status(403);
        }
        Err(e) => {
            tracing::error!(error = %e, "registering the connection failed");
            return WsResponse::status(500);
        }
    }
    let mut response = WsResponse::ok();
    // A browser that offered subprotocols fails the handshake unless one is echoed.
    if let Some(offered) = event.headers.as_ref().and_then(|h| {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, v)| v.as_str())
    }) {
        let (token, protocol) = token_from_subprotocols(offered);
        if let Some(chosen) = protocol.or(token) {
            response.headers = Some(HashMap::from([(
                "Sec-WebSocket-Protocol".to_string(),
                chosen.to_string(),
            )]));
        }
    }
    response
}

/// Forgets the connection; when it was the user's last, `presence` offline
/// (with last seen) goes to their contacts.
pub async fn disconnect<R: ConnectionRegistry, P: ConnectionPusher>(
    registry: &R,
    pusher: &P,
    event: &WsEvent,
) -> WsResponse {
    // $disconnect is best effort on API Gateway's side too; a failure here leaves
    // a row the stale-connection sweep (410 on push) removes later.
    match registry.unregister_connection(event.connection_id()).await {
        Ok(unregistered) => {
            deliver_all(registry, pusher, &unregistered.deliveries).await;
            WsResponse::ok()
        }
        Err(e) => {
            tracing::error!(error = %e, "unregistering the connection failed");
            WsResponse::status(500)
        }
    }
}
