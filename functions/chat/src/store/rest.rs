use std::time::Duration;

use ::postgrest::{Builder, Postgrest};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::config::{Config, ConfigError, Limits, RateLimit, Secret};
use crate::domain::{
    ConversationPatch, EventsQuery, HistoryQuery, ListQuery, NewConversation, NewMessage, SearchQuery, UserQuery,
};

/// A PostgREST call that takes longer than this is abandoned (the Lambda's own
/// timeout is longer, so the client still gets a proper error).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PostgrestStore {
    /// `apikey: <anon key>`; the caller's token goes in `Authorization`.
    as_user: Postgrest,
    /// `apikey` (and `Authorization`) are the service_role key; `None` in the
    /// functions that are not given it.
    as_service: Option<(Postgrest, Secret)>,
    /// Passed with every guarded RPC; `None` in the functions not given them.
    limits: Option<Limits>,
}

/// Legacy Supabase keys are JWTs and go in `Authorization` too; the newer opaque
/// keys (`sb_secret_…`) are only valid as `apikey`, which the gateway maps to a role.
fn is_jwt(key: &str) -> bool {
    key.split('.').count() == 3
}

/// PostgREST's error body.
#[derive(Deserialize, Default)]
struct PostgrestError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<String>,
    /// Our SQL's `api_error(code, detail, hint)` puts a JSON object here.
    #[serde(default)]
    hint: Option<String>,
}

/// The hint of a `rate_limited` refusal.
#[derive(Deserialize)]
struct RetryHint {
    retry_after_ms: u64,
}

impl PostgrestStore {
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let keys = [
            ("SUPABASE_ANON_KEY", Some(&config.anon_key)),
            ("SUPABASE_SERVICE_ROLE_KEY", config.service_role_key.as_ref()),
        ];
        for (name, key) in keys.into_iter().filter_map(|(name, key)| Some((name, key?))) {
            if !key.expose().bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError {
                    name,
                    problem: "must be printable ASCII without spaces".into(),
                });
            }
        }
        // postgrest-rs joins paths with '/', so the base must not end with one.
        let base = config.rest_url.as_str().trim_end_matches('/').to_string();
        Ok(Self {
            as_user: Postgrest::new(base.clone()).insert_header("apikey", config.anon_key.expose()),
            as_service: config
                .service_role_key
                .as_ref()
                .map(|key| (Postgrest::new(base).insert_header("apikey", key.expose()), key.clone())),
            limits: config.limits,
        })
    }

    /// The deployment's limits, for a guarded RPC.
    fn limits(&self, function: &str) -> StoreResult<Limits> {
        self.limits.ok_or_else(|| {
            StoreError::Unexpected(format!(
                "{function} needs the rate limits (RATE_LIMIT_*, MAX_CONNECTIONS_PER_USER), which this function is not given"
            ))
        })
    }

    async fn service_rpc<T: DeserializeOwned>(&self, function: &str, params: Value) -> StoreResult<T> {
        let Some((as_service, key)) = &self.as_service else {
            return Err(StoreError::Unexpected(format!(
                "{function} needs SUPABASE_SERVICE_ROLE_KEY, which this function is not given"
            )));
        };
        let mut request = as_service.rpc(function, rpc_body(params));
        if is_jwt(key.expose()) {
            request = request.auth(key.expose());
        }
        send(request, function).await
    }

    async fn user_rpc<T: DeserializeOwned>(
        &self,
        token: UserToken<'_>,
        function: &str,
        params: Value,
    ) -> StoreResult<T> {
        let request = self.as_user.rpc(function, rpc_body(params)).auth(token.0);
        send(request, function).await
    }
}

/// The JSON body of an RPC call, without the parameters that are null: every
/// optional SQL parameter defaults to null, and leaving them out keeps the call
/// independent of how a PostgREST implementation binds a JSON null.
fn rpc_body(params: Value) -> String {
    match params {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()).to_string(),
        other => other.to_string(),
    }
}

/// A guarded RPC's parameters with the limits of its bucket added (see
/// sql/schemas/12_rate_limits.sql).
fn limited(mut params: Value, limit: RateLimit) -> Value {
    params["p_rate_per_minute"] = json!(limit.per_minute);
    params["p_rate_burst"] = json!(limit.burst);
    params
}

