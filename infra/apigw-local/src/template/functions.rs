//! `AWS::Serverless::Function` resources and their `HttpApi` events.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::resolve::Resolver;
use super::{resources_of_type, FunctionSpec, HttpRouteSpec};

const FUNCTION_TYPE: &str = "AWS::Serverless::Function";
const DEFAULT_TIMEOUT_SECS: u64 = 3;
const DEFAULT_MEMORY_MB: u64 = 128;
/// What `sam init` writes for a custom runtime: the executable is the function.
pub(super) const DEFAULT_HANDLER: &str = "bootstrap";
/// The HTTP API SAM creates when events name no `ApiId`.
const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";

/// Logical id -> function name (`FunctionName` when it is a plain string).
pub(super) fn function_names(resources: &Mapping) -> BTreeMap<String, String> {
    resources_of_type(resources, FUNCTION_TYPE)
        .map(|(id, resource)| {
            let name = resource
                .get("Properties")
                .and_then(|p| p.get("FunctionName"))
                .and_then(Value::as_str)
                .unwrap_or(id);
            (id.to_string(), name.to_string())
        })
        .collect()
}

pub(super) fn parse_functions(
    resources: &Mapping,
    globals: &Mapping,
    resolver: &Resolver,
) -> Result<BTreeMap<String, FunctionSpec>, String> {
    let mut functions = BTreeMap::new();
    for (id, resource) in resources_of_type(resources, FUNCTION_TYPE) {
        let empty = Mapping::new();
        let props = resource.get("Properties").and_then(Value::as_mapping).unwrap_or(&empty);
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .ok_or_else(|| format!("{id}: no Metadata.BuildProperties.Binary"))?;
        let binary = resolver.resolve(binary).map_err(|e| format!("{id}: {e}"))?;

        let mut env = BTreeMap::new();
        for source in [globals, props] {
            let variables = source
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping);
            for (name, value) in variables.into_iter().flatten() {
                let name = name
                    .as_str()
                    .ok_or_else(|| format!("{id}: environment names must be strings"))?;
                let value = resolver.resolve(value).map_err(|e| format!("{id}: {name}: {e}"))?;
                env.insert(name.to_string(), value);
            }
        }

        // A function's own setting wins over Globals.
        let setting = |key: &str| -> Result<Option<String>, String> {
            props
                .get(key)
                .or_else(|| globals.get(key))
                .map(|v| resolver.resolve(v).map_err(|e| format!("{id}: {key}: {e}")))
                .transpose()
        };
        let number = |key: &str| -> Result<Option<u64>, String> {
            setting(key)?
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map(|n| n as u64)
                        .map_err(|_| format!("{id}: {key} is not a number: {v:?}"))
                })
                .transpose()
        };
        let function_name = match props.get("FunctionName") {
            Some(name) => resolver.resolve(name).map_err(|e| format!("{id}: FunctionName: {e}"))?,
            None => id.to_string(),
        };
        let handler = setting("Handler")?.unwrap_or_else(|| DEFAULT_HANDLER.to_string());
        let log_format = props
            .get("LoggingConfig")
            .or_else(|| globals.get("LoggingConfig"))
            .and_then(|c| c.get("LogFormat"))
            .map(|v| resolver.resolve(v))
            .transpose()
            .map_err(|e| format!("{id}: LogFormat: {e}"))?;

        functions.insert(
            id.to_string(),
            FunctionSpec {
                logical_id: id.to_string(),
                function_name,
                binary,
                handler,
                env,
                timeout: Duration::from_secs(number("Timeout")?.unwrap_or(DEFAULT_TIMEOUT_SECS)),
                memory_mb: number("MemorySize")?.unwrap_or(DEFAULT_MEMORY_MB),
                reserved_concurrency: number("ReservedConcurrentExecutions")?.map(|n| n as usize),
                log_format,
                event_invoke: super::event_invoke::parse(props, resolver).map_err(|e| format!("{id}: {e}"))?,
            },
        );
    }
    Ok(functions)
}

/// The HTTP API's logical id and every `HttpApi` event as a route.
pub(super) fn parse_http_routes(
    resources: &Mapping,
    resolver: &Resolver,
) -> Result<(String, Vec<HttpRouteSpec>), String> {
    let mut api_id: Option<String> = None;
    let mut routes = Vec::new();
    for (id, resource) in resources_of_type(resources, FUNCTION_TYPE) {
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for (event_name, event) in events.into_iter().flatten() {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties");
            let field = |key: &str| -> Result<Option<String>, String> {
                props
                    .and_then(|p| p.get(key))
                    .map(|v| {
                        resolver
                            .resolve(v)
                            .map_err(|e| format!("{id}.{event_name:?}.{key}: {e}"))
                    })
                    .transpose()
            };
            if api_id.is_none() {
                api_id = field("ApiId")?;
            }
            let route = match (field("Method")?, field("Path")?) {
                (Some(method), Some(path)) => HttpRouteSpec {
                    method: Some(method.to_ascii_uppercase()),
                    path,
                    function: id.to_string(),
                },
                // An HttpApi event without Path and Method is the catch-all `$default` route.
                _ => HttpRouteSpec {
                    method: None,
                    path: String::new(),
                    function: id.to_string(),
                },
            };
            routes.push(route);
        }
    }
    Ok((api_id.unwrap_or_else(|| IMPLICIT_HTTP_API.to_string()), routes))
}
