//! Local emulator of Amazon API Gateway (HTTP API payload 2.0, WebSocket API,
//! Management API `@connections`) and of the AWS Lambda Runtime API.
//!
//! It reads an AWS SAM template, runs every function as OS processes of its
//! real binary (one Runtime API listener per instance), serves the APIs on
//! local ports so the whole backend runs on one machine without Docker, and
//! runs the functions' `Schedule` / `ScheduleV2` events. A run may inject
//! faults (`RunOptions`): `@connections` errors and latency, killed
//! instances, lost `$disconnect`s.

mod async_invoke;
mod config;
mod emulator;
mod error;
mod faults;
mod http_api;
mod ids;
mod invoke_api;
mod lambda;
mod query;
mod redact;
mod schedule;
pub mod sigv4;
mod template;
mod throttle;
mod websocket;

pub use async_invoke::{AsyncFailure, AsyncInvocationStats};
pub use config::{EmulatorConfig, RunOptions, WsLimits, AWS_ASYNC_RETRY_DELAY};
pub use emulator::Emulator;
pub use error::EmulatorError;
pub use faults::{check_share, FaultConfig};
pub use lambda::stats::{EmulatorStats, FaultStats, FunctionStats, InstanceColdStart, ScheduleStats};
pub use lambda::InvokeError;
pub use sigv4::Credentials;
