//! Notifications people read: a short text for Slack incoming webhooks, Discord webhooks and
//! Telegram bots, configured by URL in the `NOTIFY_URLS` secret (the URLs themselves hold the
//! services' tokens). A notice is planned in an event's pending record and sent after its
//! reply, retried like a forward, and a target that keeps refusing it becomes a failure an
//! admin can replay. Failure records and logs name a target by its tag (`slack-1a2b3c4d`),
//! never by its URL.

use crate::error::Error;
use crate::http::Headers;
use crate::ports::Platform;
use crate::secret::Secret;
use crate::webhooks::forward::post_until_accepted;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest customer text quoted in a notification.
const QUOTE_CHARS: usize = 300;

/// A chat service notifications are formatted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Slack,
    Discord,
    Telegram,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Slack => "slack",
            Service::Discord => "discord",
            Service::Telegram => "telegram",
        }
    }

    fn named(name: &str) -> Option<Service> {
        match name {
            "slack" => Some(Service::Slack),
            "discord" => Some(Service::Discord),
            "telegram" => Some(Service::Telegram),
            _ => None,
        }
    }

    /// The service a URL belongs to, by its host.
    fn of(url: &crate::weburl::Url) -> Option<Service> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        match host.as_str() {
            "hooks.slack.com" => Some(Service::Slack),
            "discord.com" | "discordapp.com" | "ptb.discord.com" | "canary.discord.com" => {
                Some(Service::Discord)
            }
            "api.telegram.org" => Some(Service::Telegram),
            _ => None,
        }
    }
}

/// One place notifications go. The URL holds the service's token: a [`Secret`], which
/// `Debug` does not show.
#[derive(Debug, Clone)]
pub struct Target {
    pub service: Service,
    /// Where the message is posted (for Telegram, without its `chat_id` query).
    url: Secret,
    /// Telegram's chat.
    chat_id: Option<String>,
    /// Names the target in failure records and logs: the service and a digest of its URL.
    pub tag: String,
}

/// Reads `NOTIFY_URLS`: comma-separated URLs, each of a Slack incoming webhook
/// (`https://hooks.slack.com/services/...`), a Discord webhook
/// (`https://discord.com/api/webhooks/...`) or a Telegram bot's `sendMessage` with its chat
/// (`https://api.telegram.org/bot<token>/sendMessage?chat_id=<chat>`). A `slack:`, `discord:`
/// or `telegram:` prefix names the service of a URL on another host (a proxy, a test
/// endpoint). Errors never quote the value: it is a secret.
pub fn parse_targets(raw: &str) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for (n, entry) in raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let which = format!("entry {} of NOTIFY_URLS", n + 1);
        let (named, rest) = match entry.split_once(':') {
            Some((k, rest)) if Service::named(k).is_some() => (Service::named(k), rest),
            _ => (None, entry),
        };
        let mut url = crate::weburl::Url::parse(rest)
            .ok()
            .filter(crate::weburl::Url::is_http)
            .ok_or_else(|| format!("{which} is not an absolute http(s) URL"))?;
        let service = named.or_else(|| Service::of(&url)).ok_or_else(|| {
            format!("{which}: not a Slack, Discord or Telegram URL (prefix it with slack:, discord: or telegram:)")
        })?;
        let chat_id = match service {
            Service::Telegram => {
                let chat = url
                    .query_pairs()
                    .find(|(k, _)| k == "chat_id")
                    .map(|(_, v)| v.into_owned())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("{which}: a Telegram URL needs ?chat_id=<chat>"))?;
                if !url.path().ends_with("/sendMessage") {
                    return Err(format!(
                        "{which}: a Telegram URL is the bot's /bot<token>/sendMessage"
                    ));
                }
                url.clear_query();
                Some(chat)
            }
            _ => None,
        };
        let digest = Sha256::digest(entry.as_bytes());
        out.push(Target {
            service,
            url: Secret::new(url.to_string()),
            chat_id,
            tag: format!("{}-{}", service.as_str(), hex::encode(&digest[..4])),
        });
    }
    Ok(out)
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A customer wrote for the first time.
    NewConversation,
    /// A customer wrote while auto-replies are paused (a person is handling it).
    WhilePaused,
    /// A customer asked for a person (a handoff keyword).
    HandoffRequested,
    /// TikTok no longer accepts the account's authorisation.
    NeedsReauth,
    /// An auto-reply could not be sent after its retries (recorded as a failure).
    ReplyFailed,
}

