//! Outbound messages: sends, listings and idempotency keys.

pub mod api;
pub mod idempotency;
