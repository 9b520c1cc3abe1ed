//! The HTTP API payload format 2.0 request event.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::routes::RouteMatch;
use crate::ids;
use crate::query::Pairs;
use crate::template::ACCOUNT_ID;

/// What the event needs from one HTTP request.
pub(crate) struct HttpRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// `raw_query` parsed (`query::parse`).
    pub query: &'a Pairs,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub local_port: u16,
}

pub(crate) struct EventContext<'a> {
    pub api_id: &'a str,
    pub request_id: &'a str,
    pub at: DateTime<Utc>,
}

pub(crate) fn build(request: &HttpRequest<'_>, route: &RouteMatch, ctx: &EventContext<'_>) -> Value {
    let headers = event_headers(request);
    let domain_name = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| format!("127.0.0.1:{}", request.local_port));
    let domain_prefix = domain_name
        .split(':')
        .next()
        .unwrap_or_default()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(route.route_key));
    event.insert("rawPath".into(), json!(request.raw_path));
    event.insert("rawQueryString".into(), json!(request.raw_query));
    let cookies = cookies(request.headers);
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    let query = query_string_parameters(request.query);
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
    }
    if !route.path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(route.path_parameters));
    }
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": ACCOUNT_ID,
            "apiId": ctx.api_id,
            "domainName": domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": ctx.request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": ids::request_time(ctx.at),
            "timeEpoch": ctx.at.timestamp_millis(),
        }),
    );
    if !request.body.is_empty() {
        let (body, encoded) = match std::str::from_utf8(request.body) {
            Ok(text) => (text.to_string(), false),
            Err(_) => (STANDARD.encode(request.body), true),
        };
        event.insert("body".into(), json!(body));
        event.insert("isBase64Encoded".into(), json!(encoded));
    } else {
        event.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(event)
}

/// Lower-case names, repeated values comma-joined, cookies moved out, and the
/// forwarding headers API Gateway adds.
fn event_headers(request: &HttpRequest<'_>) -> BTreeMap<String, String> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in request.headers {
        if name == "cookie" {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let forwarded_for = match headers.get("x-forwarded-for") {
        Some(earlier) => format!("{earlier}, {}", request.source_ip),
        None => request.source_ip.clone(),
    };
    headers.insert("x-forwarded-for".into(), forwarded_for);
    headers.insert("x-forwarded-port".into(), request.local_port.to_string());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.entry("x-amzn-trace-id".into()).or_insert_with(ids::trace_root);
    headers
}

fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("cookie")
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .collect()
}

/// Decoded parameters; repeated names comma-joined, as in payload 2.0.
fn query_string_parameters(query: &Pairs) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in query {
        params
            .entry(name.clone())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
    use axum::http::HeaderValue;

    fn sample(body: &[u8]) -> Value {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:3000"));
        headers.insert("user-agent", HeaderValue::from_static("curl/8"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.insert("cookie", HeaderValue::from_static("c1=v1; c2=v2"));
        let raw_query = "limit=10&tag=x&tag=y&q=a%20b";
        let query = crate::query::parse(raw_query);
        let request = HttpRequest {
            method: "POST",
            raw_path: "/v1/conversations/abc/messages",
            raw_query,
            query: &query,
            protocol: "HTTP/1.1",
            headers: &headers,
            body,
            source_ip: "127.0.0.1".into(),
            local_port: 3000,
        };
        let route = RouteMatch {
            route_key: "POST /v1/conversations/{id}/messages".into(),
            function: "Send".into(),
            path_parameters: BTreeMap::from([("id".to_string(), "abc".to_string())]),
        };
        let at = DateTime::parse_from_rfc3339("2026-11-21T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        build(
            &request,
            &route,
            &EventContext {
                api_id: "abcdefghij",
                request_id: "JKJaXmPLvHcESHA=",
                at,
            },
        )
    }

    #[test]
    fn shape_matches_payload_2_0() {
        let event = sample(br#"{"body":"hi"}"#);
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "POST /v1/conversations/{id}/messages");
        assert_eq!(event["rawPath"], "/v1/conversations/abc/messages");
        assert_eq!(event["rawQueryString"], "limit=10&tag=x&tag=y&q=a%20b");
        assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(
            event["queryStringParameters"],
            json!({"limit": "10", "tag": "x,y", "q": "a b"})
        );
        assert_eq!(event["pathParameters"], json!({"id": "abc"}));
        let rc = &event["requestContext"];
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["userAgent"], "curl/8");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["time"], "21/Nov/2026:07:00:00 +0000");
        assert_eq!(rc["timeEpoch"], 1_795_244_400_000_i64);
        assert_eq!(rc["domainName"], "127.0.0.1:3000");
        assert_eq!(event["body"], r#"{"body":"hi"}"#);
        assert_eq!(event["isBase64Encoded"], false);

        let typed: ApiGatewayV2httpRequest = serde_json::from_value(event).expect("aws_lambda_events shape");
        assert_eq!(typed.route_key.as_deref(), Some("POST /v1/conversations/{id}/messages"));
        assert_eq!(typed.request_context.http.method.as_str(), "POST");
        assert_eq!(typed.path_parameters["id"], "abc");
        assert_eq!(typed.query_string_parameters.first("limit"), Some("10"));
        assert_eq!(typed.headers["x-multi"], "a,b");
        assert_eq!(typed.request_context.time_epoch, 1_795_244_400_000);
        assert_eq!(typed.cookies, Some(vec!["c1=v1".to_string(), "c2=v2".to_string()]));
    }

    #[test]
    fn binary_bodies_are_base64() {
        let event = sample(&[0xff, 0x00, 0x01]);
        assert_eq!(event["body"], "/wAB");
        assert_eq!(event["isBase64Encoded"], true);
        let event = sample(b"");
        assert!(event.get("body").is_none());
    }
}
