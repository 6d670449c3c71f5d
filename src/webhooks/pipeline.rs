//! The durable life of an accepted webhook event, inside its account's actor.
//!
//! An event is stored as *pending* when it is accepted and stays pending until everything it
//! asks for is done or recorded as a failure. Every decision is written down before it is acted
//! on: the reply plan (with the inbound message counted, in one atomic write), each send about to
//! go out (`inflight`), each send done, each forward done, each failure decided. So a crash, a
//! timeout or a storage error at any point resumes from the last written step:
//! - nothing is decided twice (a replay sends exactly the stored plan),
//! - a send whose outcome is unknown is reconciled with TikTok's listing, never re-sent blindly,
//! - an error leaves the event pending, retried by the actor's alarm with growing delays.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::inbox::history::{self, Entry, Source};
use crate::inbox::notify::{self, Notice, Topic};
use crate::ports::{Bucket, Level, Local, Platform};
use crate::rules::engine::{self, ConversationState};
use crate::rules::store::load_rules;
use crate::tiktok::delivery::{self, Found, Outcome, Retry, RECONCILE_AFTER_MS};
use crate::tiktok::types::{Outgoing, SenderAction};
use crate::tiktok::Client;
use crate::time::Zone;
use crate::webhooks::envelope::{self, Event, EventKind};
use crate::webhooks::forward::forward;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A pending event older than this whose job never ran is processed by the alarm.
pub const PENDING_GRACE_MS: u64 = 15_000;
const FAILURE_TTL_SECS: u64 = 30 * 86_400;
/// Sends of unknown outcome tried per message before it is recorded as a failure.
const MAX_UNKNOWN_TRIES: u32 = 3;
/// Pending records one alarm run looks at.
const SWEEP_PAGE: usize = 100;
/// A conversation's state is forgotten this long after its last activity.
pub const CONVERSATION_RETENTION_SECS: u64 = 30 * 86_400;

/// The longest one send can take: every attempt to its deadline, with the backoffs between.
fn worst_send_ms(cfg: &Config) -> u64 {
    u64::from(crate::tiktok::retry::ATTEMPTS) * (cfg.tiktok_timeout_ms + 4_000)
}

/// Delay before processing that failed is tried again: 5 s doubling up to 5 min.
pub fn retry_delay_ms(attempts: u32) -> u64 {
    (5_000u64 << attempts.min(6)).min(300_000)
}

// Storage keys in the actor: every key this pipeline writes comes from these helpers.
const SEEN: &str = "seen:";
pub(crate) const PENDING: &str = "pending:";
pub(crate) const CONV: &str = "conv:";
const FAILED: &str = "failed:";

fn seen_key(key: &str) -> String {
    format!("{SEEN}{key}")
}

fn pending_key(key: &str) -> String {
    format!("{PENDING}{key}")
}

fn conv_key(conversation: &str) -> String {
    format!("{CONV}{conversation}")
}

fn failure_key(account: &str, id: &str) -> String {
    format!("{}{id}", failures_prefix(Some(account)))
}

/// The prefix of every recorded failure (`STATE`), or of one account's.
pub fn failures_prefix(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("{FAILED}{a}:"),
        None => FAILED.to_string(),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

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
        /// The first message's last send had no clear outcome (at this time, ms): a replay
        /// first looks for it at TikTok.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unknown_since_ms: Option<u64>,
    },
    /// A forwarding target that did not take the event.
    Forward { url: String },
    /// A notification target (named by its tag, never its URL) that did not take a notice.
    Notify { target: String, notice: Notice },
    /// Written by earlier versions when processing was cut off; replaying processes the whole
    /// event again.
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "super::failure_wire::FailureWire")]
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

/// A send that went out and whose answer is awaited or lost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inflight {
    /// When the send started (the earliest its message can be at TikTok).
    pub at_ms: u64,
    pub tries: u32,
    /// When its answer left the outcome unknown; absent when the run died before the answer.
    #[serde(default)]
    pub answered_ms: Option<u64>,
}

/// The decided reply and how far it got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    pub conversation_id: String,
    /// `(rule, message)` in order.
    pub messages: Vec<(String, Outgoing)>,
    pub done: usize,
    #[serde(default)]
    pub inflight: Option<Inflight>,
    /// TikTok's ids of the messages sent so far (not to be mistaken for a lost one).
    #[serde(default)]
    pub sent_ids: Vec<String>,
}

impl Progress {
    /// The messages not sent yet (from the current one), as a failure's stage to replay.
    fn rest(&self, unknown_since_ms: Option<u64>) -> Stage {
        Stage::Reply {
            conversation_id: self.conversation_id.clone(),
            messages: self.messages[self.done..]
                .iter()
                .map(|(_, m)| m.clone())
                .collect(),
            texts: vec![],
            unknown_since_ms,
        }
    }
}

/// The pending record of one event (or of one replay).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pending {
    pub raw: String,
    pub accepted_at: u64,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
    /// Not to be looked at before this time (ms): a retry after an error, or a reconciliation.
    #[serde(default)]
    pub not_before: Option<u64>,
    #[serde(default)]
    pub forwarded: Vec<String>,
    #[serde(default)]
    pub reply: Option<Progress>,
    /// Failures decided and not yet recorded.
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// For a replay: the failure it redoes, its event's key, and how often it was replayed.
    #[serde(default)]
    pub replay_of: Option<String>,
    #[serde(default)]
    pub event_key: Option<String>,
    #[serde(default)]
    pub replays: u32,
    /// A replay redoes only its stage (this forward, or the stored reply), not the whole event.
    #[serde(default)]
    pub only_stage: bool,
    #[serde(default)]
    pub only_forward: Option<String>,
    /// Notifications planned for people (see `inbox::notify`), and `<notice id>|<target tag>`
    /// of each one settled (delivered, or recorded as a failure to replay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<String>,
    /// A replay of one notification: only to this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_notify: Option<String>,
}

/// What one run of [`process`] did.
#[derive(Debug, Default)]
pub struct Processed {
    /// When the event needs looking at again (it is still pending), if ever.
    pub retry_at: Option<u64>,
    /// Failures recorded in this run.
    pub failures: Vec<Failure>,
}

async fn load_pending<P: Local>(p: &P, key: &str) -> Result<Option<Pending>> {
    match p.local_get(&pending_key(key)).await? {
        Some(raw) => crate::json::from_str(&raw)
            .map(Some)
            .map_err(|_| Error::Storage("pending event record unreadable".into())),
        None => Ok(None),
    }
}

