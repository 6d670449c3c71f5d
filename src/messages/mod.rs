//! Outbound messages: sends, listings, idempotency keys and the auto-reply pause (handoff).

pub(crate) mod handoff;
pub(crate) mod idempotency;
pub(crate) mod listings;
pub mod send;
