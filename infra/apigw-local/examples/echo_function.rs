//! A tiny Lambda "function" for the emulator's tests: it speaks the Runtime
//! API by hand over plain HTTP/1.1 (no lambda_runtime), and behaves according
//! to `ECHO_ROLE`:
//!
//! - `http`: answers with the event, the runtime headers and its environment,
//!   and a CORS header of its own (which a gateway with a CORS configuration
//!   replaces); paths containing `/crash`, `/error`, `/plain` or `/sleep/<ms>`
//!   misbehave accordingly, and one containing `/linger/<ms>` is answered at
//!   once but the next invocation is asked for only that long after.
//! - `authorizer`: `?token=allow…` allows (context `token`, `exp`, `admin`),
//!   `deny` denies, `error` fails, `crash` exits, anything else is `Unauthorized`.
//! - `connect`: accepts, echoing the first offered `Sec-WebSocket-Protocol`;
//!   `?reject=<status>` answers that status.
//! - `message`: posts `{"routeKey", "event"}` back to the sender through the
//!   Management API (`http://<domainName>/<stage>/@connections/<id>`, signed
//!   with the function's key as an AWS SDK would sign it);
//!   `{"crash": true}` exits instead.
//! - `disconnect`: just answers.
//! - `scheduled`: answers `{"ok": true}`; an event with `"fail": true` (a
//!   schedule's `Input`) fails instead.
//!
//! With `ECHO_RECORD_DIR` set, every event is appended as one JSON line to
//! `<dir>/<function name>.jsonl`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn http(authority: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
    http_with(authority, method, path, &[], body)
}

fn http_with(
    authority: &str,
    method: &str,
    path: &str,
    extra_headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(authority)?;
    let extra: String = extra_headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

fn record(event: &Value) {
    let Ok(dir) = std::env::var("ECHO_RECORD_DIR") else {
        return;
    };
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let mut line = event.to_string();
    line.push('\n');
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{dir}/{name}.jsonl"));
    if let Ok(mut file) = file {
        let _ = file.write_all(line.as_bytes());
    }
}

enum Outcome {
    Respond(Value),
    Fail(&'static str),
}

fn handle_http(event: &Value, runtime_headers: &BTreeMap<String, String>) -> Outcome {
    let path = event["rawPath"].as_str().unwrap_or_default();
    if path.contains("/crash") {
        std::process::exit(3);
    }
    if path.contains("/error") {
        return Outcome::Fail("boom");
    }
    if path.contains("/plain") {
        return Outcome::Respond(json!({"plain": true}));
    }
    if let Some(ms) = path.split("/sleep/").nth(1).and_then(|ms| ms.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let body = json!({
        "event": event,
        "pid": std::process::id(),
        "runtime_headers": runtime_headers,
        "env": env,
    });
    Outcome::Respond(json!({
        "statusCode": 200,
        "headers": {
            "content-type": "application/json",
            "x-echo-pid": std::process::id().to_string(),
            "access-control-allow-origin": "https://function.example",
        },
        "cookies": ["echo=1; Path=/"],
        "body": body.to_string(),
    }))
}

fn handle_authorizer(event: &Value) -> Outcome {
    let token = event["queryStringParameters"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let effect = match token.as_str() {
        t if t.starts_with("allow") => "Allow",
        "deny" => "Deny",
        "error" => return Outcome::Fail("boom"),
        "crash" => std::process::exit(4),
        _ => return Outcome::Fail("Unauthorized"),
    };
    Outcome::Respond(json!({
        "principalId": format!("user-{token}"),
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]
        },
        "context": {"token": token, "exp": 1790000000, "admin": false}
    }))
}

fn handle_connect(event: &Value) -> Outcome {
    if let Some(status) = event["queryStringParameters"]["reject"].as_str() {
        return Outcome::Respond(json!({"statusCode": status.parse::<u16>().unwrap_or(400), "body": "rejected"}));
    }
    let offered = event["headers"]
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol")))
        .and_then(|(_, v)| v.as_str())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_string());
    match offered {
        Some(protocol) => Outcome::Respond(json!({"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": protocol}})),
        None => Outcome::Respond(json!({"statusCode": 200})),
    }
}

fn handle_message(event: &Value) -> Outcome {
    let body: Value = event["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or_default();
    if body["crash"] == json!(true) {
        std::process::exit(5);
    }
    let context = &event["requestContext"];
    let domain = context["domainName"].as_str().unwrap_or_default();
    let path = format!(
        "/{}/@connections/{}",
        context["stage"].as_str().unwrap_or_default(),
        context["connectionId"].as_str().unwrap_or_default()
    );
    let post = json!({"routeKey": context["routeKey"], "event": event}).to_string();
    match http_with(
        domain,
        "POST",
        &path,
        &signature(domain, &path, post.as_bytes()),
        post.as_bytes(),
    ) {
        Ok(reply) if reply.status == 200 => Outcome::Respond(json!({"statusCode": 200})),
        _ => Outcome::Fail("post to connection failed"),
    }
}

/// SigV4 headers for a Management API POST, with the key Lambda gives the
/// function, as an AWS SDK would add them.
fn signature(authority: &str, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let credentials = apigw_local::Credentials {
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
    };
    let headers = [("host", authority), ("content-type", "application/json")];
    let request = apigw_local::sigv4::Request {
        method: "POST",
        path,
        query: "",
        headers: &headers,
        body,
    };
    apigw_local::sigv4::sign(
        &request,
        &credentials,
        &var("AWS_REGION"),
        "execute-api",
        chrono::Utc::now(),
    )
}

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let role = std::env::var("ECHO_ROLE").unwrap_or_else(|_| "http".into());
    loop {
        let next = match http(&api, "GET", "/2018-06-01/runtime/invocation/next", b"") {
            Ok(next) if next.status == 200 => next,
            _ => std::process::exit(1),
        };
        let request_id = next
            .headers
            .get("lambda-runtime-aws-request-id")
            .cloned()
            .unwrap_or_default();
        let event: Value = serde_json::from_slice(&next.body).unwrap_or_default();
        record(&event);
        println!("{role} invocation {request_id}");
        let outcome = match role.as_str() {
            "authorizer" => handle_authorizer(&event),
            "connect" => handle_connect(&event),
            "message" => handle_message(&event),
            "disconnect" => Outcome::Respond(json!({"statusCode": 200})),
            "scheduled" if event["fail"] == json!(true) => Outcome::Fail("scheduled failure"),
            "scheduled" => Outcome::Respond(json!({"ok": true})),
            _ => handle_http(&event, &next.headers),
        };
        let (path, body) = match outcome {
            Outcome::Respond(value) => (format!("/2018-06-01/runtime/invocation/{request_id}/response"), value),
            Outcome::Fail(message) => (
                format!("/2018-06-01/runtime/invocation/{request_id}/error"),
                json!({"errorMessage": message, "errorType": "&str"}),
            ),
        };
        if http(&api, "POST", &path, body.to_string().as_bytes()).is_err() {
            std::process::exit(2);
        }
        if let Some(ms) = event["rawPath"]
            .as_str()
            .and_then(|path| path.split("/linger/").nth(1))
            .and_then(|ms| ms.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}
