//! The effects the core needs, as small traits. The edge implements them with Workers KV,
//! `fetch`, `Date.now` and `crypto.getRandomValues`; unit tests with in-memory fakes.
//!
//! Futures here are not `Send`: the Workers runtime is single-threaded and its JS-backed
//! futures are not `Send` either.
#![allow(async_fn_in_trait)]

use crate::coordinator::protocol::{Begin, Call, Reply, Stored};
use crate::error::{Error, Result};
use crate::http::{Outbound, Response};
use crate::secret::Secret;
use crate::time::{LocalTime, Zone};
use serde_json::Value;

/// Which KV namespace a key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `TOKENS`: the encrypted token vault, one record per connected account.
    Tokens,
    /// `STATE`: rules, failed events, cached image capabilities.
    State,
}

/// One page of keys from [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct KeyPage {
    pub keys: Vec<String>,
    /// Each key's listing metadata (see [`Store::put_listed`]), in the same order.
    pub metadata: Vec<Option<String>>,
    /// Set when more keys follow.
    pub cursor: Option<String>,
}

/// Most keys one [`Store::list`] call returns (Workers KV's own page size).
pub const MAX_PAGE: usize = 1000;

/// Key-value storage with optional expiry (Workers KV semantics: eventually consistent).
pub trait Store {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<String>>;
    /// `ttl_secs` below KV's minimum (60 s) is raised to it by the edge.
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        value: &str,
        ttl_secs: Option<u64>,
    ) -> Result<()>;
    /// Like `put`, with small metadata (≤ 1 KiB) returned by `list` without reading the value:
    /// listings page through thousands of records within the per-invocation operation limit.
    async fn put_listed(
        &self,
        bucket: Bucket,
        key: &str,
        value: &str,
        metadata: &str,
    ) -> Result<()>;
    async fn delete(&self, bucket: Bucket, key: &str) -> Result<()>;
    /// Up to `limit` (≤ [`MAX_PAGE`]) keys starting with `prefix`, in key order.
    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<KeyPage>;
}

/// Why an outbound request produced no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    Timeout,
    Unreachable(String),
    /// The response body exceeded [`Outbound::max_body`].
    TooLarge,
}

/// Sends one HTTP request (the runtime's `fetch`).
pub trait Transport {
    async fn send(&self, req: Outbound) -> std::result::Result<Response, TransportError>;
}

pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Waits (retry backoff).
    async fn sleep(&self, ms: u64);

    /// Wall-clock time in `zone`; named zones need the runtime's time zone data.
    fn local_time(&self, zone: &Zone, unix_secs: u64) -> Option<LocalTime> {
        match zone {
            Zone::Fixed(off) => Some(LocalTime::at_offset(unix_secs, *off)),
            Zone::Named(_) => None,
        }
    }

    /// Whether `name` is an IANA time zone the runtime knows.
    fn zone_known(&self, _name: &str) -> bool {
        false
    }
}

