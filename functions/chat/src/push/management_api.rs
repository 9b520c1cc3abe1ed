mod http_client;
mod sigv4;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_runtime::invocation_id::InvocationIdInterceptor;
use aws_runtime::request_info::RequestInfoInterceptor;
use aws_runtime::service_clock_skew::ServiceClockSkewInterceptor;
use aws_runtime::user_agent::UserAgentInterceptor;
use aws_sdk_apigatewaymanagement::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::config::{
    BehaviorVersion, ConfigBag, IdentityCache, Intercept, Region, RuntimeComponents, SharedInterceptor,
    StalledStreamProtectionConfig,
};
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use aws_smithy_runtime_api::client::interceptors::disable_interceptor;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use url::Url;

pub use self::http_client::Http1Client;
use self::sigv4::{Request, Signer};
use super::{ConnectionPusher, PushError};

const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// The Management API's signing name.
const SERVICE: &str = "execute-api";

/// The API Gateway Management API (`@connections`) of one WebSocket API stage.
pub struct ManagementApi {
    settings: ClientSettings,
    /// Built on the first call, which the functions that never push (the
    /// authorizer, the reads) never make.
    client: OnceLock<Client>,
}

/// What the client is built from, read from the environment at start-up.
struct ClientSettings {
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl ManagementApi {
    /// Credentials come from the variables Lambda sets for the execution role
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), which
    /// spares every function the weight of the full credential chain.
    pub fn from_env(endpoint: &Url) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            settings: ClientSettings {
                endpoint: endpoint.as_str().trim_end_matches('/').to_string(),
                region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
                access_key_id: var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                secret_access_key: var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
                session_token: var("AWS_SESSION_TOKEN"),
            },
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| self.settings.build())
    }
}

impl ClientSettings {
    fn build(&self) -> Client {
        let signer = Signer::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            self.region.clone(),
            SERVICE,
        );
        // Fails only where TLS cannot be set up at all; every call then fails with it.
        let http_client = Http1Client::new();
        let mut config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client)
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            // The SDK's SigV4 signer derives the signing key (four HMACs) and
            // builds the canonical request as strings on every call: about a
            // sixth of a post's CPU time. With no credentials given it, the SDK
            // leaves requests unsigned ("no auth"), and `SignWithCachedKey`
            // signs each one last before it is sent.
            .allow_no_auth()
            // No identity to resolve: nothing to cache.
            .identity_cache(IdentityCache::no_cache())
            // Answers are empty and bounded by the operation timeout below; the
            // stalled-stream watch would only add a timer to every call.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            // Fan-out does its own retrying with a budget; the SDK's would stack on top.
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(OPERATION_TIMEOUT).build());
        // Permanent: no per-call look-up of whether it was switched off.
        config.push_interceptor(SharedInterceptor::permanent(SkipPerCallExtras));
        config.push_interceptor(SharedInterceptor::permanent(SignWithCachedKey(signer)));
        Client::from_conf(config.build())
    }
}

/// Switches off, for each call, the SDK interceptors that add headers
/// API Gateway does not need and that a fan-out would pay for on every post:
/// the user agent (built as a string each time: about 7% of a post's
/// instructions), the invocation id and attempt headers (for the SDK's own
/// retries, which are off), and the clock-skew reading of every answer's
/// `Date` (for re-signing on skew, which only the SDK's retries would do).
/// X-Ray's trace header (recursion detection) stays.
/// It also hides the operation's name from the SDK's metrics interceptor,
/// which cannot be switched off: with no meter installed it still built two
/// attribute maps (SipHash, owned strings) on every call, about 3% of a post's
/// instructions, to record into no-op instruments. Nothing else of this
/// client reads the name.
#[derive(Debug)]
struct SkipPerCallExtras;

