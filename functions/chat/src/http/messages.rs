//! Messages over REST: history, send, edit, delete, search.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::{conversation_read, json_body, json_response, path_uuid, query, signed_in, write_by_id};
use crate::auth::TokenVerifier;
use crate::delivery::deliver_message;
use crate::domain::{EditMessageInput, HistoryQuery, MessageDraft, SearchQuery};
use crate::error::ApiError;
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, MessageStore};

/// `GET /v1/conversations/{id}/messages?before_seq=&after_seq=&limit=` — one page
/// of history in ascending `seq`; `limit` is capped at 100.
pub async fn list_messages<S: MessageStore>(verifier: &TokenVerifier, store: &S, request: &Request) -> Response<Body> {
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
pub async fn send_message<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
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
        deliver_message(store, pusher, &outcome, None).await;
        let status = if outcome.duplicate { 200 } else { 201 };
        Ok(json_response(
            status,
            &json!({"message": outcome.message, "duplicate": outcome.duplicate}),
        ))
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
pub async fn edit_message<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
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
pub async fn delete_message<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        Ok(store.delete_message(caller, id).await?)
    })
    .await
}

/// `GET /v1/messages/search?q=&conversation_id=&limit=&offset=` — full-text
/// search (English and Spanish) in the caller's conversations, best match first.
pub async fn search_messages<S: MessageStore>(
    verifier: &TokenVerifier,
    store: &S,
    request: &Request,
) -> Response<Body> {
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
