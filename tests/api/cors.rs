//! CORS, as a browser meets it: the preflight before a send and the send
//! itself, ordinary and error responses to a cross-origin page, refused
//! preflights; and `template.yaml`'s `CorsConfiguration` against
//! `docs/openapi.yaml`, so every documented request header stays allowed and
//! every documented response header stays readable.

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::json;
use serde_yaml::Value;
use uuid::Uuid;

use crate::helpers::stack;
use crate::helpers::template::{load, openapi, operations, text, untag, HTTP_METHODS};

/// Where the demo app runs in development: any origin, as the template allows by default.
const PAGE: &str = "http://localhost:5173";
/// What a browser asks before `POST /v1/conversations/{id}/messages` with a token and a key.
const SEND_HEADERS: &str = "authorization,content-type,idempotency-key";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn preflight(path: &str, method: &str, headers: &str) -> reqwest::Response {
    client()
        .request(Method::OPTIONS, format!("{}{path}", stack().info.http_url))
        .header("origin", PAGE)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("preflight")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("text header"))
}

/// A comma-separated header value as a set of lower-case names.
fn names(value: Option<&str>) -> BTreeSet<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|name| name.as_str().to_string())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn a_browser_sends_a_message_after_its_preflight() {
    let stack = stack();
    let (alice, _bob, conversation) = stack.direct_pair().await;
    let path = format!("/v1/conversations/{conversation}/messages");

    let response = preflight(&path, "POST", SEND_HEADERS).await;
    assert_eq!(response.status(), 204, "the gateway answers the preflight itself");
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some("*"));
    let methods = header(headers, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.split(',').any(|m| m.trim() == "POST"), "{methods}");
    let allowed = names(header(headers, "access-control-allow-headers"));
    for asked in names(Some(SEND_HEADERS)) {
        assert!(allowed.contains(&asked), "{asked} not in {allowed:?}");
    }
    assert_eq!(header(headers, "access-control-max-age"), Some("600"));
    assert_eq!(stack.message_count(conversation).await, 0, "a preflight sends nothing");

    // The send the browser then makes, and what its script may read of the answer.
    let response = client()
        .post(format!("{}{path}", stack.info.http_url))
        .header("origin", PAGE)
        .bearer_auth(&alice.token)
        .header("idempotency-key", format!("cors-{}", Uuid::new_v4()))
        .json(&json!({"body": "sent from a page"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let headers = response.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some("*"));
    assert!(names(header(headers, "access-control-expose-headers")).contains("apigw-requestid"));
    assert!(headers.contains_key("apigw-requestid"));
    assert_eq!(stack.message_count(conversation).await, 1);
}

#[tokio::test]
async fn responses_to_a_page_carry_the_allow_origin_errors_included() {
    let stack = stack();
    let alice = stack.new_user("alice").await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = client()
            .get(format!("{}{path}", stack.info.http_url))
            .header("origin", PAGE);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for (path, token, status) in [
        ("/v1/health", None, 200),
        ("/v1/me", Some(alice.token.as_str()), 200),
        // The function's error: the page must read its status and challenge.
        ("/v1/me", None, 401),
        // The gateway's own error: no route.
        ("/v1/no-such-route", Some(alice.token.as_str()), 404),
    ] {
        let response = get(path, token).await.expect("request");
        assert_eq!(response.status(), status, "{path}");
        let headers = response.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), Some("*"), "{path}");
        let exposed = names(header(headers, "access-control-expose-headers"));
        assert!(exposed.contains("www-authenticate"), "{path}: {exposed:?}");
    }
    // Without an Origin (not a browser's cross-origin request), no CORS headers.
    let response = client()
        .get(format!("{}/v1/health", stack.info.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(cors_headers(response.headers()), Vec::<String>::new());
}

#[tokio::test]
async fn a_preflight_for_what_is_not_allowed_gets_no_allow_headers() {
    let path = format!("/v1/conversations/{}/messages", Uuid::new_v4());
    for (method, headers) in [("PUT", "authorization"), ("POST", "authorization,x-not-documented")] {
        let response = preflight(&path, method, headers).await;
        // API Gateway still answers 204; without allow headers the browser refuses.
        assert_eq!(response.status(), 204, "{method} {headers}");
        assert_eq!(
            cors_headers(response.headers()),
            Vec::<String>::new(),
            "{method} {headers}"
        );
    }
}

/// The HTTP API's `CorsConfiguration` list `key`, lower-cased.
fn cors_list(key: &str) -> BTreeSet<String> {
    let template = load("template.yaml");
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template.yaml has Resources");
    let api = resources
        .values()
        .find(|r| r.get("Type").and_then(text).as_deref() == Some("AWS::Serverless::HttpApi"))
        .expect("template.yaml has an HTTP API");
    let list = api
        .get("Properties")
        .and_then(|p| p.get("CorsConfiguration"))
        .and_then(|c| c.get(key))
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("the HTTP API's CorsConfiguration has no {key} list"));
    list.iter()
        .map(|v| text(v).expect("a name").to_ascii_lowercase())
        .collect()
}

