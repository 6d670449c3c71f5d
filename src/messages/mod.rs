//! Outbound messages: sends, listings and idempotency keys.

pub(crate) mod idempotency;
pub(crate) mod listings;
pub mod send;
