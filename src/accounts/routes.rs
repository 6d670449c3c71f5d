//! `GET /v1/accounts` and `DELETE /v1/accounts/{id}`.

use crate::accounts::vault::Vault;
use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::page_params;
use crate::http::{Request, Response};
use crate::ports::{Level, Platform};
use crate::tiktok::Client;
use crate::webhooks::subscription::app_creds;
use serde_json::Value;

/// `GET /v1/accounts` (admin): connected accounts, never tokens.
pub async fn list_accounts<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let now = ctx.p.now_secs();
    let (limit, cursor) = page_params(req)?;
    let (page, next) = Vault::new(ctx.p, &cfg.keyring).page(cursor, limit).await?;
    let accounts: Vec<Value> = page
        .into_iter()
        .map(|m| {
            let status = if m.status == crate::accounts::vault::Status::Active
                && m.refresh_expires_at <= now
            {
                crate::accounts::vault::Status::NeedsReauth
            } else {
                m.status
            };
            crate::json::object!({
                "id": m.account_id, "display_name": m.display_name, "username": m.username,
                "profile_image": m.profile_image, "scopes": m.scopes,
                "status": status, "access_token_expires_at": m.access_expires_at,
                "refresh_token_expires_at": m.refresh_expires_at, "connected_at": m.created_at,
                "updated_at": m.updated_at, "refreshed_at": m.refreshed_at,
            })
        })
        .collect();
    Ok(Response::json(
        200,
        &crate::json::object!({ "accounts": accounts, "cursor": next }),
    ))
}

/// `DELETE /v1/accounts/{id}` (admin): revoke at TikTok, then wipe, even if revoking failed.
pub async fn delete_account<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let vault = Vault::new(ctx.p, &cfg.keyring);
    if vault.meta(id).await?.is_none() {
        return Err(Error::Missing {
            what: format!("account {id}"),
        });
    }
    // TikTok revokes a grant by its access token: a fresh one when the account can still
    // refresh (an expired token may not be accepted), else the stored one.
    let token = match ctx.p.access_token(id, None).await {
        Ok(t) => Ok(Some(t)),
        Err(_) => vault.get(id).await.map(|a| a.map(|a| a.access_token)),
    };
    let revoke = match token {
        Ok(Some(token)) => {
            let client = Client::for_config(ctx.p, cfg);
            client.revoke(app_creds(cfg), token.expose()).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    vault.delete(id).await?;
    ctx.p.forget(id).await?;
    let mut body = crate::json::object!({"id": id, "deleted": true, "revoked": revoke.is_ok()});
    if let Err(e) = &revoke {
        ctx.log(
            Level::Warn,
            "revoke failed; account wiped anyway",
            crate::json::object!({"account_id": id, "code": e.code()}),
        );
        body["revoke_error"] = crate::json::object!({"code": e.code(), "message": e.to_string()});
    }
    Ok(Response::json(200, &body))
}
