//! The message routes: `sendMessage`, `typing`, `markRead`, `ping`, `$default`.

use chrono::{Duration, Utc};
use serde_json::Value;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};

use super::{connection_id, current_caller, parse_frame, reply, reply_error, request_id, status};
use crate::delivery::{deliver_all, deliver_message};
use crate::domain::{validate_read_seq, MarkReadFrame, SendMessageInput, TypingInput};
use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::push::{fan_out, ConnectionPusher, FanOutPolicy};
use crate::store::{ConnectionRegistry, ConversationStore, MessageStore};

/// How long a typing indicator lasts unless renewed: clients show it until
/// `expires_at`, so a client that vanishes mid-sentence does not type forever.
pub const TYPING_TTL_SECONDS: i64 = 6;

pub async fn send_message<S, P>(
    store: &S,
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    let Some(caller) = current_caller(pusher, event).await else {
        return status(200);
    };
    let result = async {
        let input: SendMessageInput = parse_frame(event)?;
        let message = input.draft.validate(input.conversation_id, true)?;
        Ok::<_, ApiError>(store.send_message(caller.user_id, &message).await?)
    }
    .await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => return reply_error(pusher, event, &error).await,
    };
    let ack = ServerEvent::message_ack(&outcome.message, outcome.duplicate);
    tokio::join!(
        reply(pusher, connection_id(event), &ack),
        deliver_message(store, pusher, &outcome, Some(connection_id(event))),
    );
    status(200)
}

pub async fn typing<S, P>(store: &S, pusher: &P, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    let Some(caller) = current_caller(pusher, event).await else {
        return status(200);
    };
    let result = async {
        let input: TypingInput = parse_frame(event)?;
        let recipients = store.typing_recipients(caller.user_id, input.conversation_id).await?;
        Ok::<_, ApiError>((input, recipients))
    }
    .await;
    let (input, recipients) = match result {
        Ok(found) => found,
        Err(error) => return reply_error(pusher, event, &error).await,
    };
    let expires_at = if input.is_typing {
        Utc::now() + Duration::seconds(TYPING_TTL_SECONDS)
    } else {
        Utc::now()
    };
    let payload = ServerEvent::typing(input.conversation_id, caller.user_id, input.is_typing, expires_at).to_bytes();
    let report = fan_out(
        pusher,
        recipients.into_iter().map(|r| r.connection_id),
        &payload,
        FanOutPolicy::default(),
    )
    .await;
    crate::delivery::forget_gone(store, &report.gone).await;
    status(200)
}

/// Moves the read watermark. The members (the reader's own connections among
/// them) get `read` when it moved; when it did not, this connection alone gets
/// `read` with the unchanged watermark, so every frame has an answer.
pub async fn mark_read<S, P>(store: &S, pusher: &P, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse
where
    S: ConversationStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    let Some(caller) = current_caller(pusher, event).await else {
        return status(200);
    };
    let result = async {
        let frame: MarkReadFrame = parse_frame(event)?;
        let seq = validate_read_seq(frame.seq)?;
        Ok::<_, ApiError>(store.mark_read(caller.user_id, frame.conversation_id, seq).await?)
    }
    .await;
    match result {
        Ok(outcome) if outcome.result.changed => deliver_all(store, pusher, &outcome.deliveries).await,
        Ok(outcome) => {
            let state = outcome.result;
            let unchanged = ServerEvent::read(state.conversation_id, caller.user_id, state.last_read_seq, Utc::now());
            reply(pusher, connection_id(event), &unchanged).await;
        }
        Err(error) => return reply_error(pusher, event, &error).await,
    }
    status(200)
}

pub async fn ping<R: ConnectionRegistry, P: ConnectionPusher>(
    registry: &R,
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    if current_caller(pusher, event).await.is_none() {
        return status(200);
    }
    if let Err(e) = registry.touch_connection(connection_id(event)).await {
        tracing::warn!(error = %e, "refreshing last seen failed");
    }
    reply(pusher, connection_id(event), &ServerEvent::pong(Utc::now())).await;
    status(200)
}

/// Anything that matched no route: say what was wrong, keep the socket open
/// (unless its token has expired: that closes it here as on every route).
pub async fn default_route<P: ConnectionPusher>(
    pusher: &P,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    if current_caller(pusher, event).await.is_none() {
        return status(200);
    }
    let parsed: Result<Value, ApiError> = parse_frame(event);
    let (error, action) = match parsed {
        Err(error) => (error, None),
        Ok(Value::Object(frame)) => match frame.get("action").and_then(Value::as_str) {
            Some(action) => {
                let shown: String = action.chars().take(64).collect();
                (
                    ApiError::bad_request(
                        "unknown_action",
                        format!("unknown action `{shown}`; known: sendMessage, typing, markRead, ping"),
                    ),
                    Some(shown),
                )
            }
            None => (
                ApiError::bad_request("unknown_action", "the frame needs a string field `action`"),
                None,
            ),
        },
        Ok(_) => (
            ApiError::bad_request("invalid_json", "a frame must be a JSON object with an `action`"),
            None,
        ),
    };
    let event_out = ServerEvent::error(&error, action.as_deref(), request_id(event));
    reply(pusher, connection_id(event), &event_out).await;
    status(200)
}
