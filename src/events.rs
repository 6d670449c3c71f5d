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
use crate::ports::{Bucket, Level, Local, Platform};
use crate::replies::{self, Conversation, Plan, RuleSet, Zone};
use crate::tiktok::codes::ApiCode;
use crate::tiktok::types::{Outgoing, SenderAction};
use crate::tiktok::Client;
use crate::webhook::{self, Event, Kind};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// KV key of the stored rule set.
pub const RULES_KEY: &str = "rules";
/// Attempts per outbound call (first try included).
pub const ATTEMPTS: u32 = 4;
/// A pending event older than this is processed by the alarm.
pub const PENDING_GRACE_MS: u64 = 15_000;
const FAILURE_TTL_SECS: u64 = 30 * 86_400;

// ---------- receiving ----------

/// `POST /webhooks/tiktok`.
pub async fn receive<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    if req.body.len() > webhook::MAX_BODY {
        return Err(Error::PayloadTooLarge {
            limit: webhook::MAX_BODY,
        });
    }
    let cfg = ctx.config()?;
    webhook::verify(
        cfg.client_secret.expose().as_bytes(),
        req.headers.get("tiktok-signature"),
        &req.body,
        ctx.p.now_secs(),
        cfg.webhook_tolerance_secs,
    )
    .map_err(|e| Error::BadSignature(e.to_string()))?;
    let event = webhook::parse(&req.body).map_err(|e| Error::InvalidJson(e.to_string()))?;
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

// ---------- acceptance (in the actor) ----------

fn seen_key(key: &str) -> String {
    format!("seen:{key}")
}

fn pending_key(key: &str) -> String {
    format!("pending:{key}")
}

/// Marks `key` seen and stores the event as pending; `false` when it was seen before.
/// The get and the puts run without other I/O in between, which the actor's input gate makes
/// atomic with respect to concurrent deliveries.
pub async fn accept<P: Local + crate::ports::Clock>(p: &P, key: &str, raw: &str) -> Result<bool> {
    if p.local_get(&seen_key(key)).await?.is_some() {
        return Ok(false);
    }
    let now = p.now_ms();
    p.local_put(&seen_key(key), &now.to_string()).await?;
    let pending = json!({"raw": raw, "accepted_at": now}).to_string();
    p.local_put(&pending_key(key), &pending).await?;
    Ok(true)
}

// ---------- processing (in the actor) ----------

/// What a recorded failure must redo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Messages not yet sent to a conversation.
    Reply {
        conversation_id: String,
        #[serde(default)]
        messages: Vec<Outgoing>,
        /// Records written before replies could be cards: texts only.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        texts: Vec<String>,
    },
    /// A forwarding target that did not take the event.
    Forward { url: String },
    /// Processing started but never finished (the runtime was restarted mid-way): some replies
    /// may have gone out. Replaying processes the whole event again.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub account_id: String,
    pub event_key: String,
    #[serde(flatten)]
    pub stage: Stage,
    pub code: String,
    pub message: String,
    pub attempts: u32,
    pub failed_at: u64,
    #[serde(default)]
    pub replays: u32,
    /// TikTok's delivery as received (needed to forward it again).
    pub event: String,
}

