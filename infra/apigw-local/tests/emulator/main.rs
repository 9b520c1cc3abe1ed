//! The emulator against real processes: the echo example runs as every
//! function. One test binary, so the helpers are compiled and linked once.

mod cors;
mod faults;
mod helpers;
mod http_api;
mod invoke;
mod management;
mod redaction;
mod schedules;
mod throttling;
mod websocket;