/// One notification, as planned in a pending record: names and ids only, never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Stable across retries and replays of its event (what de-duplicates it).
    pub id: String,
    pub topic: Topic,
    pub account_id: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// The customer's handle.
    #[serde(default)]
    pub customer: Option<String>,
    /// What the customer wrote (the start of it).
    #[serde(default)]
    pub text: Option<String>,
    /// The error code of a failed reply, and the failure's id.
    #[serde(default)]
    pub detail: Option<String>,
}

impl Notice {
    pub fn new(topic: Topic, account: &str, id_of: &str) -> Notice {
        let topic_name = serde_json::to_value(topic)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Notice {
            id: format!("{topic_name}:{id_of}"),
            topic,
            account_id: account.to_string(),
            conversation_id: None,
            customer: None,
            text: None,
            detail: None,
        }
    }

    pub fn about(mut self, conversation: Option<&str>, customer: Option<&str>) -> Notice {
        self.conversation_id = conversation.map(str::to_string);
        self.customer = customer
            .filter(|c| !c.trim().is_empty())
            .map(str::to_string);
        self
    }

    pub fn quoting(mut self, text: Option<&str>) -> Notice {
        self.text = text.map(|t| {
            let mut q: String = t.chars().take(QUOTE_CHARS).collect();
            if t.chars().count() > QUOTE_CHARS {
                q.push('…');
            }
            q
        });
        self
    }

    /// The notification's text, plain (each service's escaping is applied by [`body`]).
    pub fn text(&self) -> String {
        let who = match &self.customer {
            Some(h) => format!("@{h}"),
            None => "A customer".to_string(),
        };
        let quote = self
            .text
            .as_ref()
            .map(|t| format!(": “{t}”"))
            .unwrap_or_default();
        let head = match self.topic {
            Topic::NewConversation => format!("New TikTok conversation: {who} wrote{quote}"),
            Topic::WhilePaused => {
                format!("{who} wrote while auto-replies are paused (a person is handling the conversation){quote}")
            }
            Topic::HandoffRequested => format!(
                "{who} asked for a person{quote}. Auto-replies are paused in this conversation."
            ),
            Topic::NeedsReauth => format!(
                "TikTok account {} needs to be connected again: TikTok no longer accepts its authorisation. Auto-replies and sends stop until it is reconnected.",
                self.account_id
            ),
            Topic::ReplyFailed => format!(
                "An auto-reply to {} could not be sent ({}). It is recorded as a failure and can be replayed.",
                who,
                self.detail.as_deref().unwrap_or("error")
            ),
        };
        match &self.conversation_id {
            Some(c) => format!("{head}\nAccount {} · conversation {c}", self.account_id),
            None => head,
        }
    }
}

/// Slack's `mrkdwn` reads `&`, `<` and `>` as markup.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The JSON a service takes for `notice`.
pub fn body(target: &Target, notice: &Notice) -> Value {
    let text = notice.text();
    match target.service {
        Service::Slack => crate::json::object!({ "text": slack_escape(&text) }),
        // No mention a customer types (@everyone) pings anyone.
        Service::Discord => {
            crate::json::object!({ "content": text, "allowed_mentions": { "parse": [] } })
        }
        Service::Telegram => crate::json::object!({
            "chat_id": target.chat_id, "text": text, "disable_web_page_preview": true,
        }),
    }
}

