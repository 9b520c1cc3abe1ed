//! The REST contract (`docs/openapi.yaml`) against what is deployed
//! (`template.yaml`): the same routes on both sides, every operation with its
//! responses and the one error shape, bearer auth everywhere but health.
//! Reads files only: no stack, no network.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::helpers::template::{load, openapi, operations, template_functions, text, Route, HTTP_METHODS, PUBLIC};

const ERROR_SCHEMA: &str = "#/components/schemas/Error";

fn show(routes: &BTreeSet<Route>) -> String {
    routes.iter().map(|(m, p)| format!("\n    {m} {p}")).collect()
}

/// (METHOD, path) -> logical id of the function that serves it.
fn template_routes() -> BTreeMap<Route, String> {
    let mut routes = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (id, function) in template_functions() {
        for route in function.routes {
            if let Some(other) = routes.insert(route.clone(), id.clone()) {
                duplicates.push(format!("{} {} ({other} and {id})", route.0, route.1));
            }
        }
    }
    assert!(
        duplicates.is_empty(),
        "template.yaml routes one HTTP route to two functions: {duplicates:?}"
    );
    routes
}

/// Follows local `$ref`s (`#/components/...`) to the object they name.
fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        node = pointer(doc, reference).unwrap_or_else(|| panic!("unresolvable $ref {reference}"));
    }
    panic!("$ref chain too long")
}

fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(doc, |node, segment| {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        node.get(segment.as_str())
    })
}

fn route_name(route: &Route) -> String {
    format!("{} {}", route.0, route.1)
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = openapi();
    let version = doc.get("openapi").and_then(text).expect("an `openapi` field");
    assert!(version.starts_with("3.1."), "openapi is {version:?}, expected 3.1.x");
    assert!(
        doc.get("info").and_then(|i| i.get("title")).is_some(),
        "info.title is required"
    );
    assert!(
        doc.get("info").and_then(|i| i.get("version")).is_some(),
        "info.version is required"
    );
}

#[test]
fn the_documented_routes_are_the_template_http_api_routes() {
    let documented: BTreeSet<Route> = operations(&openapi()).into_keys().collect();
    let deployed: BTreeSet<Route> = template_routes().into_keys().collect();
    let undeployed: BTreeSet<Route> = documented.difference(&deployed).cloned().collect();
    let undocumented: BTreeSet<Route> = deployed.difference(&documented).cloned().collect();
    assert!(
        undeployed.is_empty() && undocumented.is_empty(),
        "docs/openapi.yaml and template.yaml disagree.\n  \
         In docs/openapi.yaml but not an HttpApi event in template.yaml ({}):{}\n  \
         An HttpApi event in template.yaml but not in docs/openapi.yaml ({}):{}",
        undeployed.len(),
        show(&undeployed),
        undocumented.len(),
        show(&undocumented),
    );
}

/// Where both sides have a route, the operation's `x-lambda-handler` is the
/// Handler of the function the template routes it to.
#[test]
fn each_operation_names_the_function_that_serves_it() {
    let doc = openapi();
    let functions = template_functions();
    let routes = template_routes();
    let mut wrong = Vec::new();
    for (route, operation) in operations(&doc) {
        let Some(function) = routes.get(&route) else { continue };
        let documented = operation.get("x-lambda-handler").and_then(text);
        let deployed = functions[function].handler.clone();
        if documented != deployed {
            wrong.push(format!(
                "{}: docs/openapi.yaml says {documented:?}, template.yaml routes it to {function} ({deployed:?})",
                route_name(&route)
            ));
        }
    }
    assert!(wrong.is_empty(), "handlers disagree:\n  {}", wrong.join("\n  "));
}

