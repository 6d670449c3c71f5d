//! Fixtures the unit tests of several modules share: a complete environment, counting
//! randomness and TikTok's recorded answers (`tests/fixtures/tiktok/`).

use crate::config::Config;
use crate::ports::Rng;
use crate::tiktok::types::TokenGrant;
use serde_json::json;
use serde_json::Value;
use std::cell::Cell;
use std::collections::HashMap;

/// Every required setting, with test values.
pub(crate) fn full() -> HashMap<&'static str, String> {
    HashMap::from([
        ("TIKTOK_CLIENT_KEY", "ck".to_string()),
        ("TIKTOK_CLIENT_SECRET", "cs-very-secret".to_string()),
        ("API_KEYS", "admin:0123456789abcdef0123".to_string()),
        (
            "TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_string(),
        ),
    ])
}

/// The config [`full`] loads to.
pub(crate) fn config() -> Config {
    crate::config::load(|k| full().get(k).cloned()).unwrap()
}

/// Deterministic counter "randomness" for tests.
#[derive(Default)]
pub struct CountingRng(pub Cell<u8>);
impl Rng for CountingRng {
    fn fill(&self, buf: &mut [u8]) {
        for b in buf {
            self.0.set(self.0.get().wrapping_add(1));
            *b = self.0.get();
        }
    }
}

/// A fixture file's text.
fn fixture_text(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/tiktok/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn fixture(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A token grant: access token `a` living `ae` seconds, refresh token `r` living `re`.
pub(crate) fn grant(a: &str, r: &str, ae: u64, re: u64) -> TokenGrant {
    serde_json::from_value(json!({"access_token": a, "refresh_token": r,
        "expires_in": ae, "refresh_token_expires_in": re,
        "scope": "user.info.basic,message.list.send", "open_id": "biz"}))
    .unwrap()
}
