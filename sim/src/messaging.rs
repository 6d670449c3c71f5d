//! POST `/business/message/send/`: the reference's validation table, the reply window, the
//! stored history and the API echo.

use crate::oauth::authed;
use crate::router::{fail, field, invalid, missing, ApiErr, Out, Req};
use crate::state::{Body, Button, Conversation, Shared, State, StoredMessage};
use crate::webhooks::{self, Echo};
use crate::{now_ms, SentMessage};
use serde_json::{json, Value};
use std::sync::Arc;

const MAX_TEXT: usize = 6000;
const MAX_TEMPLATE_TITLE: usize = 40;
const MAX_BUTTON_ID: usize = 40;
/// Media ids stay usable this long after upload.
const MEDIA_LIFE_MS: u64 = 30 * 86_400_000;
const WINDOW_MS: u64 = 48 * 3_600_000;
const WINDOW_QUOTA: usize = 10;

pub async fn send(shared: &Arc<Shared>, rq: &Req) -> Out {
    let b = rq.json()?;
    let (data, echo) = {
        let mut st = shared.lock();
        let biz = authed(
            &st,
            &rq.headers,
            b.get("business_id").and_then(Value::as_str),
            "message.list.send",
        )?;
        accept(&mut st, &biz, &b)?
    };
    if let Some(e) = echo {
        webhooks::echo(shared, e).await;
    }
    Ok(data)
}

fn has(b: &Value, key: &str) -> bool {
    b.get(key).is_some_and(|v| !v.is_null())
}

/// A string field at a nested path, required and non-empty.
fn nested<'a>(b: &'a Value, path: &[&str]) -> Result<&'a str, ApiErr> {
    let name = path.join(".");
    let mut v = b;
    for p in path {
        v = match v.get(p) {
            Some(x) if !x.is_null() => x,
            _ => return missing(&name),
        };
    }
    match v.as_str() {
        Some("") => missing(&name),
        Some(s) => Ok(s),
        None => invalid(&name),
    }
}

fn length(name: &str, s: &str, max: usize) -> Result<(), ApiErr> {
    let n = s.chars().count();
    if n == 0 || n > max {
        return fail(
            40002,
            format!("Param {name} must be 1 to {max} characters."),
        );
    }
    Ok(())
}

/// Validates and applies one send; returns the reply `data` and the echo to deliver.
fn accept(st: &mut State, biz: &str, b: &Value) -> Result<(Value, Option<Echo>), ApiErr> {
    let kind = field(b, "message_type")?;
    if !matches!(
        kind,
        "TEXT" | "IMAGE" | "SHARE_POST" | "TEMPLATE" | "SENDER_ACTION"
    ) {
        return invalid("message_type");
    }
    let conversation = recipient(b, kind)?;
    let body = match kind {
        "TEXT" => {
            if has(b, "image") {
                return fail(
                    40002,
                    "Param image is not allowed: a message is text or image, never both.",
                );
            }
            let text = nested(b, &["text", "body"])?;
            length("text.body", text, MAX_TEXT)?;
            Some(Body::Text(text.into()))
        }
        "IMAGE" => {
            if has(b, "text") {
                return fail(
                    40002,
                    "Param text is not allowed: a message is text or image, never both.",
                );
            }
            let id = nested(b, &["image", "media_id"])?;
            let usable = st.media.get(id).is_some_and(|m| {
                m.owner == biz && now_ms().saturating_sub(m.created_ms) < MEDIA_LIFE_MS
            });
            if !usable {
                return invalid("image.media_id");
            }
            Some(Body::Image(id.into()))
        }
        "SHARE_POST" => {
            let item = nested(b, &["share_post", "item_id"])?;
            if !st.owns_post(biz, item) {
                return fail(
                    40002,
                    "Param share_post.item_id is invalid: only the account's own posts can be shared.",
                );
            }
            Some(Body::SharePost(item.into()))
        }
        "TEMPLATE" => Some(template(b)?),
        _ => {
            let action = field(b, "sender_action")?;
            if !matches!(action, "TYPING" | "MARK_READ") {
                return invalid("sender_action");
            }
            None
        }
    };
    let referenced = referenced(st, biz, b, kind, conversation)?;
    if st.settings.enforce_window && body.is_some() {
        if let Some(c) = conversation {
            window(st.conversation(biz, c))?;
        }
    }
    let message_id = if body.is_some() {
        st.snowflake()
    } else {
        String::new()
    };
    st.sent.push(SentMessage {
        business_id: biz.into(),
        conversation_id: conversation.unwrap_or_default().into(),
        message_type: kind.into(),
        body: b.clone(),
        message_id: message_id.clone(),
    });
    let mut echo = None;
    if let (Some(body), Some(c)) = (body, conversation) {
        let msg = StoredMessage {
            id: message_id.clone(),
            ts_ms: now_ms(),
            from_business: true,
            source: "API",
            body,
            referenced,
            reply_source: None,
        };
        // Lenient: a conversation the sim has never seen is created by the send.
        st.conversation_mut(biz, c, None).insert(msg.clone());
        let url = st.webhooks.get("DIRECT_MESSAGE").cloned();
        if let (true, Some(url)) = (st.settings.echo, url) {
            echo = Some(Echo {
                url,
                body: webhooks::message_event(st, biz, c, &msg),
                before_reply: st.settings.echo_before_reply,
            });
        }
    }
    Ok((json!({"message": {"message_id": message_id}}), echo))
}