async fn save_pending<P: Local>(p: &P, key: &str, rec: &Pending) -> Result<()> {
    p.local_put(&pending_key(key), &to_json(rec)?).await
}

async fn load_conv<P: Local>(p: &P, id: &str) -> Result<ConversationState> {
    Ok(p.local_get(&conv_key(id))
        .await?
        .and_then(|r| crate::json::from_str(&r).ok())
        .unwrap_or_default())
}

/// Marks `key` seen and stores the event as pending; `false` when it was seen before.
/// The get and the puts run without other I/O in between, which the actor's input gate makes
/// atomic with respect to concurrent deliveries.
pub async fn accept<P: Local + crate::ports::Clock>(p: &P, key: &str, raw: &str) -> Result<bool> {
    if p.local_get(&seen_key(key)).await?.is_some() {
        return Ok(false);
    }
    let now = p.now_ms();
    let pending = Pending {
        raw: raw.to_string(),
        accepted_at: now,
        ..Pending::default()
    };
    p.local_put_all(vec![
        (seen_key(key), now.to_string()),
        (pending_key(key), to_json(&pending)?),
    ])
    .await?;
    Ok(true)
}

/// When a pending record needs looking at.
fn due_at(rec: &Pending, now: u64) -> u64 {
    match (rec.started_at, rec.not_before) {
        // Started and not running now (process() skips what runs): cut off, resume.
        (Some(_), _) => now,
        (None, Some(t)) => t,
        (None, None) => rec.accepted_at + PENDING_GRACE_MS,
    }
}

/// The earliest time a pending record needs looking at (one storage list, nothing run).
pub async fn next_due<P: Local + crate::ports::Clock>(p: &P) -> Result<Option<u64>> {
    let now = p.now_ms();
    let pending = p.local_list("pending:", SWEEP_PAGE).await?;
    Ok(pending
        .iter()
        .filter_map(|(k, v)| Some((k, crate::json::from_str::<Pending>(v).ok()?)))
        .map(|(k, r)| {
            let key = &k["pending:".len()..];
            // One running in this instance now will say when it needs looking at again.
            let running = !p.claim_run(key);
            if !running {
                p.release_run(key);
            }
            if running {
                now + PENDING_GRACE_MS
            } else {
                due_at(&r, now).max(now + 1_000)
            }
        })
        .min())
}

/// Notices that no event carries (an account needing re-authorisation): a pending record of
/// their own, written with `mark` (what says they were planned) in one atomic write, then sent
/// at once; should that be cut off, the alarm goes on with it.
pub async fn notify_now<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    notice: Notice,
    mark: (&str, &str),
) -> Result<()> {
    if cfg.notify_targets.is_empty() {
        return p.local_put(mark.0, mark.1).await;
    }
    let key = format!("n:{}", notice.id);
    let rec = Pending {
        accepted_at: p.now_ms(),
        notices: vec![notice],
        ..Pending::default()
    };
    p.local_put_all(vec![
        (mark.0.to_string(), mark.1.to_string()),
        (pending_key(&key), to_json(&rec)?),
    ])
    .await?;
    process(p, cfg, &key).await.map(drop)
}

/// Whether `key` is still pending.
pub async fn is_pending<P: Local>(p: &P, key: &str) -> Result<bool> {
    Ok(p.local_get(&pending_key(key)).await?.is_some())
}

async fn record_failure<P: Platform>(p: &P, f: &Failure) -> Result<()> {
    p.log(
        Level::Error,
        "event processing failed; recorded for replay",
        crate::json::object!({"account_id": f.account_id, "failure_id": f.id, "code": f.code, "attempts": f.attempts}),
    );
    p.put(
        Bucket::State,
        &failure_key(&f.account_id, &f.id),
        &to_json(f)?,
        Some(FAILURE_TTL_SECS),
    )
    .await
}

/// Runs (or resumes) the pending event `key`. Whatever fails, the event stays pending (and
/// `retry_at` says when to look again) or its failures are recorded: it is never dropped.
pub async fn process<P: Platform + Local>(p: &P, cfg: &Config, key: &str) -> Result<Processed> {
    // One run per key in this instance (another instance means the earlier run died).
    if !p.claim_run(key) {
        return Ok(Processed::default());
    }
    let out = run_claimed(p, cfg, key).await;
    p.release_run(key);
    out
}

/// Most attempts after errors before what is left is recorded as a failure (about 20 min).
const MAX_ATTEMPTS: u32 = 8;

async fn run_claimed<P: Platform + Local>(p: &P, cfg: &Config, key: &str) -> Result<Processed> {
    let Some(mut rec) = load_pending(p, key).await? else {
        return Ok(Processed::default());
    };
    let now = p.now_ms();
    match (rec.started_at, rec.not_before) {
        (Some(started), _) => {
            p.log(
                Level::Warn,
                "resuming an event whose processing was cut off",
                crate::json::object!({"key": key, "started_ms_ago": now.saturating_sub(started)}),
            );
        }
        (None, Some(t)) if t > now => {
            return Ok(Processed {
                retry_at: Some(t),
                failures: vec![],
            })
        }
        _ => {}
    }
    // A first run writes its start with its first step (the plan, or a forward): until then
    // it has done nothing, and should it die first, the alarm runs the event as not started.
    let first = rec.started_at.is_none() && rec.not_before.is_none() && rec.attempts == 0;
    rec.started_at = Some(now);
    if !first {
        save_pending(p, key, &rec).await?;
    }
    let mut recorded = Vec::new();
    let outcome = match advance(p, cfg, key, &mut rec, &mut recorded).await {
        Err(e) if rec.attempts + 1 >= MAX_ATTEMPTS => {
            // Tried long enough: what is left becomes a failure an admin can see and replay.
            p.log(
                Level::Error,
                "event processing keeps failing; recording what is left",
                crate::json::object!({"key": key, "code": e.code(), "attempts": rec.attempts + 1}),
            );
            give_up(p, cfg, key, &mut rec, &e, &mut recorded).await
        }
        other => other,
    };
    match outcome {
        Ok(None) => {
            p.local_delete(&pending_key(key)).await?;
            Ok(Processed {
                retry_at: None,
                failures: recorded,
            })
        }
        Ok(Some(at)) => {
            rec.started_at = None;
            rec.not_before = Some(at);
            save_pending(p, key, &rec).await?;
            Ok(Processed {
                retry_at: Some(at),
                failures: recorded,
            })
        }
        Err(e) => {
            rec.attempts += 1;
            let at = p.now_ms() + retry_delay_ms(rec.attempts);
            p.log(
                Level::Error,
                "event processing failed; kept pending and tried again later",
                crate::json::object!({"key": key, "code": e.code(), "message": e.to_string(),
                       "attempts": rec.attempts, "retry_at_ms": at}),
            );
            rec.started_at = None;
            rec.not_before = Some(at);
            // If even this write fails, the record still names this run: it is resumed by
            // the next alarm (this run is over) or at once by the next instance.
            save_pending(p, key, &rec).await?;
            Ok(Processed {
                retry_at: Some(at),
                failures: recorded,
            })
        }
    }
}

