//! tiktok-messaging-worker: a Cloudflare Worker connecting TikTok Business accounts.
//!
//! The core (every module but `edge`) knows nothing of `worker::*`: it takes its effects
//! through the traits in [`ports`] and is unit-tested natively. `edge` binds those traits to
//! Workers KV, `fetch`, Durable Objects, cron and `wait_until`, and holds the entry points.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod config;
pub mod coordinator;
pub mod crypto;
pub mod error;
pub mod health;
pub mod http;
pub mod lossless;
pub mod messages;
pub mod oauth;
pub mod ports;
pub mod rules;
pub mod secret;
pub mod tiktok;
pub mod time;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod props;
