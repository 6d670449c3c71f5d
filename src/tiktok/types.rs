//! Request and response bodies of the TikTok API, as sent on the wire.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// Every TikTok response: `code == 0` is success, anything else is an API error (often with
/// HTTP 200).
#[derive(Debug, Deserialize)]
pub struct Envelope {
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
    /// Seconds from now.
    pub access_token_expire_in: u64,
    /// Seconds from now.
    pub refresh_token_expire_in: u64,
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SenderAction {
    Typing,
    MarkRead,
}

/// What to send in one message: text or one image or a sender action, never a mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Image { media_id: String },
    Action(SenderAction),
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
    pub image: Option<ImageBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_action: Option<SenderAction>,
}

#[derive(Debug, Serialize)]
pub struct TextBody<'a> {
    pub body: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ImageBody<'a> {
    pub media_id: &'a str,
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
            sender_action: None,
        };
        match msg {
            Outgoing::Text(t) => b.text = Some(TextBody { body: t }),
            Outgoing::Image { media_id } => {
                b.message_type = "IMAGE";
                b.image = Some(ImageBody { media_id });
            }
            Outgoing::Action(a) => {
                b.message_type = "SENDER_ACTION";
                b.sender_action = Some(*a);
            }
        }
        b
    }
}

/// `send` result. TikTok may omit fields for sender actions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sent {
    #[serde(default, deserialize_with = "crate::lossless::opt_id")]
    pub message_id: Option<String>,
    #[serde(default)]
    pub create_time: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_body_shapes() {
        let t = Outgoing::Text("hi".into());
        assert_eq!(
            serde_json::to_value(SendBody::new("b", "c+1", &t)).unwrap(),
            json!({"business_id":"b","recipient_type":"CONVERSATION","recipient":"c+1",
                   "message_type":"TEXT","text":{"body":"hi"}})
        );
        let i = Outgoing::Image {
            media_id: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(SendBody::new("b", "c", &i)).unwrap()["image"],
            json!({"media_id":"m"})
        );
        let a = Outgoing::Action(SenderAction::MarkRead);
        let v = serde_json::to_value(SendBody::new("b", "c", &a)).unwrap();
        assert_eq!(v["message_type"], "SENDER_ACTION");
        assert_eq!(v["sender_action"], "MARK_READ");
    }

    #[test]
    fn token_grant_debug_hides_tokens() {
        let g: TokenGrant = serde_json::from_value(json!({
            "access_token":"act.SECRET1","refresh_token":"rft.SECRET2",
            "access_token_expire_in":86400,"refresh_token_expire_in":31536000,"open_id":"o"}))
        .unwrap();
        let d = format!("{g:?}");
        assert!(!d.contains("SECRET1") && !d.contains("SECRET2"), "{d}");
    }
}