/// Records what an event still had to do as one failure (its reply's unsent messages, with
/// the time of a send of unknown outcome, or the whole event) and ends it.
async fn give_up<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    rec: &mut Pending,
    e: &Error,
    recorded: &mut Vec<Failure>,
) -> Result<Option<u64>> {
    let account = account_of(rec);
    let stage = match &rec.reply {
        Some(prog) if prog.done < prog.messages.len() => {
            prog.rest(prog.inflight.as_ref().map(|i| i.at_ms))
        }
        _ => Stage::Interrupted,
    };
    let f = new_failure(p, &account, key, rec, stage, e, rec.attempts + 1);
    rec.failures.push(f);
    rec.reply = None;
    record_decided(p, cfg, key, rec, recorded).await?;
    // People are still told what was planned (and that the reply failed): a target that
    // refuses becomes a failure of its own.
    notify_all(p, cfg, key, rec).await?;
    record_decided(p, cfg, key, rec, recorded).await?;
    Ok(None)
}

/// Records the failures decided so far, one at a time, each removed from the pending record
/// once it is stored (a retry records only what is left).
async fn record_decided<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    rec: &mut Pending,
    recorded: &mut Vec<Failure>,
) -> Result<()> {
    while let Some(f) = rec.failures.first().cloned() {
        record_failure(p, &f).await?;
        rec.failures.remove(0);
        // People hear of a reply that could not be sent (with the same write).
        if let Stage::Reply {
            conversation_id, ..
        } = &f.stage
        {
            let customer = envelope::parse(rec.raw.as_bytes())
                .ok()
                .and_then(|e| e.content.from);
            let notice = Notice::new(
                Topic::ReplyFailed,
                &f.account_id,
                &format!("{}:{}", f.id, f.replays),
            )
            .about(Some(conversation_id), customer.as_deref());
            plan_notice(
                cfg.notify_targets.len(),
                rec,
                Notice {
                    detail: Some(f.code.clone()),
                    ..notice
                },
            );
        }
        recorded.push(f);
        save_pending(p, key, rec).await?;
    }
    Ok(())
}

/// Stores a message in the history. The history serves people; replies and forwards do not
/// wait on it: an error (storage full, say) is logged and the event goes on.
fn keep_in_history<P: Platform + Local>(p: &P, entry: &Entry) -> history::Recorded {
    history::record(p, entry).unwrap_or_else(|e| {
        p.log(
            Level::Error,
            "message not kept in the history",
            crate::json::object!({"conversation_id": entry.conversation_id, "message_id": entry.message_id,
                   "code": e.code(), "message": e.to_string()}),
        );
        history::Recorded::default()
    })
}

/// The account a pending record is about: its event's, else its first notice's.
fn account_of(rec: &Pending) -> String {
    match envelope::parse(rec.raw.as_bytes()) {
        Ok(e) => e.account,
        Err(_) => rec
            .notices
            .first()
            .map(|n| n.account_id.clone())
            .unwrap_or_default(),
    }
}

/// Adds `notice` to the record unless it is there already (a step run again plans the same
/// notice, with the same id) or nobody is to be told.
fn plan_notice(targets: usize, rec: &mut Pending, notice: Notice) {
    if targets > 0 && !rec.notices.iter().any(|n| n.id == notice.id) {
        rec.notices.push(notice);
    }
}

/// Sends the planned notices to every target not yet told (a replay: to its one target).
/// A target that keeps refusing one becomes a failure to replay; nothing else waits for it.
async fn notify_all<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    rec: &mut Pending,
) -> Result<()> {
    for notice in rec.notices.clone() {
        for target in &cfg.notify_targets {
            if rec.only_notify.as_ref().is_some_and(|t| *t != target.tag) {
                continue;
            }
            let mark = format!("{}|{}", notice.id, target.tag);
            let decided = rec.failures.iter().any(|f| {
                matches!(&f.stage, Stage::Notify { target: t, notice: n } if *t == target.tag && n.id == notice.id)
            });
            if rec.notified.contains(&mark) || decided {
                continue;
            }
            match notify::deliver(p, target, &notice).await {
                Ok(()) => {
                    p.log(
                        Level::Info,
                        "notification sent",
                        crate::json::object!({"account_id": notice.account_id, "conversation_id": notice.conversation_id,
                               "topic": notice.topic, "target": target.tag}),
                    );
                    rec.notified.push(mark);
                }
                Err((e, n)) => {
                    let stage = Stage::Notify {
                        target: target.tag.clone(),
                        notice: notice.clone(),
                    };
                    let f = new_failure(p, &notice.account_id, key, rec, stage, &e, n);
                    rec.failures.push(f);
                    // Settled for this record: a later run of the event does not post it
                    // again; only a replay of the failure does.
                    rec.notified.push(mark);
                }
            }
            save_pending(p, key, rec).await?;
        }
    }
    Ok(())
}

