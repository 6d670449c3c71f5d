//! `GET`/`PUT`/`DELETE /v1/rules`.

use crate::accounts::vault;
use crate::auth::Role;
use crate::coordinator::protocol::Call;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::{Request, Response};
use crate::ports::{Bucket, Level, Platform};
use crate::rules::engine::{self};
use crate::rules::store::load_rules;
use crate::rules::store::rules_key;
use crate::rules::store::RulesSource;

/// The optional `account_id` of the rules routes: per-account rules override the global set.
fn rules_account(req: &Request) -> Result<Option<String>> {
    match req.query("account_id") {
        Some(a) => {
            crate::http::extract::check_id("account_id", &a)?;
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
    let raw = serde_json::to_string(&rules).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Response::json(
        200,
        &crate::json::object!({"source": source.as_str(), "account_id": account, "rules": as_value(&raw)?}),
    ))
}

/// A stored rule set's text as a JSON value: the same value `json!` makes of the set itself
/// (keys sorted), but through the string serialiser and the parser the set already needs,
/// not a second, value-building instance of every rule type's `Serialize` (a few KiB).
fn as_value(raw: &str) -> Result<serde_json::Value> {
    crate::json::from_str(raw).map_err(|e| Error::Internal(e.to_string()))
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
    let told = announce(ctx, account.as_deref(), Some(&raw)).await;
    ctx.log(
        Level::Info,
        "rules stored",
        crate::json::object!({"rules": set.rules.len(), "account_id": account, "actors_told": told}),
    );
    let source = if account.is_some() {
        RulesSource::Account
    } else {
        RulesSource::Global
    };
    Ok(Response::json(
        200,
        &crate::json::object!({"source": source.as_str(), "account_id": account, "rules": as_value(&raw)?}),
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
    let told = announce(ctx, account.as_deref(), None).await;
    ctx.log(
        Level::Info,
        "rules deleted",
        crate::json::object!({"account_id": account, "actors_told": told}),
    );
    Ok(Response::json(
        200,
        &crate::json::object!({"deleted": true, "account_id": account}),
    ))
}

/// Most account actors told at once of a change to the global rules (within the subrequest
/// limit of the Workers Free plan); the others read the rules again within a minute, as KV
/// itself may take that long to show a write everywhere.
const ANNOUNCE_MAX: usize = 40;

/// Hands the changed rule set (`None`: deleted) to the actors that use it: the account's own,
/// or for the global set those of the first [`ANNOUNCE_MAX`] connected accounts, so that none
/// keeps the old one (nor reads it back from a stale KV copy). Best effort; returns how many
/// were told.
async fn announce<P: Platform>(
    ctx: &Ctx<'_, P>,
    account: Option<&str>,
    value: Option<&str>,
) -> usize {
    let key = rules_key(account);
    let accounts: Vec<String> = match account {
        Some(a) => vec![a.to_string()],
        None => match ctx
            .p
            .list(Bucket::Tokens, vault::PREFIX, None, ANNOUNCE_MAX)
            .await
        {
            Ok(page) => page
                .keys
                .iter()
                .filter_map(|k| k.strip_prefix(vault::PREFIX).map(str::to_string))
                .collect(),
            Err(e) => {
                ctx.log(
                    Level::Warn,
                    "accounts not listed; their actors read the new rules within a minute",
                    crate::json::object!({"code": e.code()}),
                );
                Vec::new()
            }
        },
    };
    let calls = accounts.iter().map(|a| {
        ctx.p.call(Call::RulesChanged {
            account: a.to_string(),
            key: key.clone(),
            value: value.map(str::to_string),
        })
    });
    futures_util::future::join_all(calls)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count()
}
