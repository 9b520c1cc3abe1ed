//! The chat backend's shared library: every Lambda function is a few lines that
//! build [`lambda::Services`] once and hand events to a handler from here.
//!
//! Layout: [`domain`] holds the rules for input, [`store`] the database calls
//! (PostgREST), [`push`] the Management API, [`delivery`] the one way the
//! events a write caused are pushed, [`auth`] token verification, [`events`]
//! the events the functions make themselves, [`notify`] Web Push and the
//! webhook to users who are offline, [`ws`] / [`http`] the entry points, and
//! [`sweep`] the scheduled sweep of connections whose `$disconnect` never
//! came. The store and push ports have in-memory doubles the handlers' unit
//! tests use.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod lambda;
pub mod logging;
pub mod notify;
pub mod push;
pub mod store;
pub mod sweep;
#[cfg(test)]
mod testing;
pub mod ws;
