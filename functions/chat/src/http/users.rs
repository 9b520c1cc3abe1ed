//! Users: me, people to chat with, presence.

use lambda_http::{Body, Request, Response};

use super::{json_response, query, signed_in};
use crate::auth::TokenVerifier;
use crate::domain::{parse_user_ids, UsersRequest};
use crate::store::PostgrestStore;

/// `GET /v1/me` — my profile, online state and last seen.
pub async fn get_me(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        Ok(json_response(200, &store.get_me(token).await?))
    })
    .await
}

/// `GET /v1/users?q=&limit=` — people I can start a chat with;
/// `GET /v1/users?ids=a,b` — the profiles of users I hold ids of.
pub async fn search_users(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let users = match UsersRequest::parse(query(request, "q"), query(request, "limit"), query(request, "ids"))? {
            UsersRequest::Search(search) => store.search_users(token, &search).await?,
            UsersRequest::Ids(ids) => store.get_profiles(token, &ids).await?,
        };
        Ok(json_response(200, &users))
    })
    .await
}

/// `GET /v1/presence?user_ids=a,b` — online and last seen, for the users I
/// share a conversation with (others are left out).
pub async fn get_presence(verifier: &TokenVerifier, store: &PostgrestStore, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let user_ids = parse_user_ids("user_ids", query(request, "user_ids"))?;
        Ok(json_response(200, &store.get_presence(token, &user_ids).await?))
    })
    .await
}
