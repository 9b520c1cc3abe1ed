//! The parts of an AWS SAM template the emulator serves: functions, HTTP API
//! routes and CORS configuration, and the WebSocket API with its routes,
//! authorizer and stage.

mod cors;
mod event_invoke;
mod functions;
mod resolve;
mod schedules;
mod throttling;
mod websocket;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::error::EmulatorError;
use crate::schedule::ScheduleSpec;
pub(crate) use event_invoke::EventInvokeSpec;
use resolve::Resolver;
pub(crate) use resolve::{function_arn, ACCOUNT_ID};

#[derive(Debug, Clone)]
pub(crate) struct FunctionSpec {
    pub logical_id: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`: `FunctionName` when set, else the logical id.
    pub function_name: String,
    /// The executable it runs (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// `Handler` (the function's own, else Globals'), given to the executable
    /// as `_HANDLER`: which function of the executable this is.
    pub handler: String,
    /// `Globals.Function.Environment` merged with the function's own, resolved.
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub reserved_concurrency: Option<usize>,
    /// `LoggingConfig.LogFormat` (`JSON` or `Text`), exported as `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// How its asynchronous invocations are retried and where failures go.
    pub event_invoke: EventInvokeSpec,
}

impl FunctionSpec {
    /// What people call the function: its `Handler` when one executable
    /// serves several functions, else the executable's name (a function whose
    /// executable is all it is has the custom runtime's `bootstrap`).
    pub fn short_name(&self) -> &str {
        if self.handler == functions::DEFAULT_HANDLER {
            &self.binary
        } else {
            &self.handler
        }
    }

    /// Whether `name` is this function's logical id, handler or executable.
    pub fn is_called(&self, name: &str) -> bool {
        [&self.logical_id, &self.handler, &self.binary]
            .iter()
            .any(|n| *n == name)
    }
}

/// One HTTP API route: `GET /v1/items/{id}`, `ANY /{proxy+}` or `$default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpRouteSpec {
    /// Upper-case method, `ANY`, or `None` for the `$default` route.
    pub method: Option<String>,
    pub path: String,
    pub function: String,
}

impl HttpRouteSpec {
    pub fn route_key(&self) -> String {
        match &self.method {
            Some(method) => format!("{method} {}", self.path),
            None => "$default".to_string(),
        }
    }
}

/// The HTTP API's `CorsConfiguration`: header names in lower case, methods in
/// upper case, origins as written (`*`, `https://*` or one origin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsRouteSpec {
    /// Logical id of the function the route integrates with.
    pub function: String,
    /// Logical id of the REQUEST authorizer's function.
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct WebSocketSpec {
    pub logical_id: String,
    pub route_selection_expression: String,
    pub stage: String,
    /// Route key (`$connect`, `$default`, `sendMessage`, ...) -> route.
    pub routes: BTreeMap<String, WsRouteSpec>,
    pub throttling: StageThrottling,
}

/// One route's throttling target; a field not set is not limited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RouteThrottle {
    /// `ThrottlingBurstLimit`: the token bucket's size.
    pub burst: Option<u64>,
    /// `ThrottlingRateLimit`: tokens added per second.
    pub rate: Option<f64>,
}

/// A stage's throttling: the defaults every route has, and per route key
/// the settings that override them, field by field.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StageThrottling {
    pub default: RouteThrottle,
    pub routes: BTreeMap<String, RouteThrottle>,
}

impl StageThrottling {
    /// What applies to `route_key`.
    pub fn for_route(&self, route_key: &str) -> RouteThrottle {
        let own = self.routes.get(route_key).copied().unwrap_or_default();
        RouteThrottle {
            burst: own.burst.or(self.default.burst),
            rate: own.rate.or(self.default.rate),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// Logical id -> function.
    pub functions: BTreeMap<String, FunctionSpec>,
    pub http_api_logical_id: String,
    pub http_routes: Vec<HttpRouteSpec>,
    /// `None`: the HTTP API has no CORS configuration (API Gateway then
    /// answers no preflight and adds no CORS headers).
    pub http_cors: Option<CorsSpec>,
    pub http_throttling: StageThrottling,
    pub websocket: Option<WebSocketSpec>,
    /// Every `Schedule` and `ScheduleV2` event, enabled or not.
    pub schedules: Vec<ScheduleSpec>,
}

impl Template {
    pub fn parse(
        text: &str,
        parameter_overrides: &BTreeMap<String, String>,
        region: &str,
    ) -> Result<Template, EmulatorError> {
        let err = |m: String| EmulatorError::Template(m);
        let root: Value = serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?;
        let empty = Mapping::new();
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| err("no Resources".into()))?;
        let resolver = Resolver {
            region: region.to_string(),
            parameters: parameter_values(&root, parameter_overrides),
            function_names: functions::function_names(resources),
        };
        let globals = root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_mapping)
            .unwrap_or(&empty);
        let functions = functions::parse_functions(resources, globals, &resolver).map_err(err)?;
        let (http_api_logical_id, http_routes) = functions::parse_http_routes(resources, &resolver).map_err(err)?;
        let http_globals = root.get("Globals").and_then(|g| g.get("HttpApi"));
        let http_cors = cors::parse_cors(resources, http_globals, &http_api_logical_id, &resolver).map_err(err)?;
        let http_api_properties = resources
            .get(http_api_logical_id.as_str())
            .and_then(|api| api.get("Properties"));
        let http_throttling =
            throttling::parse(http_api_properties, http_globals, &resolver, &http_api_logical_id).map_err(err)?;
        let websocket = websocket::parse_websocket(resources, &resolver).map_err(err)?;
        let schedules = schedules::parse_schedules(resources, &resolver).map_err(err)?;
        Ok(Template {
            functions,
            http_api_logical_id,
            http_routes,
            http_cors,
            http_throttling,
            websocket,
            schedules,
        })
    }
}

