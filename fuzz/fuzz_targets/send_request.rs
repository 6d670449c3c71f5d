#![no_main]
//! The POST /v1/messages body validator.
use libfuzzer_sys::fuzz_target;
use tiktok_messaging_worker::messages::send::validate_send;

fuzz_target!(|data: &[u8]| {
    let _ = validate_send(data);
});
