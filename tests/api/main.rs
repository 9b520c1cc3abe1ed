//! The end-to-end tests: one binary, one stack per run (started by the first
//! test that needs it, shared by all), tests in parallel threads, each with
//! its own users and conversations. A module per resource; what they share is
//! in `helpers`, written once.

mod helpers;

mod bench_smoke;
mod blocking;
mod churn;
mod conversations;
mod cors;
mod emulator_security;
mod events_replay;
mod health_auth;
mod messages;
mod openapi;
mod people;
mod postgrest_direct;
mod privacy;
mod push;
mod rate_limits;
mod read_state;
mod rules;
mod sql;
mod sweeper;
mod users_presence;
mod websocket;