/// Does what is left of the event; `Some(time)` when it must wait (an unknown send outcome).
async fn advance<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    rec: &mut Pending,
    recorded: &mut Vec<Failure>,
) -> Result<Option<u64>> {
    let raw = rec.raw.clone();
    let Ok(event) = envelope::parse(raw.as_bytes()) else {
        // A record of notices only (an account needing re-authorisation).
        notify_all(p, cfg, key, rec).await?;
        record_decided(p, cfg, key, rec, recorded).await?;
        retire_replayed(p, rec, &account_of(rec), recorded).await?;
        return Ok(None);
    };
    // Kept in the history first (once per message id, so a run resumed or retried records
    // nothing twice).
    if let (false, Some(entry)) = (rec.only_stage, Entry::from_event(&event, p.now_ms())) {
        let stored = keep_in_history(p, &entry);
        if stored.new_conversation && event.kind == EventKind::CustomerMessage {
            let notice = Notice::new(Topic::NewConversation, &event.account, &event.key)
                .about(
                    entry.conversation_id.as_str().into(),
                    event.content.from.as_deref(),
                )
                .quoting(Some(&quote(&event)));
            plan_notice(cfg.notify_targets.len(), rec, notice);
        }
    }
    let urls: Vec<String> = match (&rec.only_forward, rec.only_stage) {
        (Some(u), _) => vec![u.clone()],
        (None, true) => vec![],
        (None, false) => cfg.forward_urls.iter().map(|u| u.to_string()).collect(),
    };
    for url in urls {
        let decided = rec
            .failures
            .iter()
            .any(|f| matches!(&f.stage, Stage::Forward { url: u } if *u == url));
        if rec.forwarded.contains(&url) || decided {
            continue;
        }
        match forward(p, cfg, &event, &raw, &url).await {
            Ok(()) => rec.forwarded.push(url),
            Err((e, n)) => {
                let f = new_failure(p, &event.account, key, rec, Stage::Forward { url }, &e, n);
                rec.failures.push(f);
            }
        }
        save_pending(p, key, rec).await?;
    }
    if !rec.only_stage {
        match event.kind {
            EventKind::CustomerMessage if rec.reply.is_none() => {
                plan_reply(p, cfg, key, &event, rec).await?
            }
            EventKind::CustomerMessage => {}
            k if k.is_business_message() => note_echo(p, cfg, &event).await?,
            k => p.log(
                Level::Info,
                "event needs no reply",
                crate::json::object!({"event": event.name, "kind": k.as_str(), "account_id": event.account,
                       "conversation_id": event.content.conversation_id}),
            ),
        }
    }
    // The customer's answer first; people are told after it (a slow chat service never
    // delays a reply).
    let wait = match rec.reply.is_some() {
        true => execute_reply(p, cfg, key, &event, rec).await?,
        false => None,
    };
    record_decided(p, cfg, key, rec, recorded).await?;
    notify_all(p, cfg, key, rec).await?;
    record_decided(p, cfg, key, rec, recorded).await?;
    if wait.is_some() {
        return Ok(wait);
    }
    retire_replayed(p, rec, &event.account, recorded).await?;
    Ok(None)
}

/// A replay that finished (now, or later through the alarm) retires the failure it redid,
/// unless it recorded that same failure again. Done before the pending record goes, so a
/// second replay meanwhile still sees this one in progress.
async fn retire_replayed<P: Platform>(
    p: &P,
    rec: &Pending,
    account: &str,
    recorded: &[Failure],
) -> Result<()> {
    if let Some(id) = &rec.replay_of {
        if !recorded.iter().any(|f| f.id == *id) {
            p.delete(Bucket::State, &failure_key(account, id)).await?;
        }
    }
    Ok(())
}

/// What a notification quotes of a customer message: its text, else its kind.
fn quote(event: &Event) -> String {
    match event.content.text_body() {
        Some(t) => t.to_string(),
        None => format!(
            "({})",
            event
                .content
                .kind
                .as_deref()
                .unwrap_or("message")
                .to_ascii_lowercase()
        ),
    }
}

fn new_failure<P: crate::ports::Clock>(
    p: &P,
    account: &str,
    key: &str,
    rec: &Pending,
    stage: Stage,
    e: &Error,
    attempts: u32,
) -> Failure {
    let event_key = rec.event_key.clone().unwrap_or_else(|| key.to_string());
    Failure {
        id: failure_id(account, &event_key, &stage),
        account_id: account.to_string(),
        event_key,
        stage,
        code: e.code().to_string(),
        message: e.to_string(),
        attempts,
        failed_at: p.now_secs(),
        replays: rec.replays,
        event: rec.raw.clone(),
    }
}

