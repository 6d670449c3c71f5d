//! Webhooks from TikTok: signature check, envelope, receipt, the durable pipeline in the
//! account actor, forwarding and recorded failures.

pub mod envelope;
pub mod failures;
pub mod forward;
pub mod pipeline;
pub mod receive;
pub mod subscription;
pub mod verify;