pub fn failure_id(account: &str, key: &str, stage: &Stage) -> String {
    let mut h = Sha256::new();
    h.update(account.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    h.update([0]);
    h.update(serde_json::to_string(stage).unwrap_or_default().as_bytes());
    hex::encode(&h.finalize()[..12])
}

fn failure_key(account: &str, id: &str) -> String {
    format!("failed:{account}:{id}")
}

async fn record_failure<P: Platform>(p: &P, f: &Failure) -> Result<()> {
    p.log(
        Level::Error,
        "event processing failed; recorded for replay",
        json!({"account_id": f.account_id, "failure_id": f.id, "code": f.code, "attempts": f.attempts}),
    );
    let raw = serde_json::to_string(f).map_err(|e| Error::Internal(e.to_string()))?;
    p.put(
        Bucket::State,
        &failure_key(&f.account_id, &f.id),
        &raw,
        Some(FAILURE_TTL_SECS),
    )
    .await
}

/// Processes the pending event `key`, if it is pending and not already being processed.
/// The pending record is marked started first and removed when done; one that stays started
/// (the runtime died mid-way) is recorded as [`Stage::Interrupted`] by [`sweep`], never
/// silently re-sent.
pub async fn process<P: Platform + Local>(p: &P, cfg: &Config, key: &str) -> Result<()> {
    let Some(pending) = p.local_get(&pending_key(key)).await? else {
        return Ok(());
    };
    let mut rec = serde_json::from_str::<Value>(&pending).unwrap_or(Value::Null);
    if rec.get("started_at").is_some_and(|v| !v.is_null()) {
        return Ok(());
    }
    let raw = rec["raw"].as_str().unwrap_or_default().to_string();
    rec["started_at"] = json!(p.now_ms());
    p.local_put(&pending_key(key), &rec.to_string()).await?;
    let outcome = run(p, cfg, key, &raw).await;
    p.local_delete(&pending_key(key)).await?;
    outcome
}

async fn run<P: Platform + Local>(p: &P, cfg: &Config, key: &str, raw: &str) -> Result<()> {
    let raw = raw.to_string();
    let Ok(event) = webhook::parse(raw.as_bytes()) else {
        return Ok(());
    };
    let mut failures = Vec::new();
    for url in &cfg.forward_urls {
        if let Err((e, attempts)) = forward(p, cfg, &event, &raw, url.as_str()).await {
            failures.push((
                Stage::Forward {
                    url: url.to_string(),
                },
                e,
                attempts,
            ));
        }
    }
    match event.kind {
        Kind::CustomerMessage => {
            if let Some(f) = reply(p, cfg, &event).await? {
                failures.push(f);
            }
        }
        k if k.is_business_message() => note_echo(p, &event).await?,
        k => p.log(
            Level::Info,
            "event needs no reply",
            json!({"event": event.name, "kind": k.as_str(), "account_id": event.account,
                   "conversation_id": event.content.conversation_id}),
        ),
    }
    for (stage, e, attempts) in failures {
        let f = Failure {
            id: failure_id(&event.account, key, &stage),
            account_id: event.account.clone(),
            event_key: key.to_string(),
            stage,
            code: e.code().to_string(),
            message: e.to_string(),
            attempts,
            failed_at: p.now_secs(),
            replays: 0,
            event: raw.clone(),
        };
        record_failure(p, &f).await?;
    }
    Ok(())
}

fn conv_key(conversation: &str) -> String {
    format!("conv:{conversation}")
}

async fn load_conv<P: Local>(p: &P, id: &str) -> Result<Conversation> {
    Ok(p.local_get(&conv_key(id))
        .await?
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

async fn save_conv<P: Local>(p: &P, id: &str, c: &Conversation) -> Result<()> {
    let raw = serde_json::to_string(c).map_err(|e| Error::Internal(e.to_string()))?;
    p.local_put(&conv_key(id), &raw).await
}

/// The business's own message (our API send's echo, a person typing in the TikTok app, or
/// TikTok's automation): counted against the reply window once (by message id, whichever of
/// the echo and the send's answer comes first), never answered.
async fn note_echo<P: Platform + Local>(p: &P, event: &Event) -> Result<()> {
    if let Some(conv) = &event.content.conversation_id {
        let mut c = load_conv(p, conv).await?;
        c.record_sent(event.content.message_id.as_deref());
        save_conv(p, conv, &c).await?;
    }
    p.log(
        Level::Info,
        "business message noted",
        json!({"account_id": event.account, "kind": event.kind.as_str(),
               "conversation_id": event.content.conversation_id,
               "message_id": event.content.message_id}),
    );
    Ok(())
}

/// The customer's name for `{{display_name}}`: the event's `from` handle, else the name
/// remembered for the conversation, else the listing's participants (one TikTok call, only
/// when a reply would use it; remembered afterwards).
async fn customer_name<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    event: &Event,
    conv: &mut Conversation,
    needed: bool,
) -> Option<String> {
    if let Some(h) = event
        .content
        .from
        .as_deref()
        .filter(|h| !h.trim().is_empty())
    {
        conv.customer_name = Some(h.to_string());
        return conv.customer_name.clone();
    }
    if conv.customer_name.is_some() || !needed {
        return conv.customer_name.clone();
    }
    let conv_id = event.content.conversation_id.as_deref()?;
    let client = Client::for_config(p, cfg);
    let token = p.access_token(&event.account, None).await.ok()?;
    match client
        .list_messages(token.expose(), &event.account, conv_id)
        .await
    {
        Ok(page) => conv.customer_name = page.customer_name().map(str::to_string),
        Err(e) => p.log(
            Level::Warn,
            "customer name lookup failed; greeting without it",
            json!({"account_id": event.account, "conversation_id": conv_id, "code": e.code()}),
        ),
    }
    conv.customer_name.clone()
}

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

type Failed = (Stage, Error, u32);

async fn reply<P: Platform + Local>(p: &P, cfg: &Config, event: &Event) -> Result<Option<Failed>> {
    let conv_id = event.content.conversation_id.clone().unwrap_or_default();
    let now = p.now_secs();
    let (rules, _) = load_rules(p, cfg, Some(&event.account)).await?;
    let mut conv = load_conv(p, &conv_id).await?;
    conv.record_inbound(now);
    let name = customer_name(p, cfg, event, &mut conv, replies::uses_display_name(&rules)).await;
    save_conv(p, &conv_id, &conv).await?;
    let zone = Zone::parse(&rules.timezone).unwrap_or(Zone::Fixed(0));
    let local = p.local_time(&zone, now).unwrap_or_else(|| {
        p.log(
            Level::Warn,
            "time zone unknown to the runtime; using UTC",
            json!({"timezone": rules.timezone}),
        );
        replies::LocalTime::at_offset(now, 0)
    });
    let inbound = replies::Inbound {
        text: event.content.text_body(),
        button_id: event.content.button_id(),
        message_id: event.content.message_id.as_deref(),
    };
    let plan = replies::decide(&rules, &conv, inbound, name.as_deref(), local, now);
    p.log(
        Level::Info,
        "auto-reply decided",
        json!({"account_id": event.account, "conversation_id": conv_id, "messages": plan.messages.len(),
               "rules": plan.messages.iter().map(|m| &m.0).collect::<Vec<_>>(), "held_back": plan.held_back}),
    );
    execute(p, cfg, &event.account, &conv_id, &plan).await
}

/// Sends a plan: mark-read and typing are best effort; messages are retried and, when they
/// still fail, returned (with the messages not yet sent) to be recorded.
async fn execute<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    account: &str,
    conv_id: &str,
    plan: &Plan,
) -> Result<Option<Failed>> {
    let client = Client::for_config(p, cfg);
    let mut actions = Vec::new();
    if plan.mark_read {
        actions.push(SenderAction::MarkRead);
    }
    if plan.typing {
        actions.push(SenderAction::Typing);
    }
    for action in actions {
        let msg = Outgoing::Action { action };
        if let Err((e, _)) = send(p, &client, account, conv_id, &msg).await {
            p.log(
                Level::Warn,
                "sender action failed",
                json!({"account_id": account, "conversation_id": conv_id, "code": e.code()}),
            );
        }
    }
    send_messages(p, &client, account, conv_id, &plan.messages).await
}

/// Sends `(rule, message)` pairs in order, each counted against the reply window.
async fn send_messages<P: Platform + Local>(
    p: &P,
    client: &Client<'_, P>,
    account: &str,
    conv_id: &str,
    messages: &[(String, Outgoing)],
) -> Result<Option<Failed>> {
    for (i, (rule, msg)) in messages.iter().enumerate() {
        let mut conv = load_conv(p, conv_id).await?;
        if conv.budget(p.now_secs()) == 0 {
            p.log(
                Level::Warn,
                "reply window exhausted; not sending",
                json!({"account_id": account, "conversation_id": conv_id}),
            );
            return Ok(None);
        }
        match send(p, client, account, conv_id, msg).await {
            Ok(sent) => {
                // Reloaded: the echo may have been counted while we were sending.
                conv = load_conv(p, conv_id).await?;
                conv.record_sent(sent.message_id.as_deref());
                conv.last_auto_reply_at = Some(p.now_secs());
                save_conv(p, conv_id, &conv).await?;
                p.log(
                    Level::Info,
                    "reply sent",
                    json!({"account_id": account, "conversation_id": conv_id, "rule": rule,
                           "type": msg.kind(), "message_id": sent.message_id}),
                );
            }
            Err((e, attempts)) => {
                let stage = Stage::Reply {
                    conversation_id: conv_id.to_string(),
                    messages: messages[i..].iter().map(|(_, m)| m.clone()).collect(),
                    texts: Vec::new(),
                };
                return Ok(Some((stage, e, attempts)));
            }
        }
    }
    Ok(None)
}

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

/// Backoff before attempt `n` (1-based retries): 250 ms × 3^(n-1), ±50 % jitter, at most 4 s.
pub fn backoff_ms(n: u32, jitter: u8) -> u64 {
    let base = (250u64 * 3u64.pow(n.saturating_sub(1).min(4))).min(4_000);
    base / 2 + base * jitter as u64 / 255
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
                p.sleep(backoff_ms(attempt, j[0])).await;
                attempt += 1;
            }
            Err(e) => return Err((e, attempt)),
        }
    }
}