/// The business's own message (our API send's echo, a person typing in the TikTok app, or
/// TikTok's automation): counted against the reply window once (by message id, whichever of
/// the echo and the send's answer comes first), never answered.
async fn note_echo<P: Platform + Local>(p: &P, cfg: &Config, event: &Event) -> Result<()> {
    if let Some(conv) = &event.content.conversation_id {
        let mut c = load_conv(p, conv).await?;
        c.record_sent(event.content.message_id.as_deref());
        // A person answered from the TikTok app or web: the bot steps aside for a while.
        if event.kind == EventKind::StaffReply {
            let until = p.now_secs() + cfg.handoff_pause_secs;
            c.pause(Some(until), "staff_reply");
            p.log(
                Level::Info,
                "auto-replies paused: a person answered",
                crate::json::object!({"account_id": event.account, "conversation_id": conv, "until": until}),
            );
        }
        p.local_put(&conv_key(conv), &to_json(&c)?).await?;
    }
    p.log(
        Level::Info,
        "business message noted",
        crate::json::object!({"account_id": event.account, "kind": event.kind.as_str(),
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
    conv: &mut ConversationState,
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
        Ok(page) => {
            conv.customer_name = page.customer_name().map(str::to_string);
            if let Some(name) = &conv.customer_name {
                if let Err(e) = history::set_customer_name(p, conv_id, name) {
                    p.log(
                        Level::Warn,
                        "customer name not kept in the history",
                        crate::json::object!({"account_id": event.account, "conversation_id": conv_id, "code": e.code()}),
                    );
                }
            }
        }
        Err(e) => p.log(
            Level::Warn,
            "customer name lookup failed; greeting without it",
            crate::json::object!({"account_id": event.account, "conversation_id": conv_id, "code": e.code()}),
        ),
    }
    conv.customer_name.clone()
}

/// A conversation's auto-reply pause (`paused_until`, `paused_by`), after `change` when given:
/// `Some(Some(t))` pauses until `t` by hand, `Some(None)` resumes. An expired pause reads as
/// none.
pub async fn handoff<P: Local + crate::ports::Clock>(
    p: &P,
    conversation: &str,
    change: Option<Option<u64>>,
) -> Result<(Option<u64>, Option<String>)> {
    let mut c = load_conv(p, conversation).await?;
    if let Some(until) = change {
        // By hand the new time replaces whatever pause was set.
        c.pause(None, "manual");
        c.pause(until, "manual");
        p.local_put(&conv_key(conversation), &to_json(&c)?).await?;
    }
    Ok(match c.paused(p.now_secs()) {
        true => (c.paused_until, c.paused_by),
        false => (None, None),
    })
}

/// Decides the reply once: the inbound message is counted and the plan stored in one atomic
/// write, so a crash leaves both or neither. Typing and mark-read go out at once (best effort).
async fn plan_reply<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    event: &Event,
    rec: &mut Pending,
) -> Result<()> {
    let conv_id = event.content.conversation_id.clone().unwrap_or_default();
    let now = p.now_secs();
    let (rules, _) = load_rules(p, cfg, Some(&event.account)).await?;
    // The name may need a TikTok call: done first, so the conversation read below and the
    // atomic write that ends this step have no I/O in between (no echo can be lost).
    let mut named = load_conv(p, &conv_id).await?;
    let needed = engine::uses_display_name(&rules);
    let asks_tiktok = needed
        && named.customer_name.is_none()
        && event
            .content
            .from
            .as_deref()
            .is_none_or(|h| h.trim().is_empty());
    let name = customer_name(p, cfg, event, &mut named, needed).await;
    // Read again only after a TikTok call: the conversation may have changed meanwhile.
    let mut conv = match asks_tiktok {
        true => load_conv(p, &conv_id).await?,
        false => named.clone(),
    };
    conv.customer_name = named.customer_name;
    conv.record_inbound(now);
    let zone = Zone::parse(&rules.timezone).unwrap_or(Zone::Fixed(0));
    let local = p.local_time(&zone, now).unwrap_or_else(|| {
        p.log(
            Level::Warn,
            "time zone unknown to the runtime; using UTC",
            crate::json::object!({"timezone": rules.timezone}),
        );
        crate::time::LocalTime::at_offset(now, 0)
    });
    let inbound = engine::Inbound {
        text: event.content.text_body(),
        button_id: event.content.button_id(),
        message_id: event.content.message_id.as_deref(),
    };
    let was_paused = conv.paused(now);
    let plan = engine::decide(&rules, &conv, inbound, name.as_deref(), local, now);
    // People are told when a customer asks for them or writes while they are in charge; the
    // notice is planned with the reply, in the same write.
    let topic = match (plan.pause, was_paused) {
        (true, _) => Some(Topic::HandoffRequested),
        (false, true) => Some(Topic::WhilePaused),
        (false, false) => None,
    };
    if let Some(topic) = topic {
        let notice = Notice::new(topic, &event.account, &event.key)
            .about(Some(&conv_id), event.content.from.as_deref())
            .quoting(Some(&quote(event)));
        plan_notice(cfg.notify_targets.len(), rec, notice);
    }
    if plan.pause {
        conv.pause(Some(now + cfg.handoff_pause_secs), "handoff_request");
        p.log(
            Level::Info,
            "auto-replies paused: the customer asked for a person",
            crate::json::object!({"account_id": event.account, "conversation_id": conv_id,
                   "until": now + cfg.handoff_pause_secs}),
        );
    }
    // Each message sent has a line of its own ("reply sent"); the decision has one when nothing
    // is sent, or at debug level.
    let level = match plan.messages.is_empty() {
        true => Level::Info,
        false => Level::Debug,
    };
    p.log(
        level,
        "auto-reply decided",
        crate::json::object!({"account_id": event.account, "conversation_id": conv_id, "messages": plan.messages.len(),
               "rules": plan.messages.iter().map(|m| &m.0).collect::<Vec<_>>(), "held_back": plan.held_back}),
    );
    rec.reply = Some(Progress {
        conversation_id: conv_id.clone(),
        messages: plan.messages.clone(),
        done: 0,
        inflight: None,
        sent_ids: vec![],
    });
    p.local_put_all(vec![
        (conv_key(&conv_id), to_json(&conv)?),
        (pending_key(key), to_json(rec)?),
    ])
    .await?;
    let client = Client::for_config(p, cfg);
    let actions = [
        (plan.mark_read, SenderAction::MarkRead),
        (plan.typing, SenderAction::Typing),
    ];
    for (_, action) in actions.iter().filter(|(on, _)| *on) {
        let msg = Outgoing::Action { action: *action };
        if let Outcome::NotSent(e, _) | Outcome::Unknown(e, _) =
            delivery::deliver(p, &client, &event.account, &conv_id, &msg, Retry::Never).await
        {
            p.log(
                Level::Warn,
                "sender action failed",
                crate::json::object!({"account_id": event.account, "conversation_id": conv_id, "code": e.code()}),
            );
        }
    }
    Ok(())
}

/// Counts a sent message and moves the plan on, in one atomic write.
async fn mark_sent<P: Platform + Local>(
    p: &P,
    key: &str,
    account: &str,
    rec: &mut Pending,
    prog: &mut Progress,
    message_id: Option<String>,
    how: &str,
) -> Result<()> {
    let (rule, msg) = prog.messages[prog.done].clone();
    // Into the history before the step is written: should that write fail, the retry finds
    // the message at TikTok and records it again, as one row. Its time is when the send
    // started (a customer message TikTok took after that comes after it), not when its answer
    // was read.
    let sent_at = prog
        .inflight
        .as_ref()
        .map_or_else(|| p.now_ms(), |i| i.at_ms);
    let sent = Entry::sent(
        &prog.conversation_id,
        message_id.clone(),
        &msg,
        Source::AutoReply,
        Some(&rule),
        sent_at,
    );
    if let Some(entry) = sent {
        keep_in_history(p, &entry);
    }
    let mut conv = load_conv(p, &prog.conversation_id).await?;
    conv.record_sent(message_id.as_deref());
    conv.last_auto_reply_at = Some(p.now_secs());
    prog.done += 1;
    prog.inflight = None;
    prog.sent_ids.extend(message_id.clone());
    rec.reply = Some(prog.clone());
    p.local_put_all(vec![
        (conv_key(&prog.conversation_id), to_json(&conv)?),
        (pending_key(key), to_json(rec)?),
    ])
    .await?;
    p.log(
        Level::Info,
        "reply sent",
        crate::json::object!({"account_id": account, "conversation_id": prog.conversation_id, "rule": rule,
               "type": msg.kind(), "message_id": message_id, "how": how}),
    );
    Ok(())
}

/// Sends the planned messages not yet sent, in order. Returns a time to come back when a
/// send's outcome is unknown (it is then looked for at TikTok before anything else is sent).
async fn execute_reply<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    key: &str,
    event: &Event,
    rec: &mut Pending,
) -> Result<Option<u64>> {
    let Some(mut prog) = rec.reply.clone() else {
        return Ok(None);
    };
    let client = Client::for_config(p, cfg);
    let account = event.account.clone();
    let mut unsaved = false;
    while prog.done < prog.messages.len() {
        let msg = prog.messages[prog.done].1.clone();
        let mut tries = 0;
        if let Some(inf) = prog.inflight.clone() {
            let conv_id = prog.conversation_id.clone();
            let found = delivery::find_sent(
                p,
                &client,
                &account,
                &conv_id,
                &msg,
                inf.at_ms,
                &prog.sent_ids,
            )
            .await?;
            if let Found::Sent(id) = found {
                mark_sent(p, key, &account, rec, &mut prog, Some(id), "reconciled").await?;
                continue;
            }
            // Waited for from the unclear answer, or (the run died first) from the latest the
            // send could still have been going on.
            let settled =
                inf.answered_ms.unwrap_or(inf.at_ms + worst_send_ms(cfg)) + RECONCILE_AFTER_MS;
            if p.now_ms() < settled {
                return Ok(Some(settled));
            }
            if found == Found::Unsure || inf.tries >= MAX_UNKNOWN_TRIES {
                let e = Error::Upstream {
                    endpoint: "/business/message/send/",
                    failure: crate::error::UpstreamFailure::Timeout,
                    request_id: None,
                };
                fail_rest(
                    p,
                    key,
                    event,
                    rec,
                    &mut prog,
                    &e,
                    inf.tries,
                    Some(inf.at_ms),
                )
                .await?;
                break;
            }
            // Not at TikTok after the wait: it was not sent; send it again.
            tries = inf.tries;
        }
        let conv = load_conv(p, &prog.conversation_id).await?;
        // A person took over since the plan (a staff reply, a pause by hand): the rest of it
        // is not sent. The handoff answer itself is what asked for the pause.
        if conv.paused(p.now_secs()) && prog.messages[prog.done].0 != "handoff" {
            p.log(
                Level::Info,
                "auto-replies paused; the rest of the reply is not sent",
                crate::json::object!({"account_id": account, "conversation_id": prog.conversation_id,
                       "unsent": prog.messages.len() - prog.done}),
            );
            prog.done = prog.messages.len();
            prog.inflight = None;
            unsaved = true;
            break;
        }
        if conv.budget(p.now_secs()) == 0 {
            p.log(
                Level::Warn,
                "reply window exhausted; not sending",
                crate::json::object!({"account_id": account, "conversation_id": prog.conversation_id}),
            );
            prog.done = prog.messages.len();
            prog.inflight = None;
            unsaved = true;
            break;
        }
        prog.inflight = Some(Inflight {
            at_ms: p.now_ms(),
            tries: tries + 1,
            answered_ms: None,
        });
        rec.reply = Some(prog.clone());
        save_pending(p, key, rec).await?;
        let conv_id = prog.conversation_id.clone();
        match delivery::deliver(p, &client, &account, &conv_id, &msg, Retry::AllTransient).await {
            Outcome::Sent(s) => {
                mark_sent(p, key, &account, rec, &mut prog, s.message_id, "sent").await?
            }
            Outcome::NotSent(e, n) => {
                fail_rest(p, key, event, rec, &mut prog, &e, n, None).await?;
                break;
            }
            Outcome::Unknown(e, _) => {
                p.log(
                    Level::Warn,
                    "send outcome unknown; looked for at TikTok before anything is sent again",
                    crate::json::object!({"account_id": account, "conversation_id": conv_id, "code": e.code()}),
                );
                let now = p.now_ms();
                if let Some(inf) = prog.inflight.as_mut() {
                    inf.answered_ms = Some(now);
                }
                rec.reply = Some(prog.clone());
                save_pending(p, key, rec).await?;
                return Ok(Some(now + RECONCILE_AFTER_MS));
            }
        }
    }
    rec.reply = Some(prog);
    // Each message sent or failed was written with its step; only a plan cut short is not.
    if unsaved {
        save_pending(p, key, rec).await?;
    }
    Ok(None)
}