impl Intercept for SkipPerCallExtras {
    fn name(&self) -> &'static str {
        "SkipPerCallExtras"
    }

    /// The first hook of a call, before any of those interceptors runs.
    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        const WHY: &str = "not needed by a post to a connection";
        let state = cfg.interceptor_state();
        state.store_put(disable_interceptor::<UserAgentInterceptor>(WHY));
        state.store_put(disable_interceptor::<InvocationIdInterceptor>(WHY));
        state.store_put(disable_interceptor::<RequestInfoInterceptor>(WHY));
        state.store_put(disable_interceptor::<ServiceClockSkewInterceptor>(WHY));
        state.unset::<Metadata>();
        Ok(())
    }
}

/// Signs each request (SigV4) after every other interceptor has set its
/// headers, so that all of them are signed, with a key derived once a day.
#[derive(Debug)]
struct SignWithCachedKey(Signer);

impl Intercept for SignWithCachedKey {
    fn name(&self) -> &'static str {
        "SignWithCachedKey"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let body = request.body().bytes().ok_or("a streamed body cannot be signed here")?;
        let signature = self.0.sign(
            Request {
                method: request.method(),
                uri: request.uri(),
                headers: request.headers().iter(),
                body,
            },
            SystemTime::now(),
        )?;
        let (x_amz_date, authorization) = (signature.x_amz_date, signature.authorization);
        let token = signature.x_amz_security_token.map(str::to_string);
        let headers = request.headers_mut();
        headers.try_insert("x-amz-date", x_amz_date)?;
        if let Some(token) = token {
            headers.try_insert("x-amz-security-token", token)?;
        }
        headers.try_insert("authorization", authorization)?;
        Ok(())
    }
}

fn classify<E, R>(error: SdkError<E, R>, is_gone: impl Fn(&E) -> bool, is_throttled: impl Fn(&E) -> bool) -> PushError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) if is_gone(service.err()) => PushError::Gone,
        SdkError::ServiceError(service) if is_throttled(service.err()) => PushError::Throttled,
        _ => PushError::Failed(aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&error).to_string()),
    }
}

impl ConnectionPusher for ManagementApi {
    async fn post_to_connection(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        self.client()
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                if let SdkError::ServiceError(s) = &e {
                    if s.err().is_payload_too_large_exception() {
                        return PushError::TooLarge;
                    }
                }
                classify(e, |e| e.is_gone_exception(), |e| e.is_limit_exceeded_exception())
            })
    }

    async fn delete_connection(&self, connection_id: &str) -> Result<(), PushError> {
        self.client()
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception(), |e| e.is_limit_exceeded_exception()))
    }

    async fn get_connection(&self, connection_id: &str) -> Result<(), PushError> {
        self.client()
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception(), |e| e.is_limit_exceeded_exception()))
    }
}

#[cfg(test)]
mod tests {
    use super::http_client::tests::one_exchange;
    use super::*;

    #[tokio::test]
    async fn a_post_is_signed_and_carries_none_of_the_switched_off_headers() {
        let (url, served) = one_exchange("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let api = ManagementApi {
            settings: ClientSettings {
                endpoint: format!("{url}/prod"),
                region: "eu-west-1".into(),
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: Some("session".into()),
            },
            client: OnceLock::new(),
        };

        api.post_to_connection("abc=", b"{\"hi\":1}").await.unwrap();

        let sent = served.await.unwrap().to_ascii_lowercase();
        assert!(
            sent.starts_with("post /prod/@connections/abc%3d http/1.1\r\n"),
            "{sent}"
        );
        assert!(
            sent.contains("\r\nauthorization: aws4-hmac-sha256 credential=akidexample/"),
            "{sent}"
        );
        assert!(sent.contains("\r\nx-amz-security-token: session\r\n"), "{sent}");
        for header in [
            "user-agent",
            "x-amz-user-agent",
            "amz-sdk-invocation-id",
            "amz-sdk-request",
        ] {
            assert!(!sent.contains(&format!("\r\n{header}:")), "{header} sent: {sent}");
        }
        assert!(sent.ends_with("\r\n\r\n{\"hi\":1}"), "{sent}");
    }
}
