//! Lambda's `Invoke` API, as a function calls it to invoke another: SigV4
//! (service `lambda`) with the functions' key, `X-Amz-Invocation-Type` Event
//! (queued, 202, retried per the function's `EventInvokeConfig`, then its
//! failure destination in `GET /__emulator/stats`), RequestResponse and
//! DryRun. Requests are signed with the emulator's own signer, which its unit
//! tests check against AWS's SigV4 test suite.

use std::time::Duration;

use apigw_local::sigv4::{self, Credentials};
use apigw_local::WsLimits;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{role_key, TestStack, PATIENCE};

const REGION: &str = "us-east-1";

/// One Invoke request, signed (or not) as a test needs it.
struct Invoke<'a> {
    /// A function name or ARN, as it goes in the path.
    function: &'a str,
    /// `X-Amz-Invocation-Type`; none: Lambda's default, RequestResponse.
    invocation_type: Option<&'a str>,
    payload: Vec<u8>,
    /// Who signs, for which region and service, when; `None`: unsigned.
    signer: Option<Signer>,
}

struct Signer {
    key: Credentials,
    region: &'static str,
    service: &'static str,
    at: DateTime<Utc>,
}

impl Signer {
    /// As a function's AWS SDK signs: the functions' key, now.
    fn function() -> Signer {
        Signer {
            key: role_key(),
            region: REGION,
            service: "lambda",
            at: Utc::now(),
        }
    }
}

impl<'a> Invoke<'a> {
    fn event(function: &'a str, payload: &Value) -> Self {
        Self::of_type(function, Some("Event"), payload)
    }

    fn of_type(function: &'a str, invocation_type: Option<&'a str>, payload: &Value) -> Self {
        Invoke {
            function,
            invocation_type,
            payload: payload.to_string().into_bytes(),
            signer: Some(Signer::function()),
        }
    }

    /// The path as an AWS SDK puts it on the wire (an ARN's colons encoded).
    fn path(&self) -> String {
        format!(
            "/2015-03-31/functions/{}/invocations",
            self.function.replace(':', "%3A")
        )
    }

    /// The headers the request is signed with, and the signature's.
    fn headers(&self, authority: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("host", authority.to_string()),
            ("content-type", "application/json".to_string()),
        ];
        if let Some(invocation_type) = self.invocation_type {
            headers.push(("x-amz-invocation-type", invocation_type.to_string()));
        }
        if let Some(signer) = &self.signer {
            let unsigned: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let path = self.path();
            let request = sigv4::Request {
                method: "POST",
                path: &path,
                query: "",
                headers: &unsigned,
                body: &self.payload,
            };
            let signature = sigv4::sign(&request, &signer.key, signer.region, signer.service, signer.at);
            headers.extend(signature);
        }
        headers
    }

    async fn send(&self, stack: &TestStack) -> Answer {
        self.send_as_signed(stack, |_| {}).await
    }

    /// Sends the request after `tamper` changed what was signed.
    async fn send_as_signed(&self, stack: &TestStack, tamper: impl FnOnce(&mut Sent)) -> Answer {
        let base = stack.emulator().lambda_url();
        let authority = base.trim_start_matches("http://").to_string();
        let mut sent = Sent {
            headers: self.headers(&authority),
            payload: self.payload.clone(),
        };
        tamper(&mut sent);
        let mut request = client().post(format!("{base}{}", self.path()));
        for (name, value) in sent.headers.iter().filter(|(name, _)| *name != "host") {
            request = request.header(*name, value);
        }
        let response = request.body(sent.payload).send().await.expect("Invoke request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Answer {
            status: response.status().as_u16(),
            request_id: header("x-amzn-requestid"),
            error_type: header("x-amzn-errortype"),
            function_error: header("x-amz-function-error"),
            body: response.bytes().await.expect("body").to_vec(),
        }
    }
}

