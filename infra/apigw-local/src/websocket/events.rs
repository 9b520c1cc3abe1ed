//! WebSocket API events: the REQUEST authorizer's, CONNECT, MESSAGE and
//! DISCONNECT, shaped like the ones API Gateway sends.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::registry::ConnectionInfo;
use crate::ids;
use crate::query::Pairs;
use crate::template::ACCOUNT_ID;

/// Where the events go: one API and stage.
pub(crate) struct ApiIdentity<'a> {
    pub api_id: &'a str,
    pub stage: &'a str,
    pub region: &'a str,
}

/// The `$connect` request as API Gateway passes it on.
pub(crate) struct ConnectRequest {
    /// Header names as clients usually spell them (`Sec-WebSocket-Protocol`).
    pub headers: Vec<(String, String)>,
    /// Decoded query parameters in order (`query::parse`).
    pub query: Pairs,
}

impl ConnectRequest {
    pub fn new(headers: &HeaderMap, query: Pairs, source_ip: &str, local_port: u16) -> Self {
        let mut list: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                (
                    canonical_header_name(name.as_str()),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let has = |list: &[(String, String)], name: &str| list.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if let Some(i) = list.iter().position(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for")) {
            list[i].1 = format!("{}, {source_ip}", list[i].1);
        } else {
            list.push(("X-Forwarded-For".into(), source_ip.to_string()));
        }
        if !has(&list, "x-forwarded-port") {
            list.push(("X-Forwarded-Port".into(), local_port.to_string()));
        }
        if !has(&list, "x-forwarded-proto") {
            list.push(("X-Forwarded-Proto".into(), "http".into()));
        }
        if !has(&list, "x-amzn-trace-id") {
            list.push(("X-Amzn-Trace-Id".into(), ids::trace_root()));
        }
        ConnectRequest { headers: list, query }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// (`headers`, `multiValueHeaders`): the last value wins in the first.
    fn headers_json(&self) -> (Value, Value) {
        single_and_multi(&self.headers)
    }

    /// (`queryStringParameters`, `multiValueQueryStringParameters`).
    fn query_json(&self) -> (Value, Value) {
        single_and_multi(&self.query)
    }
}

fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), json!(value));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(json!(value)),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (Value::Object(single), Value::Object(multi))
}

