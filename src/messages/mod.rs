//! Outbound messages: sends, listings and idempotency keys.

pub mod idempotency;
pub mod listings;
pub mod send;
