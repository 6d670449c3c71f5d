//! `GET /v1/conversations` and `GET /v1/conversations/{id}/messages`: the stored inbox, read
//! from the account's actor; TikTok's own listing with `source=tiktok`, and for a conversation
//! nothing of which is stored (it is older than the Worker's connection).

use super::cursor;
use crate::auth::Role;
use crate::coordinator::protocol::{Call, Reply};
use crate::coordinator::MAX_PAGE;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::id_param;
use crate::http::{Request, Response};
use crate::messages::listings;
use crate::ports::Platform;
use serde_json::{json, Value};

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: u64 = 50;

/// Whether the request asks for TikTok's listing (`source=tiktok`) rather than the store.
fn from_tiktok(req: &Request) -> Result<bool> {
    match req.query("source").as_deref() {
        None => Ok(false),
        Some("store") => Ok(false),
        Some("tiktok") => Ok(true),
        Some(_) => Err(Error::invalid("source", "must be store or tiktok")),
    }
}

fn limit(req: &Request) -> Result<u64> {
    match req.query("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Error::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            }),
    }
}

async fn page<P: Platform>(ctx: &Ctx<'_, P>, call: Call) -> Result<Value> {
    match ctx.p.call(call).await? {
        Reply::Page { page } => Ok(page),
        _ => Err(Error::Internal(
            "account actor answer: unexpected reply".into(),
        )),
    }
}

/// `GET /v1/conversations?account_id[&cursor][&limit]`: stored conversations, latest
/// activity first (`source=tiktok`, or `type` given: TikTok's listing).
pub async fn list_conversations<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    // `type` (STRANGER or SINGLE) is a filter of TikTok's listing: it asks for that listing.
    let typed = req.query("type").is_some();
    if from_tiktok(req)? || (typed && req.query("source").is_none()) {
        return listings::list_conversations(ctx, req).await;
    }
    if typed {
        return Err(Error::invalid(
            "type",
            "applies to TikTok's listing only (source=tiktok)",
        ));
    }
    let account = id_param(req, "account_id")?;
    ctx.authorize_account(req, &account)?;
    let cursor = req.query("cursor");
    if let Some(c) = &cursor {
        cursor::read_conversations(c)?;
    }
    let call = Call::Inbox {
        account: account.clone(),
        conversation: None,
        cursor,
        limit: limit(req)?,
        oldest_first: false,
    };
    let mut body = page(ctx, call).await?;
    body["account_id"] = json!(account);
    Ok(Response::json(200, &body))
}

/// `GET /v1/conversations/{id}/messages?account_id[&cursor][&limit][&order]`: the stored
/// history, newest first (`order=oldest_first` from the start), with the conversation.
pub async fn list_messages<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
) -> Result<Response> {
    let (_, account) = listings::conversation_scope(ctx, req, conversation)?;
    if from_tiktok(req)? {
        return listings::list_messages(ctx, req, conversation).await;
    }
    let oldest_first = match req.query("order").as_deref() {
        None | Some("newest_first") => false,
        Some("oldest_first") => true,
        Some(_) => {
            return Err(Error::invalid(
                "order",
                "must be newest_first or oldest_first",
            ))
        }
    };
    let cursor = req.query("cursor");
    if let Some(c) = &cursor {
        cursor::read_messages(c)?;
    }
    let call = Call::Inbox {
        account: account.clone(),
        conversation: Some(conversation.to_string()),
        cursor: cursor.clone(),
        limit: limit(req)?,
        oldest_first,
    };
    let mut body = page(ctx, call).await?;
    if body["conversation"].is_null() {
        // Nothing stored: a conversation from before the Worker was connected.
        return listings::list_messages(ctx, req, conversation).await;
    }
    body["account_id"] = json!(account);
    body["conversation_id"] = json!(conversation);
    Ok(Response::json(200, &body))
}