/// `sec-websocket-key` -> `Sec-WebSocket-Key`, `x-forwarded-for` -> `X-Forwarded-For`.
pub(crate) fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| match part.to_ascii_lowercase().as_str() {
            "websocket" => "WebSocket".to_string(),
            lower => {
                let mut chars = lower.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The `requestContext` fields every WebSocket event has.
fn request_context(
    api: &ApiIdentity<'_>,
    connection: &ConnectionInfo,
    route_key: &str,
    event_type: &str,
    request_id: &str,
    at: DateTime<Utc>,
) -> Map<String, Value> {
    let mut identity = Map::new();
    identity.insert("sourceIp".into(), json!(connection.source_ip));
    if let Some(user_agent) = &connection.user_agent {
        identity.insert("userAgent".into(), json!(user_agent));
    }
    let mut context = Map::new();
    context.insert("routeKey".into(), json!(route_key));
    context.insert("eventType".into(), json!(event_type));
    context.insert("extendedRequestId".into(), json!(request_id));
    context.insert("requestTime".into(), json!(ids::request_time(at)));
    context.insert("messageDirection".into(), json!("IN"));
    context.insert("stage".into(), json!(api.stage));
    context.insert("connectedAt".into(), json!(connection.connected_at_ms()));
    context.insert("requestTimeEpoch".into(), json!(at.timestamp_millis()));
    context.insert("identity".into(), Value::Object(identity));
    context.insert("requestId".into(), json!(request_id));
    context.insert("domainName".into(), json!(connection.domain_name));
    context.insert("connectionId".into(), json!(connection.id));
    context.insert("apiId".into(), json!(api.api_id));
    context
}

fn with_authorizer(mut context: Map<String, Value>, connection: &ConnectionInfo) -> Value {
    if let Some(authorizer) = &connection.authorizer {
        context.insert("authorizer".into(), authorizer.clone());
    }
    Value::Object(context)
}

/// `arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/$connect`.
pub(crate) fn connect_method_arn(api: &ApiIdentity<'_>) -> String {
    format!(
        "arn:aws:execute-api:{}:{ACCOUNT_ID}:{}/{}/$connect",
        api.region, api.api_id, api.stage
    )
}

/// The event a REQUEST authorizer on `$connect` receives.
pub(crate) fn authorizer_event(
    api: &ApiIdentity<'_>,
    connection: &ConnectionInfo,
    request: &ConnectRequest,
    request_id: &str,
    at: DateTime<Utc>,
) -> Value {
    let (headers, multi_value_headers) = request.headers_json();
    let (query, multi_value_query) = request.query_json();
    json!({
        "type": "REQUEST",
        "methodArn": connect_method_arn(api),
        "headers": headers,
        "multiValueHeaders": multi_value_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_value_query,
        "stageVariables": {},
        "requestContext": request_context(api, connection, "$connect", "CONNECT", request_id, at),
    })
}

pub(crate) fn connect_event(
    api: &ApiIdentity<'_>,
    connection: &ConnectionInfo,
    request: &ConnectRequest,
    request_id: &str,
    at: DateTime<Utc>,
) -> Value {
    let (headers, multi_value_headers) = request.headers_json();
    let mut event = Map::new();
    event.insert("headers".into(), headers);
    event.insert("multiValueHeaders".into(), multi_value_headers);
    if !request.query.is_empty() {
        let (query, multi_value_query) = request.query_json();
        event.insert("queryStringParameters".into(), query);
        event.insert("multiValueQueryStringParameters".into(), multi_value_query);
    }
    let context = request_context(api, connection, "$connect", "CONNECT", request_id, at);
    event.insert("requestContext".into(), with_authorizer(context, connection));
    event.insert("isBase64Encoded".into(), json!(false));
    Value::Object(event)
}

/// A client message. `body` is the text, or base64 for binary frames.
pub(crate) struct MessageBody {
    pub body: String,
    pub is_base64_encoded: bool,
}

pub(crate) fn message_event(
    api: &ApiIdentity<'_>,
    connection: &ConnectionInfo,
    route_key: &str,
    message: &MessageBody,
    request_id: &str,
    at: DateTime<Utc>,
) -> Value {
    let mut context = request_context(api, connection, route_key, "MESSAGE", request_id, at);
    context.insert("messageId".into(), json!(ids::short_id()));
    json!({
        "requestContext": with_authorizer(context, connection),
        "body": message.body,
        "isBase64Encoded": message.is_base64_encoded,
    })
}

pub(crate) fn disconnect_event(
    api: &ApiIdentity<'_>,
    connection: &ConnectionInfo,
    status_code: u16,
    reason: &str,
    request_id: &str,
    at: DateTime<Utc>,
) -> Value {
    // What API Gateway sends on $disconnect: only these, never the client's headers.
    let headers = vec![
        ("Host".to_string(), connection.domain_name.clone()),
        ("x-api-key".to_string(), String::new()),
        ("X-Forwarded-For".to_string(), String::new()),
        ("x-restapi".to_string(), String::new()),
    ];
    let (headers, multi_value_headers) = single_and_multi(&headers);
    let mut context = request_context(api, connection, "$disconnect", "DISCONNECT", request_id, at);
    context.insert("disconnectStatusCode".into(), json!(status_code));
    context.insert("disconnectReason".into(), json!(reason));
    json!({
        "headers": headers,
        "multiValueHeaders": multi_value_headers,
        "requestContext": with_authorizer(context, connection),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;
    use aws_lambda_events::event::apigw::{
        ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
    };
    use axum::http::HeaderValue;

    const API: ApiIdentity<'static> = ApiIdentity {
        api_id: "abcd123456",
        stage: "dev",
        region: "us-east-1",
    };

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn connection(authorizer: Option<Value>) -> ConnectionInfo {
        ConnectionInfo::new(
            "L0SM9cOFvHcCIhw=".into(),
            at(),
            "127.0.0.1".into(),
            Some("test-agent".into()),
            "127.0.0.1:4000".into(),
            authorizer,
        )
    }

    fn request() -> ConnectRequest {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4000"));
        headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat, token.abc"));
        headers.insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers.insert("user-agent", HeaderValue::from_static("test-agent"));
        ConnectRequest::new(&headers, query::parse("%74oken=abc&tag=a&tag=b"), "127.0.0.1", 4000)
    }

    fn authorizer_context() -> Value {
        json!({"principalId": "user-1", "integrationLatency": 12, "exp": "1790000000", "role": "authenticated"})
    }

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(
            canonical_header_name("sec-websocket-protocol"),
            "Sec-WebSocket-Protocol"
        );
        assert_eq!(canonical_header_name("x-amzn-trace-id"), "X-Amzn-Trace-Id");
        assert_eq!(canonical_header_name("host"), "Host");
    }

    #[test]
    fn authorizer_event_matches_aws_shape() {
        let event = authorizer_event(&API, &connection(None), &request(), "req-1=", at());
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(
            event["methodArn"],
            "arn:aws:execute-api:us-east-1:000000000000:abcd123456/dev/$connect"
        );
        assert_eq!(event["headers"]["Sec-WebSocket-Protocol"], "chat, token.abc");
        assert_eq!(event["multiValueHeaders"]["Host"], json!(["127.0.0.1:4000"]));
        assert_eq!(event["queryStringParameters"]["tag"], "b");
        assert_eq!(event["multiValueQueryStringParameters"]["tag"], json!(["a", "b"]));
        assert_eq!(event["stageVariables"], json!({}));
        let rc = &event["requestContext"];
        assert_eq!(rc["routeKey"], "$connect");
        assert_eq!(rc["eventType"], "CONNECT");
        assert_eq!(rc["messageDirection"], "IN");
        assert_eq!(
            rc["identity"],
            json!({"sourceIp": "127.0.0.1", "userAgent": "test-agent"})
        );
        assert_eq!(rc["requestTime"], "21/Nov/2026:07:00:00 +0000");
        assert_eq!(rc["connectionId"], "L0SM9cOFvHcCIhw=");

        let typed: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_value(event).unwrap();
        assert_eq!(
            typed.method_arn.as_deref(),
            Some("arn:aws:execute-api:us-east-1:000000000000:abcd123456/dev/$connect")
        );
        assert_eq!(typed.headers["sec-websocket-protocol"], "chat, token.abc");
        assert_eq!(typed.query_string_parameters.first("token"), Some("abc"));
        assert_eq!(typed.request_context.apiid.as_deref(), Some("abcd123456"));
        assert_eq!(typed.request_context.stage.as_deref(), Some("dev"));
        assert_eq!(typed.request_context.request_id.as_deref(), Some("req-1="));
    }

    #[test]
    fn connect_event_matches_aws_shape() {
        let event = connect_event(
            &API,
            &connection(Some(authorizer_context())),
            &request(),
            "req-2=",
            at(),
        );
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["requestContext"]["authorizer"]["principalId"], "user-1");
        assert_eq!(event["requestContext"]["connectedAt"], at().timestamp_millis());
        let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).unwrap();
        let rc = &typed.request_context;
        assert_eq!(rc.event_type.as_deref(), Some("CONNECT"));
        assert_eq!(rc.route_key.as_deref(), Some("$connect"));
        assert_eq!(rc.connection_id.as_deref(), Some("L0SM9cOFvHcCIhw="));
        assert_eq!(rc.domain_name.as_deref(), Some("127.0.0.1:4000"));
        assert_eq!(rc.identity.source_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(rc.authorizer.fields["principalId"], "user-1");
        assert_eq!(rc.authorizer.fields["exp"], "1790000000");
        assert_eq!(typed.headers["sec-websocket-protocol"], "chat, token.abc");
        assert_eq!(typed.query_string_parameters.first("tag"), Some("b"));
    }

    #[test]
    fn connect_event_without_query_has_no_query_maps() {
        let request = ConnectRequest::new(&HeaderMap::new(), query::parse(""), "127.0.0.1", 4000);
        let event = connect_event(&API, &connection(None), &request, "r=", at());
        assert!(event.get("queryStringParameters").is_none());
        assert!(event["requestContext"].get("authorizer").is_none());
        assert_eq!(event["headers"]["X-Forwarded-For"], "127.0.0.1");
    }

    #[test]
    fn message_event_matches_aws_shape() {
        let body = MessageBody {
            body: r#"{"action":"sendMessage","text":"hi"}"#.into(),
            is_base64_encoded: false,
        };
        let event = message_event(
            &API,
            &connection(Some(authorizer_context())),
            "sendMessage",
            &body,
            "req-3=",
            at(),
        );
        assert!(event.get("headers").is_none());
        let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).unwrap();
        let rc = &typed.request_context;
        assert_eq!(rc.event_type.as_deref(), Some("MESSAGE"));
        assert_eq!(rc.route_key.as_deref(), Some("sendMessage"));
        assert_eq!(rc.message_id.as_ref().map(String::len), Some(16));
        assert_eq!(rc.authorizer.fields["role"], "authenticated");
        assert_eq!(rc.authorizer.fields["integrationLatency"], 12);
        assert_eq!(typed.body.as_deref(), Some(r#"{"action":"sendMessage","text":"hi"}"#));
        assert!(!typed.is_base64_encoded);
    }

    #[test]
    fn disconnect_event_matches_aws_shape() {
        let event = disconnect_event(
            &API,
            &connection(Some(authorizer_context())),
            1001,
            "Going away",
            "req-4=",
            at(),
        );
        assert_eq!(event["headers"]["Host"], "127.0.0.1:4000");
        assert_eq!(event["headers"]["x-api-key"], "");
        let typed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).unwrap();
        let rc = &typed.request_context;
        assert_eq!(rc.event_type.as_deref(), Some("DISCONNECT"));
        assert_eq!(rc.route_key.as_deref(), Some("$disconnect"));
        assert_eq!(rc.disconnect_status_code, Some(1001));
        assert_eq!(rc.disconnect_reason.as_deref(), Some("Going away"));
        assert_eq!(rc.authorizer.fields["principalId"], "user-1");
    }

    /// AWS's documented DISCONNECT sample (as shipped with aws_lambda_events)
    /// has exactly the keys we produce.
    #[test]
    fn disconnect_keys_match_the_documented_sample() {
        let sample: Value = serde_json::from_str(
            r#"{"headers":{"Host":"abcd1234.execute-api.us-east-1.amazonaws.com","x-api-key":"","X-Forwarded-For":"","x-restapi":""},
            "multiValueHeaders":{"Host":["abcd1234.execute-api.us-east-1.amazonaws.com"],"x-api-key":[""],"X-Forwarded-For":[""],"x-restapi":[""]},
            "requestContext":{"routeKey":"$disconnect","disconnectStatusCode":1005,"eventType":"DISCONNECT","extendedRequestId":"ABCD1234=",
            "requestTime":"09/Feb/2024:18:23:28 +0000","messageDirection":"IN","disconnectReason":"Client-side close frame status not set",
            "stage":"prod","connectedAt":1707503007396,"requestTimeEpoch":1707503008941,"identity":{"sourceIp":"192.0.2.1"},
            "requestId":"ABCD1234=","domainName":"abcd1234.execute-api.us-east-1.amazonaws.com","connectionId":"AAAA1234=","apiId":"abcd1234"},
            "isBase64Encoded":false}"#,
        )
        .unwrap();
        let ours = disconnect_event(&API, &connection(None), 1005, "x", "r=", at());
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(keys(&ours), keys(&sample));
        assert_eq!(keys(&ours["headers"]), keys(&sample["headers"]));
        let mut our_context = keys(&ours["requestContext"]);
        our_context.remove("identity");
        let mut sample_context = keys(&sample["requestContext"]);
        sample_context.remove("identity");
        assert_eq!(our_context, sample_context);
    }
}
