//! The calls the Worker makes to an account's actor and the actor's replies, as one
//! serde-tagged enum each: the only wire format between the two.

use serde::{Deserialize, Serialize};

/// How a request ends its claim.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Settle {
    /// Keep the answer: repeats get it again.
    #[default]
    Keep,
    /// Nothing was sent and a retry may succeed (429, 409, TikTok's own errors): forget.
    Release,
    /// The message may have been sent: a retry first looks for it at TikTok.
    Unknown,
    /// A reconciliation found nothing yet and sent nothing: back to [`Settle::Unknown`] as it was.
    Unclaim,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    pub body: String,
    #[serde(default)]
    pub settle: Settle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Begin {
    /// Go ahead; call `idempotency::finish` with the result.
    New,
    /// Answered before: return this.
    Replay { response: Stored },
    /// An earlier attempt (started at `since_ms`) may have sent the message: look for it at
    /// TikTok first. The key is claimed by this request meanwhile.
    Reconcile { since_ms: u64 },
}
