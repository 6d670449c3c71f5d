//! Request and response bodies of the TikTok API, as sent on the wire (see
//! `tests/fixtures/tiktok/`). Ids are read losslessly into strings; where the sources disagree
//! (`update_time`/`up_time`, `scope` as a string or a list) both readings are accepted.

use crate::lossless;
use crate::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Every TikTok response: `code == 0` is success, anything else is an API error (with HTTP 200).
#[derive(Debug, Deserialize)]
pub struct ApiEnvelope {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Kept raw so ids beyond 2^53 survive until a typed, lossless deserializer reads them.
    #[serde(default)]
    pub data: Option<Box<serde_json::value::RawValue>>,
}

/// Token grant (authorization code or refresh). `Debug` hides the tokens.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Seconds from now (24 h in practice).
    pub expires_in: u64,
    /// Seconds from now (about a year; counts down across refreshes).
    pub refresh_token_expires_in: u64,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub open_id: Option<String>,
    /// Granted scopes; the user may grant fewer than asked.
    #[serde(default, deserialize_with = "scope_list")]
    pub scope: Vec<String>,
}

/// `scope` is a comma-separated string on the wire; one source reads it as a list.
fn scope_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    };
    Ok(match Value::deserialize(d)? {
        Value::String(s) => split(&s),
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    })
}

/// `POST /tt_user/token_info/get/` data.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(not(test), allow(dead_code))] // the wire type of an endpoint only the contract tests call
pub struct TokenInfo {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub app_id: Option<String>,
    #[serde(default, deserialize_with = "scope_list")]
    pub scope: Vec<String>,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub creator_id: Option<String>,
}

/// `GET /business/get/` data (flat). `profile_image` is a URL that expires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct BusinessProfile {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub profile_image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SenderAction {
    Typing,
    MarkRead,
}

/// The two card layouts TikTok sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateKind {
    QaButtonCard,
    QaLinkCard,
}

impl TemplateKind {
    /// TikTok's limit on a button title for this card.
    pub fn max_button_title(self) -> usize {
        match self {
            TemplateKind::QaButtonCard => 20,
            TemplateKind::QaLinkCard => 40,
        }
    }
}

/// Card limits from TikTok's send reference.
pub const MAX_CARD_TITLE: usize = 40;
pub const MAX_CARD_BUTTONS: usize = 3;
pub const MAX_BUTTON_ID: usize = 40;
/// TikTok's text limit, in characters (not bytes).
pub const MAX_TEXT_CHARS: usize = 6000;

/// One card button; a tap comes back as a customer message carrying `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    pub title: String,
    pub id: String,
}

/// A question card with 1 to 3 reply buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(rename = "type")]
    pub kind: TemplateKind,
    pub title: String,
    pub buttons: Vec<Button>,
}

