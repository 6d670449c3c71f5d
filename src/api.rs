//! The authenticated JSON API under `/v1`: account administration and TikTok pass-through
//! listings. Handlers validate, call TikTok with the account's token (from the account's
//! coordinator, which refreshes it), and reshape answers into our own JSON.

use crate::app::Ctx;
use crate::auth::Role;
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::{Request, Response};
use crate::lossless;
use crate::ports::{Level, Platform};
use crate::tiktok::client::ConversationType;
use crate::tiktok::{AppCredentials, Client};
use crate::tokens::Vault;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest id we accept from a caller.
const MAX_ID: usize = 256;

/// A required id-like query value.
pub fn id_param(req: &Request, name: &str) -> Result<String> {
    let v = req
        .query(name)
        .ok_or_else(|| Error::invalid(name, "is required"))?;
    check_id(name, &v)?;
    Ok(v)
}

pub fn check_id(name: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_ID {
        return Err(Error::invalid(name, format!("must be 1 to {MAX_ID} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(name, "must not contain control characters"));
    }
    Ok(())
}

/// Parses a JSON request body into `T`, naming the offending field.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T> {
    if req.body.is_empty() {
        return Err(Error::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    if let Some(ct) = req.headers.get("content-type") {
        if !ct.to_ascii_lowercase().contains("json") {
            return Err(Error::invalid("content-type", "must be application/json"));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(&req.body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            Error::InvalidJson(inner.to_string())
        } else {
            Error::invalid(path, inner.to_string())
        }
    })
}

fn is_token_rejected(e: &Error) -> bool {
    matches!(
        e,
        Error::Upstream {
            failure: UpstreamFailure::Api { code: 40105, .. },
            ..
        }
    )
}

/// Runs `op` with the account's access token; if TikTok rejects the token (40105), gets a
/// refreshed one (single-flight in the coordinator) and runs `op` once more.
pub async fn with_token<P: Platform, T>(
    ctx: &Ctx<'_, P>,
    account: &str,
    op: impl AsyncFn(&str) -> Result<T>,
) -> Result<T> {
    let token = ctx.p.access_token(account, None).await?;
    match op(token.expose()).await {
        Err(e) if is_token_rejected(&e) => {
            ctx.log(
                Level::Warn,
                "access token rejected; refreshing",
                json!({"account_id": account}),
            );
            let fresh = ctx.p.access_token(account, Some(token.expose())).await?;
            op(fresh.expose()).await
        }
        other => other,
    }
}

/// `GET /v1/accounts` (admin): connected accounts, never tokens.
pub async fn list_accounts<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let now = ctx.p.now_secs();
    let accounts: Vec<Value> = Vault::new(ctx.p, &cfg.keyring)
        .list()
        .await?
        .into_iter()
        .map(|m| {
            let status = if m.status == crate::tokens::Status::Active && m.refresh_expires_at <= now
            {
                crate::tokens::Status::NeedsReauth
            } else {
                m.status
            };
            json!({
                "id": m.account_id, "display_name": m.display_name, "scopes": m.scopes,
                "status": status, "access_token_expires_at": m.access_expires_at,
                "refresh_token_expires_at": m.refresh_expires_at, "connected_at": m.created_at,
                "updated_at": m.updated_at, "refreshed_at": m.refreshed_at,
            })
        })
        .collect();
    Ok(Response::json(200, &json!({ "accounts": accounts })))
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
    let revoke = match vault.get(id).await {
        Ok(Some(acct)) => {
            let client = Client::new(ctx.p, &cfg.api_base);
            let app = AppCredentials {
                client_key: &cfg.client_key,
                client_secret: &cfg.client_secret,
            };
            // The refresh token is the long-lived grant; revoking it ends the whole grant.
            client.revoke(app, acct.refresh_token.expose()).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    vault.delete(id).await?;
    ctx.p.forget(id).await?;
    let mut body = json!({"id": id, "deleted": true, "revoked": revoke.is_ok()});
    if let Err(e) = &revoke {
        ctx.log(
            Level::Warn,
            "revoke failed; account wiped anyway",
            json!({"account_id": id, "code": e.code()}),
        );
        body["revoke_error"] = json!({"code": e.code(), "message": e.to_string()});
    }
    Ok(Response::json(200, &body))
}

#[derive(Debug, Deserialize, Serialize)]
struct Conversation {
    #[serde(deserialize_with = "lossless::id", rename(serialize = "id"))]
    conversation_id: String,
    #[serde(default, rename(serialize = "updated_at"))]
    update_time: Option<i64>,
    #[serde(default)]
    referral: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ConversationPage {
    #[serde(default)]
    conversations: Vec<Conversation>,
    #[serde(default)]
    has_more: bool,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    cursor: Option<String>,
}

/// `GET /v1/conversations?account_id&type=STRANGER|SINGLE&cursor&limit`.
pub async fn list_conversations<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
    let kind = match req.query("type") {
        None => ConversationType::Single,
        Some(t) => ConversationType::parse(&t)
            .ok_or_else(|| Error::invalid("type", "must be STRANGER or SINGLE"))?,
    };
    let cursor = match req.query("cursor") {
        Some(c) => {
            check_id("cursor", &c)?;
            Some(c)
        }
        None => None,
    };
    let limit = match req.query("limit") {
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 50"))?,
        ),
        None => None,
    };
    let client = Client::new(ctx.p, &cfg.api_base);
    let page: ConversationPage = with_token(ctx, &account, async |t: &str| {
        client
            .list_conversations(t, &account, kind, cursor.as_deref(), limit)
            .await
    })
    .await?;
    Ok(Response::json(
        200,
        &json!({
            "account_id": account, "type": kind.as_str(), "conversations": page.conversations,
            "has_more": page.has_more, "cursor": page.cursor.filter(|c| !c.is_empty() && page.has_more),
        }),
    ))
}

/// One message as TikTok lists it; ids stay exact strings.
#[derive(Debug, Deserialize, Serialize)]
struct Message {
    #[serde(deserialize_with = "lossless::id", rename(serialize = "id"))]
    message_id: String,
    #[serde(default, rename(serialize = "type"))]
    message_type: Option<String>,
    #[serde(default, rename(serialize = "created_at"))]
    create_time: Option<i64>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    sender: Option<Value>,
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    has_more: bool,
}

/// `GET /v1/conversations/{id}/messages?account_id`: TikTok's 20 latest messages.
pub async fn list_messages<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
    check_id("conversation_id", conversation)?;
    let client = Client::new(ctx.p, &cfg.api_base);
    let page: MessagePage = with_token(ctx, &account, async |t: &str| {
        client.list_messages(t, &account, conversation).await
    })
    .await?;
    Ok(Response::json(
        200,
        &json!({
            "account_id": account, "conversation_id": conversation,
            "messages": page.messages, "has_more": page.has_more,
        }),
    ))
}
