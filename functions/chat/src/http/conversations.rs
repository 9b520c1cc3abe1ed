use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{authenticate, json_body, json_response, respond};
use crate::auth::TokenVerifier;
use crate::error::ApiError;
use crate::store::{ConversationContext, ConversationStore, UserToken};

const MAX_CONTEXT_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDirectInput {
    user_id: Uuid,
    #[serde(default)]
    context: Option<ConversationContext>,
}

/// `POST /v1/conversations/direct` — find or create the 1:1 with `user_id`,
/// optionally about a context. 201 when created, 200 when it existed.
pub async fn open_direct_conversation<S: ConversationStore>(
    verifier: &TokenVerifier,
    store: &S,
    request: &Request,
) -> Response<Body> {
    let result = async {
        let (_caller, token) = authenticate(verifier, request).await?;
        let input: OpenDirectInput = json_body(request)?;
        if let Some(context) = &input.context {
            let valid = |s: &str| {
                !s.trim().is_empty() && s.chars().count() <= MAX_CONTEXT_CHARS && !s.chars().any(char::is_control)
            };
            if !valid(&context.kind) || !valid(&context.id) {
                return Err(ApiError::bad_request(
                    "invalid_argument",
                    format!("`context.type` and `context.id` must be 1-{MAX_CONTEXT_CHARS} characters"),
                ));
            }
        }
        let opened = store
            .open_direct_conversation(UserToken(token), input.user_id, input.context.as_ref())
            .await?;
        let status = if opened.created { 201 } else { 200 };
        Ok(json_response(
            status,
            &json!({"conversation": opened.conversation, "created": opened.created}),
        ))
    }
    .await;
    respond(request, result)
}