/// A request as it goes out, for a test to change after signing.
struct Sent {
    headers: Vec<(&'static str, String)>,
    payload: Vec<u8>,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    request_id: Option<String>,
    /// An AWS error's type (`x-amzn-ErrorType`).
    error_type: Option<String>,
    /// `X-Amz-Function-Error`: the function failed (the call did not).
    function_error: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(PATIENCE).build().unwrap()
}

async fn start() -> TestStack {
    TestStack::start("template-async.yaml", WsLimits::default()).await
}

/// `GET /__emulator/stats`, as chat-local and the tests read it.
async fn stats(stack: &TestStack) -> Value {
    client()
        .get(format!("{}/__emulator/stats", stack.emulator().http_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}

/// Polls the stats until `done` holds, and returns them.
async fn stats_once(stack: &TestStack, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = stats(stack).await;
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}; stats: {stats:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times the function named `function_name` got an event with this marker.
fn runs_of(stack: &TestStack, function_name: &str, marker: &str) -> usize {
    stack
        .records(function_name)
        .iter()
        .filter(|event| event["marker"] == marker)
        .count()
}

fn new_marker() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_answered_202_before_it_runs_and_runs_once() {
    let stack = start().await;
    let marker = new_marker();
    // The function takes 3 s over it: far longer than answering takes.
    let payload = json!({"rawPath": "/sleep/3000", "marker": marker});
    let answer = Invoke::event("notify-fn", &payload).send(&stack).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert!(answer.body.is_empty(), "{answer:?}");
    assert!(answer.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    let queued = stats(&stack).await["async_invocations"].clone();
    assert_eq!(
        (queued["accepted"].as_u64(), queued["succeeded"].as_u64()),
        (Some(1), Some(0))
    );

    let stats = stats_once(&stack, "the event's run", |s| s["async_invocations"]["succeeded"] == 1).await;
    assert_eq!(
        stats["async_invocations"],
        json!({"accepted": 1, "succeeded": 1, "retries": 0, "failures": []})
    );
    assert_eq!(runs_of(&stack, "notify-fn", &marker), 1);
    let recorded = stack.records("notify-fn");
    assert_eq!(recorded, vec![payload], "the function gets the payload as it was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_is_retried_twice_then_goes_to_its_failure_destination() {
    let stack = start().await;
    let marker = new_marker();
    let payload = json!({"rawPath": "/error", "marker": marker});
    let answer = Invoke::event("notify-fn", &payload).send(&stack).await;
    assert_eq!(answer.status, 202, "{answer:?}");

    let stats = stats_once(&stack, "the failure record", |s| {
        s["async_invocations"]["failures"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    })
    .await;
    let invocations = &stats["async_invocations"];
    assert_eq!(
        (
            &invocations["accepted"],
            &invocations["succeeded"],
            &invocations["retries"]
        ),
        (&json!(1), &json!(0), &json!(2))
    );
    let failures = invocations["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let failure = &failures[0];
    assert_eq!(failure["function"], "NotifyFunction");
    assert_eq!(
        failure["destination"], "FailureQueue",
        "the template's OnFailure, resolved"
    );
    // Lambda's invocation record, as the SQS queue would get it.
    let record = &failure["record"];
    assert_eq!(record["version"], "1.0");
    assert!(
        record["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{record:#}"
    );
    assert_eq!(
        record["requestContext"],
        json!({
            "requestId": answer.request_id.unwrap(),
            "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:notify-fn:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        })
    );
    assert_eq!(record["requestPayload"], payload);
    assert_eq!(
        record["responseContext"],
        json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
    );
    assert_eq!(
        record["responsePayload"],
        json!({"errorType": "&str", "errorMessage": "boom"})
    );
    // The first run and two retries, no more: the record is written after the last.
    assert_eq!(runs_of(&stack, "notify-fn", &marker), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_each_functions_config_and_an_event_with_no_destination_is_dropped() {
    let stack = start().await;
    let (crash, timeout) = (new_marker(), new_marker());
    // MaximumRetryAttempts 0: a crash is tried once.
    let crashing = json!({"rawPath": "/crash", "marker": crash});
    assert_eq!(Invoke::event("once-fn", &crashing).send(&stack).await.status, 202);
    // No EventInvokeConfig: AWS's two retries; a run over the 1 s timeout fails.
    let slow = json!({"rawPath": "/sleep/1500", "marker": timeout});
    assert_eq!(Invoke::event("defaults-fn", &slow).send(&stack).await.status, 202);

    let stats = stats_once(&stack, "both failure records", |s| {
        s["async_invocations"]["failures"]
            .as_array()
            .is_some_and(|f| f.len() == 2)
    })
    .await;
    let failures = stats["async_invocations"]["failures"].as_array().unwrap();
    let of = |function: &str| {
        failures
            .iter()
            .find(|f| f["function"] == function)
            .unwrap_or_else(|| panic!("no failure of {function}: {failures:#?}"))
    };
    let (once, defaults) = (of("OnceFunction"), of("DefaultsFunction"));
    assert_eq!(once["destination"], Value::Null, "no destination: dropped");
    assert_eq!(once["record"]["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(once["record"]["responsePayload"]["errorType"], "Runtime.ExitError");
    assert_eq!(once["record"]["requestPayload"], crashing);
    assert_eq!(defaults["destination"], Value::Null);
    assert_eq!(defaults["record"]["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(defaults["record"]["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(defaults["record"]["responsePayload"]["errorType"], "Sandbox.Timedout");
    assert_eq!(stats["async_invocations"]["retries"], 2);
    assert_eq!(runs_of(&stack, "once-fn", &crash), 1);
    assert_eq!(runs_of(&stack, "defaults-fn", &timeout), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_answers_what_the_handler_returned_and_dry_run_runs_nothing() {
    let stack = start().await;
    let marker = new_marker();
    let payload = json!({"rawPath": "/plain", "marker": marker});

    // RequestResponse, named or Lambda's default, by name or by ARN.
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:notify-fn";
    for (function, invocation_type) in [("notify-fn", Some("RequestResponse")), ("notify-fn", None), (arn, None)] {
        let answer = Invoke::of_type(function, invocation_type, &payload).send(&stack).await;
        assert_eq!(
            (answer.status, answer.json(), answer.function_error.as_deref()),
            (200, json!({"plain": true}), None),
            "{function} {invocation_type:?}"
        );
        assert!(answer.request_id.is_some());
    }
    assert_eq!(runs_of(&stack, "notify-fn", &marker), 3);

    // A handler's error is the call's answer, marked as the function's.
    let failing = json!({"rawPath": "/error"});
    let answer = Invoke::of_type("notify-fn", None, &failing).send(&stack).await;
    assert_eq!(
        (answer.status, answer.json(), answer.function_error.as_deref()),
        (
            200,
            json!({"errorType": "&str", "errorMessage": "boom"}),
            Some("Unhandled")
        )
    );

    let dry = new_marker();
    let answer = Invoke::of_type("notify-fn", Some("DryRun"), &json!({"marker": dry}))
        .send(&stack)
        .await;
    assert_eq!((answer.status, answer.body.len()), (204, 0));
    assert_eq!(runs_of(&stack, "notify-fn", &dry), 0);

    let answer = Invoke::event("no-such-fn", &payload).send(&stack).await;
    assert_eq!(
        (answer.status, answer.error_type.as_deref()),
        (404, Some("ResourceNotFoundException"))
    );
    let answer = Invoke::of_type("notify-fn", Some("Later"), &payload).send(&stack).await;
    assert_eq!(
        (answer.status, answer.error_type.as_deref()),
        (400, Some("InvalidParameterValueException"))
    );
    // An event is at most 256 KiB (a RequestResponse payload may be 6 MiB).
    let big = json!({"marker": "big", "filler": "x".repeat(256 * 1024)});
    let answer = Invoke::event("notify-fn", &big).send(&stack).await;
    assert_eq!(
        (answer.status, answer.error_type.as_deref()),
        (413, Some("RequestTooLargeException"))
    );
    let answer = Invoke::of_type("notify-fn", None, &big).send(&stack).await;
    assert_eq!(answer.status, 200, "{answer:?}");

    assert_eq!(
        stats(&stack).await["async_invocations"],
        json!({"accepted": 0, "succeeded": 0, "retries": 0, "failures": []}),
        "nothing here was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_not_signed_with_the_functions_key_for_lambda_are_refused_and_nothing_runs() {
    let stack = start().await;
    let marker = new_marker();
    let payload = json!({"marker": marker});
    let key = role_key();
    let signed_by = |key: Credentials, region: &'static str, service: &'static str, at: DateTime<Utc>| Invoke {
        signer: Some(Signer {
            key,
            region,
            service,
            at,
        }),
        ..Invoke::event("notify-fn", &payload)
    };
    let other_secret = Credentials {
        secret_access_key: "not-the-secret".into(),
        ..key.clone()
    };
    let other_key = Credentials {
        access_key_id: "ASIAOTHERKEY00000001".into(),
        ..key.clone()
    };
    let no_session_token = Credentials {
        session_token: None,
        ..key.clone()
    };
    let now = Utc::now();
    let cases = [
        (
            "unsigned",
            Invoke {
                signer: None,
                ..Invoke::event("notify-fn", &payload)
            },
            "MissingAuthenticationTokenException",
        ),
        (
            "another secret",
            signed_by(other_secret, REGION, "lambda", now),
            "InvalidSignatureException",
        ),
        (
            "another key",
            signed_by(other_key, REGION, "lambda", now),
            "UnrecognizedClientException",
        ),
        (
            "no session token",
            signed_by(no_session_token, REGION, "lambda", now),
            "UnrecognizedClientException",
        ),
        (
            "for API Gateway",
            signed_by(key.clone(), REGION, "execute-api", now),
            "InvalidSignatureException",
        ),
        (
            "for another region",
            signed_by(key.clone(), "eu-west-1", "lambda", now),
            "InvalidSignatureException",
        ),
        (
            "20 minutes ago",
            signed_by(key.clone(), REGION, "lambda", now - chrono::TimeDelta::minutes(20)),
            "InvalidSignatureException",
        ),
    ];
    for (what, invoke, error_type) in cases {
        let answer = invoke.send(&stack).await;
        assert_eq!(
            (answer.status, answer.error_type.as_deref()),
            (403, Some(error_type)),
            "{what}: {answer:?}"
        );
        assert!(answer.json()["message"].is_string(), "{what}");
    }

    // What was signed, changed on the way.
    let signed = Invoke::event("notify-fn", &payload);
    let answer = signed
        .send_as_signed(&stack, |sent| {
            sent.payload = json!({"marker": "another"}).to_string().into_bytes()
        })
        .await;
    assert_eq!(
        (answer.status, answer.error_type.as_deref()),
        (403, Some("InvalidSignatureException")),
        "another body"
    );
    let signed = Invoke::of_type("notify-fn", Some("DryRun"), &payload);
    let answer = signed
        .send_as_signed(&stack, |sent| {
            for (name, value) in &mut sent.headers {
                if *name == "x-amz-invocation-type" {
                    *value = "Event".into();
                }
            }
        })
        .await;
    assert_eq!(
        (answer.status, answer.error_type.as_deref()),
        (403, Some("InvalidSignatureException")),
        "another invocation type"
    );
    // Refused before the function is looked up: an unsigned caller learns nothing of them.
    let answer = Invoke {
        signer: None,
        ..Invoke::event("no-such-fn", &payload)
    }
    .send(&stack)
    .await;
    assert_eq!(answer.status, 403);

    assert_eq!(stats(&stack).await["async_invocations"]["accepted"], 0);
    assert_eq!(stats(&stack).await["functions"]["NotifyFunction"]["invocations"], 0);
    assert_eq!(runs_of(&stack, "notify-fn", &marker), 0);
}
