//! Accepted webhook events: the receiving route, exactly-once acceptance, processing
//! (auto-replies and forwarding) with bounded retries, and failures recorded for replay.
//!
//! Flow: `POST /webhooks/tiktok` verifies the signature before any I/O, then asks the account's
//! actor to *accept* the event (durably stored unless its message id was seen before), answers
//! 200, and leaves a job that processes it after the response (`wait_until`). The actor's
//! alarm processes any accepted event whose job never ran (a restart in between), so an
//! acknowledged event is never silently dropped.

use crate::app::{Ctx, Job};
use crate::auth::Role;
use crate::config::Config;
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::{Headers, Method, Outbound, Request, Response};
use crate::ports::{Bucket, Level, Platform};
use crate::rules::engine::{self, RuleSet};
use crate::tiktok::codes::ApiCode;
use crate::webhooks::envelope::{self, Event};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// KV key of the stored rule set.
pub const RULES_KEY: &str = "rules";
/// Attempts per idempotent outbound call (first try included).
pub const ATTEMPTS: u32 = 4;

// ---------- receiving ----------

/// `POST /webhooks/tiktok`.
pub async fn receive<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    if req.body.len() > envelope::MAX_BODY {
        return Err(Error::PayloadTooLarge {
            limit: envelope::MAX_BODY,
        });
    }
    let cfg = ctx.config()?;
    envelope::verify(
        cfg.client_secret.expose().as_bytes(),
        req.headers.get("tiktok-signature"),
        &req.body,
        ctx.p.now_secs(),
        cfg.webhook_tolerance_secs,
    )
    .map_err(|e| Error::BadSignature(e.to_string()))?;
    let event = envelope::parse(&req.body).map_err(|e| Error::InvalidJson(e.to_string()))?;
    // TikTok's ids are short; longer ones could not be stored or listed (storage key limits),
    // so they are refused rather than acknowledged and then lost.
    if event.account.is_empty() || event.account.len() > envelope::MAX_ID {
        return Err(Error::invalid(
            "user_openid",
            format!("must be 1 to {} bytes", envelope::MAX_ID),
        ));
    }
    if [&event.content.conversation_id, &event.content.message_id]
        .iter()
        .any(|id| id.as_ref().is_some_and(|i| i.len() > envelope::MAX_ID))
    {
        return Err(Error::invalid(
            "content",
            format!(
                "conversation and message ids must be at most {} bytes",
                envelope::MAX_ID
            ),
        ));
    }
    let raw = std::str::from_utf8(&req.body)
        .map_err(|_| Error::InvalidJson("body is not UTF-8".into()))?;
    let fresh = ctx.p.accept_event(&event.account, &event.key, raw).await?;
    ctx.log(
        Level::Info,
        "webhook accepted",
        json!({"event": event.name, "account_id": event.account, "key": event.key, "duplicate": !fresh}),
    );
    if fresh {
        ctx.defer(Job::ProcessEvent {
            account: event.account.clone(),
            key: event.key.clone(),
            request_id: ctx.request_id.clone(),
        });
    }
    Ok(Response::json(
        200,
        &json!({"received": true, "duplicate": !fresh}),
    ))
}

/// `GET /webhooks/tiktok`: echoes `challenge` for any verification handshake.
pub fn challenge(req: &Request) -> Response {
    match req.query("challenge") {
        Some(c) if c.len() <= 512 => Response::text(200, c),
        _ => Response::json(200, &json!({"ok": true})),
    }
}

// ---------- rules storage ----------

/// Where a rule set comes from, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesSource {
    Account,
    Global,
    Default,
}

impl RulesSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesSource::Account => "account",
            RulesSource::Global => "stored",
            RulesSource::Default => "default",
        }
    }
}

fn rules_key(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("{RULES_KEY}:{a}"),
        None => RULES_KEY.to_string(),
    }
}

