//! The account actor's one entry point. The Worker sends a [`protocol::Call`]; the Durable
//! Object (`edge::actor`) and the native test fake both run it through [`serve`], so the
//! protocol is written once. The edge keeps only storage, the token lock and alarms, which it
//! schedules from the [`Wake`] that `serve` returns.

pub mod answer;
pub mod protocol;
mod wire;

use crate::accounts::vault;
use crate::config::Config;
use crate::error::Result;
use crate::inbox::history::{self, Entry, Source};
use crate::inbox::listing;
use crate::inbox::notify::{Notice, Topic};
use crate::messages::idempotency;
use crate::ports::Level;
use crate::ports::{Local, Platform};
use crate::tiktok::types::{Outgoing, SenderAction};
use crate::webhooks::pipeline;
use protocol::{Call, Reply};

/// When the actor's alarm must next look at its records, as a call leaves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Nothing new to look at.
    Unchanged,
    /// An event was just accepted: soon, whatever alarm was set before, so that the event is
    /// processed should the follow-up run ([`Served::then`]) be cut off.
    Soon,
    /// No later than this time (Unix milliseconds): a retry or reconciliation is due.
    By(u64),
    /// Some alarm must be set, so the stored record is swept once it expires.
    Housekeeping,
}

/// A call's reply, what it asks of the alarm, and the work the actor does right after
/// replying.
#[derive(Clone, PartialEq)]
pub struct Served {
    pub reply: Reply,
    pub wake: Wake,
    /// Run by the actor once the reply is on its way (an accepted event is processed there,
    /// with no second round trip from the Worker). Should it never run, the alarm does it.
    pub then: Option<Call>,
}

/// Most conversations or messages in one inbox page.
pub const MAX_PAGE: u64 = 200;

fn by(at: Option<u64>) -> Wake {
    at.map_or(Wake::Unchanged, Wake::By)
}

/// The actor's record of the last loss of grant people were told of.
const TOLD_REAUTH: &str = "told:reauth";

/// [`vault::ensure_fresh`], telling people (`NOTIFY_URLS`) when this very call found that the
/// account needs re-authorisation: once per loss of the grant, not on every call after.
async fn fresh_or_tell<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    account: &str,
    margin: u64,
    rejected: Option<&str>,
) -> Result<vault::Account> {
    let started = p.now_secs();
    let out = vault::ensure_fresh(p, cfg, account, margin, rejected).await;
    if out
        .as_ref()
        .is_err_and(|e| e.code() == "account_needs_reauth")
    {
        let meta = vault::Vault::new(p, &cfg.keyring).meta(account).await;
        if let Ok(Some(m)) = meta
            .as_ref()
            .map(|m| m.as_ref().filter(|m| m.updated_at >= started))
        {
            let id = format!("{account}:{}", m.updated_at);
            // Calls within the same second see the same mark: the first one tells.
            let told = p.local_get(TOLD_REAUTH).await?.is_some_and(|t| t == id);
            let notice = Notice::new(Topic::NeedsReauth, account, &id);
            let sent = match told {
                true => Ok(()),
                false => pipeline::notify_now(p, cfg, notice, (TOLD_REAUTH, &id)).await,
            };
            if let Err(e) = sent {
                p.log(
                    Level::Error,
                    "re-authorisation notice not sent; the alarm retries it",
                    crate::json::object!({"account_id": account, "code": e.code()}),
                );
            }
        }
    }
    out
}

