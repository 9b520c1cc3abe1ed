//! `template.yaml` and `docs/openapi.yaml` (and the other YAML documents) as
//! the tests read them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::Value;

/// (METHOD, path) of an HTTP API route.
pub type Route = (String, String);

/// A YAML file of the repository.
pub fn load(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

/// The REST contract.
pub fn openapi() -> Value {
    load("docs/openapi.yaml")
}

/// The only operation of `docs/openapi.yaml` that needs no token.
pub const PUBLIC: (&str, &str) = ("GET", "/v1/health");
/// The keys of an OpenAPI path item that are operations.
pub const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// (METHOD, path) -> the operation object, for every operation of an OpenAPI document.
pub fn operations(doc: &Value) -> BTreeMap<Route, Value> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_mapping)
        .expect("openapi.yaml has paths");
    let mut operations = BTreeMap::new();
    for (path, item) in paths {
        let path = text(path).expect("paths are strings");
        for method in HTTP_METHODS {
            if let Some(operation) = item.get(method) {
                operations.insert((method.to_ascii_uppercase(), path.clone()), operation.clone());
            }
        }
    }
    operations
}

/// CloudFormation short tags (`!Ref X`, `!Sub "…"`) come out of serde_yaml as
/// tagged values; what matters here is the value under the tag.
pub fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

pub fn text(value: &Value) -> Option<String> {
    match untag(value) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A template function with the HTTP API routes it serves.
pub struct TemplateFunction {
    /// Its `Handler`: which function of the one executable it is.
    pub handler: Option<String>,
    pub routes: Vec<Route>,
}

/// Every `AWS::Serverless::Function` with its `HttpApi` events, by logical id.
/// An `HttpApi` event without `Path` and `Method` is API Gateway's catch-all
/// `$default` route.
pub fn template_functions() -> BTreeMap<String, TemplateFunction> {
    let template = load("template.yaml");
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template.yaml has Resources");
    let mut functions = BTreeMap::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(text).as_deref() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = text(id).expect("logical ids are strings");
        let handler = resource.get("Properties").and_then(|p| p.get("Handler")).and_then(text);
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| untag(e).as_mapping());
        let mut routes = Vec::new();
        for (_, event) in events.into_iter().flatten() {
            if event.get("Type").and_then(text).as_deref() != Some("HttpApi") {
                continue;
            }
            let field = |key: &str| event.get("Properties").and_then(|p| p.get(key)).and_then(text);
            routes.push(match (field("Method"), field("Path")) {
                (Some(method), Some(path)) => (method.to_ascii_uppercase(), path),
                _ => ("ANY".to_string(), "$default".to_string()),
            });
        }
        functions.insert(id, TemplateFunction { handler, routes });
    }
    functions
}
