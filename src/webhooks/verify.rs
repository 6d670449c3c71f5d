//! TikTok's webhook signature (`TikTok-Signature: t=<unix seconds>,s=<hex>`): checked, pure,
//! before any I/O.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest delivery accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// Default accepted age of a signature timestamp, either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Why a delivery's signature was refused. Messages name the problem, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing TikTok-Signature header")]
    Missing,
    #[error("malformed TikTok-Signature header: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp is {age} s away from now (tolerance {tolerance} s)")]
    Stale { age: u64, tolerance: u64 },
    #[error("signature does not match the body")]
    Mismatch,
}

/// The parts of `TikTok-Signature: t=<unix seconds>,s=<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: u64,
    /// Every `s=` value (rotation may send several); any one may match.
    pub signatures: Vec<[u8; 32]>,
}

/// Parses the header by part name, trimming spaces; unknown parts are ignored.
pub fn parse_signature(header: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    if header.len() > 1024 {
        return Err(SignatureError::Malformed("header too long"));
    }
    for part in header.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            if part.trim().is_empty() {
                continue;
            }
            return Err(SignatureError::Malformed("parts must be name=value"));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("t given twice"));
                }
                if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SignatureError::Malformed("t must be unix seconds"));
                }
                timestamp = v.parse().ok();
            }
            "s" => {
                let mut buf = [0u8; 32];
                hex::decode_to_slice(v, &mut buf)
                    .map_err(|_| SignatureError::Malformed("s must be 64 hex characters"))?;
                signatures.push(buf);
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= part"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no s= part"));
    }
    Ok(SignatureHeader {
        timestamp,
        signatures,
    })
}

/// `HMAC-SHA256(secret, "<t>.<body>")`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Verifies a delivery: header present and well-formed, timestamp within `tolerance` of
/// `now` (either direction), and one signature equal, compared in constant time.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let parsed = parse_signature(header.ok_or(SignatureError::Missing)?)?;
    let age = now.abs_diff(parsed.timestamp);
    if age > tolerance {
        return Err(SignatureError::Stale { age, tolerance });
    }
    let expected = sign(secret, parsed.timestamp, body);
    let ok = parsed
        .signatures
        .iter()
        .fold(0u8, |acc, s| acc | s.ct_eq(&expected).unwrap_u8());
    if ok == 1 {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"cs-secret";
    const BODY: &[u8] = br#"{"event":"x"}"#;

    fn header(t: u64, body: &[u8]) -> String {
        format!("t={t},s={}", hex::encode(sign(SECRET, t, body)))
    }

    #[test]
    fn rfc4231_case_2_vector() {
        // HMAC-SHA256(key "Jefe", "what do ya want for nothing?"), with our "<t>." prefix split off.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signature_table() {
        let now = 1_720_000_000;
        let good = header(now, BODY);
        let sig = hex::encode(sign(SECRET, now, BODY));
        let cases: Vec<(Option<String>, Result<(), &str>)> = vec![
            (Some(good.clone()), Ok(())),
            (Some(format!(" s = {sig} , t = {now} ")), Ok(())),
            (
                Some(format!("t={now},s={},s={sig}", "0".repeat(64))),
                Ok(()),
            ),
            (Some(format!("t={now},v=1,s={sig}")), Ok(())),
            (Some(header(now - 300, BODY)), Ok(())),
            (Some(header(now + 300, BODY)), Ok(())),
            (None, Err("missing")),
            (Some(String::new()), Err("malformed")),
            (Some(format!("s={sig}")), Err("malformed")),
            (Some(format!("t={now}")), Err("malformed")),
            (Some(format!("t=abc,s={sig}")), Err("malformed")),
            (Some(format!("t=-5,s={sig}")), Err("malformed")),
            (Some(format!("t={now},s={}", &sig[..63])), Err("malformed")),
            (
                Some(format!("t={now},s={}zz", &sig[..62])),
                Err("malformed"),
            ),
            (Some(format!("t={now},t={now},s={sig}")), Err("malformed")),
            (Some(format!("t={now};s={sig}")), Err("malformed")),
            (Some(header(now - 301, BODY)), Err("stale")),
            (Some(header(now + 301, BODY)), Err("stale")),
            (Some(header(now, b"{\"event\":\"y\"}")), Err("mismatch")),
            (Some(format!("t={},s={sig}", now - 1)), Err("mismatch")),
            (Some(format!("t={now},s={}", sig.to_uppercase())), Ok(())),
        ];
        for (h, want) in cases {
            let got = verify(SECRET, h.as_deref(), BODY, now, 300);
            let kind = got.as_ref().map_err(|e| match e {
                SignatureError::Missing => "missing",
                SignatureError::Malformed(_) => "malformed",
                SignatureError::Stale { .. } => "stale",
                SignatureError::Mismatch => "mismatch",
            });
            assert_eq!(kind.map(|_| ()), want, "header {h:?}");
        }
    }

    #[test]
    fn errors_never_include_the_secret_or_signature() {
        let e = verify(SECRET, Some("t=1,s=00"), BODY, 1, 300)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("cs-secret"));
    }
}
