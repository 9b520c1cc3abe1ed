//! A small REST client of the HTTP API that returns (status, JSON body).

use serde_json::Value;

use super::User;

/// A small REST client that returns (status, JSON body).
pub struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, user: &User, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)).bearer_auth(&user.token))
            .await
    }

    pub async fn get_anonymous(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, user: &User, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(Some(&user.token), path, body.to_string()).await
    }

    pub async fn post_raw(&self, token: Option<&str>, path: &str, body: String) -> (u16, Value) {
        self.request(reqwest::Method::POST, token, path, Some(body)).await
    }

    pub async fn patch(&self, user: &User, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::PATCH, Some(&user.token), path, Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, user: &User, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, Some(&user.token), path, None)
            .await
    }

    /// Any method, with or without a token and a (raw) JSON body.
    pub async fn request(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }
}
