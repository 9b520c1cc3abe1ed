//! Read state: the watermark and unread counts.

use lambda_http::{Body, Request, Response};

use super::{delivered, json_response, optional_json_body, path_uuid, signed_in};
use crate::auth::TokenVerifier;
use crate::domain::{validate_read_seq, MarkReadInput};
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, ConversationStore};

/// `POST /v1/conversations/{id}/read` with `{"seq": n}` or no body (the latest):
/// moves the caller's watermark forward, never back; `read` to the members.
pub async fn mark_read<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: ConversationStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    signed_in(verifier, request, async |caller, _token| {
        let id = path_uuid(request, "id")?;
        let input: MarkReadInput = optional_json_body(request)?;
        let seq = validate_read_seq(input.seq)?;
        let outcome = store.mark_read(caller.user_id, id, seq).await?;
        Ok(delivered(store, pusher, 200, &outcome.result, &outcome.deliveries).await)
    })
    .await
}

/// `GET /v1/unread` — total and per-conversation unread counts.
pub async fn unread_counts<S: ConversationStore>(verifier: &TokenVerifier, store: &S, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| Ok(json_response(200, &store.unread_counts(token).await?))).await
}