/// Records the messages not sent (from the current one) as one failure to replay.
#[allow(clippy::too_many_arguments)]
async fn fail_rest<P: Platform + Local>(
    p: &P,
    key: &str,
    event: &Event,
    rec: &mut Pending,
    prog: &mut Progress,
    e: &Error,
    attempts: u32,
    unknown_since_ms: Option<u64>,
) -> Result<()> {
    let stage = prog.rest(unknown_since_ms);
    let f = new_failure(p, &event.account, key, rec, stage, e, attempts);
    rec.failures.push(f);
    prog.done = prog.messages.len();
    prog.inflight = None;
    rec.reply = Some(prog.clone());
    save_pending(p, key, rec).await
}

// ---------- housekeeping and replay ----------

/// The alarm's work: process pending events that are due (a job that never ran, a retry, a
/// reconciliation, a run cut off by a restart), forget old message ids and idle conversations.
/// Returns when the alarm should come back for what is still pending.
///
/// `forget_old`: also forget message ids past their retention and idle conversations (two
/// listings of up to 1,000 entries: the housekeeping, which the caller runs about hourly, not
/// on every wake-up for a pending event).
pub async fn sweep<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    forget_old: bool,
) -> Result<Option<u64>> {
    let now = p.now_ms();
    let mut next: Option<u64> = None;
    let mut soonest = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
    let pending = p.local_list(PENDING, SWEEP_PAGE).await?;
    if pending.len() == SWEEP_PAGE {
        // More than one page is pending: come back at once for the rest.
        soonest(now + 1_000);
    }
    for (k, v) in pending {
        let key = &k[PENDING.len()..];
        let Ok(rec) = crate::json::from_str::<Pending>(&v) else {
            p.log(
                Level::Error,
                "unreadable pending record kept for inspection",
                crate::json::object!({"key": key}),
            );
            continue;
        };
        let due_at = due_at(&rec, now);
        if due_at > now {
            soonest(due_at);
            continue;
        }
        if rec.started_at.is_none() && rec.not_before.is_none() {
            p.log(
                Level::Warn,
                "processing an accepted event whose job never ran",
                crate::json::object!({"key": key}),
            );
        }
        if let Some(t) = process(p, cfg, key).await?.retry_at {
            soonest(t);
        }
    }
    if !forget_old {
        return Ok(next);
    }
    let cutoff = now.saturating_sub(cfg.event_retention_secs * 1000);
    for (k, v) in p.local_list(SEEN, 1000).await? {
        if v.parse::<u64>().unwrap_or(0) < cutoff {
            p.local_delete(&k).await?;
        }
    }
    let history_cutoff = now.saturating_sub(cfg.history_retention_days * 86_400_000);
    let forgotten = history::forget_before(p, history_cutoff)?;
    if forgotten > 0 {
        p.log(
            Level::Info,
            "old conversation history deleted",
            crate::json::object!({"messages": forgotten, "retention_days": cfg.history_retention_days}),
        );
    }
    let idle_before = p.now_secs().saturating_sub(CONVERSATION_RETENTION_SECS);
    for (k, v) in p.local_list(CONV, 1000).await? {
        let c: ConversationState = crate::json::from_str(&v).unwrap_or_default();
        if c.last_activity() < idle_before {
            p.local_delete(&k).await?;
        }
    }
    Ok(next)
}

