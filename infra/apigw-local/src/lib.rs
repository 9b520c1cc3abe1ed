//! Local emulator of Amazon API Gateway (HTTP API payload 2.0, WebSocket API,
//! Management API `@connections`) and of the AWS Lambda Runtime API.
//!
//! It reads an AWS SAM template, runs every function as OS processes of its
//! real binary (one Runtime API listener per instance), and serves the APIs on
//! local ports so the whole backend runs on one machine without Docker.

mod async_invoke;
mod config;
mod emulator;
mod error;
mod http_api;
mod ids;
mod invoke_api;
mod lambda;
mod query;
mod redact;
pub mod sigv4;
mod template;
mod throttle;
mod websocket;

pub use async_invoke::{AsyncFailure, AsyncInvocationStats};
pub use config::{EmulatorConfig, WsLimits, AWS_ASYNC_RETRY_DELAY};
pub use emulator::Emulator;
pub use error::EmulatorError;
pub use lambda::stats::{EmulatorStats, FunctionStats, InstanceColdStart};
pub use lambda::InvokeError;
pub use sigv4::Credentials;
