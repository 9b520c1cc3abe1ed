//! The message routes: `sendMessage`, `typing`, `markRead`, `markDelivered`,
//! `ping`, `$default`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chrono::Utc;
use serde_json::Value;

use super::{connection_id, current_caller, parse_frame, reply, reply_error, request_id, status};
use crate::delivery::deliver;
use crate::domain::{validate_read_seq, MarkDeliveredFrame, MarkReadFrame, SendMessageInput, TypingInput};
use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::notify::{hand_off, NotificationQueue};
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, MessageStore};

/// Stores the message, acknowledges it to the sending connection, then
/// pushes the event to the members' other live connections while handing who
/// is offline to the notification function. The ack goes first: the sender
/// waits for nothing else, and a room's fan-out does not hold it back.
pub async fn send_message<S, P, Q>(
    store: &S,
    pusher: &P,
    notifications: &Q,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
    Q: NotificationQueue,
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
    let ack = ServerEvent::message_ack(&outcome.result.message, outcome.result.duplicate);
    reply(pusher, connection_id(event), &ack).await;
    tokio::join!(
        deliver(store, pusher, &outcome.deliveries, Some(connection_id(event))),
        hand_off(notifications, outcome.notify.as_ref()),
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
        Ok::<_, ApiError>(
            store
                .send_typing(caller.user_id, input.conversation_id, input.is_typing)
                .await?,
        )
    }
    .await;
    match result {
        // The typist's own connections are not among the recipients, so none is left out here.
        Ok(outcome) => deliver(store, pusher, &outcome.deliveries, None).await,
        Err(error) => return reply_error(pusher, event, &error).await,
    }
    status(200)
}

/// Moves the read watermark. The members (the reader's own connections among
/// them) get `read` when it moved; when it did not, this connection alone gets
/// `read` with the unchanged watermark, so every frame has an answer.
pub async fn mark_read<S, P>(store: &S, pusher: &P, event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse
where
    S: MessageStore + ConnectionRegistry,
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
        Ok(outcome) if outcome.result.changed => deliver(store, pusher, &outcome.deliveries, None).await,
        Ok(outcome) => {
            let state = outcome.result;
            let unchanged = ServerEvent::read(state.conversation_id, caller.user_id, state.last_read_seq, Utc::now());
            reply(pusher, connection_id(event), &unchanged).await;
        }
        Err(error) => return reply_error(pusher, event, &error).await,
    }
    status(200)
}

