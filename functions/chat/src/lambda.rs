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

/// A handler's future, boxed, so that the glue below is compiled once and
/// shared by every handler.
type BoxedFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler with its type erased, so that the Lambda runtime's service stack
/// (lambda_runtime, lambda_http, hyper's client to the Runtime API) is
/// instantiated once per kind of event, not once per function: with 40
/// functions in one executable, one copy per function was most of its own code.
type Erased<E, T> = Box<dyn Fn(E) -> BoxedFuture<T> + Send + Sync>;

/// A function's whole life, boxed (see [`serve`]). Not `Send`: it runs on the
/// thread that starts it.
pub type FunctionFuture = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

/// Serves a REST endpoint (API Gateway HTTP API, payload 2.0).
pub fn run_http<F, Fut>(handler: F) -> FunctionFuture
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Box::pin(serve_http(Box::new(move |request| Box::pin(handler(request)))))
}

async fn serve_http(handler: Erased<Request, Response<Body>>) -> Result<(), Error> {
    lambda_http::run(service_fn(|request: Request| {
        let response = handler(request);
        async move { Ok::<_, std::convert::Infallible>(response.await) }
    }))
    .await
}

/// Serves a WebSocket route.
pub fn run_websocket<F, Fut>(handler: F) -> FunctionFuture
where
    F: Fn(ApiGatewayWebsocketProxyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send + 'static,
{
    Box::pin(serve_websocket(Box::new(move |event| Box::pin(handler(event)))))
}

async fn serve_websocket(
    handler: Erased<ApiGatewayWebsocketProxyRequest, ApiGatewayProxyResponse>,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let parsed = serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event.payload)
            .map_err(|e| e.to_string())
            .and_then(|event| match event.request_context.connection_id {
                Some(_) => Ok(event),
                None => Err("requestContext.connectionId is missing".into()),
            });
        let response = parsed.map(&handler);
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
pub fn run_scheduled<F, Fut, T>(handler: F) -> FunctionFuture
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
    T: serde::Serialize,
{
    Box::pin(serve_scheduled(Box::new(move |()| {
        let report = handler();
        Box::pin(async move {
            report
                .await
                .map(|report| serde_json::to_value(report).unwrap_or_default())
        })
    })))
}

async fn serve_scheduled(handler: Erased<(), Result<Value, String>>) -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let event_id = event.payload.get("id").and_then(Value::as_str).map(str::to_owned);
        let report = handler(());
        async move {
            tracing::info!(event_id, "scheduled run");
            report.await.map_err(|message| Diagnostic {
                error_type: "ScheduledRunFailed".into(),
                error_message: message,
            })
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
pub fn serve(function: impl Future<Output = Result<(), Error>> + 'static) -> Result<(), Error> {
    // Boxed, so that the runtime's block_on is compiled once for all functions.
    let function: FunctionFuture = Box::pin(function);
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
