//! Property tests (fuzzing with proptest) for the parsers and validators that see untrusted
//! input: they must never panic, and must accept what they should. `scripts/fuzz.sh` runs them
//! with a large case budget; `cargo test` runs the default 256 cases each.

use crate::messages::send::validate_send;
use crate::rules::engine::parse_rules;
use crate::webhooks::envelope::parse;
use crate::webhooks::verify::{parse_signature, sign, verify};
use proptest::prelude::*;

proptest! {
    #[test]
    fn signature_header_parser_never_panics(h in ".{0,300}") {
        let _ = parse_signature(&h);
        let _ = verify(b"k", Some(&h), b"{}", 1_720_000_000, 300);
    }

    #[test]
    fn signature_header_variants_round_trip(
        t in 0u64..4_000_000_000,
        body in proptest::collection::vec(any::<u8>(), 0..512),
        pad in "[ ]{0,3}",
        extra in "(,v=[a-z0-9]{0,8}){0,2}",
        swap in any::<bool>(),
    ) {
        let s = hex::encode(sign(b"secret", t, &body));
        let h = if swap {
            format!("{pad}s={pad}{s}{pad},{pad}t={pad}{t}{extra}")
        } else {
            format!("t={t}{extra},s={s}")
        };
        prop_assert!(verify(b"secret", Some(&h), &body, t, 0).is_ok());
        prop_assert!(verify(b"other", Some(&h), &body, t, 0).is_err());
    }

    #[test]
    fn envelope_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&body);
    }

    #[test]
    fn envelope_parser_keeps_any_numeric_id(digits in "[1-9][0-9]{0,40}", event in "[a-z_]{1,24}") {
        let content = format!(r#"{{"conversation_id":"c","message_id":{digits},"type":"text","text":{{"body":"x"}}}}"#);
        let body = serde_json::json!({"event": event, "user_openid": "biz", "content": content}).to_string();
        let e = parse(body.as_bytes()).unwrap();
        prop_assert_eq!(e.content.message_id.as_deref(), Some(digits.as_str()));
        prop_assert_eq!(e.key, format!("m:{digits}"));
    }

    #[test]
    fn envelope_parser_never_panics_on_json_shapes(content in ".{0,400}", event in ".{0,30}", account in ".{0,30}") {
        let body = serde_json::json!({"event": event, "user_openid": account, "content": content}).to_string();
        let _ = parse(body.as_bytes());
    }

    #[test]
    fn rules_validator_never_panics(body in ".{0,600}") {
        let _ = parse_rules(body.as_bytes(), |_| true);
    }

    #[test]
    fn rules_validator_on_structured_input(
        tz in prop_oneof![Just("UTC".to_string()), "[+-][0-9]{2}:[0-9]{2}", "[A-Za-z/_]{0,20}"],
        ranges in proptest::collection::vec("[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}", 0..4),
        keywords in proptest::collection::vec(".{0,20}", 0..4),
        mode in prop_oneof![Just("exact"), Just("contains"), Just("any_of"), Just("regex")],
        text in ".{0,50}",
    ) {
        let body = serde_json::json!({"timezone": tz, "away": {"text": "away", "open": {"mon": ranges}},
            "rules": [{"id": "r", "match": mode, "keywords": keywords, "text": text}]}).to_string();
        if let Ok(set) = parse_rules(body.as_bytes(), |_| true) {
            prop_assert!(!set.rules[0].keywords.is_empty());
            for k in &set.rules[0].keywords {
                prop_assert!(!crate::rules::engine::normalize(k).is_empty());
            }
        }
    }

    #[test]
    fn send_validator_never_panics(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = validate_send(&body);
    }

    #[test]
    fn send_validator_on_structured_input(
        kind in prop_oneof![Just("text".to_string()), Just("image".to_string()), Just("typing".to_string()), Just("mark_read".to_string()), ".{0,8}"],
        text in proptest::option::of(".{0,80}"),
        media in proptest::option::of("[a-z0-9]{0,12}"),
        url in proptest::option::of(".{0,40}"),
        account in ".{0,20}",
    ) {
        let mut b = serde_json::json!({"account_id": account, "conversation_id": "c", "type": kind});
        if let Some(t) = &text { b["text"] = t.clone().into(); }
        if media.is_some() || url.is_some() {
            b["image"] = serde_json::json!({"media_id": media, "url": url});
        }
        if let Ok(plan) = validate_send(b.to_string().as_bytes()) {
            prop_assert_eq!(plan.account, account);
            if kind == "text" {
                prop_assert!(text.is_some_and(|t| !t.trim().is_empty()));
            }
        }
    }
}
