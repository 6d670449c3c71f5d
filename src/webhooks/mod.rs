//! Webhooks from TikTok: signature check, envelope, receipt, the durable pipeline in the
//! account actor, forwarding and recorded failures.

pub mod envelope;
pub mod events;
pub mod pipeline;
