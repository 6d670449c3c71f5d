//! tiktok-messaging-worker: a Cloudflare Worker connecting TikTok Business accounts.
//!
//! The core (every module but `edge`) knows nothing of `worker::*`: it takes its effects
//! through the traits in [`ports`] and is unit-tested natively. `edge` binds those traits to
//! Workers KV, `fetch`, Durable Objects, cron and `wait_until`, and holds the entry points.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod lossless;
pub mod oauth;
pub mod oauth_state;
pub mod pipeline;
pub mod ports;
pub mod replies;
pub mod routes;
pub mod secret;
pub mod tiktok;
pub mod time;
pub mod tokens;
pub mod webhook;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod props;
