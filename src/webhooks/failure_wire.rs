//! How a stored [`Failure`] is read: into one flat struct of optional fields, then into the
//! [`Stage`] that its `stage` tag names.
//!
//! The derived reading (`#[serde(flatten)]` over the `#[serde(tag = "stage")]` enum) buffers
//! the record and compiles a buffered deserializer per stage. Every record that the derived
//! `Serialize` writes (now or before) reads back the same; a missing field or an unknown
//! stage is an error as before.

use super::pipeline::{Failure, Stage};
use crate::tiktok::types::Outgoing;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct FailureWire {
    id: String,
    account_id: String,
    event_key: String,
    stage: String,
    code: String,
    message: String,
    attempts: u32,
    failed_at: u64,
    #[serde(default)]
    replays: u32,
    event: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    messages: Vec<Outgoing>,
    #[serde(default)]
    texts: Vec<String>,
    #[serde(default)]
    unknown_since_ms: Option<u64>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    notice: Option<crate::inbox::notify::Notice>,
}

impl TryFrom<FailureWire> for Failure {
    type Error = String;

    fn try_from(w: FailureWire) -> Result<Self, String> {
        use crate::json::need;
        let stage = match w.stage.as_str() {
            "reply" => Stage::Reply {
                conversation_id: need(w.conversation_id, "conversation_id")?,
                messages: w.messages,
                texts: w.texts,
                unknown_since_ms: w.unknown_since_ms,
            },
            "forward" => Stage::Forward {
                url: need(w.url, "url")?,
            },
            "notify" => Stage::Notify {
                target: need(w.target, "target")?,
                notice: need(w.notice, "notice")?,
            },
            "interrupted" => Stage::Interrupted,
            other => return Err(format!("unknown stage `{other}`")),
        };
        Ok(Failure {
            id: w.id,
            account_id: w.account_id,
            event_key: w.event_key,
            stage,
            code: w.code,
            message: w.message,
            attempts: w.attempts,
            failed_at: w.failed_at,
            replays: w.replays,
            event: w.event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_reads_back_as_written() {
        let stages = [
            Stage::Reply {
                conversation_id: "c".into(),
                messages: vec![Outgoing::Text {
                    text: "hi".into(),
                    reply_to: None,
                }],
                texts: vec![],
                unknown_since_ms: Some(7),
            },
            Stage::Reply {
                conversation_id: "c".into(),
                messages: vec![],
                texts: vec!["old".into()],
                unknown_since_ms: None,
            },
            Stage::Forward {
                url: "https://x/".into(),
            },
            Stage::Notify {
                target: "slack-01020304".into(),
                notice: crate::inbox::notify::Notice::new(
                    crate::inbox::notify::Topic::WhilePaused,
                    "a",
                    "m:1",
                )
                .about(Some("c"), Some("maria"))
                .quoting(Some("hello")),
            },
            Stage::Interrupted,
        ];
        for stage in stages {
            let f = Failure {
                id: "f1".into(),
                account_id: "a".into(),
                event_key: "k".into(),
                stage,
                code: "tiktok_rate_limited".into(),
                message: "m".into(),
                attempts: 3,
                failed_at: 9,
                replays: 1,
                event: "{}".into(),
            };
            let text = serde_json::to_string(&f).unwrap();
            let back: Failure = crate::json::from_str(&text).unwrap();
            assert_eq!(back.stage, f.stage, "{text}");
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
        // Records written without `replays`, and a stage that never existed.
        let old = r#"{"id":"f","account_id":"a","event_key":"k","stage":"forward","url":"u",
            "code":"c","message":"m","attempts":1,"failed_at":2,"event":"{}"}"#;
        assert_eq!(crate::json::from_str::<Failure>(old).unwrap().replays, 0);
        let bad = old.replace("\"forward\"", "\"later\"");
        let e = crate::json::from_str::<Failure>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown stage `later`"), "{e}");
    }
}
