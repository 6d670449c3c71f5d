//! A webhook delivery's envelope with its string-encoded `content`, parsed losslessly, and
//! what each event means for us.

use crate::lossless;
use crate::tiktok::types::{MediaIn, MessageTag, ReferencedIn, SharePostIn, TextIn, UserRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest account, conversation or message id accepted in a delivery.
pub const MAX_ID: usize = 256;

/// The outer envelope. `content` is a JSON string parsed a second time.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEnvelope {
    #[serde(default)]
    pub client_key: Option<String>,
    pub event: String,
    #[serde(default)]
    pub create_time: Option<i64>,
    /// The business account the event belongs to.
    #[serde(deserialize_with = "lossless::id")]
    pub user_openid: String,
    #[serde(default)]
    pub content: Option<String>,
}

/// Why a card button tap arrived: the tapped button's id and the card's message id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReplySource {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub reply_source_msg_id: Option<String>,
    /// The `id` of the tapped button.
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub reply_source_unique_id: Option<String>,
}

/// A message event's `content` (lower-case enums, ms timestamps); what we do not use is
/// ignored. Field names as TikTok sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Content {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub conversation_id: Option<String>,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub message_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub text: Option<TextIn>,
    #[serde(default)]
    pub image: Option<MediaIn>,
    #[serde(default)]
    pub video: Option<MediaIn>,
    #[serde(default)]
    pub share_post: Option<SharePostIn>,
    #[serde(default)]
    pub template: Option<serde_json::Value>,
    /// The sender's TikTok handle (username).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from_user: Option<UserRef>,
    #[serde(default)]
    pub to_user: Option<UserRef>,
    #[serde(default)]
    pub message_tag: Option<MessageTag>,
    #[serde(default)]
    pub reply_source_payload: Option<ReplySource>,
    #[serde(default)]
    pub referenced_message_info: Option<ReferencedIn>,
    #[serde(default)]
    pub auto_message_type: Option<String>,
    #[serde(default)]
    pub is_follower: Option<bool>,
    /// Milliseconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

impl Content {
    /// `message_tag.source` in upper case (`API`, `APP`, `WEB`, `OTHERS`, ...).
    pub fn source(&self) -> Option<String> {
        self.message_tag
            .as_ref()
            .and_then(|t| t.source.as_deref())
            .map(str::to_ascii_uppercase)
    }

    /// The customer message's text, if it has one.
    pub fn text_body(&self) -> Option<&str> {
        self.text.as_ref().map(|t| t.body.as_str())
    }

    /// The id of the card button the customer tapped, when the message came from one.
    pub fn button_id(&self) -> Option<&str> {
        self.reply_source_payload
            .as_ref()
            .and_then(|r| r.reply_source_unique_id.as_deref())
    }
}

/// What an event means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A customer wrote to the business: the only kind that is auto-answered.
    CustomerMessage,
    /// A customer reacted to a message (an emoji): recorded, never answered.
    Reaction,
    /// The business's message sent through the API (normally ours), echoed back.
    ApiEcho,
    /// A person at the business answered from the TikTok app or web.
    StaffReply,
    /// TikTok's own automation (welcome message, suggested questions) or an unknown source.
    AutomatedReply,
    /// The customer read the conversation.
    ReadReceipt,
    /// The customer arrived through an ad or a link; no message yet.
    Referral,
    /// A customer in the EEA, Switzerland or the UK wrote; TikTok strips the content.
    EuStripped,
    /// Comments and events we do not know: logged only.
    Other,
}

impl EventKind {
    /// Whether the business sent it (counts against the reply window).
    pub fn is_business_message(self) -> bool {
        matches!(
            self,
            EventKind::ApiEcho | EventKind::StaffReply | EventKind::AutomatedReply
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerMessage => "customer_message",
            EventKind::Reaction => "reaction",
            EventKind::ApiEcho => "api_echo",
            EventKind::StaffReply => "staff_reply",
            EventKind::AutomatedReply => "automated_reply",
            EventKind::ReadReceipt => "read_receipt",
            EventKind::Referral => "referral",
            EventKind::EuStripped => "eu_stripped",
            EventKind::Other => "other",
        }
    }
}

/// A verified, parsed delivery.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub account: String,
    pub kind: EventKind,
    pub content: Content,
    /// De-duplication key: `content.message_id`, else a digest of the body.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not a TikTok event envelope: {0}")]
    Envelope(String),
}

/// Classifies an event. Direction comes from the sender: a message whose `from_user` is the
/// business (by id or role) is the business's own, whatever the event name says.
pub fn classify(event: &str, account: &str, content: &Content) -> EventKind {
    let from_business = content.from_user.as_ref().is_some_and(|u| {
        u.id.as_deref() == Some(account)
            || u.role
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("business_account"))
    });
    let business_kind = || match content.source().as_deref() {
        Some("API") => EventKind::ApiEcho,
        Some("APP" | "WEB") => EventKind::StaffReply,
        _ => EventKind::AutomatedReply,
    };
    let has_ids = content.conversation_id.is_some() && content.message_id.is_some();
    match event {
        "im_send_msg" if has_ids => business_kind(),
        "im_receive_msg" if from_business && has_ids => business_kind(),
        "im_receive_msg" if has_ids && content.kind.as_deref() == Some("reaction") => {
            EventKind::Reaction
        }
        "im_receive_msg" if has_ids => EventKind::CustomerMessage,
        // A business-side read is not the customer's; sources disagree whether it occurs.
        "im_mark_read_msg" if !from_business => EventKind::ReadReceipt,
        "im_referral_msg" => EventKind::Referral,
        "im_receive_msg_eu" => EventKind::EuStripped,
        _ => EventKind::Other,
    }
}

