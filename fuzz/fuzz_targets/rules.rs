#![no_main]
//! The auto-reply rules validator, then the engine on what it accepts.
use libfuzzer_sys::fuzz_target;
use tiktok_messaging_worker::rules::engine::{decide, parse_rules, ConversationState};
use tiktok_messaging_worker::time::LocalTime;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = parse_rules(data, |_| true) {
        let conv = ConversationState {
            inbound_count: 1,
            last_inbound_at: Some(0),
            ..ConversationState::default()
        };
        let text = String::from_utf8_lossy(data);
        let _ = decide(
            &set,
            &conv,
            Some(text.as_ref()),
            Some("Ada"),
            LocalTime {
                weekday: 2,
                minute: 600,
            },
            0,
        );
    }
});