async fn send<T: DeserializeOwned>(request: Builder, function: &str) -> StoreResult<T> {
    let response = request
        .build()
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| StoreError::Unavailable(format!("{function}: {e}")))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| StoreError::Unavailable(format!("{function}: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| StoreError::Unexpected(format!("{function}: {e}")));
    }
    let error: PostgrestError = serde_json::from_slice(&bytes).unwrap_or_default();
    match (status.as_u16(), error.code.as_deref()) {
        // Our SQL functions raise their domain errors as P0001 with the code as message.
        (_, Some("P0001")) => Err(StoreError::Rejected {
            code: error.message.unwrap_or_default(),
            message: error.details.unwrap_or_default(),
            retry_after_ms: error
                .hint
                .and_then(|hint| serde_json::from_str::<RetryHint>(&hint).ok())
                .map(|hint| hint.retry_after_ms),
        }),
        (s, Some(code)) if s < 500 && (code.starts_with("22") || code.starts_with("23")) => {
            Err(StoreError::InvalidInput(format!("{function}: {code}")))
        }
        (401 | 403, _) => Err(StoreError::Unauthorized),
        (s, _) if s >= 500 => Err(StoreError::Unavailable(format!(
            "{function}: HTTP {s} {}",
            error.message.unwrap_or_default()
        ))),
        (s, code) => Err(StoreError::Unexpected(format!(
            "{function}: HTTP {s} {} {}",
            code.unwrap_or("-"),
            error.message.unwrap_or_default()
        ))),
    }
}

impl ConnectionRegistry for PostgrestStore {
    async fn register_connection(
        &self,
        connection_id: &str,
        user_id: Uuid,
        token_exp: DateTime<Utc>,
    ) -> StoreResult<Registered> {
        let max_connections = self.limits("register_connection")?.max_connections_per_user;
        self.service_rpc(
            "register_connection",
            json!({
                "p_connection_id": connection_id,
                "p_user_id": user_id,
                "p_token_exp": token_exp,
                "p_max_connections": max_connections,
            }),
        )
        .await
    }

    async fn unregister_connection(&self, connection_id: &str) -> StoreResult<Unregistered> {
        self.service_rpc("unregister_connection", json!({"p_connection_id": connection_id}))
            .await
    }

    async fn touch_connection(&self, connection_id: &str) -> StoreResult<()> {
        let _: Value = self
            .service_rpc("touch_connection", json!({"p_connection_id": connection_id}))
            .await?;
        Ok(())
    }

    async fn remove_connections(&self, connection_ids: &[String]) -> StoreResult<Outcome<Removed>> {
        self.service_rpc("remove_connections", json!({"p_connection_ids": connection_ids}))
            .await
    }

    async fn sweep_candidates(&self, stale_after_seconds: u32, limit: u32) -> StoreResult<SweepCandidates> {
        self.service_rpc(
            "sweep_candidates",
            json!({"p_stale_after_seconds": stale_after_seconds, "p_limit": limit}),
        )
        .await
    }

    async fn sweep_connections(&self, gone: &[String], alive: &[String]) -> StoreResult<Outcome<Swept>> {
        self.service_rpc("sweep_connections", json!({"p_gone": gone, "p_alive": alive}))
            .await
    }
}

impl MessageStore for PostgrestStore {
    async fn send_message(&self, sender: Uuid, message: &NewMessage) -> StoreResult<Outcome<Sent>> {
        let limit = self.limits("send_message")?.messages;
        self.service_rpc(
            "send_message",
            limited(
                json!({
                    "p_sender": sender,
                    "p_conversation_id": message.conversation_id,
                    "p_client_msg_id": message.client_msg_id,
                    "p_kind": message.kind.as_str(),
                    "p_body": message.body,
                    "p_attachment": message.attachment,
                    "p_reply_to_id": message.reply_to_id,
                }),
                limit,
            ),
        )
        .await
    }

    async fn send_typing(&self, user_id: Uuid, conversation_id: Uuid, is_typing: bool) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "send_typing",
            limited(
                json!({"p_user_id": user_id, "p_conversation_id": conversation_id, "p_is_typing": is_typing}),
                self.limits("send_typing")?.typing,
            ),
        )
        .await
    }

    async fn mark_read(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: Option<i64>,
    ) -> StoreResult<Outcome<ReadState>> {
        self.service_rpc(
            "mark_read",
            json!({"p_user_id": user_id, "p_conversation_id": conversation_id, "p_seq": seq}),
        )
        .await
    }

    async fn mark_delivered(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        seq: i64,
    ) -> StoreResult<Outcome<DeliveredState>> {
        self.service_rpc(
            "mark_delivered",
            json!({"p_user_id": user_id, "p_conversation_id": conversation_id, "p_seq": seq}),
        )
        .await
    }
}