#[test]
fn every_operation_declares_its_responses_with_the_error_shape() {
    let doc = openapi();
    let error = pointer(&doc, ERROR_SCHEMA).expect("components.schemas.Error exists");
    let inner = error
        .get("properties")
        .and_then(|p| p.get("error"))
        .expect("Error has an `error` object");
    for field in ["code", "message", "request_id"] {
        assert!(
            inner.get("properties").and_then(|p| p.get(field)).is_some(),
            "Error.error has no property {field}"
        );
        let required = inner
            .get("required")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        assert!(
            required.iter().any(|r| r.as_str() == Some(field)),
            "Error.error does not require {field}"
        );
    }

    let mut problems = Vec::new();
    for (route, operation) in operations(&doc) {
        let name = route_name(&route);
        let is_public = route == (PUBLIC.0.to_string(), PUBLIC.1.to_string());
        let Some(responses) = operation.get("responses").and_then(Value::as_mapping) else {
            problems.push(format!("{name}: no responses"));
            continue;
        };
        let statuses: BTreeMap<String, &Value> = responses
            .iter()
            .map(|(status, response)| (text(status).unwrap_or_default(), resolve(&doc, response)))
            .collect();
        let json_schema = |response: &Value| -> Option<Value> {
            response.get("content")?.get("application/json")?.get("schema").cloned()
        };

        let successes: Vec<&String> = statuses.keys().filter(|s| s.starts_with('2')).collect();
        if successes.is_empty() {
            problems.push(format!("{name}: no 2xx response"));
        }
        for status in successes {
            if json_schema(statuses[status]).is_none() {
                problems.push(format!("{name}: {status} has no application/json schema"));
            }
        }

        let failures: Vec<&String> = statuses
            .keys()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
            .collect();
        if failures.is_empty() {
            problems.push(format!("{name}: no error responses"));
        }
        if is_public {
            // Health answers 503 with its own degraded document, not the error shape.
            if !statuses.contains_key("503") {
                problems.push(format!("{name}: no 503 (database unreachable)"));
            }
            continue;
        }
        for required in ["401", "500"] {
            if !statuses.contains_key(required) {
                problems.push(format!("{name}: no {required} response"));
            }
        }
        for status in failures {
            let schema = json_schema(statuses[status]);
            let reference = schema.as_ref().and_then(|s| s.get("$ref")).and_then(Value::as_str);
            if reference != Some(ERROR_SCHEMA) {
                problems.push(format!("{name}: {status} does not use {ERROR_SCHEMA} (has {schema:?})"));
            }
        }
    }
    assert!(problems.is_empty(), "responses:\n  {}", problems.join("\n  "));
}

#[test]
fn every_operation_but_health_requires_a_bearer_token() {
    let doc = openapi();
    let schemes = doc
        .get("components")
        .and_then(|c| c.get("securitySchemes"))
        .and_then(Value::as_mapping)
        .expect("components.securitySchemes");
    let bearer: BTreeSet<String> = schemes
        .iter()
        .filter(|(_, scheme)| {
            let scheme = resolve(&doc, scheme);
            scheme.get("type").and_then(Value::as_str) == Some("http")
                && scheme
                    .get("scheme")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        })
        .filter_map(|(name, _)| text(name))
        .collect();
    assert!(!bearer.is_empty(), "no http bearer security scheme");

    let global = doc.get("security");
    let mut problems = Vec::new();
    for (route, operation) in operations(&doc) {
        let name = route_name(&route);
        // An operation's own `security` replaces the document's.
        let requirements: Vec<Value> = operation
            .get("security")
            .or(global)
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        // Each entry is an alternative; `{}` means "no auth" is acceptable.
        let alternatives: Vec<BTreeSet<String>> = requirements
            .iter()
            .map(|r| {
                r.as_mapping()
                    .map(|m| m.keys().filter_map(text).collect())
                    .unwrap_or_default()
            })
            .collect();
        let requires_bearer = !alternatives.is_empty()
            && alternatives
                .iter()
                .all(|names| names.iter().any(|n| bearer.contains(n)));
        let is_public = route == (PUBLIC.0.to_string(), PUBLIC.1.to_string());
        if is_public && !alternatives.iter().all(BTreeSet::is_empty) {
            problems.push(format!("{name} must be public (`security: []`)"));
        }
        if !is_public && !requires_bearer {
            problems.push(format!("{name} does not require a bearer token"));
        }
    }
    assert!(problems.is_empty(), "security:\n  {}", problems.join("\n  "));
}