/// One send with retries; a rejected token is refreshed (single-flight) and tried once more.
async fn send<P: Platform>(
    p: &P,
    client: &Client<'_, P>,
    account: &str,
    conv_id: &str,
    msg: &Outgoing,
) -> std::result::Result<crate::tiktok::types::Sent, (Error, u32)> {
    let mut rejected: Option<String> = None;
    let mut attempts = 0;
    for _ in 0..2 {
        let token = p
            .access_token(account, rejected.as_deref())
            .await
            .map_err(|e| (e, attempts))?;
        match with_retries(p, async || {
            client.send(token.expose(), account, conv_id, msg).await
        })
        .await
        {
            Err((e, n))
                if rejected.is_none() && e.api_code().is_some_and(ApiCode::wants_refresh) =>
            {
                attempts += n;
                rejected = Some(token.expose().to_string());
            }
            Err((e, n)) => return Err((e, attempts + n)),
            Ok(s) => return Ok(s),
        }
    }
    Err((
        Error::AccountNeedsReauth {
            account: account.into(),
        },
        attempts,
    ))
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

async fn forward<P: Platform>(
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

// ---------- housekeeping and replay (in the actor) ----------

/// The alarm's work: process pending events whose job never ran, record those whose
/// processing was interrupted, forget old message ids. Returns whether anything is left
/// pending (so the alarm should come back soon).
pub async fn sweep<P: Platform + Local>(p: &P, cfg: &Config) -> Result<bool> {
    let now = p.now_ms();
    let mut left = false;
    for (k, v) in p.local_list("pending:", 100).await? {
        let key = &k["pending:".len()..];
        let rec = serde_json::from_str::<Value>(&v).unwrap_or(Value::Null);
        let accepted = rec["accepted_at"].as_u64().unwrap_or(0);
        match rec["started_at"].as_u64() {
            None if now.saturating_sub(accepted) >= PENDING_GRACE_MS => {
                p.log(
                    Level::Warn,
                    "processing an accepted event whose job never ran",
                    json!({"key": key}),
                );
                process(p, cfg, key).await?;
            }
            Some(started) if now.saturating_sub(started) >= cfg.processing_timeout_secs * 1000 => {
                let raw = rec["raw"].as_str().unwrap_or_default().to_string();
                let account = webhook::parse(raw.as_bytes())
                    .map(|e| e.account)
                    .unwrap_or_default();
                let f = Failure {
                    id: failure_id(&account, key, &Stage::Interrupted),
                    account_id: account,
                    event_key: key.to_string(),
                    stage: Stage::Interrupted,
                    code: "processing_interrupted".into(),
                    message: "processing started but did not finish (runtime restarted); replies may be partly sent".into(),
                    attempts: 1,
                    failed_at: p.now_secs(),
                    replays: 0,
                    event: raw,
                };
                record_failure(p, &f).await?;
                p.local_delete(&k).await?;
            }
            _ => left = true,
        }
    }
    let cutoff = now.saturating_sub(cfg.event_retention_secs * 1000);
    for (k, v) in p.local_list("seen:", 1000).await? {
        if v.parse::<u64>().unwrap_or(0) < cutoff {
            p.local_delete(&k).await?;
        }
    }
    Ok(left)
}

/// Replays a recorded failure; on success the record is removed.
pub async fn replay<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    account: &str,
    id: &str,
) -> Result<Value> {
    let key = failure_key(account, id);
    let raw = p
        .get(Bucket::State, &key)
        .await?
        .ok_or_else(|| Error::Missing {
            what: format!("failure {id}"),
        })?;
    let mut f: Failure = serde_json::from_str(&raw)
        .map_err(|_| Error::Storage("failure record unreadable".into()))?;
    let outcome = match &f.stage {
        Stage::Interrupted => {
            let rec = json!({"raw": f.event, "accepted_at": p.now_ms()});
            p.local_put(&pending_key(&f.event_key), &rec.to_string())
                .await?;
            process(p, cfg, &f.event_key).await?;
            None
        }
        Stage::Reply {
            conversation_id,
            messages,
            texts,
        } => {
            let client = Client::for_config(p, cfg);
            let pending: Vec<(String, Outgoing)> = messages
                .iter()
                .cloned()
                .chain(texts.iter().map(Outgoing::text))
                .map(|m| ("replay".to_string(), m))
                .collect();
            send_messages(p, &client, account, conversation_id, &pending).await?
        }
        Stage::Forward { url } => {
            let event =
                webhook::parse(f.event.as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
            forward(p, cfg, &event, &f.event, url)
                .await
                .err()
                .map(|(e, n)| (f.stage.clone(), e, n))
        }
    };
    match outcome {
        None => {
            p.delete(Bucket::State, &key).await?;
            Ok(json!({"id": id, "replayed": true}))
        }
        Some((stage, e, attempts)) => {
            f.stage = stage;
            f.code = e.code().to_string();
            f.message = e.to_string();
            f.attempts = attempts;
            f.replays += 1;
            f.failed_at = p.now_secs();
            record_failure(p, &f).await?;
            Ok(
                json!({"id": id, "replayed": false, "error": {"code": f.code, "message": f.message}}),
            )
        }
    }
}

// ---------- admin routes ----------

/// `GET /v1/events/failed?account_id=` (admin).
pub async fn list_failed<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let prefix = match req.query("account_id") {
        Some(a) => {
            crate::api::check_id("account_id", &a)?;
            format!("failed:{a}:")
        }
        None => "failed:".to_string(),
    };
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = ctx.p.list(Bucket::State, &prefix, cursor).await?;
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
        match page.cursor {
            Some(c) if out.len() < 1000 => cursor = Some(c),
            _ => break,
        }
    }
    Ok(Response::json(200, &json!({"failures": out})))
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
    let body: ReplayBody = crate::api::json_body(req)?;
    crate::api::check_id("account_id", &body.account_id)?;
    crate::api::check_id("id", &body.id)?;
    let v = ctx.p.replay_failure(&body.account_id, &body.id).await?;
    Ok(Response::json(200, &v))
}

