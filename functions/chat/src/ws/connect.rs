//! `$connect` and `$disconnect`: the connection registry. Nothing is posted
//! from `$connect`: the socket is not open until this function returns.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::http::HeaderValue;
use chrono::DateTime;

use super::{caller, connection_id, status};
use crate::auth::token_from_subprotocols;
use crate::delivery::deliver;
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
        Ok(registered) => deliver(registry, pusher, &registered.deliveries, None).await,
        Err(StoreError::Rejected { code, .. }) if code == "user_not_found" => {
            tracing::info!(user_id = %caller.user_id, "valid token for a user that does not exist");
            return status(403);
        }
        // API Gateway refuses the handshake with this status.
        Err(StoreError::Rejected { code, .. }) if code == "too_many_connections" => {
            tracing::info!(user_id = %caller.user_id, "connection cap reached");
            return status(429);
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
    // $disconnect is best effort on API Gateway's side too. A row it fails to
    // remove stays until a push to it is answered 410 (then `deliver` forgets
    // it) or the sweep finds it gone (crate::sweep); either tells the contacts,
    // as this would have.
    match registry.unregister_connection(connection_id(event)).await {
        Ok(unregistered) => {
            deliver(registry, pusher, &unregistered.deliveries, None).await;
            status(200)
        }
        Err(e) => {
            tracing::error!(error = %e, "unregistering the connection failed");
            status(500)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::push::memory::RecordingPusher;
    use crate::store::memory::MemoryStore;
    use crate::store::StoreError;
    use crate::testing::{delivery, signed_in, ws_event, ALICE, BOB};

    fn presence(online: bool) -> Value {
        json!({"type": "presence", "data": {"user_id": ALICE, "online": online}})
    }

    #[tokio::test(start_paused = true)]
    async fn connect_registers_until_the_token_expires_tells_contacts_and_echoes_the_subprotocol() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.answer(
            "register_connection",
            Ok(json!({"first_connection": true, "deliveries": [delivery(presence(true), &[(BOB, "bob-1")])]})),
        );
        let caller = signed_in(ALICE);
        let mut event = ws_event("$connect", "alice-1", Some(caller), Value::Null);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        event
            .headers
            .insert("sec-websocket-protocol", format!("chat, {jwt}").parse().unwrap());
        let response = connect(&store, &pusher, &event).await;
        assert_eq!(response.status_code, 200);
        assert_eq!(response.headers["sec-websocket-protocol"], "chat");
        let registered = &store.calls("register_connection")[0];
        assert_eq!(registered["user_id"], json!(ALICE));
        assert_eq!(
            registered["token_exp"],
            json!(DateTime::from_timestamp(caller.token_exp, 0).unwrap())
        );
        assert_eq!(store.connection_ids(), vec!["alice-1"]);
        assert_eq!(pusher.received("bob-1"), vec![presence(true)]);
        // Nothing goes to the connecting socket: it is not open yet.
        assert!(pusher.received("alice-1").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn connect_refuses_a_missing_user_with_403_a_missing_identity_with_401_and_one_too_many_with_429() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.refuse("register_connection", "user_not_found");
        let event = ws_event("$connect", "ghost-1", Some(signed_in(BOB)), Value::Null);
        assert_eq!(connect(&store, &pusher, &event).await.status_code, 403);
        let anonymous = ws_event("$connect", "anon-1", None, Value::Null);
        assert_eq!(connect(&store, &pusher, &anonymous).await.status_code, 401);
        assert_eq!(store.calls("register_connection").len(), 1);
        assert!(store.connection_ids().is_empty());
        store.refuse("register_connection", "too_many_connections");
        assert_eq!(connect(&store, &pusher, &event).await.status_code, 429);
        store.answer("register_connection", Err(StoreError::Unavailable("down".into())));
        assert_eq!(connect(&store, &pusher, &event).await.status_code, 500);
    }

    #[tokio::test(start_paused = true)]
    async fn disconnect_forgets_the_connection_and_pushes_what_the_database_says() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.connect("alice-1", ALICE);
        store.answer(
            "unregister_connection",
            Ok(json!({"user_id": ALICE, "last_connection": true,
                      "deliveries": [delivery(presence(false), &[(BOB, "bob-1")])]})),
        );
        let event = ws_event("$disconnect", "alice-1", Some(signed_in(ALICE)), Value::Null);
        assert_eq!(disconnect(&store, &pusher, &event).await.status_code, 200);
        assert!(store.connection_ids().is_empty());
        assert_eq!(pusher.received("bob-1"), vec![presence(false)]);
        store.answer("unregister_connection", Err(StoreError::Unavailable("down".into())));
        assert_eq!(disconnect(&store, &pusher, &event).await.status_code, 500);
    }
}