/// Runs one call in the account's actor. Token calls must be serialised by the caller (see
/// [`Call::takes_token_lock`]).
pub async fn serve<P: Platform + Local>(p: &P, cfg: &Config, call: Call) -> Result<Served> {
    let mut then = None;
    let (reply, wake) = match call {
        Call::AccessToken { account, rejected } => {
            let margin = cfg.refresh_margin_secs;
            let a = fresh_or_tell(p, cfg, &account, margin, rejected.as_deref()).await?;
            let access_token = a.access_token.expose().to_string();
            let usable_until = a.meta.access_expires_at.saturating_sub(margin);
            let reply = Reply::AccessToken {
                access_token,
                usable_until,
            };
            (reply, Wake::Unchanged)
        }
        Call::RefreshWithin {
            account,
            window_secs,
        } => {
            fresh_or_tell(p, cfg, &account, window_secs, None).await?;
            (Reply::Done, Wake::Unchanged)
        }
        Call::Forget { account } => {
            p.local_delete(&vault::record_key(&account)).await?;
            p.local_delete(TOLD_REAUTH).await?;
            (Reply::Done, Wake::Unchanged)
        }
        Call::AcceptEvent { account, key, raw } => {
            let fresh = pipeline::accept(p, &key, &raw).await?;
            // A redelivery of an event still pending (an earlier answer failed after
            // accepting) runs it again too (a run in progress is not doubled: see
            // `pipeline::process`).
            let wake = if fresh || pipeline::is_pending(p, &key).await? {
                then = Some(Call::ProcessEvent { account, key });
                Wake::Soon
            } else {
                Wake::Unchanged
            };
            (Reply::Fresh { fresh }, wake)
        }
        Call::ProcessEvent { key, .. } => {
            let done = pipeline::process(p, cfg, &key).await?;
            (Reply::Done, by(done.retry_at))
        }
        Call::RulesChanged { key, value, .. } => {
            p.remember_shared(&key, value.as_deref());
            (Reply::Done, Wake::Unchanged)
        }
        Call::Handoff {
            conversation,
            set,
            until,
            ..
        } => {
            let (paused_until, paused_by) =
                pipeline::handoff(p, &conversation, set.then_some(until)).await?;
            let reply = Reply::Handoff {
                paused_until,
                paused_by,
            };
            // A conversation record written: some alarm must sweep it one day.
            let wake = match set {
                true => Wake::Housekeeping,
                false => Wake::Unchanged,
            };
            (reply, wake)
        }
        Call::Record {
            conversation,
            message_id,
            message,
            ..
        } => {
            let read = matches!(
                message,
                Outgoing::Action {
                    action: SenderAction::MarkRead
                }
            );
            if read {
                history::mark_read(p, &conversation)?;
            }
            let sent = Entry::sent(
                &conversation,
                message_id,
                &message,
                Source::Api,
                None,
                p.now_ms(),
            );
            if let Some(entry) = sent {
                history::record(p, &entry)?;
            }
            // History is stored: some alarm must run its retention one day.
            (Reply::Done, Wake::Housekeeping)
        }
        Call::Inbox {
            account,
            conversation,
            cursor,
            limit,
            oldest_first,
        } => {
            if let (Some(c), None) = (&conversation, &cursor) {
                crate::inbox::names::learn(p, cfg, &account, c).await?;
            }
            let now = p.now_ms();
            let limit = limit.clamp(1, MAX_PAGE) as usize;
            let pause = async |id: &str| pipeline::handoff(p, id, None).await;
            let page = match conversation {
                None => {
                    let page = listing::conversations_page(p, cursor.as_deref(), limit, now, pause)
                        .await?;
                    // Nothing stored: an account never connected is not found.
                    let empty = page["conversations"].as_array().is_none_or(Vec::is_empty);
                    let vault = vault::Vault::new(p, &cfg.keyring);
                    if empty && cursor.is_none() && vault.meta(&account).await?.is_none() {
                        return Err(crate::error::Error::Missing {
                            what: format!("account {account}"),
                        });
                    }
                    page
                }
                Some(c) => {
                    let cursor = cursor.as_deref();
                    listing::messages_page(p, &c, cursor, limit, oldest_first, now, pause).await?
                }
            };
            (Reply::Page { page }, Wake::Unchanged)
        }
        Call::ReplayFailure {
            account,
            failure_id,
        } => {
            let (result, retry_at) = pipeline::replay(p, cfg, &account, &failure_id).await?;
            (Reply::Replayed { result }, by(retry_at))
        }
        Call::ClaimOnce { key } => {
            let fresh = idempotency::claim_once(p, &key).await?;
            let wake = if fresh {
                Wake::Housekeeping
            } else {
                Wake::Unchanged
            };
            (Reply::Fresh { fresh }, wake)
        }
        Call::IdempotencyBegin {
            key_hash,
            body_hash,
            ..
        } => {
            let begin = idempotency::begin(p, &key_hash, &body_hash).await?;
            (Reply::Begun { begin }, Wake::Housekeeping)
        }
        Call::IdempotencyFinish {
            key_hash,
            body_hash,
            response,
            ..
        } => {
            idempotency::finish(p, &key_hash, &body_hash, response).await?;
            (Reply::Done, Wake::Unchanged)
        }
    };
    Ok(Served { reply, wake, then })
}