/// The optional `account_id` of the rules routes: per-account rules override the global set.
fn rules_account(req: &Request) -> Result<Option<String>> {
    match req.query("account_id") {
        Some(a) => {
            crate::api::check_id("account_id", &a)?;
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
    let set = replies::parse_rules(&req.body, |z| ctx.p.zone_known(z))?;
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
    use crate::ports::Clock;

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
    fn backoff_grows_with_jitter_and_a_cap() {
        assert_eq!((backoff_ms(1, 0), backoff_ms(1, 255)), (125, 375));
        assert_eq!((backoff_ms(2, 0), backoff_ms(3, 0)), (375, 1125));
        assert!(backoff_ms(9, 255) <= 6_000);
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

    fn fake() -> crate::testutil::Fake {
        let mut f = crate::testutil::Fake::new(1_720_000_000);
        f.cfg =
            Some(crate::config::load(|k| crate::config::tests::full().get(k).cloned()).unwrap());
        f
    }

    #[test]
    fn message_ids_are_remembered_for_the_retention_then_forgotten() {
        use crate::testutil::block_on;
        let f = fake();
        let cfg = f.cfg.clone().unwrap();
        let raw = r#"{"event":"im_mark_read_msg","user_openid":"biz","content":"{}"}"#;
        assert!(block_on(accept(&f, "m:1", raw)).unwrap());
        block_on(process(&f, &cfg, "m:1")).unwrap();
        f.advance(6 * 86_400);
        block_on(sweep(&f, &cfg)).unwrap();
        assert!(
            !block_on(accept(&f, "m:1", raw)).unwrap(),
            "a redelivery 6 days later is a duplicate"
        );
        f.advance(2 * 86_400);
        block_on(sweep(&f, &cfg)).unwrap();
        assert!(
            block_on(accept(&f, "m:1", raw)).unwrap(),
            "forgotten after the 7-day retention"
        );
    }

    #[test]
    fn sweep_processes_orphans_and_records_interrupted_processing() {
        use crate::ports::{Bucket, Local, Store};
        use crate::testutil::block_on;
        let f = fake();
        let cfg = f.cfg.clone().unwrap();
        let raw = r#"{"event":"im_mark_read_msg","user_openid":"biz","content":"{}"}"#;
        block_on(accept(&f, "m:orphan", raw)).unwrap();
        assert!(
            block_on(sweep(&f, &cfg)).unwrap(),
            "too young: left for its job"
        );
        f.advance(20);
        block_on(sweep(&f, &cfg)).unwrap();
        assert!(
            block_on(f.local_get("pending:m:orphan")).unwrap().is_none(),
            "processed by the alarm"
        );
        // Started, then the runtime died.
        let started =
            json!({"raw": raw, "accepted_at": f.now_ms(), "started_at": f.now_ms()}).to_string();
        block_on(f.local_put("pending:m:cut", &started)).unwrap();
        block_on(sweep(&f, &cfg)).unwrap();
        assert!(block_on(f.list(Bucket::State, "failed:", None))
            .unwrap()
            .keys
            .is_empty());
        f.advance(cfg.processing_timeout_secs);
        block_on(sweep(&f, &cfg)).unwrap();
        let keys = block_on(f.list(Bucket::State, "failed:biz:", None))
            .unwrap()
            .keys;
        assert_eq!(keys.len(), 1);
        let rec: Failure =
            serde_json::from_str(&block_on(f.get(Bucket::State, &keys[0])).unwrap().unwrap())
                .unwrap();
        assert_eq!(
            (rec.stage, rec.code.as_str()),
            (Stage::Interrupted, "processing_interrupted")
        );
    }

    #[test]
    fn failure_ids_are_stable_and_distinct_per_stage() {
        let r = Stage::Reply {
            conversation_id: "c".into(),
            messages: vec![Outgoing::text("a")],
            texts: vec![],
        };
        let f = Stage::Forward {
            url: "https://x".into(),
        };
        assert_eq!(failure_id("a", "m:1", &r), failure_id("a", "m:1", &r));
        assert_ne!(failure_id("a", "m:1", &r), failure_id("a", "m:1", &f));
        assert_eq!(failure_id("a", "m:1", &r).len(), 24);
    }
}
