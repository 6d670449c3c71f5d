//! The token vault and the refresh policy.
//!
//! One KV record per connected business account (`acct:<open_id>` in `TOKENS`). The record's
//! metadata (expiries, scopes, status) is plain so accounts can be listed without decrypting;
//! the two tokens are sealed together with AES-256-GCM, bound to the account id.
//!
//! [`ensure_fresh`] is the one place a refresh happens. It must only be called where calls for
//! one account are serialised (the account's Durable Object, see `edge::actor`), which is what
//! makes refreshes single-flight across requests and isolates.

use crate::config::Config;
use crate::crypto::{Keyring, Sealed};
use crate::error::{Error, Result};
use crate::ports::{Bucket, Clock, Rng, Store, Transport};
use crate::secret::Secret;
use crate::tiktok::codes::ApiCode;
use crate::tiktok::types::TokenGrant;
use crate::tiktok::{AppCredentials, Client};
use serde::{Deserialize, Serialize};

pub(crate) const PREFIX: &str = "acct:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// The refresh token is expired or revoked: only a new consent helps.
    NeedsReauth,
}

/// What the vault stores per account (tokens sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredAccount {
    pub v: u8,
    pub account_id: String,
    /// The business's TikTok profile (`/business/get/`), read when it is connected.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// TikTok's avatar URL; it carries its own expiry (`x-expires`).
    #[serde(default)]
    pub profile_image: Option<String>,
    pub scopes: Vec<String>,
    pub status: Status,
    /// Unix seconds.
    pub access_expires_at: u64,
    pub refresh_expires_at: u64,
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default)]
    pub refreshed_at: Option<u64>,
    sealed: Sealed,
}

/// The sealed part.
#[derive(Serialize, Deserialize)]
struct Tokens {
    a: String,
    r: String,
}

/// An account with its tokens in clear, in memory only. `Debug` hides the tokens.
#[derive(Debug, Clone)]
pub struct Account {
    pub meta: StoredAccount,
    pub access_token: Secret,
    pub refresh_token: Secret,
}

impl Account {
    /// A new record from a token grant.
    pub fn from_grant(
        account_id: &str,
        grant: &TokenGrant,
        now: u64,
        keyring: &Keyring,
        rng: &impl Rng,
    ) -> Self {
        let scopes = grant.scope.clone();
        let mut a = Account {
            meta: StoredAccount {
                v: 1,
                account_id: account_id.to_string(),
                display_name: None,
                username: None,
                profile_image: None,
                scopes,
                status: Status::Active,
                access_expires_at: now + grant.expires_in,
                refresh_expires_at: now + grant.refresh_token_expires_in,
                created_at: now,
                updated_at: now,
                refreshed_at: None,
                sealed: Sealed {
                    kid: String::new(),
                    nonce: String::new(),
                    ct: String::new(),
                },
            },
            access_token: grant.access_token.clone(),
            refresh_token: grant.refresh_token.clone(),
        };
        a.seal(keyring, rng);
        a
    }

    /// Applies a refresh grant: new access token and the rotated refresh token.
    pub fn apply_refresh(
        &mut self,
        grant: &TokenGrant,
        now: u64,
        keyring: &Keyring,
        rng: &impl Rng,
    ) {
        self.access_token = grant.access_token.clone();
        self.refresh_token = grant.refresh_token.clone();
        self.meta.access_expires_at = now + grant.expires_in;
        self.meta.refresh_expires_at = now + grant.refresh_token_expires_in;
        self.meta.status = Status::Active;
        self.meta.updated_at = now;
        self.meta.refreshed_at = Some(now);
        self.seal(keyring, rng);
    }

    fn seal(&mut self, keyring: &Keyring, rng: &impl Rng) {
        let plain = serde_json::to_vec(&Tokens {
            a: self.access_token.expose().to_string(),
            r: self.refresh_token.expose().to_string(),
        })
        .unwrap_or_default();
        self.meta.sealed = keyring.seal(rng, &plain, self.meta.account_id.as_bytes());
    }

    fn open(meta: StoredAccount, keyring: &Keyring) -> Result<Self> {
        let plain = keyring
            .open(&meta.sealed, meta.account_id.as_bytes())
            .map_err(|e| Error::Vault {
                account: meta.account_id.clone(),
                reason: e.to_string(),
            })?;
        let t: Tokens = crate::json::from_slice(&plain).map_err(|_| Error::Vault {
            account: meta.account_id.clone(),
            reason: "decrypted record is not a token pair".into(),
        })?;
        Ok(Account {
            meta,
            access_token: Secret::new(t.a),
            refresh_token: Secret::new(t.r),
        })
    }
}