#[test]
fn every_reference_resolves_and_every_path_parameter_is_declared() {
    let doc = openapi();
    let mut problems = Vec::new();

    fn references(node: &Value, found: &mut Vec<String>) {
        match node {
            Value::Mapping(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        (Some("$ref"), Some(reference)) => found.push(reference.to_string()),
                        _ => references(value, found),
                    }
                }
            }
            Value::Sequence(items) => items.iter().for_each(|item| references(item, found)),
            Value::Tagged(tagged) => references(&tagged.value, found),
            _ => {}
        }
    }
    let mut found = Vec::new();
    references(&doc, &mut found);
    for reference in found {
        if pointer(&doc, &reference).is_none() {
            problems.push(format!("$ref {reference} does not resolve"));
        }
    }

    let paths = doc.get("paths").and_then(Value::as_mapping).expect("paths");
    for (path, item) in paths {
        let path = text(path).unwrap_or_default();
        let templated: BTreeSet<String> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        for method in HTTP_METHODS {
            let Some(operation) = item.get(method) else { continue };
            let declared: BTreeSet<String> = [item.get("parameters"), operation.get("parameters")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_sequence)
                .flatten()
                .map(|parameter| resolve(&doc, parameter))
                .filter(|p| p.get("in").and_then(Value::as_str) == Some("path"))
                .filter(|p| p.get("required").and_then(Value::as_bool) == Some(true))
                .filter_map(|p| p.get("name").and_then(text))
                .collect();
            if declared != templated {
                problems.push(format!(
                    "{} {path}: path parameters {templated:?}, declared as required path parameters {declared:?}",
                    method.to_ascii_uppercase()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "references and parameters:\n  {}",
        problems.join("\n  ")
    );
}

/// The service_role key bypasses Row Level Security: only the functions that
/// call the internal RPCs get it, never a read on the caller's behalf.
#[test]
fn the_service_role_key_reaches_only_functions_that_write_and_push() {
    let template = load("template.yaml");
    let has_key = |environment: Option<&Value>| {
        environment
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get("SUPABASE_SERVICE_ROLE_KEY"))
            .is_some()
    };
    let globals = template.get("Globals").and_then(|g| g.get("Function"));
    assert!(
        !has_key(globals.and_then(|f| f.get("Environment"))),
        "Globals must not give every function the service_role key"
    );
    let resources = template.get("Resources").and_then(Value::as_mapping).unwrap();
    let functions = template_functions();
    let mut keyed = Vec::new();
    for (id, resource) in resources {
        let id = text(id).unwrap();
        let properties = resource.get("Properties");
        if !has_key(properties.and_then(|p| p.get("Environment"))) {
            continue;
        }
        keyed.push(id.clone());
        let pushes = properties
            .and_then(|p| p.get("Policies"))
            .and_then(Value::as_sequence)
            .is_some_and(|policies| {
                policies
                    .iter()
                    .any(|p| text(p).as_deref() == Some("ManageConnectionsPolicy"))
            });
        // The notification function reads what to tell whom (an internal RPC)
        // and sends it on by Web Push and the webhook: no socket, no user's token.
        let notifies = id == "NotifyFunction" && functions[&id].routes.is_empty();
        assert!(pushes || notifies, "{id} gets the service_role key but pushes nothing");
        let reads = functions[&id].routes.iter().any(|(method, _)| method == "GET");
        assert!(!reads, "{id} serves a GET and must read with the caller's token only");
    }
    assert!(!keyed.is_empty(), "the functions that write need the key");
}