impl Template {
    /// Checks TikTok's limits; `Err((field, reason))` names the field relative to the card.
    pub fn check(&self) -> Result<(), (String, String)> {
        let n = self.title.chars().count();
        if self.title.trim().is_empty() || n > MAX_CARD_TITLE {
            return Err((
                "title".into(),
                format!("must be 1 to {MAX_CARD_TITLE} characters (has {n})"),
            ));
        }
        if self.buttons.is_empty() || self.buttons.len() > MAX_CARD_BUTTONS {
            return Err((
                "buttons".into(),
                format!("must hold 1 to {MAX_CARD_BUTTONS} buttons"),
            ));
        }
        let max = self.kind.max_button_title();
        for (i, b) in self.buttons.iter().enumerate() {
            let n = b.title.chars().count();
            if b.title.trim().is_empty() || n > max {
                return Err((
                    format!("buttons[{i}].title"),
                    format!("must be 1 to {max} characters on this card (has {n})"),
                ));
            }
            if b.id.trim().is_empty() || b.id.chars().count() > MAX_BUTTON_ID {
                return Err((
                    format!("buttons[{i}].id"),
                    format!("must be 1 to {MAX_BUTTON_ID} characters"),
                ));
            }
            if self.buttons[..i].iter().any(|o| o.id == b.id) {
                return Err((
                    format!("buttons[{i}].id"),
                    "must differ from the other buttons' ids".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What to send in one message. TikTok never mixes text and an image in one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "OutgoingWire")]
pub enum Outgoing {
    /// Text, optionally quoting an earlier message of the conversation.
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
    },
    Image {
        media_id: String,
    },
    /// One of the business's own posts.
    SharePost {
        item_id: String,
    },
    Template {
        template: Template,
    },
    Action {
        action: SenderAction,
    },
}

/// How an [`Outgoing`] is read back (only this Worker writes it: actor calls, pending
/// replies, failure records): into one flat struct of optional fields, then into the variant
/// that `type` names. The derived reading of the `#[serde(tag = "type")]` enum buffers the
/// object and compiles a buffered deserializer per variant (about 14 KiB of `.wasm`). Every
/// object that the derived `Serialize` writes reads back the same, and a missing field or an
/// unknown type is still an error, with other words: an unknown type no longer lists the known
/// ones, `null` for a required field reads as missing, a field of another variant must have
/// its own type, and a numeric `type` (a variant index) is refused.
#[derive(Deserialize)]
struct OutgoingWire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    media_id: Option<String>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    template: Option<Template>,
    #[serde(default)]
    action: Option<SenderAction>,
}

impl TryFrom<OutgoingWire> for Outgoing {
    type Error = String;

    fn try_from(w: OutgoingWire) -> Result<Self, String> {
        use crate::json::need;
        Ok(match w.kind.as_str() {
            "text" => Outgoing::Text {
                text: need(w.text, "text")?,
                reply_to: w.reply_to,
            },
            "image" => Outgoing::Image {
                media_id: need(w.media_id, "media_id")?,
            },
            "share_post" => Outgoing::SharePost {
                item_id: need(w.item_id, "item_id")?,
            },
            "template" => Outgoing::Template {
                template: need(w.template, "template")?,
            },
            "action" => Outgoing::Action {
                action: need(w.action, "action")?,
            },
            other => return Err(format!("unknown variant `{other}`")),
        })
    }
}

impl Outgoing {
    pub fn text(t: impl Into<String>) -> Self {
        Outgoing::Text {
            text: t.into(),
            reply_to: None,
        }
    }

    /// Our short name of the message type (the `type` of `POST /v1/messages`).
    pub fn kind(&self) -> &'static str {
        match self {
            Outgoing::Text { .. } => "text",
            Outgoing::Image { .. } => "image",
            Outgoing::SharePost { .. } => "share_post",
            Outgoing::Template { .. } => "template",
            Outgoing::Action {
                action: SenderAction::Typing,
            } => "typing",
            Outgoing::Action {
                action: SenderAction::MarkRead,
            } => "mark_read",
        }
    }

    /// Whether TikTok answers with a message id (it does not for sender actions).
    pub fn is_message(&self) -> bool {
        !matches!(self, Outgoing::Action { .. })
    }
}

/// `POST /business/message/send/` body.
#[derive(Debug, Serialize)]
pub struct SendBody<'a> {
    pub business_id: &'a str,
    pub recipient_type: &'static str,
    pub recipient: &'a str,
    pub message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_post: Option<ItemRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<WireTemplate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_action: Option<SenderAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referenced_message_info: Option<Referenced<'a>>,
}

#[derive(Debug, Serialize)]
pub struct TextBody<'a> {
    pub body: &'a str,
}

#[derive(Debug, Serialize)]
pub struct MediaRef<'a> {
    pub media_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ItemRef<'a> {
    pub item_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Referenced<'a> {
    pub referenced_message_id: &'a str,
}

#[derive(Debug, Serialize)]
pub struct WireTemplate<'a> {
    #[serde(rename = "type")]
    pub kind: TemplateKind,
    pub title: &'a str,
    pub buttons: Vec<WireButton<'a>>,
}

#[derive(Debug, Serialize)]
pub struct WireButton<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'a str,
    pub id: &'a str,
}

impl<'a> SendBody<'a> {
    pub fn new(business_id: &'a str, conversation_id: &'a str, msg: &'a Outgoing) -> Self {
        let mut b = SendBody {
            business_id,
            recipient_type: "CONVERSATION",
            recipient: conversation_id,
            message_type: "TEXT",
            text: None,
            image: None,
            share_post: None,
            template: None,
            sender_action: None,
            referenced_message_info: None,
        };
        match msg {
            Outgoing::Text { text, reply_to } => {
                b.text = Some(TextBody { body: text });
                b.referenced_message_info = reply_to.as_deref().map(|id| Referenced {
                    referenced_message_id: id,
                });
            }
            Outgoing::Image { media_id } => {
                b.message_type = "IMAGE";
                b.image = Some(MediaRef { media_id });
            }
            Outgoing::SharePost { item_id } => {
                b.message_type = "SHARE_POST";
                b.share_post = Some(ItemRef { item_id });
            }
            Outgoing::Template { template } => {
                b.message_type = "TEMPLATE";
                b.template = Some(WireTemplate {
                    kind: template.kind,
                    title: &template.title,
                    buttons: template
                        .buttons
                        .iter()
                        .map(|x| WireButton {
                            kind: "REPLY",
                            title: &x.title,
                            id: &x.id,
                        })
                        .collect(),
                });
            }
            Outgoing::Action { action } => {
                b.message_type = "SENDER_ACTION";
                b.sender_action = Some(*action);
            }
        }
        b
    }
}

