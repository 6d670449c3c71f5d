//! Webhooks from TikTok: signature check, envelope, receipt, the durable pipeline in the
//! account actor, forwarding and recorded failures.

pub mod envelope;
pub(crate) mod failure_wire;
pub(crate) mod failures;
pub(crate) mod forward;
pub(crate) mod pipeline;
pub(crate) mod receive;
pub(crate) mod subscription;
pub mod verify;
