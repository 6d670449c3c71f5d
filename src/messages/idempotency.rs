//! `Idempotency-Key` for `POST /v1/messages`: the first result of a key is kept for 24 h and
//! returned again for the same body; the same key with a different body is refused (422).
//!
//! Records live in the account actor's strongly consistent storage, so two concurrent requests
//! with one key cannot both send: the second sees the first in progress (409) or its result.

use crate::coordinator::protocol::{Begin, Settle, Stored};
use crate::error::{Error, Result};
use crate::ports::{Clock, Local};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// How long a single-use claim is kept: twice the longest an OAuth state lives, so a claim is
/// only forgotten once the state it guards can no longer be redeemed anyway.
pub const CLAIM_RETENTION_MS: u64 = 2 * crate::config::MAX_STATE_TTL_SECS * 1000;
/// A claim older than this belongs to a request that died. It is longer than the worst-case
/// send (token refresh, image fetch and upload, send, each within the TikTok deadline, with
/// bounded retries on TikTok's error codes), and what such a request may have sent is looked
/// for at TikTok before anything is sent again.
pub const IN_PROGRESS_STALE_MS: u64 = 5 * 60 * 1000;
const MAX_KEY: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub body_hash: String,
    pub created_at: u64,
    /// The final answer, once there is one.
    #[serde(default)]
    pub response: Option<Stored>,
    /// A request is working on this key since then (ms).
    #[serde(default)]
    pub claimed_at: Option<u64>,
    /// An attempt started then (ms) ended without knowing whether TikTok sent the message.
    #[serde(default)]
    pub unknown_since: Option<u64>,
    /// When that attempt's unclear answer came (ms): TikTok may list the message a little later.
    #[serde(default)]
    pub unknown_at: Option<u64>,
}

/// Checks a caller's key: printable ASCII, 1..=255 bytes.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY} printable ASCII characters"),
        ));
    }
    Ok(())
}

pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// Storage keys in the actor: every key this module writes comes from these helpers.
const IDEM: &str = "idem:";
const CLAIMED: &str = "claimed:";

fn storage_key(key_hash: &str) -> String {
    format!("{IDEM}{key_hash}")
}

fn claim_key(key: &str) -> String {
    format!("{CLAIMED}{key}")
}

async fn load<P: Local + Clock>(p: &P, key_hash: &str) -> Result<Option<Record>> {
    let now = p.now_ms();
    Ok(p.local_get(&storage_key(key_hash))
        .await?
        .and_then(|r| crate::json::from_str(&r).ok())
        .filter(|r: &Record| now < r.created_at + RETENTION_MS))
}

async fn save<P: Local>(p: &P, key_hash: &str, r: &Record) -> Result<()> {
    p.local_put(
        &storage_key(key_hash),
        &serde_json::to_string(r).unwrap_or_default(),
    )
    .await
}

/// Claims `key_hash` for a request whose body hashes to `body_hash`. The read and the write
/// have no other I/O in between: the actor's input gate makes the claim atomic.
pub async fn begin<P: Local + Clock>(p: &P, key_hash: &str, body_hash: &str) -> Result<Begin> {
    let now = p.now_ms();
    let Some(mut r) = load(p, key_hash).await? else {
        let rec = Record {
            body_hash: body_hash.into(),
            created_at: now,
            response: None,
            claimed_at: Some(now),
            unknown_since: None,
            unknown_at: None,
        };
        save(p, key_hash, &rec).await?;
        return Ok(Begin::New);
    };
    if r.body_hash != body_hash {
        return Err(Error::IdempotencyMismatch);
    }
    if let Some(response) = r.response {
        return Ok(Begin::Replay { response });
    }
    match r.claimed_at {
        Some(t) if now < t + IN_PROGRESS_STALE_MS => Err(Error::Conflict(
            "a request with this Idempotency-Key is still in progress; retry shortly".into(),
        )),
        // A claim that died, or an attempt of unknown outcome: what it may have sent is
        // looked for before anything is sent again.
        claimed => {
            let since = r.unknown_since.or(claimed).unwrap_or(r.created_at);
            // A request that died was over by its staleness at the latest.
            let settled = r
                .unknown_at
                .or(claimed.map(|t| t + IN_PROGRESS_STALE_MS))
                .unwrap_or(since);
            r.unknown_since = Some(since);
            r.unknown_at = Some(settled);
            r.claimed_at = Some(now);
            save(p, key_hash, &r).await?;
            Ok(Begin::Reconcile {
                since_ms: since,
                settled_ms: settled,
            })
        }
    }
}

/// Ends a claim as `response.settle` says.
pub async fn finish<P: Local + Clock>(
    p: &P,
    key_hash: &str,
    body_hash: &str,
    response: Stored,
) -> Result<()> {
    let now = p.now_ms();
    let mut r = load(p, key_hash).await?.unwrap_or(Record {
        body_hash: body_hash.into(),
        created_at: now,
        response: None,
        claimed_at: None,
        unknown_since: None,
        unknown_at: None,
    });
    match response.settle {
        Settle::Release => return p.local_delete(&storage_key(key_hash)).await,
        Settle::Keep => r.response = Some(response),
        Settle::Unknown => {
            r.unknown_since = r.claimed_at.or(Some(now));
            r.unknown_at = Some(now);
        }
        Settle::Unclaim => {}
    }
    r.claimed_at = None;
    save(p, key_hash, &r).await
}