/// The conversation a send goes to; `None` for a comment `direct_reply`.
fn recipient<'a>(b: &'a Value, kind: &str) -> Result<Option<&'a str>, ApiErr> {
    if has(b, "direct_reply") {
        if has(b, "recipient_type") || has(b, "recipient") {
            return fail(
                40002,
                "Param recipient_type and recipient must be omitted with direct_reply.",
            );
        }
        if nested(b, &["direct_reply", "reply_type"])? != "COMMENT_REPLY" {
            return invalid("direct_reply.reply_type");
        }
        nested(b, &["direct_reply", "comment_reply", "comment_id"])?;
        if kind == "SENDER_ACTION" {
            return invalid("message_type");
        }
        return Ok(None);
    }
    if field(b, "recipient_type")? != "CONVERSATION" {
        return invalid("recipient_type");
    }
    let r = field(b, "recipient")?;
    // TikTok's conversation ids never hold whitespace: this is an unencoded `+`.
    if r.chars().any(char::is_whitespace) {
        return invalid("recipient");
    }
    Ok(Some(r))
}

fn template(b: &Value) -> Result<Body, ApiErr> {
    if !b.get("template").is_some_and(Value::is_object) {
        return missing("template");
    }
    let t = &b["template"];
    let kind = nested(b, &["template", "type"])?;
    let max_button = match kind {
        "QA_BUTTON_CARD" => 20,
        "QA_LINK_CARD" => 40,
        _ => return invalid("template.type"),
    };
    let title = nested(b, &["template", "title"])?;
    length("template.title", title, MAX_TEMPLATE_TITLE)?;
    let Some(list) = t.get("buttons").and_then(Value::as_array) else {
        return missing("template.buttons");
    };
    if list.is_empty() || list.len() > 3 {
        return fail(40002, "Param template.buttons must hold 1 to 3 buttons.");
    }
    let mut buttons = Vec::new();
    for (i, btn) in list.iter().enumerate() {
        let name = |f: &str| format!("template.buttons[{i}].{f}");
        if btn.get("type").and_then(Value::as_str) != Some("REPLY") {
            return invalid(&name("type"));
        }
        let bt = btn.get("title").and_then(Value::as_str).unwrap_or("");
        length(&name("title"), bt, max_button)?;
        let id = btn.get("id").and_then(Value::as_str).unwrap_or("");
        length(&name("id"), id, MAX_BUTTON_ID)?;
        buttons.push(Button {
            title: bt.into(),
            id: id.into(),
        });
    }
    Ok(Body::Template {
        kind: kind.into(),
        title: title.into(),
        buttons,
    })
}

/// A quoted reply: only on TEXT, naming a TEXT, IMAGE or SHARE_POST message of the thread.
fn referenced(
    st: &State,
    biz: &str,
    b: &Value,
    kind: &str,
    conversation: Option<&str>,
) -> Result<Option<String>, ApiErr> {
    if !has(b, "referenced_message_info") {
        return Ok(None);
    }
    if kind != "TEXT" {
        return fail(
            40002,
            "Param referenced_message_info is only allowed with message_type TEXT.",
        );
    }
    let name = "referenced_message_info.referenced_message_id";
    let id = nested(b, &["referenced_message_info", "referenced_message_id"])?;
    let target = conversation
        .and_then(|c| st.conversation(biz, c))
        .and_then(|c| c.find(id));
    match target.map(|m| &m.body) {
        Some(Body::Text(_) | Body::Image(_) | Body::SharePost(_)) => Ok(Some(id.into())),
        _ => invalid(name),
    }
}

/// The reply window: the user wrote in the last 48 h and the business has sent fewer than
/// 10 messages since (the simpler of the reference's two quota readings).
fn window(conv: Option<&Conversation>) -> Result<(), ApiErr> {
    let closed = |why: &str| {
        fail(
            40064,
            format!("Message blocked by the messaging rules: {why}."),
        )
    };
    let Some(c) = conv else {
        return closed("the user has not started this conversation");
    };
    let Some(last) = c.messages.iter().rposition(|m| !m.from_business) else {
        return closed("the user has not started this conversation");
    };
    if now_ms().saturating_sub(c.messages[last].ts_ms) > WINDOW_MS {
        return closed("the user's last message is older than 48 hours");
    }
    let since = c.messages[last + 1..]
        .iter()
        .filter(|m| m.from_business && m.source != "OTHERS")
        .count();
    if since >= WINDOW_QUOTA {
        return closed("10 messages were already sent since the user's last message");
    }
    Ok(())
}
