//! The `$connect` REQUEST authorizer. Browsers cannot set headers on a
//! WebSocket, so the token comes from `?token=` or from `Sec-WebSocket-Protocol`;
//! that is also why the route has no identity source and authorizer caching is off.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{token_from_subprotocols, AuthError, TokenVerifier};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerRequest {
    #[serde(default)]
    pub method_arn: Option<String>,
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
    #[serde(default)]
    pub query_string_parameters: Option<HashMap<String, String>>,
}

/// An IAM policy allowing the connection, plus the context API Gateway hands to
/// every later route of this connection.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: Value,
    pub context: Value,
}

/// Header lookup is case-insensitive: clients and proxies vary in how they spell them.
fn header<'a>(headers: &'a Option<HashMap<String, String>>, name: &str) -> Option<&'a str> {
    headers
        .as_ref()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The token a connecting client offers, if any.
pub fn offered_token(request: &AuthorizerRequest) -> Option<&str> {
    let from_query = request
        .query_string_parameters
        .as_ref()
        .and_then(|q| q.get("token"))
        .map(String::as_str)
        .filter(|t| !t.trim().is_empty());
    from_query.or_else(|| token_from_subprotocols(header(&request.headers, "sec-websocket-protocol")?).0)
}

/// Allows the connection for a valid token. A refused token is answered with the
/// error message `Unauthorized`, which is how a Lambda authorizer tells API
/// Gateway to answer 401 (a Deny policy would be a 403 "you may not", which is
/// not what a bad or missing token means).
pub async fn authorize(verifier: &TokenVerifier, request: AuthorizerRequest) -> Result<AuthorizerResponse, AuthError> {
    let token = offered_token(&request).ok_or(AuthError::Missing)?;
    let caller = verifier.verify(token).await?;
    let resource = request.method_arn.unwrap_or_else(|| "*".into());
    Ok(AuthorizerResponse {
        principal_id: caller.user_id.to_string(),
        policy_document: json!({
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}],
        }),
        context: json!({"user_id": caller.user_id.to_string(), "token_exp": caller.token_exp}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_query_or_subprotocol() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let mut request = AuthorizerRequest {
            query_string_parameters: Some(HashMap::from([("token".into(), jwt.into())])),
            ..Default::default()
        };
        assert_eq!(offered_token(&request), Some(jwt));
        request.query_string_parameters = None;
        request.headers = Some(HashMap::from([(
            "Sec-WebSocket-Protocol".into(),
            format!("chat, {jwt}"),
        )]));
        assert_eq!(offered_token(&request), Some(jwt));
        request.headers = Some(HashMap::from([("sec-websocket-protocol".into(), "chat".into())]));
        assert_eq!(offered_token(&request), None);
    }
}