/// Marks `key` used; `false` if it was used before. Strongly consistent in the actor's
/// storage (single-use OAuth states).
pub async fn claim_once<P: Local + Clock>(p: &P, key: &str) -> Result<bool> {
    let k = claim_key(key);
    if p.local_get(&k).await?.is_some() {
        return Ok(false);
    }
    p.local_put(&k, &p.now_ms().to_string()).await?;
    Ok(true)
}

/// Forgets records and claims older than their retention (the actor's alarm).
pub async fn sweep<P: Local + Clock>(p: &P) -> Result<()> {
    let now = p.now_ms();
    for (k, v) in p.local_list(IDEM, 1000).await? {
        let old = crate::json::from_str::<Record>(&v)
            .map(|r| now >= r.created_at + RETENTION_MS)
            .unwrap_or(true);
        if old {
            p.local_delete(&k).await?;
        }
    }
    for (k, v) in p.local_list(CLAIMED, 1000).await? {
        let old = v
            .parse::<u64>()
            .map(|at| now >= at + CLAIM_RETENTION_MS)
            .unwrap_or(true);
        if old {
            p.local_delete(&k).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{block_on, Fake};

    fn stored(s: u16) -> Stored {
        Stored {
            status: s,
            body: format!("{{\"s\":{s}}}"),
            settle: if s >= 500 || s == 429 {
                Settle::Release
            } else {
                Settle::Keep
            },
        }
    }

    #[test]
    fn same_body_replays_different_body_conflicts() {
        let f = Fake::new(1_000);
        assert_eq!(block_on(begin(&f, "k", "b1")).unwrap(), Begin::New);
        assert_eq!(
            block_on(begin(&f, "k", "b1")).unwrap_err().status(),
            409,
            "in progress"
        );
        block_on(finish(&f, "k", "b1", stored(200))).unwrap();
        assert_eq!(
            block_on(begin(&f, "k", "b1")).unwrap(),
            Begin::Replay {
                response: stored(200)
            }
        );
        let e = block_on(begin(&f, "k", "b2")).unwrap_err();
        assert_eq!((e.status(), e.code()), (422, "idempotency_key_reused"));
        f.advance(24 * 3600);
        assert_eq!(
            block_on(begin(&f, "k", "b2")).unwrap(),
            Begin::New,
            "expired after 24 h"
        );
    }

    #[test]
    fn released_keys_send_again_but_unknown_outcomes_are_reconciled() {
        let f = Fake::new(1_000);
        block_on(begin(&f, "k", "b")).unwrap();
        block_on(finish(&f, "k", "b", stored(429))).unwrap();
        assert_eq!(block_on(begin(&f, "k", "b")).unwrap(), Begin::New);
        let started = f.now_ms();
        let unknown = Stored {
            settle: Settle::Unknown,
            ..stored(504)
        };
        block_on(finish(&f, "k", "b", unknown)).unwrap();
        f.advance(5);
        assert_eq!(
            block_on(begin(&f, "k", "b")).unwrap(),
            Begin::Reconcile {
                since_ms: started,
                settled_ms: started
            }
        );
        assert_eq!(
            block_on(begin(&f, "k", "b")).unwrap_err().status(),
            409,
            "one reconciliation at a time"
        );
        let unclaim = Stored {
            settle: Settle::Unclaim,
            ..stored(409)
        };
        block_on(finish(&f, "k", "b", unclaim)).unwrap();
        assert_eq!(
            block_on(begin(&f, "k", "b")).unwrap(),
            Begin::Reconcile {
                since_ms: started,
                settled_ms: started
            },
            "the attempt's times are kept"
        );
        block_on(finish(&f, "k", "b", stored(200))).unwrap();
        assert!(matches!(
            block_on(begin(&f, "k", "b")).unwrap(),
            Begin::Replay { .. }
        ));
    }

    #[test]
    fn a_claim_whose_request_died_is_reconciled_not_resent() {
        let f = Fake::new(1_000);
        let started = f.now_ms();
        block_on(begin(&f, "k", "b")).unwrap();
        f.advance(60);
        assert!(
            block_on(begin(&f, "k", "b")).is_err(),
            "still within the worst case"
        );
        f.advance(300);
        assert_eq!(
            block_on(begin(&f, "k", "b")).unwrap(),
            Begin::Reconcile {
                since_ms: started,
                settled_ms: started + IN_PROGRESS_STALE_MS
            }
        );
    }

    #[test]
    fn claims_are_single_use_and_swept_only_after_their_state_expired() {
        let f = Fake::new(1_000);
        assert!(block_on(claim_once(&f, "s")).unwrap());
        assert!(!block_on(claim_once(&f, "s")).unwrap(), "single use");
        f.advance(crate::config::MAX_STATE_TTL_SECS);
        block_on(sweep(&f)).unwrap();
        assert!(
            !block_on(claim_once(&f, "s")).unwrap(),
            "kept while its state could still be redeemed"
        );
        f.advance(crate::config::MAX_STATE_TTL_SECS);
        block_on(sweep(&f)).unwrap();
        assert_eq!(
            block_on(f.local_get("claimed:s")).unwrap(),
            None,
            "forgotten"
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-42:send").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"x".repeat(256)).is_err());
    }
}
