use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::{authenticate, json_body, json_response, path_uuid, query, respond};
use crate::auth::TokenVerifier;
use crate::delivery::deliver_message;
use crate::domain::{HistoryQuery, MessageDraft};
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, MessageStore, UserToken};

/// `GET /v1/conversations/{id}/messages?before_seq=&after_seq=&limit=` — one page
/// of history in ascending `seq`; `limit` is capped at 100.
pub async fn list_messages<S: MessageStore>(verifier: &TokenVerifier, store: &S, request: &Request) -> Response<Body> {
    let result = async {
        let (_caller, token) = authenticate(verifier, request).await?;
        let conversation_id = path_uuid(request, "id")?;
        let page_query = HistoryQuery::parse(
            query(request, "before_seq"),
            query(request, "after_seq"),
            query(request, "limit"),
        )?;
        let page = store.list_messages(UserToken(token), conversation_id, page_query).await?;
        Ok(json_response(200, &page))
    }
    .await;
    respond(request, result)
}

/// `POST /v1/conversations/{id}/messages` — store, then push `message.created`
/// to every live connection of the participants. Idempotent by `client_msg_id`:
/// 201 for a new message, 200 with the stored one for a repeat.
pub async fn send_message<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    let result = async {
        let (caller, _token) = authenticate(verifier, request).await?;
        let conversation_id = path_uuid(request, "id")?;
        let draft: MessageDraft = json_body(request)?;
        let message = draft.validate(conversation_id, false)?;
        let outcome = store.send_message(caller.user_id, &message).await?;
        deliver_message(store, pusher, &outcome, None).await;
        let status = if outcome.duplicate { 200 } else { 201 };
        Ok(json_response(
            status,
            &json!({"message": outcome.message, "duplicate": outcome.duplicate}),
        ))
    }
    .await;
    respond(request, result)
}