/// Every parameter's value: the override, else its `Default`.
fn parameter_values(root: &Value, overrides: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    if let Some(parameters) = root.get("Parameters").and_then(Value::as_mapping) {
        for (name, declaration) in parameters {
            let Some(name) = name.as_str() else { continue };
            let default = declaration.get("Default").map(scalar_string);
            match (overrides.get(name), default) {
                (Some(value), _) => values.insert(name.to_string(), value.clone()),
                (None, Some(default)) => values.insert(name.to_string(), default),
                (None, None) => {
                    tracing::warn!(
                        parameter = name,
                        "template parameter has no value; using an empty string"
                    );
                    values.insert(name.to_string(), String::new())
                }
            };
        }
    }
    for (name, value) in overrides {
        values.entry(name.clone()).or_insert_with(|| value.clone());
    }
    values
}

fn scalar_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The resources of one CloudFormation type, by logical id.
fn resources_of_type<'a>(resources: &'a Mapping, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    resources.iter().filter_map(move |(id, resource)| {
        let id = id.as_str()?;
        (resource.get("Type")?.as_str()? == kind).then_some((id, resource))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_template() -> Template {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).expect("template.yaml");
        let overrides = BTreeMap::from([
            ("SupabaseUrl".to_string(), "http://127.0.0.1:3000".to_string()),
            ("SupabaseAnonKey".to_string(), "anon".to_string()),
        ]);
        Template::parse(&text, &overrides, "us-east-1").expect("parse")
    }

    #[test]
    fn real_template_functions() {
        let t = real_template();
        let health = &t.functions["HealthFunction"];
        assert_eq!(health.binary, "chat-functions");
        assert_eq!(health.handler, "http-health");
        assert_eq!(health.function_name, "HealthFunction");
        assert_eq!(health.timeout, Duration::from_secs(10));
        assert_eq!(health.memory_mb, 256);
        assert_eq!(health.reserved_concurrency, None);
        assert_eq!(health.log_format.as_deref(), Some("JSON"));
        assert_eq!(health.env["SUPABASE_URL"], "http://127.0.0.1:3000");
        assert_eq!(health.env["SUPABASE_ANON_KEY"], "anon");
        // Given only to the functions that call internal RPCs (their own
        // Environment, merged over Globals).
        assert!(!health.env.contains_key("SUPABASE_SERVICE_ROLE_KEY"));
        // No Default and no override: empty.
        assert_eq!(
            t.functions["WsSendMessageFunction"].env["SUPABASE_SERVICE_ROLE_KEY"],
            ""
        );
        assert_eq!(
            t.functions["WsSendMessageFunction"].env["SUPABASE_URL"],
            "http://127.0.0.1:3000"
        );
        assert_eq!(health.env["SUPABASE_JWT_SECRET"], "");
        assert_eq!(health.env["RUST_LOG"], "info");
        assert_eq!(
            health.env["WEBSOCKET_MANAGEMENT_ENDPOINT"],
            "https://WebSocketApi.execute-api.us-east-1.amazonaws.com/dev"
        );
        assert_eq!(t.functions["WsSendMessageFunction"].handler, "ws-send-message");
        // Every function has a binary and a handler of its own; the template
        // grows as endpoints are added.
        assert!(t.functions.values().all(|f| !f.binary.is_empty()));
        let handlers: std::collections::BTreeSet<&str> = t.functions.values().map(|f| f.handler.as_str()).collect();
        assert_eq!(handlers.len(), t.functions.len(), "two functions share a Handler");
    }

    #[test]
    fn real_template_http_routes() {
        let t = real_template();
        assert_eq!(t.http_api_logical_id, "HttpApi");
        let keys: Vec<(String, &str)> = t
            .http_routes
            .iter()
            .map(|r| (r.route_key(), r.function.as_str()))
            .collect();
        assert!(keys.contains(&("GET /v1/health".to_string(), "HealthFunction")));
        assert!(keys.contains(&(
            "POST /v1/conversations/direct".to_string(),
            "OpenDirectConversationFunction"
        )));
        assert!(keys.contains(&(
            "GET /v1/conversations/{id}/messages".to_string(),
            "ListMessagesFunction"
        )));
        assert!(keys.contains(&(
            "POST /v1/conversations/{id}/messages".to_string(),
            "SendMessageFunction"
        )));
        assert!(t.http_routes.iter().all(|r| t.functions.contains_key(&r.function)));
    }

    #[test]
    fn real_template_cors() {
        let cors = real_template().http_cors.expect("the HTTP API configures CORS");
        assert_eq!(cors.allow_origins, ["*"]);
        assert!(cors.allow_headers.contains(&"idempotency-key".to_string()));
        assert!(!cors.allow_credentials);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let overrides = BTreeMap::from([("CorsAllowOrigin".to_string(), "https://chat.example".to_string())]);
        let t = Template::parse(&text, &overrides, "us-east-1").unwrap();
        assert_eq!(t.http_cors.unwrap().allow_origins, ["https://chat.example"]);
    }

    #[test]
    fn real_template_websocket() {
        let t = real_template();
        let ws = t.websocket.expect("websocket api");
        assert_eq!(ws.logical_id, "WebSocketApi");
        assert_eq!(ws.stage, "dev");
        assert_eq!(ws.route_selection_expression, "$request.body.action");
        let route = |k: &str| ws.routes.get(k).cloned().unwrap_or_else(|| panic!("route {k}"));
        assert_eq!(
            route("$connect"),
            WsRouteSpec {
                function: "WsConnectFunction".into(),
                authorizer: Some("WsAuthorizerFunction".into())
            }
        );
        assert_eq!(route("$disconnect").function, "WsDisconnectFunction");
        assert_eq!(route("$disconnect").authorizer, None);
        assert_eq!(route("sendMessage").function, "WsSendMessageFunction");
        assert_eq!(route("typing").function, "WsTypingFunction");
        assert_eq!(route("ping").function, "WsPingFunction");
        assert_eq!(route("$default").function, "WsDefaultFunction");
        assert!(ws.routes.values().all(|r| t.functions.contains_key(&r.function)));
        // The stage's throttling applies to every route alike.
        assert_eq!(
            ws.throttling.for_route("sendMessage"),
            RouteThrottle {
                burst: Some(500),
                rate: Some(1000.0)
            }
        );
    }

    #[test]
    fn throttling_settings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/template-throttled.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let parse =
            |text: &str| Template::parse(text, &BTreeMap::from([("ItemsBurst".into(), "7".into())]), "us-east-1");
        let t = parse(&text).unwrap();
        let items = t.http_throttling.for_route("GET /v1/items/{id}");
        assert_eq!(
            items,
            RouteThrottle {
                burst: Some(7),
                rate: Some(0.001)
            }
        );
        let open = t.http_throttling.for_route("GET /v1/open");
        assert_eq!(
            open,
            RouteThrottle {
                burst: Some(1000),
                rate: Some(0.001)
            }
        );
        let ws = t.websocket.unwrap().throttling;
        assert_eq!(ws.for_route("$connect").burst, Some(3));
        assert_eq!(ws.for_route("echo").burst, Some(2));
        for (good, bad) in [
            ("ThrottlingBurstLimit: 3", "ThrottlingBurstLimit: -3"),
            ("ThrottlingBurstLimit: 3", "ThrottlingBurstLimit: 1.5"),
            (
                "ThrottlingRateLimit: 0.001\n      RouteSettings",
                "ThrottlingRateLimit: fast\n      RouteSettings",
            ),
        ] {
            assert!(text.contains(good), "{good}");
            let error = parse(&text.replace(good, bad)).unwrap_err().to_string();
            assert!(
                error.contains("RouteSettings") && error.contains("must be"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn stage_parameter_override() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let overrides = BTreeMap::from([("StageName".to_string(), "local".to_string())]);
        let t = Template::parse(&text, &overrides, "eu-west-1").unwrap();
        assert_eq!(t.websocket.unwrap().stage, "local");
        assert_eq!(
            t.functions["WsPingFunction"].env["WEBSOCKET_MANAGEMENT_ENDPOINT"],
            "https://WebSocketApi.execute-api.eu-west-1.amazonaws.com/local"
        );
    }
}