/// Parses a delivery. Unknown events and unparsable `content` still parse (as [`EventKind::Other`]),
/// because TikTok must get a 200 for them.
pub fn parse(body: &[u8]) -> Result<Event, ParseError> {
    let env: WebhookEnvelope =
        crate::json::from_slice(body).map_err(|e| ParseError::Envelope(e.to_string()))?;
    let content: Content = env
        .content
        .as_deref()
        .and_then(|c| crate::json::from_str(c).ok())
        .unwrap_or_default();
    let kind = classify(&env.event, &env.user_openid, &content);
    let key = match &content.message_id {
        Some(id) => format!("m:{id}"),
        None => format!("h:{}", hex::encode(&Sha256::digest(body)[..16])),
    };
    Ok(Event {
        name: env.event,
        account: env.user_openid,
        kind,
        content,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_with_big_ids_and_string_content() {
        let body = br#"{"client_key":"ck","event":"im_receive_msg","create_time":1720000000,"user_openid":"biz-1",
            "content":"{\"conversation_id\":\"c-1\",\"message_id\":123456789012345678901234,\"type\":\"text\",\"text\":{\"body\":\"hello\"},\"from_user\":{\"id\":9007199254740993,\"role\":\"personal_account\"},\"timestamp\":1720000000000}"}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.kind, EventKind::CustomerMessage);
        assert_eq!(e.account, "biz-1");
        assert_eq!(
            e.content.message_id.as_deref(),
            Some("123456789012345678901234")
        );
        assert_eq!(
            e.content.from_user.unwrap().id.as_deref(),
            Some("9007199254740993")
        );
        assert_eq!(e.key, "m:123456789012345678901234");
        assert_eq!(e.content.text.unwrap().body, "hello");
    }

    #[test]
    fn classification_by_event_sender_and_source() {
        let env = |event: &str, content: &str| {
            serde_json::json!({"event": event, "user_openid": "biz", "content": content})
                .to_string()
        };
        let kind = |event: &str, content: &str| parse(env(event, content).as_bytes()).unwrap().kind;
        let msg = r#"{"conversation_id":"c","message_id":"m","type":"text","text":{"body":"hi"},"from_user":{"id":"u","role":"personal_account"}}"#;
        let tagged = |src: &str| {
            format!(
                r#"{{"conversation_id":"c","message_id":"m","from_user":{{"id":"biz","role":"business_account"}},"message_tag":{{"source":"{src}"}}}}"#
            )
        };
        assert_eq!(kind("im_receive_msg", msg), EventKind::CustomerMessage);
        assert_eq!(kind("im_send_msg", &tagged("API")), EventKind::ApiEcho);
        assert_eq!(kind("im_send_msg", &tagged("APP")), EventKind::StaffReply);
        assert_eq!(kind("im_send_msg", &tagged("web")), EventKind::StaffReply);
        assert_eq!(
            kind("im_send_msg", &tagged("OTHERS")),
            EventKind::AutomatedReply
        );
        assert_eq!(
            kind("im_send_msg", msg),
            EventKind::AutomatedReply,
            "no tag"
        );
        // The business's own message never counts as the customer's, whatever the event.
        let own = r#"{"conversation_id":"c","message_id":"m","from_user":{"id":"biz"},"message_tag":{"source":"API"}}"#;
        assert_eq!(kind("im_receive_msg", own), EventKind::ApiEcho);
        let biz_role = r#"{"conversation_id":"c","message_id":"m","from_user":{"id":"x","role":"business_account"}}"#;
        assert_eq!(kind("im_receive_msg", biz_role), EventKind::AutomatedReply);
        let reaction =
            r#"{"conversation_id":"c","message_id":"m","type":"reaction","from_user":{"id":"u"}}"#;
        assert_eq!(kind("im_receive_msg", reaction), EventKind::Reaction);
        let eu = parse(env("im_receive_msg_eu", r#"{"timestamp":1}"#).as_bytes()).unwrap();
        assert_eq!(eu.kind, EventKind::EuStripped);
        assert!(eu.key.starts_with("h:"));
        assert_eq!(kind("im_receive_msg", "not json"), EventKind::Other);
        assert_eq!(kind("im_send_msg", "{}"), EventKind::Other, "no ids");
        assert_eq!(kind("brand_new_event", msg), EventKind::Other);
        assert_eq!(kind("im_mark_read_msg", msg), EventKind::ReadReceipt);
        assert_eq!(
            kind("im_mark_read_msg", own),
            EventKind::Other,
            "business-side read"
        );
        assert_eq!(kind("im_referral_msg", "{}"), EventKind::Referral);
        assert!(parse(b"[1,2]").is_err());
        assert!(parse(br#"{"event":"x"}"#).is_err(), "no account");
    }
}