/// Moves the delivered watermark: what reached the caller's device. The
/// senders of the messages it covers and the caller's own connections get
/// `delivered` when it moved; when it did not, this connection alone gets
/// `delivered` with the unchanged watermark, so every frame has an answer.
pub async fn mark_delivered<S, P>(
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
        let frame: MarkDeliveredFrame = parse_frame(event)?;
        validate_read_seq(Some(frame.seq))?;
        Ok::<_, ApiError>(
            store
                .mark_delivered(caller.user_id, frame.conversation_id, frame.seq)
                .await?,
        )
    }
    .await;
    match result {
        Ok(outcome) if outcome.result.changed => deliver(store, pusher, &outcome.deliveries, None).await,
        Ok(outcome) => {
            let state = outcome.result;
            let unchanged = ServerEvent::delivered(
                state.conversation_id,
                caller.user_id,
                state.last_delivered_seq,
                Utc::now(),
            );
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
                        format!("unknown action `{shown}`; known: sendMessage, typing, markRead, markDelivered, ping"),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notify::memory::RecordingQueue;

    /// A function not told of the notification function.
    const NO_NOTIFICATIONS: Option<RecordingQueue> = None;
    use crate::auth::Caller;
    use crate::push::memory::RecordingPusher;
    use crate::store::memory::MemoryStore;
    use crate::testing::{delivery, message_json, signed_in, ws_event, ALICE, BOB, CONVERSATION};

    fn send_frame(body: &str) -> Value {
        json!({"action": "sendMessage", "conversation_id": CONVERSATION, "body": body, "client_msg_id": "c-1"})
    }

    fn created(message: &Value) -> Value {
        json!({"type": "message.created", "conversation_id": CONVERSATION, "seq": message["seq"], "data": message})
    }

    #[tokio::test(start_paused = true)]
    async fn a_sent_message_is_acked_to_its_connection_and_pushed_to_every_other() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let message = message_json(7, "c-1", "hello");
        let everyone = [(ALICE, "alice-1"), (ALICE, "alice-2"), (BOB, "bob-1")];
        store.answer(
            "send_message",
            Ok(json!({
                "result": {"message": message, "duplicate": false},
                "deliveries": [delivery(created(&message), &everyone)],
                "notify": {"conversation_id": CONVERSATION, "message_id": message["id"], "user_ids": [BOB]},
            })),
        );
        let event = ws_event("sendMessage", "alice-1", Some(signed_in(ALICE)), send_frame("hello"));
        let queue = RecordingQueue::default();
        assert_eq!(send_message(&store, &pusher, &queue, &event).await.status_code, 200);
        // Who is offline goes to the notification function, as the database listed them.
        let handed_off = queue.handed_off();
        assert_eq!(handed_off.len(), 1);
        assert_eq!(
            (handed_off[0].conversation_id, handed_off[0].user_ids.clone()),
            (CONVERSATION, vec![BOB])
        );

        let stored = store.calls("send_message");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0]["sender"], json!(ALICE));
        assert_eq!(stored[0]["client_msg_id"], "c-1");
        let ack = pusher.received("alice-1");
        assert_eq!(ack.len(), 1, "{ack:?}");
        assert_eq!(ack[0]["type"], "message.ack");
        assert_eq!(ack[0]["data"]["seq"], 7);
        // The ack is out before the fan-out starts.
        let timeline = pusher.timeline();
        assert_eq!(timeline[..2], ["start:alice-1", "done:alice-1"], "{timeline:?}");
        assert_eq!(ack[0]["data"]["duplicate"], false);
        assert_eq!(ack[0]["data"]["id"], message["id"]);
        // The sender gets the stored message, the same JSON the others get in message.created.
        assert_eq!(ack[0]["data"]["message"], created(&message)["data"]);
        for other in ["alice-2", "bob-1"] {
            assert_eq!(pusher.received(other), vec![created(&message)], "{other}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeated_send_is_acked_as_a_duplicate_and_re_delivered_to_every_other_connection() {
        // The first send's function may have died between the commit and the
        // fan-out: the repeat delivers message.created again (clients drop a
        // seq they have), and the sending connection still gets the ack only.
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let message = message_json(7, "c-1", "hello");
        let everyone = [(ALICE, "alice-1"), (ALICE, "alice-2"), (BOB, "bob-1")];
        store.answer(
            "send_message",
            Ok(json!({
                "result": {"message": message, "duplicate": true},
                "deliveries": [delivery(created(&message), &everyone)],
            })),
        );
        let event = ws_event("sendMessage", "alice-1", Some(signed_in(ALICE)), send_frame("hello"));
        send_message(&store, &pusher, &NO_NOTIFICATIONS, &event).await;
        let ack = pusher.received("alice-1");
        assert_eq!(ack.len(), 1, "{ack:?}");
        assert_eq!(ack[0]["type"], "message.ack");
        assert_eq!(ack[0]["data"]["duplicate"], true);
        assert_eq!(ack[0]["data"]["message"], message);
        for other in ["alice-2", "bob-1"] {
            assert_eq!(pusher.received(other), vec![created(&message)], "{other}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_or_refused_send_is_answered_with_an_error_event() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let blank = ws_event("sendMessage", "alice-1", Some(signed_in(ALICE)), send_frame("   "));
        assert_eq!(
            send_message(&store, &pusher, &NO_NOTIFICATIONS, &blank)
                .await
                .status_code,
            200
        );
        assert!(
            store.calls("send_message").is_empty(),
            "an invalid frame reaches the store"
        );
        let not_json = ws_event("sendMessage", "alice-1", Some(signed_in(ALICE)), json!("{not json"));
        send_message(&store, &pusher, &NO_NOTIFICATIONS, &not_json).await;

        store.refuse("send_message", "not_a_participant");
        let outsider = ws_event("sendMessage", "alice-1", Some(signed_in(ALICE)), send_frame("hi"));
        send_message(&store, &pusher, &NO_NOTIFICATIONS, &outsider).await;

        let errors = pusher.received("alice-1");
        let codes: Vec<&Value> = errors.iter().map(|e| &e["data"]["code"]).collect();
        assert_eq!(
            codes,
            [
                &json!("invalid_body"),
                &json!("invalid_json"),
                &json!("not_a_participant")
            ]
        );
        assert!(errors
            .iter()
            .all(|e| e["type"] == "error" && e["data"]["action"] == "sendMessage"));
        assert_eq!(errors[2]["data"]["status"], 403);
        assert_eq!(errors[2]["data"]["request_id"], "req-1");
    }

    /// Several sends may be in flight on one socket: each refusal names the
    /// message it refuses, read from the frame even when the rest of it is
    /// what was wrong.
    #[tokio::test(start_paused = true)]
    async fn a_refused_send_names_its_client_msg_id() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let caller = Some(signed_in(ALICE));
        let frames = [
            json!({"action": "sendMessage", "conversation_id": CONVERSATION, "body": " ", "client_msg_id": "blank-1"}),
            json!({"action": "sendMessage", "conversation_id": "not-a-uuid", "body": "x", "client_msg_id": "bad-conv"}),
            json!({"action": "sendMessage", "conversation_id": CONVERSATION, "body": "x", "client_msg_id": "has space"}),
            json!({"action": "sendMessage", "conversation_id": CONVERSATION, "body": "x", "client_msg_id": 7}),
            json!("{not json"),
            send_frame("hi"),
        ];
        store.answer(
            "send_message",
            Err(crate::store::StoreError::Rejected {
                code: "rate_limited".into(),
                message: "slow down".into(),
                retry_after_ms: Some(1500),
            }),
        );
        for frame in frames {
            send_message(
                &store,
                &pusher,
                &NO_NOTIFICATIONS,
                &ws_event("sendMessage", "alice-1", caller, frame),
            )
            .await;
        }
        let errors = pusher.received("alice-1");
        let seen: Vec<(&Value, &Value)> = errors
            .iter()
            .map(|e| (&e["data"]["code"], &e["data"]["client_msg_id"]))
            .collect();
        assert_eq!(
            seen,
            [
                (&json!("invalid_body"), &json!("blank-1")),
                (&json!("invalid_request"), &json!("bad-conv")),
                (&json!("invalid_client_msg_id"), &json!("has space")),
                (&json!("invalid_request"), &Value::Null),
                (&json!("invalid_json"), &Value::Null),
                (&json!("rate_limited"), &json!("c-1")),
            ]
        );
        assert_eq!(errors[5]["data"]["retry_after_ms"], 1500);
        assert!(
            errors[3]["data"].get("client_msg_id").is_none(),
            "a non-string id is not echoed"
        );

        // An expired token refuses the frame before it is read: still named.
        let expired = Caller {
            user_id: ALICE,
            token_exp: Utc::now().timestamp() - 1,
        };
        send_message(
            &store,
            &pusher,
            &NO_NOTIFICATIONS,
            &ws_event("sendMessage", "alice-2", Some(expired), send_frame("x")),
        )
        .await;
        let answer = &pusher.received("alice-2")[0];
        assert_eq!(answer["data"]["code"], "token_expired");
        assert_eq!(answer["data"]["client_msg_id"], "c-1");

        // Only sendMessage refusals name one: a typing frame's stray field is not echoed.
        store.refuse("send_typing", "not_a_participant");
        let typing_frame =
            json!({"action": "typing", "conversation_id": CONVERSATION, "is_typing": true, "client_msg_id": "t-1"});
        typing(&store, &pusher, &ws_event("typing", "alice-3", caller, typing_frame)).await;
        let answer = &pusher.received("alice-3")[0];
        assert_eq!(answer["data"]["code"], "not_a_participant");
        assert!(answer["data"].get("client_msg_id").is_none(), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_token_gets_token_expired_and_the_socket_is_closed() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let expired = Caller {
            user_id: ALICE,
            token_exp: Utc::now().timestamp() - 1,
        };
        let event = ws_event("sendMessage", "alice-1", Some(expired), send_frame("hello"));
        assert_eq!(
            send_message(&store, &pusher, &NO_NOTIFICATIONS, &event)
                .await
                .status_code,
            200
        );
        let answer = pusher.received("alice-1");
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0]["data"]["code"], "token_expired");
        assert_eq!(pusher.closed(), vec!["alice-1"]);
        assert!(store.calls("send_message").is_empty());

        // Every route checks it, $default included.
        let unknown = ws_event("$default", "alice-2", Some(expired), json!({"action": "dance"}));
        default_route(&pusher, &unknown).await;
        assert_eq!(pusher.closed(), vec!["alice-1", "alice-2"]);

        // No identity at all (the authorizer was not attached): refused, not closed.
        let anonymous = ws_event("ping", "anon-1", None, json!({"action": "ping"}));
        ping(&store, &pusher, &anonymous).await;
        assert_eq!(pusher.received("anon-1")[0]["data"]["code"], "unauthorized");
        assert_eq!(pusher.closed().len(), 2);
        assert!(store.calls("touch_connection").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn mark_read_answers_the_reader_alone_when_the_watermark_did_not_move() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.answer(
            "mark_read",
            Ok(json!({
                "result": {"conversation_id": CONVERSATION, "last_read_seq": 4, "unread_count": 0, "changed": false},
                "deliveries": [],
            })),
        );
        let frame = json!({"action": "markRead", "conversation_id": CONVERSATION, "seq": 3});
        mark_read(
            &store,
            &pusher,
            &ws_event("markRead", "alice-1", Some(signed_in(ALICE)), frame.clone()),
        )
        .await;
        assert_eq!(store.calls("mark_read")[0]["seq"], 3);
        assert_eq!(pusher.receivers(), vec![("alice-1".to_string(), 1)]);
        let unchanged = &pusher.received("alice-1")[0];
        assert_eq!(unchanged["type"], "read");
        assert_eq!(unchanged["data"]["last_read_seq"], 4);
        assert_eq!(unchanged["data"]["user_id"], json!(ALICE));

        // When it moved, the members get the database's event, the reader's own connections included.
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let read =
            json!({"type": "read", "conversation_id": CONVERSATION, "data": {"user_id": ALICE, "last_read_seq": 9}});
        store.answer(
            "mark_read",
            Ok(json!({
                "result": {"conversation_id": CONVERSATION, "last_read_seq": 9, "unread_count": 0, "changed": true},
                "deliveries": [delivery(read.clone(), &[(ALICE, "alice-1"), (BOB, "bob-1")])],
            })),
        );
        mark_read(
            &store,
            &pusher,
            &ws_event("markRead", "alice-1", Some(signed_in(ALICE)), frame),
        )
        .await;
        assert_eq!(pusher.received("alice-1"), vec![read.clone()]);
        assert_eq!(pusher.received("bob-1"), vec![read]);
    }

    #[tokio::test(start_paused = true)]
    async fn mark_delivered_pushes_the_databases_event_or_answers_the_unmoved_watermark() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let delivered = json!({"type": "delivered", "conversation_id": CONVERSATION,
            "data": {"user_id": BOB, "last_delivered_seq": 9, "delivered_at": "2026-11-21T07:00:00Z"}});
        store.answer(
            "mark_delivered",
            Ok(json!({
                "result": {"conversation_id": CONVERSATION, "last_delivered_seq": 9, "changed": true},
                "deliveries": [delivery(delivered.clone(), &[(ALICE, "alice-1"), (BOB, "bob-1"), (BOB, "bob-2")])],
            })),
        );
        let frame = json!({"action": "markDelivered", "conversation_id": CONVERSATION, "seq": 9});
        let event = ws_event("markDelivered", "bob-1", Some(signed_in(BOB)), frame.clone());
        assert_eq!(mark_delivered(&store, &pusher, &event).await.status_code, 200);
        assert_eq!(
            store.calls("mark_delivered"),
            vec![json!({"user_id": BOB, "conversation_id": CONVERSATION, "seq": 9})]
        );
        for connection in ["alice-1", "bob-1", "bob-2"] {
            assert_eq!(pusher.received(connection), vec![delivered.clone()], "{connection}");
        }

        // Not moved (a lower seq): this connection alone hears the watermark as it is.
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.answer(
            "mark_delivered",
            Ok(json!({
                "result": {"conversation_id": CONVERSATION, "last_delivered_seq": 9, "changed": false},
                "deliveries": [],
            })),
        );
        mark_delivered(&store, &pusher, &event).await;
        assert_eq!(pusher.receivers(), vec![("bob-1".to_string(), 1)]);
        let unchanged = &pusher.received("bob-1")[0];
        assert_eq!(unchanged["type"], "delivered");
        assert_eq!(unchanged["conversation_id"], json!(CONVERSATION));
        assert_eq!(unchanged["data"]["last_delivered_seq"], 9);
        assert_eq!(unchanged["data"]["user_id"], json!(BOB));
        assert!(unchanged.get("seq").is_none(), "{unchanged}");
    }

    #[tokio::test(start_paused = true)]
    async fn mark_delivered_refuses_a_frame_without_a_valid_seq_before_the_store() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let caller = Some(signed_in(BOB));
        let frames = [
            json!({"action": "markDelivered", "conversation_id": CONVERSATION}),
            json!({"action": "markDelivered", "conversation_id": CONVERSATION, "seq": -1}),
            json!({"action": "markDelivered", "conversation_id": CONVERSATION, "seq": "7"}),
            json!({"action": "markDelivered", "seq": 7}),
        ];
        for frame in frames {
            mark_delivered(&store, &pusher, &ws_event("markDelivered", "bob-1", caller, frame)).await;
        }
        store.refuse("mark_delivered", "not_a_participant");
        let outsider = json!({"action": "markDelivered", "conversation_id": CONVERSATION, "seq": 7});
        mark_delivered(&store, &pusher, &ws_event("markDelivered", "bob-1", caller, outsider)).await;

        let errors = pusher.received("bob-1");
        let seen: Vec<(&Value, &Value)> = errors
            .iter()
            .map(|e| (&e["data"]["code"], &e["data"]["action"]))
            .collect();
        let action = json!("markDelivered");
        assert_eq!(
            seen,
            [
                (&json!("invalid_request"), &action),
                (&json!("invalid_argument"), &action),
                (&json!("invalid_request"), &action),
                (&json!("invalid_request"), &action),
                (&json!("not_a_participant"), &action),
            ]
        );
        assert_eq!(
            store.calls("mark_delivered").len(),
            1,
            "only the valid frame reaches the store"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn typing_pushes_the_databases_event_to_its_recipients() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        let expires_at = "2026-11-21T07:00:06.5+00:00";
        let event = json!({"type": "typing", "conversation_id": CONVERSATION,
            "data": {"user_id": ALICE, "is_typing": false, "expires_at": expires_at}});
        store.answer(
            "send_typing",
            Ok(json!({
                "result": {"expires_at": expires_at},
                "deliveries": [delivery(event.clone(), &[(BOB, "bob-1"), (BOB, "bob-2")])],
            })),
        );
        let frame = json!({"action": "typing", "conversation_id": CONVERSATION, "is_typing": false});
        typing(
            &store,
            &pusher,
            &ws_event("typing", "alice-1", Some(signed_in(ALICE)), frame),
        )
        .await;
        assert_eq!(
            store.calls("send_typing"),
            vec![json!({"user_id": ALICE, "conversation_id": CONVERSATION, "is_typing": false})]
        );
        assert_eq!(pusher.received("bob-1"), vec![event.clone()]);
        assert_eq!(pusher.received("bob-2"), vec![event]);
        assert!(
            pusher.received("alice-1").is_empty(),
            "typing answers only when it fails"
        );

        // is_typing defaults to true.
        store.answer(
            "send_typing",
            Ok(json!({"result": {"expires_at": expires_at}, "deliveries": []})),
        );
        let frame = json!({"action": "typing", "conversation_id": CONVERSATION});
        typing(
            &store,
            &pusher,
            &ws_event("typing", "alice-1", Some(signed_in(ALICE)), frame),
        )
        .await;
        assert_eq!(store.calls("send_typing")[1]["is_typing"], true);
    }

    #[tokio::test(start_paused = true)]
    async fn ping_refreshes_the_connection_and_answers_pong() {
        let (store, pusher) = (MemoryStore::default(), RecordingPusher::default());
        store.connect("alice-1", ALICE);
        ping(
            &store,
            &pusher,
            &ws_event("ping", "alice-1", Some(signed_in(ALICE)), json!({"action": "ping"})),
        )
        .await;
        assert_eq!(
            store.calls("touch_connection"),
            vec![json!({"connection_id": "alice-1"})]
        );
        assert_eq!(pusher.received("alice-1")[0]["type"], "pong");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_action_is_named_in_the_error() {
        let pusher = RecordingPusher::default();
        let caller = Some(signed_in(ALICE));
        default_route(&pusher, &ws_event("$default", "a", caller, json!({"action": "dance"}))).await;
        default_route(&pusher, &ws_event("$default", "a", caller, json!({"no": "action"}))).await;
        default_route(&pusher, &ws_event("$default", "a", caller, json!("[1, 2]"))).await;
        let errors = pusher.received("a");
        let seen: Vec<(&Value, &Value)> = errors
            .iter()
            .map(|e| (&e["data"]["code"], &e["data"]["action"]))
            .collect();
        assert_eq!(
            seen,
            [
                (&json!("unknown_action"), &json!("dance")),
                (&json!("unknown_action"), &Value::Null),
                (&json!("invalid_json"), &Value::Null)
            ]
        );
    }
}
