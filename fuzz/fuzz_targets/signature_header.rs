#![no_main]
//! The TikTok-Signature parser and verifier on arbitrary headers and bodies.
use libfuzzer_sys::fuzz_target;
use tiktok_messaging_worker::webhooks::verify::{parse_signature, verify};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let _ = parse_signature(&header);
    let _ = verify(b"secret", Some(&header), &data[split..], 1_720_000_000, 300);
});
