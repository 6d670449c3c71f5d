//! The stored inbox's pages in the API's shape, as the account actor answers them.

use super::cursor;
use super::history::{self, Summary};
use crate::error::{Error, Result};
use crate::ports::Local;
use serde_json::Value;

/// A conversation's auto-reply pause, as the actor knows it: `(paused_until, paused_by)`.
pub type Pause = (Option<u64>, Option<String>);

/// One conversation in the API's shape.
pub fn conversation_json(s: &Summary, pause: &Pause, now_ms: u64) -> Value {
    let (open, closes) = s.window(now_ms);
    crate::json::object!({
        "id": s.id,
        "customer": {
            "id": s.customer_id, "handle": s.customer_handle,
            "display_name": s.customer_name.as_deref().filter(|n| !n.is_empty()),
        },
        "created_at_ms": s.created_ms,
        "last_message_at_ms": s.last_ms,
        "last_message": {
            "id": s.last_message_id, "direction": s.last_direction, "source": s.last_source,
            "type": s.last_type, "text": s.last_text,
        },
        "unread": s.unread,
        "last_customer_message_at_ms": s.last_customer_ms,
        "window": { "open": open, "closes_at_ms": closes },
        "bot": {
            // As `GET /v1/conversations/{id}/handoff` says it.
            "paused": pause.0.is_some(),
            "paused_until": pause.0.map(|t| crate::time::iso8601(t * 1000)),
            "paused_by": pause.1,
        },
    })
}

/// A page of conversations, latest activity first; `pause` reads each one's pause.
pub async fn conversations_page<P: Local, F: AsyncFn(&str) -> Result<Pause>>(
    p: &P,
    cursor: Option<&str>,
    limit: usize,
    now_ms: u64,
    pause: F,
) -> Result<Value> {
    let after = cursor.map(cursor::read_conversations).transpose()?;
    let (rows, next) = history::conversations(p, after.as_ref(), limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for s in &rows {
        out.push(conversation_json(s, &pause(&s.id).await?, now_ms));
    }
    Ok(crate::json::object!({
        "source": "store",
        "conversations": out,
        "has_more": next.is_some(),
        "cursor": next.as_ref().map(cursor::conversations),
    }))
}

/// A page of one conversation's messages (newest first unless `oldest_first`), with the
/// conversation; `{"conversation": null}` when nothing of it is stored.
pub async fn messages_page<P: Local, F: AsyncFn(&str) -> Result<Pause>>(
    p: &P,
    conversation: &str,
    cursor: Option<&str>,
    limit: usize,
    oldest_first: bool,
    now_ms: u64,
    pause: F,
) -> Result<Value> {
    let after = cursor.map(cursor::read_messages).transpose()?;
    let Some(summary) = history::conversation(p, conversation)? else {
        if after.is_some() {
            return Err(Error::Missing {
                what: format!("stored conversation {conversation}"),
            });
        }
        return Ok(crate::json::object!({ "conversation": null }));
    };
    let (messages, next) = history::messages(p, conversation, after, limit, oldest_first)?;
    Ok(crate::json::object!({
        "source": "store",
        "conversation": conversation_json(&summary, &pause(conversation).await?, now_ms),
        "order": if oldest_first { "oldest_first" } else { "newest_first" },
        "messages": messages,
        "has_more": next.is_some(),
        "cursor": next.as_ref().map(cursor::messages),
    }))
}
