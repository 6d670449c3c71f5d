//! The OAuth `state`: signed, not stored. `/oauth/start` writes nothing (a flood of anonymous
//! calls costs no storage), and the state is bound to the browser that started the flow by a
//! nonce kept in an HttpOnly cookie. Single use is enforced at the callback by a claim in a
//! Durable Object.

use crate::secret::Secret;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie holding the flow's nonce (only sent to `/oauth/...`).
pub const COOKIE: &str = "tmw_oauth";

/// What a state carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Random, also in the browser's cookie.
    pub n: String,
    /// Created at (unix seconds).
    pub t: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<String>,
    /// Bound to the browser's cookie (false when the callback is on another origin than
    /// `/oauth/start`, where the cookie cannot follow).
    #[serde(default = "bound")]
    pub b: bool,
}

fn bound() -> bool {
    true
}

/// Why a state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not ours, altered or unreadable.
    Invalid,
    /// Older than the allowed time.
    Expired,
    /// Started in another browser (or its cookie is gone).
    OtherBrowser,
}

fn key(secret: &Secret) -> Hmac<Sha256> {
    // A key of its own, derived from the app secret: states never sign anything else.
    let mut k = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key");
    k.update(b"tiktok-messaging-worker oauth state v1");
    Hmac::<Sha256>::new_from_slice(&k.finalize().into_bytes()).expect("any key")
}

/// `base64url(claims JSON) "." base64url(HMAC)`.
pub fn sign(secret: &Secret, claims: &Claims) -> String {
    let b64 = crate::b64::URL_SAFE_NO_PAD;
    let body = b64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mut mac = key(secret);
    mac.update(body.as_bytes());
    format!("{body}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Checks a state's signature, age and browser binding (the cookie's nonce).
pub fn verify(
    secret: &Secret,
    state: &str,
    cookie_nonce: Option<&str>,
    now: u64,
    ttl: u64,
) -> Result<Claims, Refusal> {
    let b64 = crate::b64::URL_SAFE_NO_PAD;
    let (body, sig) = state.split_once('.').ok_or(Refusal::Invalid)?;
    let sig = b64.decode(sig).map_err(|_| Refusal::Invalid)?;
    let mut mac = key(secret);
    mac.update(body.as_bytes());
    let expected = mac.finalize().into_bytes();
    if expected.ct_eq(sig.as_slice()).unwrap_u8() != 1 {
        return Err(Refusal::Invalid);
    }
    let claims: Claims = b64
        .decode(body)
        .ok()
        .and_then(|b| crate::json::from_slice(&b).ok())
        .ok_or(Refusal::Invalid)?;
    if now >= claims.t.saturating_add(ttl) || claims.t > now + 60 {
        return Err(Refusal::Expired);
    }
    let bound =
        cookie_nonce.is_some_and(|c| c.as_bytes().ct_eq(claims.n.as_bytes()).unwrap_u8() == 1);
    if claims.b && !bound {
        return Err(Refusal::OtherBrowser);
    }
    Ok(claims)
}

/// The nonce from a `Cookie` header, if present.
pub fn cookie_nonce(cookie_header: Option<&str>) -> Option<String> {
    cookie_header?
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value carrying the nonce for the callback.
pub fn set_cookie(nonce: &str, ttl: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={nonce}; Path=/oauth; Max-Age={ttl}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The single-use claim of a state's nonce (see `Accounts::claim_once`).
pub fn claim_key(nonce: &str) -> String {
    format!("oauth-state:{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            n: "ab12".into(),
            t: 1_000,
            r: Some("https://app.example/done".into()),
            b: true,
        }
    }

    #[test]
    fn a_signed_state_verifies_only_in_its_browser_within_its_time() {
        let s = Secret::new("app-secret");
        let state = sign(&s, &claims());
        assert_eq!(verify(&s, &state, Some("ab12"), 1_100, 600), Ok(claims()));
        assert_eq!(
            verify(&s, &state, Some("zz99"), 1_100, 600),
            Err(Refusal::OtherBrowser)
        );
        assert_eq!(
            verify(&s, &state, None, 1_100, 600),
            Err(Refusal::OtherBrowser)
        );
        assert_eq!(
            verify(&s, &state, Some("ab12"), 1_600, 600),
            Err(Refusal::Expired)
        );
        let other = Secret::new("other-secret");
        assert_eq!(
            verify(&other, &state, Some("ab12"), 1_100, 600),
            Err(Refusal::Invalid)
        );
        let mut tampered = state.clone();
        tampered.insert(3, 'x');
        assert_eq!(
            verify(&s, &tampered, Some("ab12"), 1_100, 600),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            verify(&s, "no-dot", Some("ab12"), 1_100, 600),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn a_state_for_another_origin_is_not_bound() {
        let s = Secret::new("app-secret");
        let state = sign(
            &s,
            &Claims {
                b: false,
                ..claims()
            },
        );
        assert!(verify(&s, &state, None, 1_100, 600).is_ok());
    }

    #[test]
    fn cookies_are_read_by_name() {
        assert_eq!(
            cookie_nonce(Some("a=1; tmw_oauth=abc; b=2")).as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_nonce(Some("tmw_oauthx=abc")), None);
        assert!(set_cookie("n", 600, true).ends_with("; Secure"));
        assert!(set_cookie("n", 600, false).contains("HttpOnly; SameSite=Lax"));
    }
}
