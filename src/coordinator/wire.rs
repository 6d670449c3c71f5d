//! How an [`ActorRequest`] and a [`Reply`] are read off the wire: into one flat struct of
//! optional fields, then into the variant that the tag (`call`, `reply`, `outcome`) names.
//!
//! The derived reading of a `#[serde(tag = ...)]` enum (and `#[serde(flatten)]` over one)
//! buffers the object and compiles one buffered deserializer per variant: about 30 KiB of
//! `.wasm` for a format that only this Worker writes. Every object that the derived `Serialize`
//! writes reads back the same; a missing field or an unknown tag is an error as before.

use super::protocol::{ActorRequest, Begin, Call, Reply, Stored};
use crate::json::need;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
pub struct WireRequest {
    #[serde(default)]
    request_id: Option<String>,
    call: String,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    rejected: Option<String>,
    #[serde(default)]
    window_secs: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    failure_id: Option<String>,
    #[serde(default)]
    key_hash: Option<String>,
    #[serde(default)]
    body_hash: Option<String>,
    #[serde(default)]
    response: Option<Stored>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    set: Option<bool>,
    #[serde(default)]
    until: Option<u64>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    message: Option<crate::tiktok::types::Outgoing>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    oldest_first: Option<bool>,
}

impl TryFrom<WireRequest> for ActorRequest {
    type Error = String;

    fn try_from(w: WireRequest) -> Result<Self, String> {
        let call = match w.call.as_str() {
            "access_token" => Call::AccessToken {
                account: need(w.account, "account")?,
                rejected: w.rejected,
            },
            "refresh_within" => Call::RefreshWithin {
                account: need(w.account, "account")?,
                window_secs: need(w.window_secs, "window_secs")?,
            },
            "forget" => Call::Forget {
                account: need(w.account, "account")?,
            },
            "accept_event" => Call::AcceptEvent {
                account: need(w.account, "account")?,
                key: need(w.key, "key")?,
                raw: need(w.raw, "raw")?,
            },
            "process_event" => Call::ProcessEvent {
                account: need(w.account, "account")?,
                key: need(w.key, "key")?,
            },
            "rules_changed" => Call::RulesChanged {
                account: need(w.account, "account")?,
                key: need(w.key, "key")?,
                value: w.value,
            },
            "handoff" => Call::Handoff {
                account: need(w.account, "account")?,
                conversation: need(w.conversation, "conversation")?,
                set: need(w.set, "set")?,
                until: w.until,
            },
            "record" => Call::Record {
                account: need(w.account, "account")?,
                conversation: need(w.conversation, "conversation")?,
                message_id: w.message_id,
                message: need(w.message, "message")?,
            },
            "inbox" => Call::Inbox {
                account: need(w.account, "account")?,
                conversation: w.conversation,
                cursor: w.cursor,
                limit: need(w.limit, "limit")?,
                oldest_first: w.oldest_first.unwrap_or(false),
            },
            "replay_failure" => Call::ReplayFailure {
                account: need(w.account, "account")?,
                failure_id: need(w.failure_id, "failure_id")?,
            },
            "claim_once" => Call::ClaimOnce {
                key: need(w.key, "key")?,
            },
            "idempotency_begin" => Call::IdempotencyBegin {
                account: need(w.account, "account")?,
                key_hash: need(w.key_hash, "key_hash")?,
                body_hash: need(w.body_hash, "body_hash")?,
            },
            "idempotency_finish" => Call::IdempotencyFinish {
                account: need(w.account, "account")?,
                key_hash: need(w.key_hash, "key_hash")?,
                body_hash: need(w.body_hash, "body_hash")?,
                response: need(w.response, "response")?,
            },
            other => return Err(format!("unknown call `{other}`")),
        };
        Ok(ActorRequest {
            request_id: w.request_id,
            call,
        })
    }
}