/// The calls passed through as the database answers them (see the ports in
/// the parent module for why these are not behind a trait).
impl PostgrestStore {
    // Messages.

    /// Only the author; `message.updated` to the members. Takes from the
    /// sender's message bucket, as a send does.
    pub async fn edit_message(&self, user_id: Uuid, message_id: Uuid, body: &str) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "edit_message",
            limited(
                json!({"p_user_id": user_id, "p_message_id": message_id, "p_body": body}),
                self.limits("edit_message")?.messages,
            ),
        )
        .await
    }

    /// Only the author; the body is wiped; `message.deleted` to the members.
    pub async fn delete_message(&self, user_id: Uuid, message_id: Uuid) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "delete_message",
            json!({"p_user_id": user_id, "p_message_id": message_id}),
        )
        .await
    }

    pub async fn search_messages(&self, token: UserToken<'_>, query: &SearchQuery) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "search_messages",
            json!({
                "p_query": query.q,
                "p_conversation_id": query.conversation_id,
                "p_limit": query.limit,
                "p_offset": query.offset,
            }),
        )
        .await
    }

    pub async fn list_messages(
        &self,
        token: UserToken<'_>,
        conversation_id: Uuid,
        query: HistoryQuery,
    ) -> StoreResult<HistoryPage> {
        self.user_rpc(
            token,
            "list_messages",
            json!({
                "p_conversation_id": conversation_id,
                "p_before_seq": query.before_seq,
                "p_after_seq": query.after_seq,
                "p_limit": query.limit,
            }),
        )
        .await
    }

    // Conversations and membership.

    pub async fn open_direct_conversation(
        &self,
        user_id: Uuid,
        other_user_id: Uuid,
        context: Option<&ConversationContext>,
    ) -> StoreResult<Outcome<OpenedConversation>> {
        let limit = self.limits("open_direct_conversation")?.conversations;
        self.service_rpc(
            "open_direct_conversation",
            limited(
                json!({
                    "p_user_id": user_id,
                    "p_other_user_id": other_user_id,
                    "p_context_type": context.map(|c| &c.kind),
                    "p_context_id": context.map(|c| &c.id),
                }),
                limit,
            ),
        )
        .await
    }

    pub async fn create_conversation(&self, user_id: Uuid, input: &NewConversation) -> StoreResult<Outcome<Json>> {
        let limit = self.limits("create_conversation")?.conversations;
        self.service_rpc(
            "create_conversation",
            limited(
                json!({
                    "p_user_id": user_id,
                    "p_kind": input.kind.as_str(),
                    "p_name": input.name,
                    "p_member_ids": input.member_ids,
                }),
                limit,
            ),
        )
        .await
    }

    pub async fn update_conversation(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        patch: &ConversationPatch,
    ) -> StoreResult<Outcome<Json>> {
        // The database takes a token for a rename only.
        self.service_rpc(
            "update_conversation",
            limited(
                json!({
                    "p_user_id": user_id,
                    "p_conversation_id": conversation_id,
                    "p_name": patch.name,
                    "p_archived": patch.archived,
                    "p_muted": patch.muted,
                }),
                self.limits("update_conversation")?.conversations,
            ),
        )
        .await
    }

    pub async fn add_members(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "add_members",
            limited(
                json!({"p_user_id": user_id, "p_conversation_id": conversation_id, "p_user_ids": user_ids}),
                self.limits("add_members")?.conversations,
            ),
        )
        .await
    }

    pub async fn join_room(&self, user_id: Uuid, conversation_id: Uuid) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "join_room",
            limited(
                json!({"p_user_id": user_id, "p_conversation_id": conversation_id}),
                self.limits("join_room")?.joins,
            ),
        )
        .await
    }

    pub async fn leave_conversation(&self, user_id: Uuid, conversation_id: Uuid) -> StoreResult<Outcome<Json>> {
        self.service_rpc(
            "leave_conversation",
            json!({"p_user_id": user_id, "p_conversation_id": conversation_id}),
        )
        .await
    }

    pub async fn get_conversation(&self, token: UserToken<'_>, conversation_id: Uuid) -> StoreResult<Json> {
        self.user_rpc(token, "get_conversation", json!({"p_conversation_id": conversation_id}))
            .await
    }

    pub async fn list_conversations(
        &self,
        token: UserToken<'_>,
        query: &ListQuery,
        archived: Option<bool>,
    ) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "list_conversations",
            json!({"p_limit": query.limit, "p_cursor": query.cursor, "p_archived": archived}),
        )
        .await
    }

    pub async fn list_rooms(&self, token: UserToken<'_>, query: &ListQuery) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "list_rooms",
            json!({"p_limit": query.limit, "p_cursor": query.cursor}),
        )
        .await
    }

    pub async fn list_events(
        &self,
        token: UserToken<'_>,
        conversation_id: Uuid,
        query: EventsQuery,
    ) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "list_events",
            json!({"p_conversation_id": conversation_id, "p_after_seq": query.after_seq, "p_limit": query.limit}),
        )
        .await
    }

    pub async fn conversation_stats(&self, token: UserToken<'_>, conversation_id: Uuid) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "conversation_stats",
            json!({"p_conversation_id": conversation_id}),
        )
        .await
    }

    pub async fn conversation_connections(&self, token: UserToken<'_>, conversation_id: Uuid) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "conversation_connections",
            json!({"p_conversation_id": conversation_id}),
        )
        .await
    }

    pub async fn unread_counts(&self, token: UserToken<'_>) -> StoreResult<Json> {
        self.user_rpc(token, "unread_counts", json!({})).await
    }

    // Profiles and presence.

    pub async fn get_me(&self, token: UserToken<'_>) -> StoreResult<Json> {
        self.user_rpc(token, "get_me", json!({})).await
    }

    pub async fn search_users(&self, token: UserToken<'_>, query: &UserQuery) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "search_users",
            json!({"p_query": query.q, "p_limit": query.limit}),
        )
        .await
    }

    pub async fn get_profiles(&self, token: UserToken<'_>, user_ids: &[Uuid]) -> StoreResult<Json> {
        self.user_rpc(token, "get_profiles", json!({"p_user_ids": user_ids}))
            .await
    }

    pub async fn get_presence(&self, token: UserToken<'_>, user_ids: &[Uuid]) -> StoreResult<Json> {
        self.user_rpc(token, "get_presence", json!({"p_user_ids": user_ids}))
            .await
    }

    // Blocks.

    pub async fn block_user(&self, token: UserToken<'_>, user_id: Uuid) -> StoreResult<Json> {
        self.user_rpc(token, "block_user", json!({"p_user_id": user_id})).await
    }

    pub async fn unblock_user(&self, token: UserToken<'_>, user_id: Uuid) -> StoreResult<Json> {
        self.user_rpc(token, "unblock_user", json!({"p_user_id": user_id}))
            .await
    }

    pub async fn list_blocks(&self, token: UserToken<'_>) -> StoreResult<Json> {
        self.user_rpc(token, "list_blocks", json!({})).await
    }

    // Push subscriptions.

    pub async fn save_push_subscription(
        &self,
        token: UserToken<'_>,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> StoreResult<Json> {
        self.user_rpc(
            token,
            "save_push_subscription",
            json!({"p_endpoint": endpoint, "p_p256dh": p256dh, "p_auth": auth}),
        )
        .await
    }

    pub async fn delete_push_subscription(&self, token: UserToken<'_>, endpoint: &str) -> StoreResult<Json> {
        self.user_rpc(token, "delete_push_subscription", json!({"p_endpoint": endpoint}))
            .await
    }
}

impl crate::notify::NotificationStore for PostgrestStore {
    async fn notification_targets(
        &self,
        message_id: Uuid,
        user_ids: &[Uuid],
        preview: crate::notify::PreviewMode,
    ) -> StoreResult<crate::notify::Targets> {
        self.service_rpc(
            "notification_targets",
            json!({"p_message_id": message_id, "p_user_ids": user_ids, "p_preview": preview.as_str()}),
        )
        .await
    }

    async fn remove_push_subscriptions(&self, endpoints: &[String]) -> StoreResult<usize> {
        let removed: Removed = self
            .service_rpc("remove_push_subscriptions", json!({"p_endpoints": endpoints}))
            .await?;
        Ok(removed.removed)
    }
}

impl HealthProbe for PostgrestStore {
    async fn health_stats(&self) -> StoreResult<HealthStats> {
        // Anonymous on purpose (no Authorization: the anon role): health must not
        // depend on the service key, and it reports aggregate counts only.
        send(self.as_user.rpc("health_stats", "{}"), "health_stats").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_bodies_leave_out_null_parameters() {
        let body = rpc_body(json!({"p_a": 1, "p_b": null, "p_c": "x"}));
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, json!({"p_a": 1, "p_c": "x"}));
    }
}
