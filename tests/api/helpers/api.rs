//! The REST API's calls, typed: each asserts the status a successful call
//! answers and returns what the tests read. Failing calls go through
//! [`Stack::http`] directly, so a test sees their status and body.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use uuid::Uuid;

use super::{tag, uuid_of, Stack, User};

pub fn messages_path(conversation: Uuid) -> String {
    format!("/v1/conversations/{conversation}/messages")
}

impl Stack {
    /// Opens (or finds) the direct conversation between `a` and `b`, as `a`.
    pub async fn direct_conversation(&self, a: &User, b: &User) -> Uuid {
        let (status, body) = self
            .http()
            .post(a, "/v1/conversations/direct", json!({"user_id": b.id}))
            .await;
        assert!(status == 201 || status == 200, "open direct: {status} {body}");
        uuid_of(&body["conversation"]["id"])
    }

    /// Two fresh users and the direct conversation between them.
    pub async fn direct_pair(&self) -> (User, User, Uuid) {
        let (a, b) = (self.new_user("alice").await, self.new_user("bob").await);
        let conversation = self.direct_conversation(&a, &b).await;
        (a, b, conversation)
    }

    /// Makes `a` and `b` contacts, who see each other's presence: a group of
    /// theirs in which both have sent a message (opening a conversation is
    /// not enough). Returns the group.
    pub async fn make_contacts(&self, a: &User, b: &User) -> Uuid {
        let group = self.group(a, &[b]).await;
        self.send_text(a, group, "hello").await;
        self.send_text(b, group, "hello").await;
        group
    }

    /// Creates a group or room as `owner` and returns the `conversation` object.
    pub async fn create(&self, owner: &User, kind: &str, name: &str, members: &[&User]) -> Value {
        let member_ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
        let (status, body) = self
            .http()
            .post(
                owner,
                "/v1/conversations",
                json!({"kind": kind, "name": name, "member_ids": member_ids}),
            )
            .await;
        assert_eq!(status, 201, "create {kind} {name:?}: {body}");
        body["conversation"].clone()
    }

    /// A group owned by `owner` with `members`.
    pub async fn group(&self, owner: &User, members: &[&User]) -> Uuid {
        uuid_of(&self.create(owner, "group", &format!("group {}", tag()), members).await["id"])
    }

    /// A public room owned by `owner` with `members`.
    pub async fn room(&self, owner: &User, members: &[&User]) -> Uuid {
        uuid_of(&self.create(owner, "room", &format!("room {}", tag()), members).await["id"])
    }

    /// GET /v1/conversations/{id}.
    pub async fn details(&self, user: &User, conversation: Uuid) -> Value {
        let (status, body) = self
            .http()
            .get(user, &format!("/v1/conversations/{conversation}"))
            .await;
        assert_eq!(status, 200, "get conversation: {body}");
        body
    }

    /// GET /v1/conversations with the given query string (`""` or `"?…"`).
    pub async fn list(&self, user: &User, query: &str) -> Value {
        let (status, body) = self.http().get(user, &format!("/v1/conversations{query}")).await;
        assert_eq!(status, 200, "list {query:?}: {body}");
        body
    }

    /// The entry of `conversation` in GET /v1/conversations.
    pub async fn listed(&self, user: &User, conversation: Uuid) -> Value {
        let body = self.list(user, "?limit=100").await;
        body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == conversation.to_string())
            .unwrap_or_else(|| panic!("{conversation} is not listed: {body}"))
            .clone()
    }

    /// Sends over REST and returns the stored message (asserting 201, not a duplicate).
    pub async fn send(&self, user: &User, conversation: Uuid, message: Value) -> Value {
        let (status, body) = self.http().post(user, &messages_path(conversation), message).await;
        assert_eq!(status, 201, "send: {body}");
        assert_eq!(body["duplicate"], false);
        body["message"].clone()
    }

    pub async fn send_text(&self, user: &User, conversation: Uuid, text: &str) -> Value {
        self.send(user, conversation, json!({"body": text})).await
    }

    /// Every message of a conversation (at most 100), as `user` sees them.
    pub async fn history(&self, user: &User, conversation: Uuid) -> Vec<Value> {
        let (status, body) = self
            .http()
            .get(user, &format!("{}?limit=100", messages_path(conversation)))
            .await;
        assert_eq!(status, 200, "history: {body}");
        body["messages"].as_array().unwrap().clone()
    }

    /// The whole replayable event log of a conversation, as `user` sees it.
    pub async fn events(&self, user: &User, conversation: Uuid) -> Value {
        let (status, body) = self
            .http()
            .get(
                user,
                &format!("/v1/conversations/{conversation}/events?after_seq=0&limit=500"),
            )
            .await;
        assert_eq!(status, 200, "events: {body}");
        body
    }

    /// GET /v1/messages/search with the given query string (already encoded).
    pub async fn search(&self, user: &User, query: &str) -> (u16, Value) {
        self.http().get(user, &format!("/v1/messages/search?{query}")).await
    }

    /// Ids of the messages a search finds (asserting 200).
    pub async fn found(&self, user: &User, query: &str) -> BTreeSet<String> {
        let (status, body) = self.search(user, query).await;
        assert_eq!(status, 200, "search {query}: {body}");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message"]["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// POST /v1/conversations/{id}/read.
    pub async fn mark_read(&self, user: &User, conversation: Uuid, body: Value) -> (u16, Value) {
        self.http()
            .post(user, &format!("/v1/conversations/{conversation}/read"), body)
            .await
    }

    /// GET /v1/unread.
    pub async fn unread(&self, user: &User) -> Value {
        let (status, body) = self.http().get(user, "/v1/unread").await;
        assert_eq!(status, 200, "unread: {body}");
        body
    }
}