async fn stored_rules<P: Platform>(p: &P, key: &str) -> Result<Option<RuleSet>> {
    match p.get(Bucket::State, key).await? {
        Some(raw) => serde_json::from_str(&raw)
            .map(Some)
            .map_err(|_| Error::Storage("stored rules are unreadable".into())),
        None => Ok(None),
    }
}

/// The rule set in force for `account`: its own, else the global one, else `DEFAULT_RULES`.
pub async fn load_rules<P: Platform>(
    p: &P,
    cfg: &Config,
    account: Option<&str>,
) -> Result<(RuleSet, RulesSource)> {
    if let Some(a) = account {
        if let Some(r) = stored_rules(p, &rules_key(Some(a))).await? {
            return Ok((r, RulesSource::Account));
        }
    }
    Ok(match stored_rules(p, RULES_KEY).await? {
        Some(r) => (r, RulesSource::Global),
        None => (cfg.default_rules.clone(), RulesSource::Default),
    })
}

// ---------- retries of idempotent calls ----------

/// Whether trying again later may succeed.
pub fn retryable(e: &Error) -> bool {
    match e {
        Error::Upstream { failure, .. } => match failure {
            UpstreamFailure::Api { code, .. } => ApiCode::from_code(*code).is_transient(),
            UpstreamFailure::Http { status } => *status >= 500 || *status == 429,
            UpstreamFailure::Timeout
            | UpstreamFailure::Unreachable
            | UpstreamFailure::Malformed => true,
        },
        _ => false,
    }
}

/// Runs `op` up to [`ATTEMPTS`] times while it fails with a [`retryable`] error.
pub async fn with_retries<P: crate::ports::Clock + crate::ports::Rng, T>(
    p: &P,
    op: impl AsyncFn() -> Result<T>,
) -> std::result::Result<T, (Error, u32)> {
    retry_while(p, retryable, op).await
}

/// Runs `op` up to [`ATTEMPTS`] times, with jittered backoff, while it fails with an error
/// `again` accepts; the error is returned with the number of attempts made.
pub async fn retry_while<P: crate::ports::Clock + crate::ports::Rng, T>(
    p: &P,
    again: impl Fn(&Error) -> bool,
    op: impl AsyncFn() -> Result<T>,
) -> std::result::Result<T, (Error, u32)> {
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if again(&e) && attempt < ATTEMPTS => {
                let mut j = [0u8; 1];
                p.fill(&mut j);
                p.sleep(crate::tiktok::delivery::backoff_ms(attempt, j[0]))
                    .await;
                attempt += 1;
            }
            Err(e) => return Err((e, attempt)),
        }
    }
}

// ---------- forwarding ----------

