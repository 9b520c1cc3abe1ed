//! The hand-off: Lambda's `Invoke` API with `X-Amz-Invocation-Type: Event`,
//! signed (SigV4, service `lambda`) with the execution role's key. Lambda
//! answers 202 once the event is queued; from there it runs the notification
//! function, retries it twice when it fails and sends what still fails to the
//! function's on-failure destination. No queue of our own to run.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::{HandOffError, NotificationQueue, NotificationRequest};
use crate::config::{url_from_env, ConfigError, Env};

/// The hand-off is on the send's path: short, and retried only a little.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPTS: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// The notification function, invoked asynchronously.
pub struct LambdaInvoke {
    http: reqwest::Client,
    /// `{endpoint}/2015-03-31/functions/{name}/invocations`
    url: String,
    region: String,
    credentials: Credentials,
}

impl LambdaInvoke {
    /// `NOTIFY_FUNCTION_NAME` (its name or ARN; unset: nobody is notified),
    /// `AWS_ENDPOINT_URL_LAMBDA` (the AWS SDKs' override of the service's
    /// endpoint; default `https://lambda.{region}.amazonaws.com`), and the
    /// key and region Lambda sets.
    pub fn from(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(function) = env.var("NOTIFY_FUNCTION_NAME") else {
            return Ok(None);
        };
        let function = function.trim();
        if !function
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
        {
            return Err(ConfigError {
                name: "NOTIFY_FUNCTION_NAME",
                problem: "must be a function name or ARN (A-Z a-z 0-9 - _ : .)".into(),
            });
        }
        let region = env.var("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let endpoint = match env.var("AWS_ENDPOINT_URL_LAMBDA") {
            Some(raw) => {
                let url = url_from_env("AWS_ENDPOINT_URL_LAMBDA", &raw)?;
                url.as_str().trim_end_matches('/').to_string()
            }
            None => format!("https://lambda.{region}.amazonaws.com"),
        };
        // A colon of an ARN is percent-encoded in the path, as the SDKs send it.
        let name = function.replace(':', "%3A");
        Ok(Some(Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: format!("{endpoint}/2015-03-31/functions/{name}/invocations"),
            region,
            credentials: Credentials::new(
                env.var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                env.var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
                env.var("AWS_SESSION_TOKEN"),
                None,
                "lambda-environment",
            ),
        }))
    }

    /// The request, signed now.
    fn signed(&self, body: Vec<u8>) -> Result<reqwest::RequestBuilder, HandOffError> {
        let headers = [("content-type", "application/json"), ("x-amz-invocation-type", "Event")];
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| HandOffError::Failed(format!("signing: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| HandOffError::Failed(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| HandOffError::Failed(format!("signing: {e}")))?
            .into_parts();
        let mut request = self.http.post(&self.url).body(body);
        for (name, value) in headers.into_iter().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        Ok(request)
    }
}

impl NotificationQueue for LambdaInvoke {
    async fn enqueue(&self, request: &NotificationRequest) -> Result<(), HandOffError> {
        let body = serde_json::to_vec(request).map_err(|e| HandOffError::Failed(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self.signed(body.clone())?.send().await;
            let error = match answer {
                Ok(response) if response.status().as_u16() == 202 => return Ok(()),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let kind = response
                        .headers()
                        .get("x-amzn-errortype")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string();
                    let error = HandOffError::Refused { status, kind };
                    // Throttling and Lambda's own failures may pass; anything else will not.
                    if status != 429 && status < 500 {
                        return Err(error);
                    }
                    error
                }
                Err(e) => HandOffError::Failed(e.to_string()),
            };
            if attempt >= ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(crate::push::full_jitter(RETRY_BACKOFF)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_function_and_the_endpoint() {
        assert!(LambdaInvoke::from(&[("AWS_REGION", "eu-west-1")]).unwrap().is_none());
        let invoke = LambdaInvoke::from(&[("NOTIFY_FUNCTION_NAME", "chat-Notify-1"), ("AWS_REGION", "eu-west-1")])
            .unwrap()
            .unwrap();
        assert_eq!(
            invoke.url,
            "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/chat-Notify-1/invocations"
        );
        let local = LambdaInvoke::from(&[
            (
                "NOTIFY_FUNCTION_NAME",
                "arn:aws:lambda:us-east-1:000000000000:function:NotifyFunction",
            ),
            ("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:3001/"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            local.url,
            "http://127.0.0.1:3001/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3ANotifyFunction/invocations"
        );
        let bad = LambdaInvoke::from(&[("NOTIFY_FUNCTION_NAME", "a/b")]).err().unwrap();
        assert_eq!(bad.name, "NOTIFY_FUNCTION_NAME");
    }

    #[test]
    fn the_request_is_signed_for_lambda_with_the_session_token() {
        let invoke = LambdaInvoke::from(&[
            ("NOTIFY_FUNCTION_NAME", "NotifyFunction"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ])
        .unwrap()
        .unwrap();
        let request = invoke.signed(b"{}".to_vec()).unwrap().build().unwrap();
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_string();
        assert_eq!(header("x-amz-invocation-type"), "Event");
        assert_eq!(header("x-amz-security-token"), "token");
        let authorization = header("authorization");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/")
                && authorization.contains("/us-east-1/lambda/aws4_request")
                && authorization.contains("x-amz-invocation-type"),
            "{authorization}"
        );
    }
}
