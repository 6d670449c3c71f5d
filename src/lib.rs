//! tiktok-messaging-worker: a Cloudflare Worker connecting TikTok Business accounts.
//!
//! The core (every module but `edge`) knows nothing of `worker::*`: it takes its effects
//! through the traits in [`ports`] and is unit-tested natively. `edge` binds those traits to
//! Workers KV, `fetch`, Durable Objects, cron and `wait_until`, and holds the entry points.

// Natively the entry points (`edge`) are not compiled, so code only they use would look dead:
// dead code is judged by the `.wasm` build (clippy for wasm32 with `-D warnings`).
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod accounts;
pub(crate) mod app;
pub(crate) mod auth;
pub(crate) mod b64;
pub(crate) mod config;
mod console;
pub(crate) mod coordinator;
pub(crate) mod crypto;
pub(crate) mod error;
pub(crate) mod health;
pub mod http;
pub(crate) mod inbox;
pub(crate) mod json;
pub(crate) mod lossless;
pub mod messages;
pub(crate) mod oauth;
pub(crate) mod ports;
pub mod rules;
pub(crate) mod secret;
pub(crate) mod sqljson;
pub(crate) mod tiktok;
pub mod time;
pub(crate) mod urlencoded;
pub mod webhooks;
pub(crate) mod weburl;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod props;
