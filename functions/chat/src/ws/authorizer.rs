//! The `$connect` REQUEST authorizer. Browsers cannot set headers on a
//! WebSocket, so the token comes from `?token=` or from `Sec-WebSocket-Protocol`;
//! that is also why the route has no identity source and authorizer caching is off.
//!
//! What the authorizer puts in its context comes back on every later event of
//! the connection, so writing the context and reading it live here together.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{token_from_subprotocols, AuthError, Caller, TokenVerifier};

/// The token a connecting client offers, if any.
pub fn offered_token(request: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<&str> {
    let from_query = request
        .query_string_parameters
        .first("token")
        .filter(|t| !t.trim().is_empty());
    // Header names are case-insensitive in a HeaderMap: clients and proxies vary in how they spell them.
    from_query.or_else(|| {
        let offered = request.headers.get("sec-websocket-protocol")?.to_str().ok()?;
        token_from_subprotocols(offered).0
    })
}

/// Allows the connection for a valid token. A refused token is answered with the
/// error message `Unauthorized`, which is how a Lambda authorizer tells API
/// Gateway to answer 401 (a Deny policy would be a 403 "you may not", which is
/// not what a bad or missing token means).
pub async fn authorize(
    verifier: &TokenVerifier,
    request: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthError> {
    let token = offered_token(&request).ok_or(AuthError::Missing)?;
    let caller = verifier.verify(token).await?;
    Ok(allow(caller, request.method_arn.unwrap_or_else(|| "*".into())))
}

/// An IAM policy allowing `resource`, with the caller as the principal and the
/// context API Gateway hands to every later route of this connection.
fn allow(caller: Caller, resource: String) -> ApiGatewayCustomAuthorizerResponse {
    // The event types are `#[non_exhaustive]`: built from their defaults.
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![resource];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(caller.user_id.to_string());
    response.policy_document = policy;
    response.context = serde_json::to_value(caller).unwrap_or_default();
    response
}

/// The caller of a WebSocket event, from the authorizer context as API Gateway
/// passes it on: our keys (`user_id`, `token_exp`) beside its own (`principalId`),
/// and numbers possibly as strings. `None` if the event did not come through
/// the authorizer (a misconfiguration), which every route refuses.
pub fn caller(event: &ApiGatewayWebsocketProxyRequest) -> Option<Caller> {
    caller_from_context(&event.request_context.authorizer.fields)
}

fn caller_from_context(context: &HashMap<String, Value>) -> Option<Caller> {
    let user_id = context
        .get("user_id")
        .or_else(|| context.get("principalId"))?
        .as_str()?;
    let token_exp = match context.get("token_exp")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(Caller {
        user_id: Uuid::parse_str(user_id).ok()?,
        token_exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALICE: &str = "00000000-0000-4000-8000-00000000a11c";

    fn request(value: Value) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn token_from_query_or_subprotocol() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let by_query = request(json!({"queryStringParameters": {"token": jwt}, "requestContext": {}}));
        assert_eq!(offered_token(&by_query), Some(jwt));
        let by_protocol = request(json!({
            "headers": {"Sec-WebSocket-Protocol": format!("chat, {jwt}")}, "requestContext": {}
        }));
        assert_eq!(offered_token(&by_protocol), Some(jwt));
        let none = request(json!({"headers": {"sec-websocket-protocol": "chat"}, "requestContext": {}}));
        assert_eq!(offered_token(&none), None);
    }

    /// What the authorizer writes is what the routes read back, in the form
    /// API Gateway delivers it (values as strings, `principalId` added).
    #[test]
    fn the_context_written_at_connect_names_the_caller_of_later_events() {
        let caller = Caller {
            user_id: Uuid::parse_str(ALICE).unwrap(),
            token_exp: 4102444800,
        };
        let answer = serde_json::to_value(allow(caller, "arn:x/$connect".into())).unwrap();
        assert_eq!(answer["principalId"], ALICE);
        assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Resource"],
            json!(["arn:x/$connect"])
        );
        let as_sent: HashMap<String, Value> = answer["context"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string().trim_matches('"').into())))
            .chain([("principalId".to_string(), json!(ALICE))])
            .collect();
        assert_eq!(caller_from_context(&as_sent), Some(caller));
        // As a number, and with only API Gateway's principal.
        let numeric = HashMap::from([
            ("principalId".to_string(), json!(ALICE)),
            ("token_exp".into(), json!(7)),
        ]);
        assert_eq!(caller_from_context(&numeric).map(|c| c.token_exp), Some(7));
        assert_eq!(
            caller_from_context(&HashMap::from([("principalId".to_string(), json!(ALICE))])),
            None
        );
    }
}
