//! The WebSocket API: `AWS::ApiGatewayV2::Api` (ProtocolType WEBSOCKET) with its
//! routes, integrations, REQUEST authorizer and stage.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::resolve::Resolver;
use super::{resources_of_type, throttling, StageThrottling, WebSocketSpec, WsRouteSpec};

const API_TYPE: &str = "AWS::ApiGatewayV2::Api";
const ROUTE_TYPE: &str = "AWS::ApiGatewayV2::Route";
const STAGE_TYPE: &str = "AWS::ApiGatewayV2::Stage";
const INTEGRATION_TYPE: &str = "AWS::ApiGatewayV2::Integration";
const AUTHORIZER_TYPE: &str = "AWS::ApiGatewayV2::Authorizer";
/// What API Gateway uses when no stage is declared.
const FALLBACK_STAGE: &str = "$default";

pub(super) fn parse_websocket(resources: &Mapping, resolver: &Resolver) -> Result<Option<WebSocketSpec>, String> {
    let api = resources_of_type(resources, API_TYPE).find(|(_, api)| {
        api.get("Properties")
            .and_then(|p| p.get("ProtocolType"))
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("WEBSOCKET"))
    });
    let Some((api_id, api)) = api else {
        return Ok(None);
    };
    let prop = |resource: &Value, key: &str| -> Result<Option<String>, String> {
        resource
            .get("Properties")
            .and_then(|p| p.get(key))
            .map(|v| resolver.resolve(v).map_err(|e| format!("{key}: {e}")))
            .transpose()
    };
    let belongs_to_api =
        |resource: &Value| -> Result<bool, String> { Ok(prop(resource, "ApiId")?.as_deref() == Some(api_id)) };

    let route_selection_expression =
        prop(api, "RouteSelectionExpression")?.unwrap_or_else(|| "$request.body.action".to_string());

    let mut stage = None;
    let mut throttling = StageThrottling::default();
    for (stage_id, resource) in resources_of_type(resources, STAGE_TYPE) {
        if belongs_to_api(resource)? {
            stage = prop(resource, "StageName")?;
            throttling = throttling::parse(resource.get("Properties"), None, resolver, stage_id)?;
            break;
        }
    }

    let mut routes = BTreeMap::new();
    for (route_id, route) in resources_of_type(resources, ROUTE_TYPE) {
        if !belongs_to_api(route)? {
            continue;
        }
        let in_route = |e: String| format!("{route_id}: {e}");
        let route_key = prop(route, "RouteKey")
            .map_err(in_route)?
            .ok_or_else(|| in_route("no RouteKey".into()))?;
        let target = prop(route, "Target")
            .map_err(in_route)?
            .ok_or_else(|| in_route("no Target".into()))?;
        let integration_id = target.strip_prefix("integrations/").unwrap_or(&target);
        let integration = resource(resources, integration_id, INTEGRATION_TYPE).map_err(in_route)?;
        let uri = prop(integration, "IntegrationUri")
            .map_err(in_route)?
            .ok_or_else(|| in_route(format!("{integration_id} has no IntegrationUri")))?;
        let function = function_of_uri(&uri, resolver).ok_or_else(|| in_route(format!("no function in {uri}")))?;

        let authorizer = match prop(route, "AuthorizerId").map_err(in_route)? {
            None => None,
            Some(authorizer_id) => {
                let authorizer = resource(resources, &authorizer_id, AUTHORIZER_TYPE).map_err(in_route)?;
                let kind = prop(authorizer, "AuthorizerType").map_err(in_route)?;
                if kind.as_deref() != Some("REQUEST") {
                    return Err(in_route(format!(
                        "{authorizer_id}: only REQUEST authorizers are supported"
                    )));
                }
                let uri = prop(authorizer, "AuthorizerUri")
                    .map_err(in_route)?
                    .ok_or_else(|| in_route(format!("{authorizer_id} has no AuthorizerUri")))?;
                Some(function_of_uri(&uri, resolver).ok_or_else(|| in_route(format!("no function in {uri}")))?)
            }
        };
        routes.insert(route_key, WsRouteSpec { function, authorizer });
    }

    Ok(Some(WebSocketSpec {
        logical_id: api_id.to_string(),
        route_selection_expression,
        stage: stage.unwrap_or_else(|| FALLBACK_STAGE.to_string()),
        routes,
        throttling,
    }))
}

fn resource<'a>(resources: &'a Mapping, id: &str, kind: &str) -> Result<&'a Value, String> {
    let resource = resources.get(id).ok_or_else(|| format!("no resource {id}"))?;
    match resource.get("Type").and_then(Value::as_str) {
        Some(t) if t == kind => Ok(resource),
        _ => Err(format!("{id} is not an {kind}")),
    }
}

/// The logical id of the function in an integration or authorizer URI
/// (`arn:aws:apigateway:…:lambda:path/2015-03-31/functions/<function ARN>/invocations`)
/// or in a plain function ARN.
fn function_of_uri(uri: &str, resolver: &Resolver) -> Option<String> {
    let (_, after) = uri.split_once(":function:")?;
    let name = after.split('/').next()?.split(':').next()?;
    resolver
        .function_names
        .iter()
        .find(|(_, function_name)| function_name.as_str() == name)
        .map(|(id, _)| id.clone())
}
