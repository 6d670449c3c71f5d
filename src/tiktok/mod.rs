//! TikTok Business Messaging API: wire types and a client over the [`Transport`] port.
//!
//! [`Transport`]: crate::ports::Transport

pub mod client;
pub mod types;

pub use client::{AppCredentials, Client};
