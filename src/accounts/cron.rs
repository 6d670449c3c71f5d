//! The cron: refreshes tokens that expire within the look-ahead window, reading expiries from
//! the vault's listing and spending a bounded budget per run.

use crate::accounts::vault::{Listed, Vault, PREFIX};
use crate::crypto::Keyring;
use crate::error::Result;
use crate::ports::Bucket;
use crate::ports::{Clock, Store};
use serde::Serialize;

/// What one cron run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CronReport {
    pub accounts: usize,
    pub due: usize,
    pub refreshed: usize,
    pub needs_reauth: usize,
    pub failed: usize,
    /// Due but left for the next run (the per-run budget was spent).
    pub deferred: usize,
}

/// Refreshes one cron run may start: each is a call to the account's actor (a subrequest,
/// 50 per invocation on the free plan). The rest wait for the next run; tokens are also
/// refreshed on demand when used.
pub const CRON_MAX_REFRESHES: usize = 40;

/// Records one cron run may read to find expiries that the listing lacks (records written
/// before listings carried them), within KV's per-invocation operation limit.
const CRON_MAX_READS: usize = 200;

/// The cron job: refreshes accounts whose access token expires within `window` seconds
/// (through the coordinator, so it never races an on-demand refresh) and lets accounts whose
/// refresh token has expired be marked `needs_reauth`. It reads the listing's metadata, so
/// 10,000 accounts cost ten list calls, not 10,000 reads.
pub async fn refresh_due<P: Store + Clock + crate::ports::Accounts + crate::ports::Log>(
    p: &P,
    keyring: &Keyring,
    window: u64,
) -> Result<CronReport> {
    let vault = Vault::new(p, keyring);
    let now = p.now_secs();
    let mut report = CronReport::default();
    let mut due = Vec::new();
    let mut reads = 0;
    let mut cursor = None;
    loop {
        let page = p
            .list(Bucket::Tokens, PREFIX, cursor, crate::ports::MAX_PAGE)
            .await?;
        for (key, meta) in page.keys.iter().zip(&page.metadata) {
            report.accounts += 1;
            let account = &key[PREFIX.len()..];
            let listed = match meta
                .as_deref()
                .and_then(|m| crate::json::from_str::<Listed>(m).ok())
            {
                Some(l) => Some(l),
                None if reads < CRON_MAX_READS => {
                    reads += 1;
                    vault.meta(account).await?.map(|m| Listed::of(&m))
                }
                None => None,
            };
            if listed.is_some_and(|l| l.due(now, window)) {
                due.push(account.to_string());
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    report.due = due.len();
    report.deferred = due.len().saturating_sub(CRON_MAX_REFRESHES);
    for account in due.iter().take(CRON_MAX_REFRESHES) {
        match p.refresh_within(account, window).await {
            Ok(()) => report.refreshed += 1,
            Err(e) if e.code() == "account_needs_reauth" => report.needs_reauth += 1,
            Err(e) => {
                report.failed += 1;
                p.log(
                    crate::ports::Level::Warn,
                    "cron refresh failed",
                    crate::json::object!({"account_id": account, "code": e.code()}),
                );
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::vault::Account;
    use crate::testutil::fixtures::{config, grant};
    use crate::testutil::{block_on, Fake};

    #[test]
    fn cron_reads_expiries_from_the_listing_and_spends_a_bounded_budget() {
        let mut f = Fake::new(1_000_000);
        f.cfg = Some(config());
        let c = f.cfg.clone().unwrap();
        for i in 0..1_500u64 {
            // Every 25th account expires within the window.
            let ttl = if i % 25 == 0 { 60 } else { 86_400 };
            let a = Account::from_grant(
                &format!("biz-{i:04}"),
                &grant("a", "r", ttl, 1_000_000),
                1_000_000,
                &c.keyring,
                &f,
            );
            block_on(Vault::new(&f, &c.keyring).put(&a)).unwrap();
        }
        let r = block_on(refresh_due(&f, &c.keyring, 600)).unwrap();
        assert_eq!((r.accounts, r.due), (1_500, 60));
        assert_eq!(r.refreshed + r.failed + r.needs_reauth, CRON_MAX_REFRESHES);
        assert_eq!(r.deferred, 60 - CRON_MAX_REFRESHES);
        let (page, next) = block_on(Vault::new(&f, &c.keyring).page(None, 100)).unwrap();
        assert_eq!(page.len(), 100);
        let (rest, _) = block_on(Vault::new(&f, &c.keyring).page(next, 100)).unwrap();
        assert_eq!(rest[0].account_id, "biz-0100", "pages follow each other");
    }
}
