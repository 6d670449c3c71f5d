//! TikTok Business Messaging API: wire types, error codes and a client over the [`Transport`]
//! port.
//!
//! [`Transport`]: crate::ports::Transport

pub mod client;
pub mod codes;
pub mod delivery;
pub mod retry;
pub mod types;

#[cfg(test)]
pub(crate) mod contract_tests;

pub use client::{AppCredentials, Client};