/// Posts `notice` to `target`, retried like a forward; the error and the attempts made when
/// the target keeps refusing it.
pub async fn deliver<P: Platform>(
    p: &P,
    target: &Target,
    notice: &Notice,
) -> std::result::Result<(), (Error, u32)> {
    let payload = body(target, notice).to_string();
    let url = target.url.expose();
    post_until_accepted(p, "notification", url, payload.as_bytes(), Headers::new).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_are_recognised_by_host_or_prefix_and_errors_never_quote_them() {
        let t = parse_targets(
            "https://hooks.slack.com/services/T0/B0/sekrit, https://discord.com/api/webhooks/1/tok,\
             https://api.telegram.org/bot123:ABC/sendMessage?chat_id=-10042 ,\
             telegram:http://127.0.0.1:9/bot1:x/sendMessage?chat_id=7",
        )
        .unwrap();
        let kinds: Vec<Service> = t.iter().map(|t| t.service).collect();
        assert_eq!(
            kinds,
            [
                Service::Slack,
                Service::Discord,
                Service::Telegram,
                Service::Telegram
            ]
        );
        assert_eq!(t[2].chat_id.as_deref(), Some("-10042"));
        assert_eq!(
            t[2].url.expose(),
            "https://api.telegram.org/bot123:ABC/sendMessage",
            "posted without the chat in the query"
        );
        assert_eq!(t[3].url.expose(), "http://127.0.0.1:9/bot1:x/sendMessage");
        assert!(t[0].tag.starts_with("slack-") && t[0].tag.len() == "slack-".len() + 8);
        assert!(!t
            .iter()
            .any(|t| t.tag.contains("sekrit") || t.tag.contains("ABC")));
        for bad in [
            "https://example.com/hook",
            // Hosts are compared punycoded: a look-alike (Cyrillic "о") is not Slack.
            "https://h\u{43e}\u{43e}ks.slack.com/services/T0/B0/sekrit",
            "https://hooks.slack.com.evil.example/services/T0/B0/sekrit",
            "ftp://hooks.slack.com/x",
            "https://api.telegram.org/bot1:x/sendMessage",
            "https://api.telegram.org/bot1:x/getMe?chat_id=1",
            "not a url sekrit",
        ] {
            let e = parse_targets(bad).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(!e.contains("sekrit") && !e.contains("bot1"), "{e}");
            assert!(e.contains("entry 1 of NOTIFY_URLS"), "{e}");
        }
        assert!(parse_targets(" , ").unwrap().is_empty());
    }

    #[test]
    fn each_service_gets_its_own_format() {
        let t = parse_targets(
            "slack:http://h/s,discord:http://h/d,telegram:http://h/bot1:x/sendMessage?chat_id=42",
        )
        .unwrap();
        let n = Notice::new(Topic::HandoffRequested, "biz-1", "m:1")
            .about(Some("c-1"), Some("maria"))
            .quoting(Some("<@here> & talk to a human"));
        assert_eq!(n.id, "handoff_requested:m:1");
        let slack = body(&t[0], &n);
        assert_eq!(
            slack["text"],
            "@maria asked for a person: “&lt;@here&gt; &amp; talk to a human”. Auto-replies are paused in this conversation.\nAccount biz-1 · conversation c-1"
        );
        let discord = body(&t[1], &n);
        assert!(discord["content"]
            .as_str()
            .unwrap()
            .contains("<@here> & talk"));
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        let tg = body(&t[2], &n);
        assert_eq!(
            (tg["chat_id"].clone(), tg["text"].clone()),
            (json!("42"), json!(n.text()))
        );
        let long = Notice::new(Topic::NewConversation, "a", "m:2").quoting(Some(&"x".repeat(400)));
        assert_eq!(long.text.as_ref().unwrap().chars().count(), QUOTE_CHARS + 1);
        let reauth = Notice::new(Topic::NeedsReauth, "biz-9", "t");
        assert!(reauth
            .text()
            .starts_with("TikTok account biz-9 needs to be connected again"));
    }
}
