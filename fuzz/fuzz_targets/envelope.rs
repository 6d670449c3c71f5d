#![no_main]
//! The webhook envelope and its string-encoded content on arbitrary bytes.
use libfuzzer_sys::fuzz_target;
use tiktok_messaging_worker::webhooks::envelope::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    // Also as the inner `content` string of a well-formed envelope.
    if let Ok(content) = std::str::from_utf8(data) {
        let body = format!(
            r#"{{"event":"im_receive_msg","user_openid":"biz","content":{}}}"#,
            serde_json_string(content)
        );
        let _ = parse(body.as_bytes());
    }
});

fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
