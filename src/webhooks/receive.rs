//! `POST /webhooks/tiktok` (verify, accept, answer; the account's actor processes the event
//! once it has answered) and the verification challenge.

use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::webhooks::envelope;

/// `POST /webhooks/tiktok`.
pub async fn receive<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    if req.body.len() > crate::webhooks::verify::MAX_BODY {
        return Err(Error::PayloadTooLarge {
            limit: crate::webhooks::verify::MAX_BODY,
        });
    }
    let cfg = ctx.config()?;
    crate::webhooks::verify::verify(
        cfg.client_secret.expose().as_bytes(),
        req.headers.get("tiktok-signature"),
        &req.body,
        ctx.p.now_secs(),
        cfg.webhook_tolerance_secs,
    )
    .map_err(|e| Error::BadSignature(e.to_string()))?;
    let event = envelope::parse(&req.body).map_err(|e| Error::InvalidJson(e.to_string()))?;
    // TikTok's ids are short; longer ones could not be stored or listed (storage key limits),
    // so they are refused rather than acknowledged and then lost.
    if event.account.is_empty() || event.account.len() > envelope::MAX_ID {
        return Err(Error::invalid(
            "user_openid",
            format!("must be 1 to {} bytes", envelope::MAX_ID),
        ));
    }
    if [&event.content.conversation_id, &event.content.message_id]
        .iter()
        .any(|id| id.as_ref().is_some_and(|i| i.len() > envelope::MAX_ID))
    {
        return Err(Error::invalid(
            "content",
            format!(
                "conversation and message ids must be at most {} bytes",
                envelope::MAX_ID
            ),
        ));
    }
    let raw = std::str::from_utf8(&req.body)
        .map_err(|_| Error::InvalidJson("body is not UTF-8".into()))?;
    let fresh = ctx.p.accept_event(&event.account, &event.key, raw).await?;
    ctx.note(crate::json::object!({"event": event.name, "account_id": event.account, "key": event.key, "duplicate": !fresh}));
    Ok(Response::json(
        200,
        &crate::json::object!({"received": true, "duplicate": !fresh}),
    ))
}

/// `GET /webhooks/tiktok`: echoes `challenge` for any verification handshake.
pub fn challenge(req: &Request) -> Response {
    match req.query("challenge") {
        Some(c) if c.len() <= 512 => Response::text(200, c),
        _ => Response::json(200, &crate::json::object!({"ok": true})),
    }
}

// ---------- rules storage ----------
