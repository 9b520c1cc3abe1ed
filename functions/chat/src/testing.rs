//! Fixtures shared by the handlers' unit tests: the people, the conversation,
//! and events and database answers shaped as API Gateway and the SQL send them.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Caller;

pub const ALICE: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_00000000a11c);
pub const BOB: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_000000000b0b);
pub const CONVERSATION: Uuid = Uuid::from_u128(0xc0ffee00_0000_4000_8000_000000000001);

/// A caller whose token is good for another hour.
pub fn signed_in(user_id: Uuid) -> Caller {
    Caller {
        user_id,
        token_exp: chrono::Utc::now().timestamp() + 3600,
    }
}

/// A WebSocket event on `connection` as API Gateway delivers it: the authorizer
/// context with its values as strings, and the frame as the body.
pub fn ws_event(
    route: &str,
    connection: &str,
    caller: Option<Caller>,
    frame: Value,
) -> ApiGatewayWebsocketProxyRequest {
    let mut context = json!({
        "routeKey": route, "eventType": "MESSAGE", "connectionId": connection, "requestId": "req-1",
        "connectedAt": 0, "requestTimeEpoch": 0,
    });
    if let Some(caller) = caller {
        context["authorizer"] = json!({
            "principalId": caller.user_id, "user_id": caller.user_id,
            "token_exp": caller.token_exp.to_string(), "integrationLatency": 1,
        });
    }
    let body = match frame {
        Value::Null => Value::Null,
        Value::String(text) => Value::String(text),
        other => Value::String(other.to_string()),
    };
    serde_json::from_value(json!({"requestContext": context, "body": body, "isBase64Encoded": false})).unwrap()
}

/// A stored message as `public.message_json` writes it.
pub fn message_json(seq: i64, client_msg_id: &str, body: &str) -> Value {
    json!({
        "id": Uuid::from_u128(0x6f1c1c52_8a4c_4d5c_9a51_0d1f4b0e6a00 + seq as u128),
        "conversation_id": CONVERSATION, "seq": seq, "sender_id": ALICE, "client_msg_id": client_msg_id,
        "kind": "text", "body": body, "attachment": null, "reply_to_id": null,
        "created_at": "2026-11-21T07:00:00.123456+00:00", "edited_at": null, "deleted_at": null
    })
}

/// `public.delivery(event, recipients)`, each recipient a (user, connection).
pub fn delivery(event: Value, recipients: &[(Uuid, &str)]) -> Value {
    json!({
        "event": event,
        "recipients": recipients
            .iter()
            .map(|(user_id, connection_id)| json!({"user_id": user_id, "connection_id": connection_id}))
            .collect::<Vec<_>>(),
    })
}
