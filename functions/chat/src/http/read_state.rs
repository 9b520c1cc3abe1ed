//! Read state: the watermark and unread counts.

use lambda_http::{Body, Request, Response};

use super::{json_response, optional_json_body, signed_in, write_by_id};
use crate::auth::TokenVerifier;
use crate::domain::{validate_read_seq, MarkReadInput};
use crate::push::ConnectionPusher;
use crate::store::{ConnectionRegistry, MessageStore, PostgrestStore};

/// `POST /v1/conversations/{id}/read` with `{"seq": n}` or no body (the latest):
/// moves the caller's watermark forward, never back; `read` to the members.
pub async fn mark_read<S, P>(verifier: &TokenVerifier, store: &S, pusher: &P, request: &Request) -> Response<Body>
where
    S: MessageStore + ConnectionRegistry,
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        let input: MarkReadInput = optional_json_body(request)?;
        let seq = validate_read_seq(input.seq)?;
        Ok(store.mark_read(caller, id, seq).await?)
    })
    .await
}

/// `GET /v1/unread` — total and per-conversation unread counts.
pub async fn unread_counts(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        Ok(json_response(200, &store.unread_counts(token).await?))
    })
    .await
}