/// When to refresh: the access token expires within `margin` seconds.
pub fn needs_refresh(meta: &StoredAccount, now: u64, margin: u64) -> bool {
    meta.access_expires_at <= now.saturating_add(margin)
}

/// Whether the refresh token can still be used.
pub fn can_refresh(meta: &StoredAccount, now: u64) -> bool {
    meta.status == Status::Active && meta.refresh_expires_at > now
}

/// The key of an account's record (in `TOKENS`, and in its actor's own storage).
pub fn record_key(account: &str) -> String {
    format!("{PREFIX}{account}")
}

/// Access to the vault records in the `TOKENS` namespace.
pub struct Vault<'a, S: Store> {
    store: &'a S,
    keyring: &'a Keyring,
}

impl<'a, S: Store> Vault<'a, S> {
    pub fn new(store: &'a S, keyring: &'a Keyring) -> Self {
        Vault { store, keyring }
    }

    fn key(account: &str) -> String {
        record_key(account)
    }

    /// The metadata only (no decryption).
    pub async fn meta(&self, account: &str) -> Result<Option<StoredAccount>> {
        let Some(raw) = self.store.get(Bucket::Tokens, &Self::key(account)).await? else {
            return Ok(None);
        };
        crate::json::from_str(&raw)
            .map(Some)
            .map_err(|_| Error::Vault {
                account: account.into(),
                reason: "record is not valid JSON".into(),
            })
    }

    pub async fn get(&self, account: &str) -> Result<Option<Account>> {
        match self.meta(account).await? {
            Some(m) => Account::open(m, self.keyring).map(Some),
            None => Ok(None),
        }
    }

    pub async fn put(&self, account: &Account) -> Result<()> {
        let raw =
            serde_json::to_string(&account.meta).map_err(|e| Error::Internal(e.to_string()))?;
        let listed = serde_json::to_string(&Listed::of(&account.meta))
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .put_listed(
                Bucket::Tokens,
                &Self::key(&account.meta.account_id),
                &raw,
                &listed,
            )
            .await
    }

    pub async fn delete(&self, account: &str) -> Result<()> {
        self.store.delete(Bucket::Tokens, &Self::key(account)).await
    }

    /// One page of accounts' metadata, in key order, and the cursor of the next page: one
    /// list and at most `limit` reads, whatever the number of accounts.
    pub async fn page(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<(Vec<StoredAccount>, Option<String>)> {
        let page = self
            .store
            .list(Bucket::Tokens, PREFIX, cursor, limit)
            .await?;
        let mut out = Vec::with_capacity(page.keys.len());
        for key in &page.keys {
            if let Some(m) = self.meta(&key[PREFIX.len()..]).await? {
                out.push(m);
            }
        }
        Ok((out, page.cursor))
    }
}

/// What the vault's listing carries per account (KV metadata): enough for the cron to pick
/// the accounts due for a refresh without reading every record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Listed {
    pub s: Status,
    /// Access and refresh token expiries (unix seconds).
    pub a: u64,
    pub r: u64,
}

impl Listed {
    pub(crate) fn of(m: &StoredAccount) -> Self {
        Listed {
            s: m.status,
            a: m.access_expires_at,
            r: m.refresh_expires_at,
        }
    }

    pub(crate) fn due(&self, now: u64, window: u64) -> bool {
        self.s == Status::Active && (self.a <= now.saturating_add(window) || self.r <= now)
    }
}

/// Returns the account with a valid access token, refreshing it first when it expires within
/// `margin` seconds or when `rejected` (a token TikTok just refused) is still the current one.
/// The rotated refresh token is always stored. A refresh token that TikTok rejects or that has
/// expired marks the account `needs_reauth`.
///
/// Callers must serialise calls per account (see the module docs).
pub async fn ensure_fresh<P: Store + Transport + Clock + Rng>(
    p: &P,
    cfg: &Config,
    account_id: &str,
    margin: u64,
    rejected: Option<&str>,
) -> Result<Account> {
    let vault = Vault::new(p, &cfg.keyring);
    let mut acct = vault.get(account_id).await?.ok_or_else(|| Error::Missing {
        what: format!("account {account_id}"),
    })?;
    let now = p.now_secs();
    let was_rejected = rejected.is_some_and(|r| r == acct.access_token.expose());
    if acct.meta.status == Status::NeedsReauth {
        return Err(Error::AccountNeedsReauth {
            account: account_id.into(),
        });
    }
    if !was_rejected && !needs_refresh(&acct.meta, now, margin) {
        return Ok(acct);
    }
    if !can_refresh(&acct.meta, now) {
        return Err(mark_reauth(&vault, acct, now).await);
    }
    let client = Client::for_config(p, cfg);
    let app = AppCredentials {
        client_key: &cfg.client_key,
        client_secret: &cfg.client_secret,
    };
    match client.refresh(app, acct.refresh_token.expose()).await {
        Ok(grant) => {
            acct.apply_refresh(&grant, p.now_secs(), &cfg.keyring, p);
            vault.put(&acct).await?;
            Ok(acct)
        }
        Err(e) if e.api_code().is_some_and(ApiCode::ends_grant) => {
            Err(mark_reauth(&vault, acct, now).await)
        }
        Err(e) => Err(e),
    }
}

