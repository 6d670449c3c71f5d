//! Where rule sets are stored (the global set and per-account overrides) and which applies.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ports::{Bucket, Platform};
use crate::rules::engine::RuleSet;

/// KV key of the stored rule set.
pub const RULES_KEY: &str = "rules";

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

pub(crate) fn rules_key(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("{RULES_KEY}:{a}"),
        None => RULES_KEY.to_string(),
    }
}

/// Whether a State key holds a rule set (the actor keeps those in memory).
pub(crate) fn is_rules_key(key: &str) -> bool {
    key == RULES_KEY
        || key
            .strip_prefix(RULES_KEY)
            .is_some_and(|rest| rest.starts_with(':'))
}

pub(crate) async fn stored_rules<P: Platform>(p: &P, key: &str) -> Result<Option<RuleSet>> {
    match p.get(Bucket::State, key).await? {
        Some(raw) => crate::json::from_str(&raw)
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