/// `value`, or what its `$ref` (`#/components/...`) points to.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
        return value;
    };
    let path = reference
        .strip_prefix("#/")
        .unwrap_or_else(|| panic!("non-local $ref {reference}"));
    path.split('/').fold(doc, |node, key| {
        node.get(key).unwrap_or_else(|| panic!("dangling $ref {reference}"))
    })
}

/// The request headers an operation of `docs/openapi.yaml` documents: its
/// (and its path's) header parameters, the headers of its security schemes,
/// and `content-type` when it takes a body.
fn documented_request_headers(doc: &Value) -> BTreeSet<String> {
    let schemes = doc.get("components").and_then(|c| c.get("securitySchemes"));
    let mut headers = BTreeSet::new();
    let paths = doc.get("paths").and_then(Value::as_mapping).expect("paths");
    for item in paths.values() {
        let path_parameters = item.get("parameters").and_then(Value::as_sequence);
        for method in HTTP_METHODS {
            let Some(operation) = item.get(method) else { continue };
            let parameters = operation.get("parameters").and_then(Value::as_sequence);
            for parameter in path_parameters.into_iter().chain(parameters).flatten() {
                let parameter = deref(doc, parameter);
                if parameter.get("in").and_then(Value::as_str) == Some("header") {
                    headers.insert(text(&parameter["name"]).expect("a name").to_ascii_lowercase());
                }
            }
            let security = operation.get("security").or_else(|| doc.get("security"));
            for requirement in security.and_then(Value::as_sequence).into_iter().flatten() {
                for name in requirement.as_mapping().into_iter().flatten().map(|(name, _)| name) {
                    let scheme = schemes
                        .and_then(|s| s.get(name))
                        .unwrap_or_else(|| panic!("undeclared security scheme {name:?}"));
                    let header = match scheme.get("type").and_then(Value::as_str) {
                        Some("http" | "oauth2" | "openIdConnect") => Some("authorization".to_string()),
                        Some("apiKey") if scheme.get("in").and_then(Value::as_str) == Some("header") => {
                            scheme.get("name").and_then(text)
                        }
                        _ => None,
                    };
                    headers.extend(header.map(|h| h.to_ascii_lowercase()));
                }
            }
            if operation.get("requestBody").is_some() {
                headers.insert("content-type".to_string());
            }
        }
    }
    headers
}

/// The response headers `docs/openapi.yaml` documents, on any response.
fn documented_response_headers(doc: &Value) -> BTreeSet<String> {
    let mut headers = BTreeSet::new();
    for operation in operations(doc).values() {
        let responses = operation.get("responses").and_then(Value::as_mapping);
        for response in responses.into_iter().flatten().map(|(_, r)| deref(doc, r)) {
            let names = response.get("headers").and_then(|h| untag(h).as_mapping());
            headers.extend(names.into_iter().flatten().filter_map(|(name, _)| text(name)));
        }
    }
    headers.into_iter().map(|h| h.to_ascii_lowercase()).collect()
}

#[test]
fn the_template_allows_every_documented_request_header_and_exposes_every_response_header() {
    let doc = openapi();
    let documented = documented_request_headers(&doc);
    // Guards the reading above: the headers the API is known to take.
    for known in ["authorization", "content-type", "idempotency-key"] {
        assert!(documented.contains(known), "{known} not found in docs/openapi.yaml");
    }
    let allowed = cors_list("AllowHeaders");
    let missing: Vec<_> = documented.difference(&allowed).collect();
    assert!(missing.is_empty(), "documented but not in AllowHeaders: {missing:?}");

    let documented = documented_response_headers(&doc);
    assert!(
        documented.contains("www-authenticate"),
        "the 401 challenge is documented"
    );
    let exposed = cors_list("ExposeHeaders");
    let missing: Vec<_> = documented.difference(&exposed).collect();
    assert!(missing.is_empty(), "documented but not in ExposeHeaders: {missing:?}");

    let methods: BTreeSet<String> = operations(&doc)
        .keys()
        .map(|(method, _)| method.to_ascii_lowercase())
        .collect();
    let allowed = cors_list("AllowMethods");
    let missing: Vec<_> = methods.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "operations' methods not in AllowMethods: {missing:?}"
    );
}
