//! Messages over REST: history, send, edit, delete, search.

use lambda_http::{Body, Request, Response};

use super::{conversation_read, delivered, json_body, json_response, path_uuid, query, signed_in, write_by_id};
use crate::auth::TokenVerifier;
use crate::domain::{EditMessageInput, HistoryQuery, MessageDraft, SearchQuery};
use crate::error::ApiError;
use crate::notify::{hand_off, NotificationQueue};
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, MessageStore, PostgrestStore};

/// `GET /v1/conversations/{id}/messages?before_seq=&after_seq=&limit=` — one page
/// of history in ascending `seq`; `limit` is capped at 100.
pub async fn list_messages(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    conversation_read(verifier, request, async |token, id| {
        let page = HistoryQuery::parse(
            query(request, "before_seq"),
            query(request, "after_seq"),
            query(request, "limit"),
        )?;
        Ok(serde_json::to_value(store.list_messages(token, id, page).await?).unwrap_or_default())
    })
    .await
}

/// `POST /v1/conversations/{id}/messages` — store, then push `message.created`
/// to every live connection of the participants. Idempotent by `client_msg_id`
/// (or the `Idempotency-Key` header): 201 for a new message, 200 with the
/// stored one for a repeat.
/// Who is offline is handed to the notification function while the event is pushed.
pub async fn send_message<S, P, Q>(
    verifier: &TokenVerifier,
    store: &S,
    pusher: &P,
    notifications: &Q,
    request: &Request,
) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
    Q: NotificationQueue,
{
    signed_in(verifier, request, async |caller, _token| {
        let conversation_id = path_uuid(request, "id")?;
        let mut draft: MessageDraft = json_body(request)?;
        // A client that cannot put an id in the body (a plain HTTP retry
        // policy, say) can make the send idempotent with the usual header.
        if draft.client_msg_id.is_none() {
            draft.client_msg_id = idempotency_key(request)?;
        }
        let message = draft.validate(conversation_id, false)?;
        let outcome = store.send_message(caller.user_id, &message).await?;
        let status = if outcome.result.duplicate { 200 } else { 201 };
        let (response, ()) = tokio::join!(
            delivered(store, pusher, status, &outcome.result, &outcome.deliveries),
            hand_off(notifications, outcome.notify.as_ref()),
        );
        Ok(response)
    })
    .await
}

/// The `Idempotency-Key` header, standing in for `client_msg_id`.
fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    request
        .headers()
        .get("idempotency-key")
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::unprocessable("invalid_client_msg_id", "the Idempotency-Key header must be ASCII text")
            })
        })
        .transpose()
}

/// `PATCH /v1/messages/{id}` — the author edits the body; `message.updated` to the members.
pub async fn edit_message<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        let input = json_body::<EditMessageInput>(request)?.validate()?;
        Ok(store.edit_message(caller, id, &input.body).await?)
    })
    .await
}

/// `DELETE /v1/messages/{id}` — the author deletes; the body is gone from every
/// later read, replay and search; `message.deleted` to the members.
pub async fn delete_message<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        Ok(store.delete_message(caller, id).await?)
    })
    .await
}

