//! The customer's display name for a stored conversation: events carry only the handle, so
//! the name is asked of TikTok's listing (its participants) when a person first opens the
//! conversation, then kept. The webhook path never pays for it.

use super::history;
use crate::config::Config;
use crate::error::Result;
use crate::ports::{Level, Local, Platform};
use crate::tiktok::Client;

/// Learns and keeps the display name of `conversation` if it is stored without one. A TikTok
/// error only leaves the name unknown (logged).
pub async fn learn<P: Platform + Local>(
    p: &P,
    cfg: &Config,
    account: &str,
    conversation: &str,
) -> Result<()> {
    let unnamed =
        history::conversation(p, conversation)?.is_some_and(|s| s.customer_name.is_none());
    if !unnamed {
        return Ok(());
    }
    let client = Client::for_config(p, cfg);
    let listed = match p.access_token(account, None).await {
        Ok(token) => {
            client
                .list_messages(token.expose(), account, conversation)
                .await
        }
        Err(e) => Err(e),
    };
    match listed {
        // No name at TikTok is kept too (empty), so that it is asked once.
        Ok(page) => {
            history::set_customer_name(p, conversation, page.customer_name().unwrap_or(""))?
        }
        Err(e) => p.log(
            Level::Warn,
            "customer name lookup failed; the inbox shows the handle only",
            crate::json::object!({"account_id": account, "conversation_id": conversation, "code": e.code()}),
        ),
    }
    Ok(())
}