/// `webhook-signature` value (Standard Webhooks): `v1,` + base64 HMAC-SHA256 over
/// `<id>.<timestamp>.<body>`. A `whsec_` secret is base64; any other is used as bytes.
pub fn forward_signature(secret: &str, id: &str, ts: u64, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
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
    with_retries(p, async || {
        let ts = p.now_secs();
        let req = Outbound {
            method: Method::Post,
            url: url.to_string(),
            headers: Headers::new()
                .with("content-type", "application/json")
                .with("webhook-id", id.clone())
                .with("webhook-timestamp", ts.to_string())
                .with(
                    "webhook-signature",
                    forward_signature(secret, &id, ts, raw.as_bytes()),
                ),
            body: Some(raw.as_bytes().to_vec()),
            timeout_ms: 10_000,
            max_body: Some(64 * 1024),
        };
        let fail = |failure| Error::Upstream {
            endpoint: "forward",
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

/// `GET /v1/events/failed?account_id=` (admin).
pub async fn list_failed<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let prefix = match req.query("account_id") {
        Some(a) => {
            crate::messages::api::check_id("account_id", &a)?;
            format!("failed:{a}:")
        }
        None => "failed:".to_string(),
    };
    // One page per request (one list, at most `limit` reads): any number of failures stays
    // within the platform's per-invocation limits.
    let (limit, cursor) = crate::messages::api::page_params(req)?;
    let page = ctx.p.list(Bucket::State, &prefix, cursor, limit).await?;
    let mut out = Vec::new();
    for k in &page.keys {
        if let Some(raw) = ctx.p.get(Bucket::State, k).await? {
            if let Ok(mut v) = serde_json::from_str::<Value>(&raw) {
                if let Some(o) = v.as_object_mut() {
                    o.remove("event");
                }
                out.push(v);
            }
        }
    }
    Ok(Response::json(
        200,
        &json!({"failures": out, "cursor": page.cursor}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    account_id: String,
    id: String,
}

/// `POST /v1/events/replay` `{account_id, id}` (admin).
pub async fn replay_route<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let body: ReplayBody = crate::messages::api::json_body(req)?;
    crate::messages::api::check_id("account_id", &body.account_id)?;
    crate::messages::api::check_id("id", &body.id)?;
    let v = ctx.p.replay_failure(&body.account_id, &body.id).await?;
    // 200 done; 202 waiting for a send of unknown outcome to be reconciled; 502 failed again.
    let status = match (v["replayed"].as_bool(), v["pending"].as_bool()) {
        (Some(true), _) => 200,
        (_, Some(true)) => 202,
        _ => 502,
    };
    Ok(Response::json(status, &v))
}

/// The optional `account_id` of the rules routes: per-account rules override the global set.
fn rules_account(req: &Request) -> Result<Option<String>> {
    match req.query("account_id") {
        Some(a) => {
            crate::messages::api::check_id("account_id", &a)?;
            Ok(Some(a))
        }
        None => Ok(None),
    }
}

/// `GET /v1/rules[?account_id]` (admin): the rule set in force and where it comes from.
pub async fn get_rules<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let account = rules_account(req)?;
    let (rules, source) = load_rules(ctx.p, cfg, account.as_deref()).await?;
    Ok(Response::json(
        200,
        &json!({"source": source.as_str(), "account_id": account, "rules": rules}),
    ))
}

/// `PUT /v1/rules[?account_id]` (admin): validates and stores a rule set (global, or one
/// account's own).
pub async fn put_rules<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    if req.body.len() > 256 * 1024 {
        return Err(Error::PayloadTooLarge { limit: 256 * 1024 });
    }
    let account = rules_account(req)?;
    let set = engine::parse_rules(&req.body, |z| ctx.p.zone_known(z))?;
    let raw = serde_json::to_string(&set).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.p
        .put(Bucket::State, &rules_key(account.as_deref()), &raw, None)
        .await?;
    ctx.log(
        Level::Info,
        "rules stored",
        json!({"rules": set.rules.len(), "account_id": account}),
    );
    let source = if account.is_some() {
        RulesSource::Account
    } else {
        RulesSource::Global
    };
    Ok(Response::json(
        200,
        &json!({"source": source.as_str(), "account_id": account, "rules": set}),
    ))
}

/// `DELETE /v1/rules?account_id` (admin): drops an account's own rules (the global set applies
/// again), or without `account_id` the global set (`DEFAULT_RULES` applies again).
pub async fn delete_rules<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let account = rules_account(req)?;
    ctx.p
        .delete(Bucket::State, &rules_key(account.as_deref()))
        .await?;
    Ok(Response::json(
        200,
        &json!({"deleted": true, "account_id": account}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn retry_classification() {
        let api = |code| Error::Upstream {
            endpoint: "x",
            failure: UpstreamFailure::Api {
                code,
                message: String::new(),
            },
            request_id: None,
        };
        let http = |status| Error::Upstream {
            endpoint: "x",
            failure: UpstreamFailure::Http { status },
            request_id: None,
        };
        assert!(retryable(&api(51065)) && retryable(&api(40100)));
        assert!(!retryable(&api(40064)) && !retryable(&api(40002)) && !retryable(&api(40105)));
        assert!(retryable(&http(500)) && retryable(&http(503)) && retryable(&http(429)));
        assert!(!retryable(&http(404)));
        assert!(!retryable(&Error::NotFound));
    }

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
