//! `Idempotency-Key` for `POST /v1/messages`: the first result of a key is kept for 24 h and
//! returned again for the same body; the same key with a different body is refused (422).
//!
//! Records live in the account actor's strongly consistent storage, so two concurrent requests
//! with one key cannot both send: the second sees the first in progress (409) or its result.

use crate::error::{Error, Result};
use crate::ports::{Clock, Local};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// How long a single-use claim is kept: twice the longest an OAuth state lives, so a claim is
/// only forgotten once the state it guards can no longer be redeemed anyway.
pub const CLAIM_RETENTION_MS: u64 = 2 * crate::config::MAX_STATE_TTL_SECS * 1000;
/// An in-progress claim older than this is considered abandoned (its request died).
const IN_PROGRESS_STALE_MS: u64 = 60_000;
const MAX_KEY: usize = 255;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub body_hash: String,
    pub created_at: u64,
    /// `None` while the first request is still running.
    #[serde(default)]
    pub response: Option<Stored>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Begin {
    /// Go ahead; call [`finish`] with the result.
    New,
    /// Answered before: return this.
    Replay { response: Stored },
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

fn storage_key(key_hash: &str) -> String {
    format!("idem:{key_hash}")
}

/// Claims `key_hash` for a request whose body hashes to `body_hash`.
pub async fn begin<P: Local + Clock>(p: &P, key_hash: &str, body_hash: &str) -> Result<Begin> {
    let now = p.now_ms();
    let existing: Option<Record> = p
        .local_get(&storage_key(key_hash))
        .await?
        .and_then(|r| serde_json::from_str(&r).ok())
        .filter(|r: &Record| now < r.created_at + RETENTION_MS);
    if let Some(r) = existing {
        if r.body_hash != body_hash {
            return Err(Error::IdempotencyMismatch);
        }
        match r.response {
            Some(response) => return Ok(Begin::Replay { response }),
            None if now < r.created_at + IN_PROGRESS_STALE_MS => {
                return Err(Error::Conflict(
                    "a request with this Idempotency-Key is still in progress; retry shortly"
                        .into(),
                ))
            }
            None => {}
        }
    }
    let rec = Record {
        body_hash: body_hash.into(),
        created_at: now,
        response: None,
    };
    p.local_put(
        &storage_key(key_hash),
        &serde_json::to_string(&rec).unwrap_or_default(),
    )
    .await?;
    Ok(Begin::New)
}

/// Stores the result. Server-side failures release the key instead, so a retry can send.
pub async fn finish<P: Local + Clock>(
    p: &P,
    key_hash: &str,
    body_hash: &str,
    response: Stored,
) -> Result<()> {
    if response.status >= 500 || response.status == 429 || response.status == 409 {
        return p.local_delete(&storage_key(key_hash)).await;
    }
    let rec = Record {
        body_hash: body_hash.into(),
        created_at: p.now_ms(),
        response: Some(response),
    };
    p.local_put(
        &storage_key(key_hash),
        &serde_json::to_string(&rec).unwrap_or_default(),
    )
    .await
}

/// Marks `key` used; `false` if it was used before. Strongly consistent in the actor's
/// storage (single-use OAuth states).
pub async fn claim_once<P: Local + Clock>(p: &P, key: &str) -> Result<bool> {
    let k = format!("claimed:{key}");
    if p.local_get(&k).await?.is_some() {
        return Ok(false);
    }
    p.local_put(&k, &p.now_ms().to_string()).await?;
    Ok(true)
}

/// Forgets records and claims older than their retention (the actor's alarm).
pub async fn sweep<P: Local + Clock>(p: &P) -> Result<()> {
    let now = p.now_ms();
    for (k, v) in p.local_list("idem:", 1000).await? {
        let old = serde_json::from_str::<Record>(&v)
            .map(|r| now >= r.created_at + RETENTION_MS)
            .unwrap_or(true);
        if old {
            p.local_delete(&k).await?;
        }
    }
    for (k, v) in p.local_list("claimed:", 1000).await? {
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
    fn server_failures_release_the_key_and_abandoned_claims_expire() {
        let f = Fake::new(1_000);
        block_on(begin(&f, "k", "b")).unwrap();
        block_on(finish(&f, "k", "b", stored(502))).unwrap();
        assert_eq!(block_on(begin(&f, "k", "b")).unwrap(), Begin::New);
        f.advance(61);
        assert_eq!(
            block_on(begin(&f, "k", "b")).unwrap(),
            Begin::New,
            "abandoned claim"
        );
        block_on(finish(&f, "k", "b", stored(400))).unwrap();
        assert!(
            matches!(block_on(begin(&f, "k", "b")).unwrap(), Begin::Replay { .. }),
            "client errors are kept"
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
