use std::time::Duration;

use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
use aws_sdk_apigatewaymanagement::config::{
    BehaviorVersion, Credentials, IdentityCache, Region, StalledStreamProtectionConfig,
};
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;
use url::Url;

use super::{ConnectionPusher, PushError};

const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// The API Gateway Management API (`@connections`) of one WebSocket API stage.
pub struct ManagementApi {
    client: Client,
}

impl ManagementApi {
    /// Credentials come from the variables Lambda sets for the execution role
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), which
    /// spares every function the weight of the full credential chain.
    pub fn from_env(endpoint: &Url) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let credentials = Credentials::new(
            var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            var("AWS_SESSION_TOKEN"),
            None,
            "lambda-environment",
        );
        let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .endpoint_url(endpoint.as_str().trim_end_matches('/'))
            .credentials_provider(credentials)
            // The credentials are fixed for the process's life: a cache in front
            // of them only adds a lookup and a lock to every call.
            .identity_cache(IdentityCache::no_cache())
            // Answers are empty and bounded by the operation timeout below; the
            // stalled-stream watch would only add a timer to every call.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            // Fan-out does its own retrying with a budget; the SDK's would stack on top.
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(OPERATION_TIMEOUT).build())
            .build();
        Self {
            client: Client::from_conf(config),
        }
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
        self.client
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
        self.client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception(), |e| e.is_limit_exceeded_exception()))
    }

    async fn get_connection(&self, connection_id: &str) -> Result<(), PushError> {
        self.client
            .get_connection()
            .connection_id(connection_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, |e| e.is_gone_exception(), |e| e.is_limit_exceeded_exception()))
    }
}
