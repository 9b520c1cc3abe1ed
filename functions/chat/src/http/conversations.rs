//! Conversations: the 1:1, groups and rooms, membership, details and lists.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{
    conversation_read, delivered, json_body, json_response, optional_json_body, query, signed_in, write_by_id,
};
use crate::auth::TokenVerifier;
use crate::domain::{AddMembersInput, ConversationPatch, EventsQuery, ListQuery, NewConversation};
use crate::error::ApiError;
use crate::push::ConnectionPusher;
use crate::store::{ConversationContext, PostgrestStore};

const MAX_CONTEXT_CHARS: usize = 100;
/// Page sizes of the conversation and room lists.
const MAX_LIST_PAGE: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDirectInput {
    user_id: Uuid,
    #[serde(default)]
    context: Option<ConversationContext>,
}

/// `POST /v1/conversations/direct` — find or create the 1:1 with `user_id`,
/// optionally about a context. 201 when created (and `conversation.created`
/// pushed to both), 200 when it existed.
pub async fn open_direct_conversation<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    signed_in(verifier, request, async |caller, _token| {
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
        let outcome = store
            .open_direct_conversation(caller.user_id, input.user_id, input.context.as_ref())
            .await?;
        let opened = outcome.result;
        let status = if opened.created { 201 } else { 200 };
        let body = json!({"conversation": opened.conversation, "created": opened.created});
        Ok(delivered(store, pusher, status, &body, &outcome.deliveries).await)
    })
    .await
}

/// `POST /v1/conversations` — a group or a public room, with members.
pub async fn create_conversation<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    signed_in(verifier, request, async |caller, _token| {
        let input = json_body::<NewConversation>(request)?.validate(caller.user_id)?;
        let outcome = store.create_conversation(caller.user_id, &input).await?;
        Ok(delivered(store, pusher, 201, &outcome.result, &outcome.deliveries).await)
    })
    .await
}

/// `PATCH /v1/conversations/{id}` — rename (owner), archive, mute.
pub async fn update_conversation<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        let patch = json_body::<ConversationPatch>(request)?.validate()?;
        Ok(store.update_conversation(caller, id, &patch).await?)
    })
    .await
}

/// `POST /v1/conversations/{id}/members` — the owner adds people.
pub async fn add_members<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        let input = json_body::<AddMembersInput>(request)?.validate()?;
        Ok(store.add_members(caller, id, &input.user_ids).await?)
    })
    .await
}

/// `POST /v1/conversations/{id}/join` — join a public room.
pub async fn join_conversation<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        // No body is needed; one that is there must at least be a JSON object.
        optional_json_body::<Map<String, Value>>(request)?;
        Ok(store.join_room(caller, id).await?)
    })
    .await
}

/// `POST /v1/conversations/{id}/leave`.
pub async fn leave_conversation<P>(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    pusher: &P,
    request: &Request,
) -> Response<Body>
where
    P: ConnectionPusher,
{
    write_by_id(verifier, store, pusher, request, async |caller, id| {
        optional_json_body::<Map<String, Value>>(request)?;
        Ok(store.leave_conversation(caller, id).await?)
    })
    .await
}

/// `GET /v1/conversations?limit=&cursor=&archived=` — mine, newest activity first.
pub async fn list_conversations(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let page = ListQuery::parse(query(request, "limit"), query(request, "cursor"), MAX_LIST_PAGE)?;
        let archived = match query(request, "archived") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_argument",
                    "`archived` must be true or false",
                ))
            }
        };
        Ok(json_response(
            200,
            &store.list_conversations(token, &page, archived).await?,
        ))
    })
    .await
}

/// `GET /v1/rooms?limit=&cursor=` — public rooms with member and message counts.
pub async fn list_rooms(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let page = ListQuery::parse(query(request, "limit"), query(request, "cursor"), MAX_LIST_PAGE)?;
        Ok(json_response(200, &store.list_rooms(token, &page).await?))
    })
    .await
}

/// `GET /v1/conversations/{id}` — details, participants and my settings.
pub async fn get_conversation(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    conversation_read(verifier, request, async |token, id| {
        Ok(store.get_conversation(token, id).await?)
    })
    .await
}

/// `GET /v1/conversations/{id}/events?after_seq=&limit=` — the durable events
/// after a seq, in order: how a client catches up after a gap or a reconnect.
pub async fn list_events(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    conversation_read(verifier, request, async |token, id| {
        let page = EventsQuery::parse(query(request, "after_seq"), query(request, "limit"))?;
        Ok(store.list_events(token, id, page).await?)
    })
    .await
}

/// `GET /v1/conversations/{id}/stats` — message count, participants, online, last message.
pub async fn conversation_stats(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    conversation_read(verifier, request, async |token, id| {
        Ok(store.conversation_stats(token, id).await?)
    })
    .await
}

/// `GET /v1/conversations/{id}/connections` — who is online now, and on how many
/// connections (never the connection ids themselves).
pub async fn conversation_connections(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    request: &Request,
) -> Response<Body> {
    conversation_read(verifier, request, async |token, id| {
        Ok(store.conversation_connections(token, id).await?)
    })
    .await
}
