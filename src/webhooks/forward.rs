//! Forwarding events to the configured endpoint, signed as Standard Webhooks.

use crate::config::Config;
use crate::error::{Error, UpstreamFailure};
use crate::http::{Headers, Method, Outbound};
use crate::ports::Platform;
use crate::tiktok::retry::with_retries;
use crate::webhooks::envelope::Event;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// `webhook-signature` value (Standard Webhooks): `v1,` + base64 HMAC-SHA256 over
/// `<id>.<timestamp>.<body>`. A `whsec_` secret is base64; any other is used as bytes.
pub fn forward_signature(secret: &str, id: &str, ts: u64, body: &[u8]) -> String {
    let b64 = crate::b64::STANDARD;
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|s| b64.decode(s).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

/// A stable id for the event across retries and replays.
pub fn forward_id(account: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(account.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    format!("evt_{}", hex::encode(&h.finalize()[..12]))
}

pub(crate) async fn forward<P: Platform>(
    p: &P,
    cfg: &Config,
    event: &Event,
    raw: &str,
    url: &str,
) -> std::result::Result<(), (Error, u32)> {
    let secret = cfg
        .forward_secret
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or_default();
    let id = forward_id(&event.account, &event.key);
    // Signed anew for each attempt: the timestamp is part of the signature.
    let headers = || {
        let ts = p.now_secs();
        Headers::new()
            .with("webhook-id", id.clone())
            .with("webhook-timestamp", ts.to_string())
            .with(
                "webhook-signature",
                forward_signature(secret, &id, ts, raw.as_bytes()),
            )
    };
    post_until_accepted(p, "forward", url, raw.as_bytes(), headers).await
}

/// POSTs a JSON `body` to `url` until it answers 2xx, retried like every outbound call (a
/// timeout, a refused connection or a 5xx/429 is tried again); the error and the attempts made
/// when it keeps refusing. Forwards and notifications both go out this way. `headers` is
/// called for each attempt (a signature may carry the time).
pub(crate) async fn post_until_accepted<P: Platform>(
    p: &P,
    endpoint: &'static str,
    url: &str,
    body: &[u8],
    headers: impl Fn() -> Headers,
) -> std::result::Result<(), (Error, u32)> {
    with_retries(p, async || {
        let req = Outbound {
            method: Method::Post,
            url: url.to_string(),
            headers: headers().with("content-type", "application/json"),
            body: Some(body.to_vec()),
            timeout_ms: 10_000,
            max_body: Some(64 * 1024),
        };
        let fail = |failure| Error::Upstream {
            endpoint,
            failure,
            request_id: None,
        };
        match p.send(req).await {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(fail(UpstreamFailure::Http { status: r.status })),
            Err(crate::ports::TransportError::Timeout) => Err(fail(UpstreamFailure::Timeout)),
            Err(_) => Err(fail(UpstreamFailure::Unreachable)),
        }
    })
    .await
}

// ---------- admin routes ----------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_signature_is_standard_webhooks_v1() {
        // Recomputed independently: HMAC-SHA256(key, "id.ts.body"), base64.
        let sig = forward_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let plain = forward_signature("plain-secret", "evt_1", 5, b"{}");
        assert!(plain.starts_with("v1,") && plain.len() == 3 + 44);
    }
}
