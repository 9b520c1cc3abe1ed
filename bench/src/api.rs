//! The REST calls the benchmark makes, each returning what it needs or why not.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::topology::Kind;
use crate::users::User;

/// A conversation whose creation failed on the server is tried this often.
const CREATE_ATTEMPTS: u32 = 5;
/// Pause before the next attempt, times the attempts made.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(http_url: &str) -> Api {
        Api {
            base: http_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// Creates a conversation as `creator`: a direct one with the one other
    /// member, else a group or room with all of them. A failed function
    /// (5xx, as under injected faults) is tried again; a group or room that
    /// attempt may have created anyway is left alone (its successor gets a
    /// name of its own: room names are unique).
    pub async fn create_conversation(
        &self,
        kind: Kind,
        creator: &User,
        others: &[&User],
        name: &str,
    ) -> Result<Uuid, String> {
        let mut attempt = 0;
        let (path, status, body) = loop {
            let name = match attempt {
                0 => name.to_owned(),
                n => format!("{name} ({n})"),
            };
            let (path, body) = match kind {
                Kind::Direct => ("/v1/conversations/direct", json!({"user_id": others[0].id})),
                Kind::Group | Kind::Room => (
                    "/v1/conversations",
                    json!({
                        "kind": kind.name(),
                        "name": name,
                        "member_ids": others.iter().map(|u| u.id).collect::<Vec<_>>(),
                    }),
                ),
            };
            attempt += 1;
            match self.post(creator, path, body).await {
                Ok((status, body)) if status < 500 || attempt == CREATE_ATTEMPTS => break (path, status, body),
                Err(error) if attempt == CREATE_ATTEMPTS => return Err(error),
                _ => tokio::time::sleep(RETRY_PAUSE * attempt).await,
            }
        };
        if status == 404 && kind != Kind::Direct {
            return Err(format!(
                "POST {path} does not exist on this build: run with `--direct-share 1 --room-size 0` to use direct conversations only"
            ));
        }
        if status != 200 && status != 201 {
            return Err(format!("creating a {} conversation: {status} {body}", kind.name()));
        }
        body["conversation"]["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| format!("creating a {} conversation: no id in {body}", kind.name()))
    }

    /// Adds members to a group or room as its owner (at most 100 at once); a
    /// failed function is tried again (adding is idempotent).
    pub async fn add_members(&self, owner: &User, conversation: Uuid, members: &[&User]) -> Result<(), String> {
        let path = format!("/v1/conversations/{conversation}/members");
        let body = json!({"user_ids": members.iter().map(|u| u.id).collect::<Vec<_>>()});
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.post(owner, &path, body.clone()).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, answer)) if status < 500 || attempt == CREATE_ATTEMPTS => {
                    return Err(format!("adding {} members: {status} {answer}", members.len()))
                }
                Err(error) if attempt == CREATE_ATTEMPTS => return Err(error),
                _ => tokio::time::sleep(RETRY_PAUSE * attempt).await,
            }
        }
    }

    /// One timed GET; the status says whether it counts.
    pub async fn timed_get(&self, user: &User, path: &str) -> Result<(u16, Duration), String> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&user.token)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        // The body is part of the answer: read it before stopping the clock.
        response.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
        Ok((status, started.elapsed()))
    }

    pub async fn get_anonymous(&self, path: &str) -> Result<u16, String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        Ok(response.status().as_u16())
    }

    /// A GET with a user's token: the status and the JSON answer (its text
    /// as a JSON string when it is not JSON).
    pub async fn get_json(&self, token: &str, path: &str) -> Result<(u16, Value), String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    async fn post(&self, user: &User, path: &str, body: Value) -> Result<(u16, Value), String> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}
