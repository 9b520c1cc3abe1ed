//! A function's answer as an HTTP response, as API Gateway interprets payload
//! format 2.0: `{statusCode, headers, multiValueHeaders, cookies, body,
//! isBase64Encoded}`, or any other JSON as a 200 `application/json` body.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

/// `Err` when the answer is not something API Gateway accepts (it answers 500).
pub(crate) fn from_lambda(payload: &[u8]) -> Result<Response, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        // Inferred format: the whole answer is the body.
        let body = match value {
            Value::String(text) => text.into_bytes(),
            _ => payload.to_vec(),
        };
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .map_err(|e| e.to_string());
    };

    let status = match &object["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|code| u16::try_from(code).ok())
    .and_then(|code| StatusCode::from_u16(code).ok())
    .ok_or_else(|| format!("invalid statusCode {}", object["statusCode"]))?;

    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &Value| -> Result<(), String> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => return Ok(()),
            other => other.to_string(),
        };
        let value = HeaderValue::from_str(&text).map_err(|e| format!("header {name}: {e}"))?;
        headers.append(name, value);
        Ok(())
    };
    if let Some(Value::Object(map)) = object.get("headers") {
        for (name, value) in map {
            add(name, value)?;
        }
    }
    if let Some(Value::Object(map)) = object.get("multiValueHeaders") {
        for (name, values) in map {
            for value in values.as_array().into_iter().flatten() {
                add(name, value)?;
            }
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        for cookie in cookies {
            add("set-cookie", cookie)?;
        }
    }

    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let encoded = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body = if encoded {
        STANDARD.decode(&body).map_err(|e| format!("body is not base64: {e}"))?
    } else {
        body
    };
    *response.body_mut() = Body::from(body);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn structured_response() {
        let payload = br#"{"statusCode":201,"headers":{"content-type":"text/plain","x-n":5},
            "multiValueHeaders":{"x-m":["a","b"]},"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#;
        let response = from_lambda(payload).unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(response.headers()["x-n"], "5");
        let multi: Vec<_> = response.headers().get_all("x-m").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body_of(response).await, b"hi");
    }

    #[tokio::test]
    async fn inferred_response() {
        let response = from_lambda(br#"{"message":"hello"}"#).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(body_of(response).await, br#"{"message":"hello"}"#);
        let response = from_lambda(br#""Hello from Lambda!""#).unwrap();
        assert_eq!(body_of(response).await, b"Hello from Lambda!");
    }

    #[test]
    fn invalid_responses() {
        assert!(from_lambda(b"not json").is_err());
        assert!(from_lambda(br#"{"statusCode":"abc"}"#).is_err());
        assert!(from_lambda(br#"{"statusCode":99999}"#).is_err());
    }
}
