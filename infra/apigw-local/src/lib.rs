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

/// Every connection the emulator accepts sends without Nagle's delay: a small
/// write behind one still unacknowledged (a WebSocket frame, an answer's body
/// after its headers) would otherwise wait for the peer's delayed ACK, about
/// 40 ms on Linux, which API Gateway and the Lambda service do not add.
pub(crate) fn no_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(set_no_delay as fn(&mut tokio::net::TcpStream))
}

fn set_no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::warn!(%error, "TCP_NODELAY could not be set");
    }
}

#[cfg(test)]
mod no_delay_tests {
    use axum::serve::Listener as _;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = super::no_delay(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await;
        assert!(stream.nodelay().unwrap());
    }
}
