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
    /// An earlier attempt (started at `since_ms`, over by `settled_ms`) may have sent the
    /// message: look for it at TikTok first. The key is claimed by this request meanwhile.
    Reconcile { since_ms: u64, settled_ms: u64 },
}

/// One call to an account's actor. Calls for one account run in that account's actor, one
/// object per account (a claim has an object of its own: see [`Call::object`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// A valid access token, refreshed first when it expires within the configured margin,
    /// or when `rejected` (a token TikTok just refused) is still the current one.
    AccessToken {
        account: String,
        rejected: Option<String>,
    },
    /// Refreshes the token now if it expires within `window_secs` (the cron's look-ahead).
    RefreshWithin { account: String, window_secs: u64 },
    /// Drops what the actor keeps for `account` (after a disconnect).
    Forget { account: String },
    /// Records a verified delivery durably unless its key was seen before.
    AcceptEvent {
        account: String,
        key: String,
        raw: String,
    },
    /// Processes an accepted event (replies, forwarding); idempotent.
    ProcessEvent { account: String, key: String },
    /// A rule set this account uses changed: the stored record at `key` (the global set's or
    /// the account's own) is now `value` (`None`: deleted).
    RulesChanged {
        account: String,
        key: String,
        value: Option<String>,
    },
    /// Reads a conversation's auto-reply pause, or with `set` pauses it until `until` (unix
    /// seconds) or resumes it (`until: None`).
    Handoff {
        account: String,
        conversation: String,
        set: bool,
        until: Option<u64>,
    },
    /// Keeps a message in the conversation's history that no echo brings (a mark-read sent
    /// through the API, which clears the unread count).
    Record {
        account: String,
        conversation: String,
        message_id: Option<String>,
        message: crate::tiktok::types::Outgoing,
    },
    /// A page of the stored inbox: the conversations, or with `conversation` its messages
    /// (`cursor` as the previous page gave it).
    Inbox {
        account: String,
        conversation: Option<String>,
        cursor: Option<String>,
        limit: u64,
        oldest_first: bool,
    },
    /// Retries a recorded failure.
    ReplayFailure { account: String, failure_id: String },
    /// Marks `key` used; `false` if it was used before (single-use OAuth states).
    ClaimOnce { key: String },
    /// Claims an idempotency key for a send.
    IdempotencyBegin {
        account: String,
        key_hash: String,
        body_hash: String,
    },
    /// Stores the claimed key's result.
    IdempotencyFinish {
        account: String,
        key_hash: String,
        body_hash: String,
        response: Stored,
    },
}

impl Call {
    /// The name of the actor that serves this call: the account's, or for a claim one object
    /// per claimed key (no contention, and the claim is its only state).
    pub fn object(&self) -> &str {
        match self {
            Call::ClaimOnce { key } => key,
            Call::AccessToken { account, .. }
            | Call::RefreshWithin { account, .. }
            | Call::Forget { account }
            | Call::AcceptEvent { account, .. }
            | Call::ProcessEvent { account, .. }
            | Call::RulesChanged { account, .. }
            | Call::Handoff { account, .. }
            | Call::Record { account, .. }
            | Call::Inbox { account, .. }
            | Call::ReplayFailure { account, .. }
            | Call::IdempotencyBegin { account, .. }
            | Call::IdempotencyFinish { account, .. } => account,
        }
    }

    /// Token calls run one at a time per account (held for the whole call, TikTok round trip
    /// included), so at most one refresh per account is in flight.
    pub fn takes_token_lock(&self) -> bool {
        matches!(
            self,
            Call::AccessToken { .. } | Call::RefreshWithin { .. } | Call::Forget { .. }
        )
    }
}

/// What the Worker sends an actor: the call and the request it serves (for the actor's log
/// lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "super::wire::WireRequest")]
pub struct ActorRequest {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub call: Call,
}

/// An actor's answer to a [`Call`].
/// No `Debug`: a reply may carry an access token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
#[serde(try_from = "super::wire::WireReply")]
pub enum Reply {
    /// To [`Call::AccessToken`]: the token, and until when (unix seconds) a caller may use
    /// it again without asking (the actor refreshes it only after that).
    AccessToken {
        access_token: String,
        #[serde(default)]
        usable_until: u64,
    },
    /// To [`Call::AcceptEvent`] and [`Call::ClaimOnce`]: whether the key was new.
    Fresh { fresh: bool },
    /// To [`Call::ReplayFailure`]: what happened.
    Replayed { result: serde_json::Value },
    /// To [`Call::Inbox`]: the page, in the API's shape.
    Page { page: serde_json::Value },
    /// To [`Call::IdempotencyBegin`].
    Begun { begin: Begin },
    /// To [`Call::Handoff`]: the conversation's pause, if any.
    Handoff {
        paused_until: Option<u64>,
        paused_by: Option<String>,
    },
    /// To every other call.
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_travels_as_one_tagged_object_with_its_request_id() {
        let sent = ActorRequest {
            request_id: Some("req-1".into()),
            call: Call::IdempotencyFinish {
                account: "biz-1".into(),
                key_hash: "k".into(),
                body_hash: "b".into(),
                response: Stored {
                    status: 200,
                    body: "{}".into(),
                    settle: Settle::Unknown,
                },
            },
        };
        let wire = serde_json::to_value(&sent).unwrap();
        assert_eq!(wire["call"], "idempotency_finish");
        assert_eq!(wire["request_id"], "req-1");
        assert_eq!(wire["response"]["settle"], "unknown");
        let back: ActorRequest = serde_json::from_value(wire).unwrap();
        assert_eq!(back, sent);
        assert_eq!(back.call.object(), "biz-1");
        assert!(!back.call.takes_token_lock());
        let claim = Call::ClaimOnce { key: "st".into() };
        assert_eq!(claim.object(), "st");
    }

    #[test]
    fn replies_are_tagged_too() {
        let r = Reply::Begun {
            begin: Begin::Reconcile {
                since_ms: 5,
                settled_ms: 6,
            },
        };
        let wire = serde_json::to_value(&r).unwrap();
        assert_eq!(wire["reply"], "begun");
        assert_eq!(wire["begin"]["outcome"], "reconcile");
        assert!(serde_json::from_value::<Reply>(wire).unwrap() == r);
    }
}
