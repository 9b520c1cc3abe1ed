//! Blocks: whom I block. A block cuts direct conversations and presence and
//! typing between the two users (decided in SQL, `sql/schemas/15_blocks.sql`);
//! in groups and rooms the client hides the messages of the users listed here.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{json_body, json_response, path_uuid, signed_in};
use crate::auth::TokenVerifier;
use crate::store::PostgrestStore;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockInput {
    user_id: Uuid,
}

/// `POST /v1/blocks` `{"user_id"}` — block a user: 201 when the block is new,
/// 200 when it already stood.
pub async fn block_user(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let input: BlockInput = json_body(request)?;
        let blocked = store.block_user(token, input.user_id).await?;
        let status = if blocked["created"] == Value::Bool(true) {
            201
        } else {
            200
        };
        Ok(json_response(status, &blocked))
    })
    .await
}

/// `DELETE /v1/blocks/{user_id}` — lift my block of a user (200 whether or not
/// there was one: `removed` says which).
pub async fn unblock_user(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let user_id = path_uuid(request, "user_id")?;
        Ok(json_response(200, &store.unblock_user(token, user_id).await?))
    })
    .await
}

/// `GET /v1/blocks` — the users I block, newest first.
pub async fn list_blocks(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        Ok(json_response(200, &store.list_blocks(token).await?))
    })
    .await
}
