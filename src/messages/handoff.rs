//! `GET`/`POST /v1/conversations/{id}/handoff?account_id`: whether auto-replies are paused in
//! a conversation (a person is handling it), and pausing or resuming them by hand.

use crate::coordinator::protocol::{Call, Reply};
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::json_body;
use crate::http::{Request, Response};
use crate::messages::listings::conversation_scope;
use crate::ports::{Level, Platform};
use serde::Deserialize;

/// Longest pause set by hand: 30 days.
const MAX_PAUSE_SECS: u64 = 2_592_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    paused: bool,
    /// How long the pause lasts; default `HANDOFF_PAUSE_SECS`.
    #[serde(default)]
    for_secs: Option<u64>,
}

/// `GET`: the conversation's pause; `POST {"paused": true|false, "for_secs"?}` sets it.
pub async fn handoff<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
    change: bool,
) -> Result<Response> {
    let (cfg, account) = conversation_scope(ctx, req, conversation)?;
    let (set, until) = if change {
        if req.body.len() > 4 * 1024 {
            return Err(Error::PayloadTooLarge { limit: 4 * 1024 });
        }
        let c: Change = json_body(req)?;
        let secs = c.for_secs.unwrap_or(cfg.handoff_pause_secs);
        if c.paused && !(1..=MAX_PAUSE_SECS).contains(&secs) {
            return Err(Error::invalid(
                "for_secs",
                format!("must be 1 to {MAX_PAUSE_SECS} seconds"),
            ));
        }
        if !c.paused && c.for_secs.is_some() {
            return Err(Error::invalid("for_secs", "only a pause has a duration"));
        }
        (true, c.paused.then(|| ctx.p.now_secs() + secs))
    } else {
        (false, None)
    };
    let call = Call::Handoff {
        account: account.clone(),
        conversation: conversation.to_string(),
        set,
        until,
    };
    let (paused_until, paused_by) = match ctx.p.call(call).await? {
        Reply::Handoff {
            paused_until,
            paused_by,
        } => (paused_until, paused_by),
        _ => {
            return Err(Error::Internal(
                "account actor answer: unexpected reply".into(),
            ))
        }
    };
    if set {
        ctx.log(
            Level::Info,
            "auto-replies paused or resumed by hand",
            crate::json::object!({"account_id": account, "conversation_id": conversation, "until": paused_until}),
        );
    }
    Ok(Response::json(
        200,
        &crate::json::object!({
            "account_id": account,
            "conversation_id": conversation,
            "paused": paused_until.is_some(),
            "paused_until": paused_until.map(|t| crate::time::iso8601(t * 1000)),
            "paused_by": paused_by,
        }),
    ))
}