/// `GET /v1/messages/search?q=&conversation_id=&limit=&offset=` — full-text
/// search (English and Spanish) in the caller's conversations, best match first.
pub async fn search_messages(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let search = SearchQuery::parse(
            query(request, "q"),
            query(request, "conversation_id"),
            query(request, "limit"),
            query(request, "offset"),
        )?;
        Ok(json_response(200, &store.search_messages(token, &search).await?))
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use lambda_http::RequestExt;
    use serde_json::{json, Value};

    use super::*;
    use crate::auth::tests::{config, hs256, SECRET};
    use crate::notify::memory::RecordingQueue;
    use crate::push::memory::RecordingPusher;
    use crate::store::memory::MemoryStore;
    use crate::testing::{delivery, message_json, ALICE, BOB, CONVERSATION};

    fn post(body: Value, idempotency_key: Option<&str>) -> Request {
        let claims = json!({"sub": ALICE, "role": "authenticated", "aud": "authenticated",
                            "exp": chrono::Utc::now().timestamp() + 600});
        let mut request = lambda_http::http::Request::builder()
            .method("POST")
            .uri(format!("/v1/conversations/{CONVERSATION}/messages"))
            .header("authorization", format!("Bearer {}", hs256(claims, SECRET)));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request
            .body(Body::from(body.to_string()))
            .unwrap()
            .with_path_parameters(HashMap::from([("id".to_string(), CONVERSATION.to_string())]))
    }

    fn body_of(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_rest_send_stores_under_the_idempotency_key_and_pushes_to_every_connection() {
        let verifier = TokenVerifier::new(&config(None), reqwest::Client::new());
        let (store, pusher, queue) = (
            MemoryStore::default(),
            RecordingPusher::default(),
            RecordingQueue::default(),
        );
        let message = message_json(3, "k-1", "hello");
        let created = json!({"type": "message.created", "conversation_id": CONVERSATION, "seq": 3, "data": message});
        store.answer(
            "send_message",
            Ok(json!({
                "result": {"message": message, "duplicate": false},
                "deliveries": [delivery(created.clone(), &[(ALICE, "alice-1"), (BOB, "bob-1")])],
                "notify": {"conversation_id": CONVERSATION, "message_id": message["id"], "user_ids": [BOB]},
            })),
        );
        // The hand-off fails: the send is answered all the same.
        queue.refuse(crate::notify::HandOffError::Failed("unreachable".into()));
        let response = send_message(
            &verifier,
            &store,
            &pusher,
            &queue,
            &post(json!({"body": "hello"}), Some("k-1")),
        )
        .await;
        assert_eq!(response.status(), 201);
        assert_eq!(body_of(&response), json!({"message": message, "duplicate": false}));
        assert_eq!(store.calls("send_message")[0]["client_msg_id"], "k-1");
        assert_eq!(store.calls("send_message")[0]["sender"], json!(ALICE));
        // No socket sent it, so every connection gets the event, the sender's own included.
        assert_eq!(pusher.received("alice-1"), vec![created.clone()]);
        assert_eq!(pusher.received("bob-1"), vec![created.clone()]);

        // A repeat is 200 with the stored message, and delivers message.created
        // again (the first send's fan-out may never have run).
        store.answer(
            "send_message",
            Ok(json!({
                "result": {"message": message, "duplicate": true},
                "deliveries": [delivery(created.clone(), &[(ALICE, "alice-1"), (BOB, "bob-1")])],
            })),
        );
        let again = send_message(
            &verifier,
            &store,
            &pusher,
            &queue,
            &post(json!({"body": "hello"}), Some("k-1")),
        )
        .await;
        assert_eq!(again.status(), 200);
        assert_eq!(body_of(&again)["duplicate"], true);
        assert_eq!(pusher.attempts(), 4);
        assert_eq!(pusher.received("alice-1"), vec![created.clone(), created.clone()]);
        assert_eq!(pusher.received("bob-1"), vec![created.clone(), created]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_id_wins_over_the_header_and_a_refusal_is_the_json_error() {
        let verifier = TokenVerifier::new(&config(None), reqwest::Client::new());
        let (store, pusher, queue) = (
            MemoryStore::default(),
            RecordingPusher::default(),
            RecordingQueue::default(),
        );
        store.refuse("send_message", "not_a_participant");
        let body = json!({"body": "hello", "client_msg_id": "from-body"});
        let response = send_message(&verifier, &store, &pusher, &queue, &post(body, Some("k-1"))).await;
        assert_eq!(response.status(), 403);
        assert_eq!(body_of(&response)["error"]["code"], "not_a_participant");
        assert_eq!(store.calls("send_message")[0]["client_msg_id"], "from-body");
        assert_eq!(pusher.attempts(), 0);
        assert!(queue.handed_off().is_empty());
    }
}