/// Replays a recorded failure: exactly its stage (the stored messages, or that forward), once
/// even when replays race (a second one while the first runs is refused). On success the
/// record is removed.
pub async fn replay<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    account: &str,
    id: &str,
) -> Result<(Value, Option<u64>)> {
    let fkey = failure_key(account, id);
    let raw = p
        .get(Bucket::State, &fkey)
        .await?
        .ok_or_else(|| Error::Missing {
            what: format!("failure {id}"),
        })?;
    let f: Failure = crate::json::from_str(&raw)
        .map_err(|_| Error::Storage("failure record unreadable".into()))?;
    let key = format!("replay:{id}");
    if p.local_get(&pending_key(&key)).await?.is_some() {
        return Err(Error::Conflict(
            "a replay of this failure is already in progress".into(),
        ));
    }
    let mut rec = Pending {
        raw: f.event.clone(),
        accepted_at: p.now_ms(),
        event_key: Some(f.event_key.clone()),
        replays: f.replays + 1,
        replay_of: Some(id.to_string()),
        only_stage: true,
        ..Pending::default()
    };
    match &f.stage {
        Stage::Reply {
            conversation_id,
            messages,
            texts,
            unknown_since_ms,
        } => {
            rec.reply = Some(Progress {
                conversation_id: conversation_id.clone(),
                messages: messages
                    .iter()
                    .cloned()
                    .chain(texts.iter().map(Outgoing::text))
                    .map(|m| ("replay".to_string(), m))
                    .collect(),
                done: 0,
                inflight: unknown_since_ms.map(|at| Inflight {
                    at_ms: at,
                    tries: 0,
                    answered_ms: Some(at),
                }),
                sent_ids: vec![],
            })
        }
        Stage::Forward { url } => rec.only_forward = Some(url.clone()),
        Stage::Notify { target, notice } => {
            if !cfg.notify_targets.iter().any(|t| t.tag == *target) {
                return Err(Error::Conflict(format!(
                    "notification target {target} is no longer in NOTIFY_URLS"
                )));
            }
            rec.only_notify = Some(target.clone());
            rec.notices = vec![notice.clone()];
        }
        Stage::Interrupted => rec.only_stage = false,
    }
    // Claimed: the check above and this write have no other I/O in between.
    save_pending(p, &key, &rec).await?;
    let done = process(p, cfg, &key).await?;
    if let Some(at) = done.retry_at {
        let v = crate::json::object!({"id": id, "replayed": false, "pending": true,
            "reason": "a send's outcome is unknown; it is looked for at TikTok before anything is sent again"});
        return Ok((v, Some(at)));
    }
    Ok(match done.failures.first() {
        None => (crate::json::object!({"id": id, "replayed": true}), None),
        Some(n) => (
            crate::json::object!({"id": id, "replayed": false, "failure_id": n.id,
                   "error": {"code": n.code, "message": n.message}}),
            None,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Clock;
    use serde_json::json;

    fn fake() -> crate::testutil::Fake {
        let mut f = crate::testutil::Fake::new(1_720_000_000);
        f.cfg = Some(crate::testutil::fixtures::config());
        f
    }

    #[test]
    fn message_ids_are_remembered_for_the_retention_then_forgotten() {
        let f = fake();
        let cfg = f.cfg.clone().unwrap();
        let b = |k: &str| crate::testutil::block_on(accept(&f, k, "{}")).unwrap();
        assert!(b("m:1"));
        assert!(!b("m:1"), "duplicate");
        crate::testutil::block_on(process(&f, &cfg, "m:1")).unwrap();
        f.advance(cfg.event_retention_secs + 1);
        crate::testutil::block_on(sweep(&f, &cfg, false)).unwrap();
        assert!(!b("m:1"), "a wake-up for pending events forgets nothing");
        crate::testutil::block_on(sweep(&f, &cfg, true)).unwrap();
        assert!(
            b("m:1"),
            "forgotten by the housekeeping after the retention"
        );
    }

    #[test]
    fn a_pause_set_after_the_plan_stops_the_rest_of_it_but_not_a_handoff_answer() {
        let f = fake();
        let cfg = f.cfg.clone().unwrap();
        let raw = json!({"event": "im_receive_msg", "user_openid": "biz", "content":
            json!({"conversation_id": "c", "message_id": "m1", "type": "text",
                   "text": {"body": "hi"}}).to_string()})
        .to_string();
        let plan = |first: &str| Progress {
            conversation_id: "c".into(),
            messages: vec![
                (first.to_string(), Outgoing::text("one")),
                ("p".into(), Outgoing::text("two")),
            ],
            done: 0,
            inflight: None,
            sent_ids: vec![],
        };
        let acct = crate::accounts::vault::Account::from_grant(
            "biz",
            &crate::testutil::fixtures::grant("act.x", "rft.x", 86_400, 999_999),
            f.now_secs(),
            &cfg.keyring,
            &f,
        );
        crate::testutil::block_on(crate::accounts::vault::Vault::new(&f, &cfg.keyring).put(&acct))
            .unwrap();
        let mut conv = ConversationState::default();
        conv.record_inbound(f.now_secs());
        conv.pause(Some(f.now_secs() + 600), "staff_reply");
        f.local_set("conv:c", &serde_json::to_string(&conv).unwrap());
        for (key, first, sent) in [("m:p1", "welcome", 0), ("m:p2", "handoff", 1)] {
            let rec = Pending {
                raw: raw.clone(),
                accepted_at: f.now_ms(),
                started_at: Some(f.now_ms()),
                reply: Some(plan(first)),
                ..Pending::default()
            };
            f.local_set(
                &format!("pending:{key}"),
                &serde_json::to_string(&rec).unwrap(),
            );
            if sent > 0 {
                f.answer(crate::http::Response::json(
                    200,
                    &json!({"code": 0, "message": "OK", "request_id": "r",
                            "data": {"message": {"message_id": "out-1"}}}),
                ));
            }
            let before = f.sent().len();
            crate::testutil::block_on(process(&f, &cfg, key)).unwrap();
            assert_eq!(
                f.sent().len() - before,
                sent,
                "{first}: only a handoff answer goes"
            );
            assert!(
                f.local_raw(&format!("pending:{key}")).is_none(),
                "{first}: done"
            );
        }
    }

    #[test]
    fn people_are_told_once_of_a_new_conversation_and_of_a_message_while_paused() {
        use crate::testutil::block_on;
        let mut f = fake();
        let mut cfg = f.cfg.clone().unwrap();
        cfg.notify_targets = notify::parse_targets(
            "slack:http://n.test/slack,telegram:http://n.test/bot1:x/sendMessage?chat_id=42",
        )
        .unwrap();
        f.cfg = Some(cfg.clone());
        let event = |id: &str, text: &str| {
            json!({"event": "im_receive_msg", "user_openid": "biz", "content":
                json!({"conversation_id": "c", "message_id": id, "type": "text", "from": "maria",
                       "text": {"body": text},
                       "from_user": {"id": "u", "role": "personal_account"}}).to_string()})
            .to_string()
        };
        let ok = || crate::http::Response::json(200, &json!({"ok": true}));
        let run = |key: &str, raw: &str| {
            assert!(block_on(accept(&f, key, raw)).unwrap());
            block_on(process(&f, &cfg, key)).unwrap()
        };
        // A first message: both targets hear of the new conversation, each in its format.
        f.answer(ok());
        f.answer(ok());
        run("m:1", &event("1", "hi"));
        let sent = f.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].url, "http://n.test/slack");
        let slack: Value = serde_json::from_slice(sent[0].body.as_ref().unwrap()).unwrap();
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .starts_with("New TikTok conversation: @maria wrote: “hi”"),
            "{slack}"
        );
        let tg: Value = serde_json::from_slice(sent[1].body.as_ref().unwrap()).unwrap();
        assert_eq!(tg["chat_id"], "42");
        assert_eq!(sent[1].url, "http://n.test/bot1:x/sendMessage");
        // A second message of the same conversation tells nobody.
        run("m:2", &event("2", "anyone?"));
        assert_eq!(f.sent().len(), 2);
        // Paused by hand: the next message is told; Slack keeps refusing, Telegram takes it.
        block_on(handoff(&f, "c", Some(Some(f.now_secs() + 600)))).unwrap();
        for _ in 0..crate::tiktok::retry::ATTEMPTS {
            f.answer(crate::http::Response::json(503, &json!({})));
        }
        f.answer(ok());
        let done = run("m:3", &event("3", "still there?"));
        let sent = f.sent();
        assert_eq!(sent.len(), 2 + crate::tiktok::retry::ATTEMPTS as usize + 1);
        let last: Value =
            serde_json::from_slice(sent.last().unwrap().body.as_ref().unwrap()).unwrap();
        assert!(last["text"]
            .as_str()
            .unwrap()
            .contains("while auto-replies are paused"));
        assert_eq!(
            done.failures.len(),
            1,
            "Slack's refusal is a failure to replay"
        );
        let failure = &done.failures[0];
        assert!(
            matches!(&failure.stage, Stage::Notify { target, .. } if target.starts_with("slack-"))
        );
        let stored = f
            .raw(Bucket::State, &failure_key("biz", &failure.id))
            .unwrap();
        assert!(!stored.contains("n.test"), "no URL in the record: {stored}");
        // The replay goes to Slack only, and retires the failure.
        f.answer(ok());
        let (result, _) = block_on(replay(&f, &cfg, "biz", &failure.id)).unwrap();
        assert_eq!(result["replayed"], true, "{result}");
        assert_eq!(f.sent().last().unwrap().url, "http://n.test/slack");
        assert_eq!(
            f.sent().len(),
            2 + crate::tiktok::retry::ATTEMPTS as usize + 2
        );
        assert!(f
            .raw(Bucket::State, &failure_key("biz", &failure.id))
            .is_none());
    }

    #[test]
    fn a_notice_a_target_refused_is_not_posted_again_by_a_later_run() {
        use crate::testutil::block_on;
        let mut f = fake();
        let mut cfg = f.cfg.clone().unwrap();
        cfg.notify_targets = notify::parse_targets("slack:http://n.test/s").unwrap();
        f.cfg = Some(cfg.clone());
        let mut rec = Pending {
            notices: vec![Notice::new(Topic::WhilePaused, "biz", "m:1")],
            ..Pending::default()
        };
        for _ in 0..crate::tiktok::retry::ATTEMPTS {
            f.answer(crate::http::Response::json(503, &json!({})));
        }
        block_on(notify_all(&f, &cfg, "m:1", &mut rec)).unwrap();
        assert_eq!(rec.failures.len(), 1);
        let mut recorded = vec![];
        block_on(record_decided(&f, &cfg, "m:1", &mut rec, &mut recorded)).unwrap();
        // The event runs again (a reply waiting on TikTok): nothing is posted twice.
        let before = f.sent().len();
        block_on(notify_all(&f, &cfg, "m:1", &mut rec)).unwrap();
        assert_eq!(f.sent().len(), before);
        assert!(rec.failures.is_empty());
    }

    #[test]
    fn failure_ids_are_stable_and_distinct_per_stage() {
        let r = Stage::Reply {
            conversation_id: "c".into(),
            messages: vec![Outgoing::text("a")],
            texts: vec![],
            unknown_since_ms: None,
        };
        let f = Stage::Forward {
            url: "https://x".into(),
        };
        assert_eq!(failure_id("a", "m:1", &r), failure_id("a", "m:1", &r));
        assert_ne!(failure_id("a", "m:1", &r), failure_id("a", "m:1", &f));
        assert_eq!(failure_id("a", "m:1", &r).len(), 24);
    }

    #[test]
    fn retry_delays_grow_to_a_cap() {
        assert_eq!(retry_delay_ms(1), 10_000);
        assert!(retry_delay_ms(3) > retry_delay_ms(2));
        assert_eq!(retry_delay_ms(40), 300_000);
    }

    #[test]
    fn a_run_cut_off_is_resumed_at_once_and_a_running_one_is_left_alone() {
        let f = fake();
        let cfg = f.cfg.clone().unwrap();
        crate::testutil::block_on(accept(&f, "m:9", "not an event")).unwrap();
        let mut rec: Pending = serde_json::from_str(&f.local_raw("pending:m:9").unwrap()).unwrap();
        rec.started_at = Some(f.now_ms());
        f.local_set("pending:m:9", &serde_json::to_string(&rec).unwrap());
        assert!(crate::ports::Local::claim_run(&f, "m:9"));
        crate::testutil::block_on(sweep(&f, &cfg, true)).unwrap();
        assert!(
            f.local_raw("pending:m:9").is_some(),
            "running now: not run twice"
        );
        crate::ports::Local::release_run(&f, "m:9");
        crate::testutil::block_on(sweep(&f, &cfg, true)).unwrap();
        assert!(f.local_raw("pending:m:9").is_none(), "resumed and finished");
    }
}
