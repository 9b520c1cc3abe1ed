//! The chat backend's shared library: every Lambda function is a few lines that
//! build [`lambda::Services`] once and hand events to a handler from here.
//!
//! Layout (hexagonal): [`domain`] holds the rules for input, [`store`] the
//! storage port and its PostgREST adapter, [`push`] the Management API port and
//! fan-out, [`auth`] token verification, [`events`] the server → client envelope,
//! and [`ws`] / [`http`] the entry points.

pub mod auth;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod lambda;
pub mod push;
pub mod store;
pub mod ws;