/// A value bound to, or read from, the actor's SQL database.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlValue {
    pub fn text(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// An integer column (SQLite hands whole numbers to JS as numbers).
    pub fn int(&self) -> Option<i64> {
        match self {
            SqlValue::Int(i) => Some(*i),
            SqlValue::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}

impl From<i64> for SqlValue {
    fn from(i: i64) -> Self {
        SqlValue::Int(i)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// The account actor's own storage: strongly consistent and private to one account.
pub trait Local {
    /// Runs one SQL statement on the actor's SQLite database (`ctx.storage.sql`), with `?`
    /// placeholders bound to `args`; the rows it returns, columns in order. Synchronous: the
    /// statements of one step run without other I/O in between.
    fn sql(&self, query: &str, args: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>>;
    /// Whether this instance has brought the SQL schema up to date (remembered in memory).
    fn schema_checked(&self) -> bool;
    fn set_schema_checked(&self);
    async fn local_get(&self, key: &str) -> Result<Option<String>>;
    async fn local_put(&self, key: &str, value: &str) -> Result<()>;
    async fn local_delete(&self, key: &str) -> Result<()>;
    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    async fn local_list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>>;
    /// Writes every entry or none (one atomic storage write).
    async fn local_put_all(&self, entries: Vec<(String, String)>) -> Result<()>;
    /// Marks `key` as being run by this instance (in memory); `false` if it already is.
    fn claim_run(&self, key: &str) -> bool;
    fn release_run(&self, key: &str);
    /// Drops what the actor remembers of a shared (KV) record, so that its next read goes to
    /// KV (the record changed elsewhere). Nothing to do where nothing is remembered.
    fn forget_cached(&self, _bucket: Bucket, _key: &str) {}
    /// Remembers a shared (KV) State record's new value (`None`: deleted) as just written
    /// elsewhere, so that a stale KV read cannot bring the old one back.
    fn remember_shared(&self, _key: &str, _value: Option<&str>) {}
}

/// Cryptographically secure randomness.
pub trait Rng {
    fn fill(&self, buf: &mut [u8]);

    /// `n` random bytes as lower-case hex.
    fn hex(&self, n: usize) -> String {
        let mut b = vec![0u8; n];
        self.fill(&mut b);
        hex::encode(b)
    }
}

/// A log line's severity, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Structured logging. Callers pass names, ids and counts only: never tokens or secrets.
pub trait Log {
    fn log(&self, level: Level, msg: &str, fields: Value);
}

/// Per-account coordination KV cannot give, implemented by the account's Durable Object: calls
/// for one account run one at a time, so at most one token refresh per account is in flight.
/// The edge sends a [`Call`] to the actor; the typed methods below build the call and read its
/// [`Reply`].
pub trait Accounts {
    /// Runs `call` in its actor (see `coordinator::serve`).
    async fn call(&self, call: Call) -> Result<Reply>;

    /// A valid access token, refreshed first when it expires within the configured margin, or
    /// when `rejected` (a token TikTok just refused) is still the current one.
    async fn access_token(&self, account: &str, rejected: Option<&str>) -> Result<Secret> {
        let call = Call::AccessToken {
            account: account.to_string(),
            rejected: rejected.map(str::to_string),
        };
        match self.call(call).await? {
            Reply::AccessToken { access_token, .. } => Ok(Secret::new(access_token)),
            _ => Err(unexpected()),
        }
    }

    /// Refreshes the token now if it expires within `window_secs` (the cron's look-ahead).
    async fn refresh_within(&self, account: &str, window_secs: u64) -> Result<()> {
        let account = account.to_string();
        self.call(Call::RefreshWithin {
            account,
            window_secs,
        })
        .await
        .map(drop)
    }

    /// Drops whatever the coordinator keeps for `account` (after a disconnect).
    async fn forget(&self, account: &str) -> Result<()> {
        let account = account.to_string();
        self.call(Call::Forget { account }).await.map(drop)
    }

    /// Records a verified delivery durably unless its key was seen before; `true` if new.
    async fn accept_event(&self, account: &str, key: &str, raw: &str) -> Result<bool> {
        let call = Call::AcceptEvent {
            account: account.to_string(),
            key: key.to_string(),
            raw: raw.to_string(),
        };
        fresh(self.call(call).await?)
    }

    /// Processes an accepted event (replies, forwarding); idempotent.
    async fn process_event(&self, account: &str, key: &str) -> Result<()> {
        let call = Call::ProcessEvent {
            account: account.to_string(),
            key: key.to_string(),
        };
        self.call(call).await.map(drop)
    }

    /// Retries a recorded failure; returns what happened.
    async fn replay_failure(&self, account: &str, failure_id: &str) -> Result<Value> {
        let call = Call::ReplayFailure {
            account: account.to_string(),
            failure_id: failure_id.to_string(),
        };
        match self.call(call).await? {
            Reply::Replayed { result } => Ok(result),
            _ => Err(unexpected()),
        }
    }

    /// Marks `key` used, strongly consistently; `false` if it was used before (single-use
    /// OAuth states, which KV alone cannot guarantee).
    async fn claim_once(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        fresh(self.call(Call::ClaimOnce { key }).await?)
    }

    /// Claims an idempotency key for a send (see `messages::idempotency`).
    async fn idempotency_begin(
        &self,
        account: &str,
        key_hash: &str,
        body_hash: &str,
    ) -> Result<Begin> {
        let call = Call::IdempotencyBegin {
            account: account.to_string(),
            key_hash: key_hash.to_string(),
            body_hash: body_hash.to_string(),
        };
        match self.call(call).await? {
            Reply::Begun { begin } => Ok(begin),
            _ => Err(unexpected()),
        }
    }

    /// Stores the claimed key's result.
    async fn idempotency_finish(
        &self,
        account: &str,
        key_hash: &str,
        body_hash: &str,
        response: Stored,
    ) -> Result<()> {
        let call = Call::IdempotencyFinish {
            account: account.to_string(),
            key_hash: key_hash.to_string(),
            body_hash: body_hash.to_string(),
            response,
        };
        self.call(call).await.map(drop)
    }
}

fn unexpected() -> Error {
    Error::Internal("account actor answer: unexpected reply".into())
}

fn fresh(reply: Reply) -> Result<bool> {
    match reply {
        Reply::Fresh { fresh } => Ok(fresh),
        _ => Err(unexpected()),
    }
}

/// Everything a handler may touch, bundled so handlers take one generic parameter.
pub trait Platform: Store + Transport + Clock + Rng + Log + Accounts {}
impl<T: Store + Transport + Clock + Rng + Log + Accounts> Platform for T {}