async fn mark_reauth<S: Store>(vault: &Vault<'_, S>, mut acct: Account, now: u64) -> Error {
    acct.meta.status = Status::NeedsReauth;
    acct.meta.updated_at = now;
    let account = acct.meta.account_id.clone();
    match vault.put(&acct).await {
        Ok(()) => Error::AccountNeedsReauth { account },
        Err(e) => e,
    }
}

/// Default refresh margin: refresh when the access token has less than this left.
#[cfg_attr(not(test), allow(dead_code))] // the config default, checked by tests
pub const DEFAULT_MARGIN_SECS: u64 = 600;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixtures::grant;
    use crate::testutil::fixtures::CountingRng;
    use crate::testutil::{block_on, Fake};
    use serde_json::json;

    fn keyring(raw: &str) -> Keyring {
        Keyring::parse(raw).unwrap()
    }

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn record_round_trips_and_hides_tokens_at_rest() {
        let f = Fake::new(1_000);
        let k = keyring(K1);
        let a = Account::from_grant(
            "biz",
            &grant("act.AAA", "rft.BBB", 86400, 1000),
            1_000,
            &k,
            &CountingRng::default(),
        );
        block_on(Vault::new(&f, &k).put(&a)).unwrap();
        let raw = f.raw(Bucket::Tokens, "acct:biz").unwrap();
        assert!(
            !raw.contains("act.AAA") && !raw.contains("rft.BBB"),
            "{raw}"
        );
        let back = block_on(Vault::new(&f, &k).get("biz")).unwrap().unwrap();
        assert_eq!(back.access_token.expose(), "act.AAA");
        assert_eq!(back.refresh_token.expose(), "rft.BBB");
        assert_eq!(back.meta.access_expires_at, 87_400);
        assert_eq!(
            back.meta.scopes,
            vec!["user.info.basic", "message.list.send"]
        );
    }

    #[test]
    fn old_key_stays_readable_after_rotation_and_wrong_key_is_a_clear_error() {
        let f = Fake::new(0);
        let a = Account::from_grant(
            "biz",
            &grant("a", "r", 1, 1),
            0,
            &keyring(K1),
            &CountingRng::default(),
        );
        block_on(Vault::new(&f, &keyring(K1)).put(&a)).unwrap();
        let rotated = keyring(&format!("{K2},{K1}"));
        assert!(block_on(Vault::new(&f, &rotated).get("biz"))
            .unwrap()
            .is_some());
        let e = block_on(Vault::new(&f, &keyring(K2)).get("biz")).unwrap_err();
        assert_eq!(e.code(), "vault_unreadable");
        assert!(e.to_string().contains("not in TOKEN_ENCRYPTION_KEY"), "{e}");
    }

    #[test]
    fn record_moved_to_another_account_does_not_open() {
        let f = Fake::new(0);
        let k = keyring(K1);
        let a = Account::from_grant(
            "biz",
            &grant("a", "r", 1, 1),
            0,
            &k,
            &CountingRng::default(),
        );
        let raw = serde_json::to_string(&a.meta)
            .unwrap()
            .replace("\"biz\"", "\"other\"");
        block_on(f.put(Bucket::Tokens, "acct:other", &raw, None)).unwrap();
        assert_eq!(
            block_on(Vault::new(&f, &k).get("other"))
                .unwrap_err()
                .code(),
            "vault_unreadable"
        );
    }

    #[test]
    fn refresh_policy_with_fixed_clock() {
        let k = keyring(K1);
        let a = Account::from_grant(
            "biz",
            &grant("a", "r", 3600, 7200),
            10_000,
            &k,
            &CountingRng::default(),
        );
        assert!(!needs_refresh(&a.meta, 10_000, 600));
        assert!(!needs_refresh(&a.meta, 12_999, 600));
        assert!(needs_refresh(&a.meta, 13_000, 600));
        assert!(can_refresh(&a.meta, 17_199));
        assert!(!can_refresh(&a.meta, 17_200));
        assert!(!Listed::of(&a.meta).due(12_000, 600));
        assert!(Listed::of(&a.meta).due(12_000, 1_800));
    }

    fn cfg() -> Config {
        crate::testutil::fixtures::config()
    }

    fn stored(f: &Fake, cfg: &Config, ae: u64, re: u64) {
        let a = Account::from_grant(
            "biz",
            &grant("act.old", "rft.old", ae, re),
            f.now_secs(),
            &cfg.keyring,
            f,
        );
        block_on(Vault::new(f, &cfg.keyring).put(&a)).unwrap();
    }

    fn refresh_answer(a: &str, r: &str) -> crate::http::Response {
        crate::http::Response::json(
            200,
            &json!({"code": 0, "message": "OK", "data": {
            "access_token": a, "refresh_token": r, "expires_in": 86400,
            "refresh_token_expires_in": 31536000, "open_id": "biz"}}),
        )
    }

    #[test]
    fn fresh_token_is_returned_without_a_call() {
        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 86_400, 1_000_000);
        let a = block_on(ensure_fresh(&f, &c, "biz", 600, None)).unwrap();
        assert_eq!(a.access_token.expose(), "act.old");
        assert!(f.sent().is_empty());
    }

    #[test]
    fn expiring_token_is_refreshed_and_rotation_stored() {
        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 300, 1_000_000);
        f.answer(refresh_answer("act.new", "rft.new"));
        let a = block_on(ensure_fresh(&f, &c, "biz", 600, None)).unwrap();
        assert_eq!(a.access_token.expose(), "act.new");
        let body: serde_json::Value =
            serde_json::from_slice(f.sent()[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(body["refresh_token"], "rft.old");
        assert_eq!(body["grant_type"], "refresh_token");
        let back = block_on(Vault::new(&f, &c.keyring).get("biz"))
            .unwrap()
            .unwrap();
        assert_eq!(back.refresh_token.expose(), "rft.new");
        assert_eq!(back.meta.refreshed_at, Some(100_000));
    }

    #[test]
    fn rejected_token_forces_one_refresh_but_a_newer_token_is_kept() {
        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 86_400, 1_000_000);
        f.answer(refresh_answer("act.new", "rft.new"));
        let a = block_on(ensure_fresh(&f, &c, "biz", 600, Some("act.old"))).unwrap();
        assert_eq!(a.access_token.expose(), "act.new");
        let b = block_on(ensure_fresh(&f, &c, "biz", 600, Some("act.old"))).unwrap();
        assert_eq!(b.access_token.expose(), "act.new");
        assert_eq!(f.sent().len(), 1);
    }

    #[test]
    fn revoked_or_expired_refresh_token_marks_needs_reauth() {
        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 10, 1_000_000);
        f.answer(crate::http::Response::json(
            200,
            &json!({"code": 40107, "message": "invalid refresh token"}),
        ));
        let e = block_on(ensure_fresh(&f, &c, "biz", 600, None)).unwrap_err();
        assert_eq!(e.code(), "account_needs_reauth");
        let m = block_on(Vault::new(&f, &c.keyring).meta("biz"))
            .unwrap()
            .unwrap();
        assert_eq!(m.status, Status::NeedsReauth);
        // No further calls once marked.
        assert!(block_on(ensure_fresh(&f, &c, "biz", 600, None)).is_err());
        assert_eq!(f.sent().len(), 1);

        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 10, 20);
        f.advance(30);
        assert_eq!(
            block_on(ensure_fresh(&f, &c, "biz", 600, None))
                .unwrap_err()
                .code(),
            "account_needs_reauth"
        );
        assert!(f.sent().is_empty());
    }

    #[test]
    fn transient_refresh_failure_keeps_the_account_active() {
        let (f, c) = (Fake::new(100_000), cfg());
        stored(&f, &c, 10, 1_000_000);
        f.answer(crate::http::Response::json(
            200,
            &json!({"code": 51065, "message": "system error"}),
        ));
        assert_eq!(
            block_on(ensure_fresh(&f, &c, "biz", 600, None))
                .unwrap_err()
                .code(),
            "tiktok_system_error"
        );
        let m = block_on(Vault::new(&f, &c.keyring).meta("biz"))
            .unwrap()
            .unwrap();
        assert_eq!(m.status, Status::Active);
    }
}