#[derive(Deserialize)]
pub struct WireReply {
    reply: String,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    usable_until: Option<u64>,
    #[serde(default)]
    fresh: Option<bool>,
    /// Present (even as `null`) or absent.
    #[serde(default, deserialize_with = "present")]
    result: Option<serde_json::Value>,
    #[serde(default)]
    begin: Option<WireBegin>,
    #[serde(default)]
    paused_until: Option<u64>,
    #[serde(default)]
    paused_by: Option<String>,
    #[serde(default)]
    page: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireBegin {
    outcome: String,
    #[serde(default)]
    response: Option<Stored>,
    #[serde(default)]
    since_ms: Option<u64>,
    #[serde(default)]
    settled_ms: Option<u64>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl TryFrom<WireBegin> for Begin {
    type Error = String;

    fn try_from(w: WireBegin) -> Result<Self, String> {
        Ok(match w.outcome.as_str() {
            "new" => Begin::New,
            "replay" => Begin::Replay {
                response: need(w.response, "response")?,
            },
            "reconcile" => Begin::Reconcile {
                since_ms: need(w.since_ms, "since_ms")?,
                settled_ms: need(w.settled_ms, "settled_ms")?,
            },
            other => return Err(format!("unknown outcome `{other}`")),
        })
    }
}

impl TryFrom<WireReply> for Reply {
    type Error = String;

    fn try_from(w: WireReply) -> Result<Self, String> {
        Ok(match w.reply.as_str() {
            "access_token" => Reply::AccessToken {
                access_token: need(w.access_token, "access_token")?,
                usable_until: w.usable_until.unwrap_or(0),
            },
            "fresh" => Reply::Fresh {
                fresh: need(w.fresh, "fresh")?,
            },
            "replayed" => Reply::Replayed {
                result: need(w.result, "result")?,
            },
            "begun" => Reply::Begun {
                begin: need(w.begin, "begin")?.try_into()?,
            },
            "handoff" => Reply::Handoff {
                paused_until: w.paused_until,
                paused_by: w.paused_by,
            },
            "page" => Reply::Page {
                page: need(w.page, "page")?,
            },
            "done" => Reply::Done,
            other => return Err(format!("unknown reply `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::protocol::Settle;

    fn every_call() -> Vec<Call> {
        let stored = Stored {
            status: 201,
            body: "{\"a\":1}".into(),
            settle: Settle::Release,
        };
        vec![
            Call::AccessToken {
                account: "a".into(),
                rejected: None,
            },
            Call::AccessToken {
                account: "a".into(),
                rejected: Some("old".into()),
            },
            Call::RefreshWithin {
                account: "a".into(),
                window_secs: 3600,
            },
            Call::Forget {
                account: "a".into(),
            },
            Call::AcceptEvent {
                account: "a".into(),
                key: "k".into(),
                raw: "{}".into(),
            },
            Call::ProcessEvent {
                account: "a".into(),
                key: "k".into(),
            },
            Call::RulesChanged {
                account: "a".into(),
                key: "rules:a".into(),
                value: Some("{\"rules\":[]}".into()),
            },
            Call::RulesChanged {
                account: "a".into(),
                key: "rules".into(),
                value: None,
            },
            Call::Handoff {
                account: "a".into(),
                conversation: "c==".into(),
                set: true,
                until: Some(1_700_000_000),
            },
            Call::Handoff {
                account: "a".into(),
                conversation: "c".into(),
                set: false,
                until: None,
            },
            Call::ReplayFailure {
                account: "a".into(),
                failure_id: "f".into(),
            },
            Call::Record {
                account: "a".into(),
                conversation: "c".into(),
                message_id: Some("m".into()),
                message: crate::tiktok::types::Outgoing::text("hi"),
            },
            Call::Inbox {
                account: "a".into(),
                conversation: Some("c".into()),
                cursor: Some("x".into()),
                limit: 50,
                oldest_first: true,
            },
            Call::Inbox {
                account: "a".into(),
                conversation: None,
                cursor: None,
                limit: 10,
                oldest_first: false,
            },
            Call::ClaimOnce { key: "k".into() },
            Call::IdempotencyBegin {
                account: "a".into(),
                key_hash: "kh".into(),
                body_hash: "bh".into(),
            },
            Call::IdempotencyFinish {
                account: "a".into(),
                key_hash: "kh".into(),
                body_hash: "bh".into(),
                response: stored,
            },
        ]
    }

    /// Which variant a call is: no wildcard, so a new variant fails to compile here until
    /// `every_call` (and the reader) know it.
    fn variant(c: &Call) -> usize {
        match c {
            Call::AccessToken { .. } => 0,
            Call::RefreshWithin { .. } => 1,
            Call::Forget { .. } => 2,
            Call::AcceptEvent { .. } => 3,
            Call::ProcessEvent { .. } => 4,
            Call::RulesChanged { .. } => 5,
            Call::ReplayFailure { .. } => 6,
            Call::ClaimOnce { .. } => 7,
            Call::IdempotencyBegin { .. } => 8,
            Call::IdempotencyFinish { .. } => 9,
            Call::Handoff { .. } => 10,
            Call::Record { .. } => 11,
            Call::Inbox { .. } => 12,
        }
    }

    #[test]
    fn every_call_reads_back_as_written() {
        let covered: std::collections::BTreeSet<usize> = every_call().iter().map(variant).collect();
        assert_eq!(covered.len(), 13, "every variant is in every_call()");
        for call in every_call() {
            for request_id in [None, Some("req-9".to_string())] {
                let sent = ActorRequest {
                    request_id,
                    call: call.clone(),
                };
                let text = serde_json::to_string(&sent).unwrap();
                let back: ActorRequest = crate::json::from_str(&text).unwrap();
                assert_eq!(back, sent, "{text}");
            }
        }
    }

    #[test]
    fn every_reply_reads_back_as_written() {
        let stored = Stored {
            status: 200,
            body: "{}".into(),
            settle: Settle::Keep,
        };
        let replies = [
            Reply::AccessToken {
                access_token: "act".into(),
                usable_until: 1_700_000_000,
            },
            Reply::Fresh { fresh: true },
            Reply::Handoff {
                paused_until: Some(5),
                paused_by: Some("manual".into()),
            },
            Reply::Handoff {
                paused_until: None,
                paused_by: None,
            },
            Reply::Fresh { fresh: false },
            Reply::Replayed {
                result: serde_json::json!({"ok": true, "n": [1, 2]}),
            },
            Reply::Replayed {
                result: serde_json::Value::Null,
            },
            Reply::Begun { begin: Begin::New },
            Reply::Begun {
                begin: Begin::Replay { response: stored },
            },
            Reply::Begun {
                begin: Begin::Reconcile {
                    since_ms: 1,
                    settled_ms: 2,
                },
            },
            Reply::Page {
                page: serde_json::json!({"conversations": [], "cursor": null}),
            },
            Reply::Done,
        ];
        for r in replies {
            let text = serde_json::to_string(&r).unwrap();
            let back: Reply = crate::json::from_str(&text).unwrap();
            assert!(back == r, "{text}");
        }
        let read = |t: &str| {
            crate::json::from_str::<Reply>(t)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(read(r#"{"reply":"replayed"}"#)
            .unwrap_err()
            .contains("missing field `result`"));
        assert!(read(r#"{"reply":"begun","begin":{"outcome":"later"}}"#)
            .unwrap_err()
            .contains("unknown outcome `later`"));
    }

    #[test]
    fn a_missing_field_or_unknown_call_is_an_error() {
        let read = |t: &str| crate::json::from_str::<ActorRequest>(t).map_err(|e| e.to_string());
        assert!(read(r#"{"call":"forget"}"#)
            .unwrap_err()
            .contains("missing field `account`"));
        assert!(read(r#"{"call":"nap","account":"a"}"#)
            .unwrap_err()
            .contains("unknown call `nap`"));
        assert!(read(r#"{"account":"a"}"#)
            .unwrap_err()
            .contains("missing field `call`"));
        // Unknown fields are ignored, as by the derived reading.
        assert_eq!(
            read(r#"{"call":"forget","account":"a","extra":[1]}"#).unwrap(),
            ActorRequest {
                request_id: None,
                call: Call::Forget {
                    account: "a".into()
                }
            }
        );
    }
}
