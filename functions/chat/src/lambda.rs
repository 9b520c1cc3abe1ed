//! What every function's `main` shares: logging, clients built once per
//! instance, and the glue between the Lambda runtime and the handlers.

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest,
};
use lambda_http::{Body, Request, Response};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::auth::TokenVerifier;
use crate::config::{Config, ConfigError, ProcessEnv};
use crate::notify::LambdaInvoke;
use crate::push::ManagementApi;
use crate::store::PostgrestStore;

pub use lambda_runtime::Error;

/// The clients a function uses, built once when the instance starts and reused
/// by every invocation it serves.
pub struct Services {
    pub config: Config,
    pub store: PostgrestStore,
    pub pusher: ManagementApi,
    pub verifier: TokenVerifier,
    /// The notification function, when this function is told of it
    /// (`NOTIFY_FUNCTION_NAME`: the functions that send messages).
    pub notifications: Option<LambdaInvoke>,
    /// `VAPID_PUBLIC_KEY`, when Web Push is configured.
    pub vapid_public_key: Option<String>,
}

impl Services {
    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let endpoint = config.management_endpoint.clone().ok_or(ConfigError {
            name: "WEBSOCKET_MANAGEMENT_ENDPOINT",
            problem: "is required (https://{api-id}.execute-api.{region}.amazonaws.com/{stage})".into(),
        })?;
        Ok(Self {
            store: PostgrestStore::new(&config)?,
            pusher: ManagementApi::from_env(&endpoint),
            verifier: TokenVerifier::new(&config, reqwest::Client::new()),
            notifications: LambdaInvoke::from(&ProcessEnv)?,
            vapid_public_key: crate::notify::vapid_public_key(&ProcessEnv)?,
            config,
        })
    }
}

/// Sets up logging (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`; every line inside
/// an invocation carries its request id) and builds the services. They live for
/// the whole process, hence `'static`.
pub fn services() -> Result<&'static Services, Error> {
    crate::logging::init();
    let services = Config::from_env()
        .and_then(Services::from_config)
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    Ok(Box::leak(Box::new(services)))
}

/// Serves a REST endpoint (API Gateway HTTP API, payload 2.0).
pub async fn run_http<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(service_fn(move |request: Request| {
        let response: Pin<Box<dyn Future<Output = Response<Body>> + Send>> = Box::pin(handler(request));
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    }))
    .await
}

/// Serves a WebSocket route.
pub async fn run_websocket<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(ApiGatewayWebsocketProxyRequest) -> Fut,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send,
{
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let parsed = serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event.payload)
            .map_err(|e| e.to_string())
            .and_then(|event| match event.request_context.connection_id {
                Some(_) => Ok(event),
                None => Err("requestContext.connectionId is missing".into()),
            });
        // Boxed: the SDK's futures nest deeply, and an unboxed chain of them
        // exceeds the compiler's type-layout depth in every binary.
        let response = parsed
            .map(|event| -> Pin<Box<dyn Future<Output = ApiGatewayProxyResponse> + Send>> { Box::pin(handler(event)) });
        async move {
            match response {
                Ok(response) => Ok::<_, std::convert::Infallible>(response.await),
                Err(e) => {
                    tracing::error!(error = %e, "not an API Gateway WebSocket event");
                    Ok(crate::ws::status(400))
                }
            }
        }
    }))
    .await
}

/// Serves a scheduled function (an EventBridge schedule). The event says only
/// that it is time, so its content is not read beyond its id, for the log.
/// The handler's report is the answer; its error fails the invocation.
pub async fn run_scheduled<F, Fut, T>(handler: F) -> Result<(), Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>> + Send,
    T: serde::Serialize,
{
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let event_id = event.payload.get("id").and_then(Value::as_str).map(str::to_owned);
        // Boxed, as in run_websocket.
        let report: Pin<Box<dyn Future<Output = Result<T, String>> + Send>> = Box::pin(handler());
        async move {
            tracing::info!(event_id, "scheduled run");
            match report.await {
                Ok(report) => Ok(serde_json::to_value(report).unwrap_or_default()),
                Err(message) => Err(Diagnostic {
                    error_type: "ScheduledRunFailed".into(),
                    error_message: message,
                }),
            }
        }
    }))
    .await
}

/// Serves the `$connect` REQUEST authorizer. A refused token is reported as the
/// error `Unauthorized`, which API Gateway turns into a 401.
pub async fn run_authorizer(verifier: &'static TokenVerifier) -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            crate::ws::authorize(verifier, event.payload)
                .await
                .map_err(|refusal| {
                    tracing::info!(reason = %refusal, "connection refused");
                    Diagnostic {
                        error_type: "Unauthorized".into(),
                        error_message: "Unauthorized".into(),
                    }
                })
                .map(|allowed: ApiGatewayCustomAuthorizerResponse| allowed)
        },
    ))
    .await
}

/// Runs a function's whole life on tokio's current-thread runtime: an
/// instance serves one invocation at a time and has at most a share of one
/// vCPU at the template's memory sizes, so a second worker thread buys
/// nothing and its wake-ups cost: the fan-out's CPU per post drops by about
/// 40% (the push_cost example measures it).
pub fn serve(function: impl Future<Output = Result<(), Error>>) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(function)
}

/// A REST endpoint's function, given how it calls its handler with the
/// instance's [`Services`] and the request:
///
/// ```ignore
/// chat::http_function!(|s, request| chat::http::get_me(&s.verifier, &s.store, &request))
/// ```
#[macro_export]
macro_rules! http_function {
    (|$services:ident, $request:ident| $call:expr) => {
        $crate::lambda::serve(async {
            let $services = $crate::lambda::services()?;
            $crate::lambda::run_http(move |$request| async move { $call.await }).await
        })
    };
}

/// A WebSocket route's function (see [`http_function!`]).
#[macro_export]
macro_rules! websocket_function {
    (|$services:ident, $event:ident| $call:expr) => {
        $crate::lambda::serve(async {
            let $services = $crate::lambda::services()?;
            $crate::lambda::run_websocket(move |$event| async move { $call.await }).await
        })
    };
}

/// A scheduled function (see [`http_function!`]):
///
/// ```ignore
/// chat::scheduled_function!(|s| chat::sweep::run(&s.store, &s.pusher, &s.config))
/// ```
#[macro_export]
macro_rules! scheduled_function {
    (|$services:ident| $call:expr) => {
        $crate::lambda::serve(async {
            let $services = $crate::lambda::services()?;
            $crate::lambda::run_scheduled(move || async move { $call.await }).await
        })
    };
}
