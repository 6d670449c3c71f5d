//! How an [`ActorRequest`] is read off the wire: into one flat struct of optional fields, then
//! into the [`Call`] that its `call` tag names.
//!
//! The derived reading (`#[serde(flatten)]` over a `#[serde(tag = "call")]` enum) buffers the
//! object twice and compiles one buffered deserializer per variant: about 30 KiB of `.wasm`
//! for a format that only this Worker writes. Every object that the derived `Serialize` writes
//! reads back the same; a missing field or an unknown `call` is an error as before.

use super::protocol::{ActorRequest, Call, Stored};
use serde::Deserialize;

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
}

fn need<T>(v: Option<T>, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{name}`"))
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
            Call::ReplayFailure {
                account: "a".into(),
                failure_id: "f".into(),
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

    #[test]
    fn every_call_reads_back_as_written() {
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