/// `send` result: `data.message.message_id`, empty for sender actions (kept as `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    pub message_id: Option<String>,
}

impl<'de> Deserialize<'de> for Sent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Data {
            #[serde(default)]
            message: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default, deserialize_with = "lossless::opt_id")]
            message_id: Option<String>,
        }
        let data = Option::<Data>::deserialize(d)?;
        Ok(Sent {
            message_id: data
                .and_then(|d| d.message)
                .and_then(|m| m.message_id)
                .filter(|id| !id.is_empty()),
        })
    }
}

/// `GET /business/message/conversation/list/` data.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationPage {
    #[serde(default)]
    pub conversations: Vec<ListedConversation>,
    #[serde(default)]
    pub has_more: bool,
    /// A number on the wire; kept as text so it round-trips exactly.
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListedConversation {
    #[serde(deserialize_with = "lossless::id")]
    pub conversation_id: String,
    /// Milliseconds; one source calls it `up_time`.
    #[serde(default, alias = "up_time")]
    pub update_time: Option<i64>,
    #[serde(default)]
    pub referral: Option<Value>,
}

/// `GET /business/message/content/list/` data: the 20 latest messages and both participants.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<ListedMessage>,
    #[serde(default)]
    pub participants: Vec<Participant>,
}

/// `{role, id}` of a message's sender or recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct UserRef {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub id: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MessageTag {
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TextIn {
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaIn {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub media_id: Option<String>,
}

impl MediaIn {
    /// An image or video in the API's message shape (`{"media_id"}`), `null` without an id:
    /// stored messages and TikTok's listing show media the same way.
    pub fn api_json(media: &Option<MediaIn>) -> Value {
        match media.as_ref().and_then(|m| m.media_id.as_ref()) {
            Some(id) => crate::json::object!({ "media_id": id }),
            None => Value::Null,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SharePostIn {
    #[serde(default)]
    pub embed_url: Option<String>,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub video_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReferencedIn {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub referenced_message_id: Option<String>,
}

/// One message of TikTok's listing (upper-case enums, ms timestamps).
#[derive(Debug, Clone, Deserialize)]
pub struct ListedMessage {
    #[serde(deserialize_with = "lossless::id")]
    pub message_id: String,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub message_tag: Option<MessageTag>,
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub auto_message_type: Option<String>,
    #[serde(default)]
    pub text: Option<TextIn>,
    #[serde(default)]
    pub image: Option<MediaIn>,
    #[serde(default)]
    pub video: Option<MediaIn>,
    #[serde(default)]
    pub share_post: Option<SharePostIn>,
    #[serde(default)]
    pub template: Option<Value>,
    #[serde(default)]
    pub sticker: Option<Value>,
    #[serde(default)]
    pub emoji: Option<Value>,
    #[serde(default)]
    pub reactions: Vec<Value>,
    #[serde(default)]
    pub from_user: Option<UserRef>,
    #[serde(default)]
    #[cfg_attr(not(test), allow(dead_code))] // on the wire; read by tests
    pub to_user: Option<UserRef>,
    #[serde(default)]
    pub referenced_message_info: Option<ReferencedIn>,
}

/// A conversation participant: the business (`id` = its open id) or the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Participant {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub profile_image: Option<String>,
    #[serde(default)]
    pub is_follower: Option<bool>,
}

impl MessagePage {
    /// The customer's display name, from the participants.
    pub fn customer_name(&self) -> Option<&str> {
        self.participants
            .iter()
            .find(|p| {
                p.role
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("personal_account"))
            })
            .and_then(|p| p.display_name.as_deref())
            .filter(|n| !n.trim().is_empty())
    }
}

/// `POST /business/message/media/download/` data: a URL valid 24 h, fetched with `x-user`.
#[derive(Debug, Clone, Deserialize)]
pub struct MediaDownload {
    pub download_url: String,
}

/// `GET /business/message/capabilities/get/` data.
#[derive(Debug, Clone, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub capability_infos: Vec<CapabilityInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapabilityInfo {
    pub capability_type: String,
    #[serde(default)]
    pub capability_result: bool,
}

impl Capabilities {
    /// Whether `kind` (e.g. `IMAGE_SEND`) is allowed; absent means not allowed.
    pub fn allows(&self, kind: &str) -> bool {
        self.capability_infos
            .iter()
            .any(|c| c.capability_type == kind && c.capability_result)
    }
}

/// `GET /business/webhook/list/` data: one flat object; no `callback_url` when none is set.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookConfig {
    #[serde(default, deserialize_with = "lossless::opt_id")]
    #[cfg_attr(not(test), allow(dead_code))] // on the wire; read by tests
    pub app_id: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// `POST /business/message/media/upload/` data.
#[derive(Debug, Clone, Deserialize)]
pub struct Uploaded {
    #[serde(deserialize_with = "lossless::id")]
    pub media_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_body_shapes() {
        let t = Outgoing::text("hi");
        assert_eq!(
            serde_json::to_value(SendBody::new("b", "c+1", &t)).unwrap(),
            json!({"business_id":"b","recipient_type":"CONVERSATION","recipient":"c+1",
                   "message_type":"TEXT","text":{"body":"hi"}})
        );
        let a = Outgoing::Action {
            action: SenderAction::MarkRead,
        };
        let v = serde_json::to_value(SendBody::new("b", "c", &a)).unwrap();
        assert_eq!(v["message_type"], "SENDER_ACTION");
        assert_eq!(v["sender_action"], "MARK_READ");
    }

    #[test]
    fn outgoing_reads_back_what_it_writes() {
        let template = Template {
            kind: TemplateKind::QaLinkCard,
            title: "Q".into(),
            buttons: vec![Button {
                title: "a".into(),
                id: "b".into(),
            }],
        };
        let all = [
            Outgoing::text("hi"),
            Outgoing::Text {
                text: "hi".into(),
                reply_to: Some("m1".into()),
            },
            Outgoing::Image {
                media_id: "i".into(),
            },
            Outgoing::SharePost {
                item_id: "7".into(),
            },
            Outgoing::Template { template },
            Outgoing::Action {
                action: SenderAction::Typing,
            },
            Outgoing::Action {
                action: SenderAction::MarkRead,
            },
        ];
        for m in all {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(
                crate::json::from_str::<Outgoing>(&text).unwrap(),
                m,
                "{text}"
            );
        }
        let read = |t: &str| crate::json::from_str::<Outgoing>(t).map_err(|e| e.to_string());
        assert!(read(r#"{"type":"text"}"#)
            .unwrap_err()
            .contains("missing field `text`"));
        assert!(read(r#"{"type":"video","media_id":"x"}"#)
            .unwrap_err()
            .contains("unknown variant `video`"));
        assert!(read(r#"{"text":"hi"}"#)
            .unwrap_err()
            .contains("missing field `type`"));
        assert!(read(r#"{"type":"action","action":"WAVE"}"#).is_err());
        // The order of the fields does not matter; unknown ones are ignored.
        assert_eq!(
            read(r#"{"media_id":"i","x":1,"type":"image"}"#).unwrap(),
            Outgoing::Image {
                media_id: "i".into()
            }
        );
    }

    #[test]
    fn token_grant_debug_hides_tokens() {
        let g: TokenGrant = serde_json::from_value(json!({
            "access_token":"act.SECRET1","refresh_token":"rft.SECRET2",
            "expires_in":86400,"refresh_token_expires_in":31536000,"open_id":"o"}))
        .unwrap();
        let d = format!("{g:?}");
        assert!(!d.contains("SECRET1") && !d.contains("SECRET2"), "{d}");
    }

    #[test]
    fn scope_reads_a_string_or_a_list() {
        let g: TokenGrant = serde_json::from_value(json!({
            "access_token":"a","refresh_token":"r","expires_in":1,"refresh_token_expires_in":2,
            "scope":["a.b", "c"]}))
        .unwrap();
        assert_eq!(g.scope, ["a.b", "c"]);
        let g: TokenGrant = serde_json::from_value(json!({
            "access_token":"a","refresh_token":"r","expires_in":1,"refresh_token_expires_in":2,
            "scope":"a.b, c,"}))
        .unwrap();
        assert_eq!(g.scope, ["a.b", "c"]);
    }

    #[test]
    fn card_limits_depend_on_the_card() {
        let card = |kind, title: &str, n: usize| Template {
            kind,
            title: "Q".into(),
            buttons: (0..n)
                .map(|i| Button {
                    title: title.into(),
                    id: format!("b{i}"),
                })
                .collect(),
        };
        let t21 = "x".repeat(21);
        assert!(card(TemplateKind::QaLinkCard, &t21, 3).check().is_ok());
        assert_eq!(
            card(TemplateKind::QaButtonCard, &t21, 1)
                .check()
                .unwrap_err()
                .0,
            "buttons[0].title"
        );
        assert_eq!(
            card(TemplateKind::QaButtonCard, "ok", 4)
                .check()
                .unwrap_err()
                .0,
            "buttons"
        );
        assert_eq!(
            card(TemplateKind::QaButtonCard, "ok", 0)
                .check()
                .unwrap_err()
                .0,
            "buttons"
        );
    }
}
