//! CORS from the fixture's `CorsConfiguration` (origins `https://app.example`
//! and `http://*`, headers `Authorization` and `Content-Type`, methods GET and
//! POST, credentials allowed) against a real emulator.

use crate::helpers::{TestStack, PATIENCE};
use apigw_local::WsLimits;
use reqwest::header::HeaderMap;
use reqwest::Method;

const APP: &str = "https://app.example";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(PATIENCE).build().unwrap()
}

async fn preflight(base: &str, path: &str, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    client()
        .request(Method::OPTIONS, format!("{base}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|name| name.as_str().to_string())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// Requests of one kind the echo function has had so far.
fn echo_calls(stack: &TestStack, method: &str) -> usize {
    stack
        .records("EchoFunction")
        .iter()
        .filter(|event| event["requestContext"]["http"]["method"] == method)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_preflights_without_a_function() {
    let stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let base = stack.emulator().http_url();

    for path in ["/v1/items/1", "/v1/files/a/b", "/no/such/route"] {
        let response = preflight(&base, path, APP, "POST", "authorization, Content-Type").await;
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(header(headers, "access-control-allow-origin"), Some(APP), "{path}");
        assert_eq!(header(headers, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(
            header(headers, "access-control-allow-headers"),
            Some("authorization,content-type")
        );
        assert_eq!(header(headers, "access-control-max-age"), Some("300"));
        assert_eq!(header(headers, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(headers, "vary"), Some("origin"));
        assert!(headers.contains_key("apigw-requestid"));
        assert_eq!(response.bytes().await.unwrap().len(), 0);
    }
    // Any http origin, through `http://*`.
    let response = preflight(&base, "/v1/items/1", "http://localhost:5173", "GET", "").await;
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some("http://localhost:5173")
    );

    // Refused: still 204, without a single CORS header.
    for (origin, method, headers) in [
        ("https://evil.example", "POST", "authorization"),
        (APP, "DELETE", "authorization"),
        (APP, "POST", "authorization,x-secret"),
    ] {
        let response = preflight(&base, "/v1/items/1", origin, method, headers).await;
        assert_eq!(response.status(), 204, "{origin} {method} {headers}");
        assert_eq!(
            cors_headers(response.headers()),
            Vec::<String>::new(),
            "{origin} {method} {headers}"
        );
    }

    // An OPTIONS without Access-Control-Request-Method is no preflight: routed, and no route takes it.
    let response = client()
        .request(Method::OPTIONS, format!("{base}/v1/items/1"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(echo_calls(&stack, "OPTIONS"), 0, "no preflight reached the function");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_to_allowed_origins_carry_cors_headers() {
    let stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let base = stack.emulator().http_url();
    let get = |path: &str, origin: Option<&str>| {
        let mut request = client().get(format!("{base}{path}"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    let response = get("/v1/items/1", Some(APP)).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    // The function's own `https://function.example` is replaced.
    assert_eq!(header(headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(headers, "access-control-expose-headers"), Some("x-echo-pid"));
    assert_eq!(header(headers, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(headers, "access-control-allow-methods"), None);
    assert_eq!(header(headers, "access-control-max-age"), None);

    // Not allowed, or no Origin: no CORS header, the function's dropped too.
    for origin in [Some("https://evil.example"), None] {
        let response = get("/v1/items/1", origin).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(cors_headers(response.headers()), Vec::<String>::new(), "{origin:?}");
    }

    // The gateway's own errors: no route (404), a failed function (500).
    for (path, status) in [("/no/such/route", 404), ("/v1/error", 500)] {
        let response = get(path, Some(APP)).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            header(response.headers(), "access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_options_route_takes_its_preflights() {
    let stack = TestStack::start("template.yaml", WsLimits::default()).await;
    let base = stack.emulator().http_url();
    let response = preflight(&base, "/v1/options/x", APP, "POST", "authorization").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "access-control-allow-origin"), Some(APP));
    // An ordinary response: the integration answered, the gateway added only what it adds to any response.
    assert_eq!(header(response.headers(), "access-control-allow-methods"), None);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["event"]["routeKey"], "OPTIONS /v1/options/{proxy+}");
    assert_eq!(echo_calls(&stack, "OPTIONS"), 1);
}
