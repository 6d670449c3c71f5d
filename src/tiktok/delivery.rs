//! Sending one message to TikTok so that a customer never gets it twice.
//!
//! A send is retried only when TikTok said it did not send (an error code: throttling or its
//! own failures), never after an answer that leaves the outcome unknown: a timeout, an HTTP
//! error from something in front of TikTok, a malformed answer or a broken connection. Such an
//! attempt is reported as [`Outcome::Unknown`] and reconciled against TikTok's listing
//! ([`find_sent`]) before anything is sent again.

use crate::error::{is_ambiguous, Error, Result};
use crate::ports::{Level, Platform};
use crate::tiktok::codes::ApiCode;
use crate::tiktok::retry::{backoff_ms, with_fresh_token, ATTEMPTS};
use crate::tiktok::types::{ListedMessage, Outgoing, Sent};
use crate::tiktok::Client;

/// How long after an attempt of unknown outcome its message may show in TikTok's listing.
pub const RECONCILE_AFTER_MS: u64 = 30_000;
/// How far TikTok's clock may be behind ours when matching a listed message to an attempt.
const CLOCK_SKEW_MS: i64 = 15_000;

/// What happened to one send.
#[derive(Debug)]
pub enum Outcome {
    Sent(Sent),
    /// TikTok refused it (or we never reached a point where it could have been sent).
    NotSent(Error, u32),
    /// It may or may not have reached the customer: reconcile before sending again.
    Unknown(Error, #[cfg_attr(not(test), allow(dead_code))] u32),
}

/// TikTok answered with a code that means "not done, try later".
pub fn is_transient_code(e: &Error) -> bool {
    e.api_code().is_some_and(ApiCode::is_transient)
}

/// Which of TikTok's "not sent, try later" codes a send retries with backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// None (best-effort sender actions).
    Never,
    /// TikTok's own failures (50000, 50002, 51065); throttling (40100) goes back to the caller.
    ServerErrors,
    /// TikTok's own failures and throttling (auto-replies, which nobody waits for).
    AllTransient,
}

impl Retry {
    fn covers(self, e: &Error) -> bool {
        match self {
            Retry::Never => false,
            Retry::ServerErrors => {
                is_transient_code(e) && e.api_code() != Some(ApiCode::RateLimited)
            }
            Retry::AllTransient => is_transient_code(e),
        }
    }
}

/// Sends `msg` with the account's token: a rejected token is refreshed (single-flight) and
/// the send tried once more; TikTok's transient codes are retried with backoff as `retry`
/// says; anything ambiguous stops at once.
pub async fn deliver<P: Platform>(
    p: &P,
    client: &Client<'_, P>,
    account: &str,
    conversation: &str,
    msg: &Outgoing,
    retry: Retry,
) -> Outcome {
    let attempts = std::cell::Cell::new(0u32);
    let sent = with_fresh_token(p, account, async |token: &str| {
        let mut attempt = 0;
        loop {
            attempt += 1;
            attempts.set(attempts.get() + 1);
            match client.send(token, account, conversation, msg).await {
                Err(e) if !is_ambiguous(&e) && retry.covers(&e) && attempt < ATTEMPTS => {
                    let mut j = [0u8; 1];
                    p.fill(&mut j);
                    p.sleep(backoff_ms(attempt, j[0])).await;
                }
                other => return other,
            }
        }
    })
    .await;
    match sent {
        Ok(s) => Outcome::Sent(s),
        Err(e) if is_ambiguous(&e) => Outcome::Unknown(e, attempts.get()),
        Err(e) => Outcome::NotSent(e, attempts.get()),
    }
}

/// Whether a listed message is the one `msg` would have created.
fn same_content(listed: &ListedMessage, msg: &Outgoing) -> bool {
    let kind = listed
        .message_type
        .as_deref()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match msg {
        Outgoing::Text { text, .. } => {
            kind == "TEXT" && listed.text.as_ref().is_some_and(|t| &t.body == text)
        }
        Outgoing::Image { media_id } => {
            kind == "IMAGE"
                && (media_id.is_empty()
                    || listed
                        .image
                        .as_ref()
                        .and_then(|i| i.media_id.as_deref())
                        .is_none_or(|m| m == media_id))
        }
        Outgoing::SharePost { .. } => kind == "SHARE_POST",
        Outgoing::Template { template } => {
            kind == "TEMPLATE"
                && listed
                    .template
                    .as_ref()
                    .and_then(|t| t.get("title"))
                    .and_then(|t| t.as_str())
                    .is_none_or(|t| t == template.title)
        }
        Outgoing::Action { .. } => false,
    }
}

/// What TikTok's listing says about an attempt of unknown outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// It went out: TikTok's id of the message.
    Sent(String),
    /// It is not there, and the listing reaches back before the attempt: it was not sent.
    Absent,
    /// Not among the 20 latest, which all came after the attempt: it may be further back.
    Unsure,
}

/// The listing TikTok gives (its latest messages).
const LISTING_SIZE: usize = 20;

/// Looks in TikTok's listing (the 20 latest messages) for a message the business sent
/// through the API at or after `since_ms` with the content of `msg`, whose id is not one of
/// `known` (messages already accounted for).
pub async fn find_sent<P: Platform>(
    p: &P,
    client: &Client<'_, P>,
    account: &str,
    conversation: &str,
    msg: &Outgoing,
    since_ms: u64,
    known: &[String],
) -> Result<Found> {
    let token = p.access_token(account, None).await?;
    let page = match client
        .list_messages(token.expose(), account, conversation)
        .await
    {
        Ok(page) => page,
        // TikTok knows no such conversation: nothing can have been sent to it.
        Err(e)
            if matches!(
                e.api_code(),
                Some(ApiCode::InvalidParameter | ApiCode::NotFound)
            ) =>
        {
            return Ok(Found::Absent)
        }
        Err(e) => return Err(e),
    };
    let found = page.messages.iter().find(|m| {
        let ours = m.from_user.as_ref().is_some_and(|u| {
            u.id.as_deref() == Some(account)
                || u.role
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("business_account"))
        });
        let by_api = m
            .message_tag
            .as_ref()
            .and_then(|t| t.source.as_deref())
            .is_none_or(|s| s.eq_ignore_ascii_case("API"));
        let recent = m
            .timestamp
            .is_none_or(|t| t >= since_ms as i64 - CLOCK_SKEW_MS);
        ours && by_api && recent && !known.contains(&m.message_id) && same_content(m, msg)
    });
    p.log(
        Level::Info,
        "send outcome reconciled",
        crate::json::object!({"account_id": account, "conversation_id": conversation,
               "found": found.is_some(), "message_id": found.map(|m| &m.message_id)}),
    );
    if let Some(m) = found {
        return Ok(Found::Sent(m.message_id.clone()));
    }
    let oldest = page.messages.iter().filter_map(|m| m.timestamp).min();
    let full = page.messages.len() >= LISTING_SIZE;
    Ok(match oldest {
        Some(t) if full && t > since_ms as i64 - CLOCK_SKEW_MS => Found::Unsure,
        _ => Found::Absent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UpstreamFailure;
    use crate::tiktok::types::MessagePage;

    #[test]
    fn ambiguity_classification() {
        let up = |failure| Error::Upstream {
            endpoint: "send",
            failure,
            request_id: None,
        };
        assert!(is_ambiguous(&up(UpstreamFailure::Timeout)));
        assert!(is_ambiguous(&up(UpstreamFailure::Http { status: 502 })));
        assert!(is_ambiguous(&up(UpstreamFailure::Malformed)));
        assert!(is_ambiguous(&up(UpstreamFailure::Unreachable)));
        let code = |c| {
            up(UpstreamFailure::Api {
                code: c,
                message: String::new(),
            })
        };
        assert!(!is_ambiguous(&code(51065)));
        assert!(is_transient_code(&code(51065)) && is_transient_code(&code(40100)));
        assert!(!is_transient_code(&code(40064)));
    }

    #[test]
    fn listed_messages_match_by_content() {
        let fixture = crate::testutil::fixtures::fixture("content-list.response.json");
        let page: MessagePage = serde_json::from_value(fixture["data"].clone()).unwrap();
        let reply = page
            .messages
            .iter()
            .find(|m| m.message_id == "7560938907334426625")
            .unwrap();
        assert!(same_content(
            reply,
            &Outgoing::text("Yes, size M is back in stock.")
        ));
        assert!(!same_content(reply, &Outgoing::text("Yes")));
        assert!(!same_content(
            reply,
            &Outgoing::Image {
                media_id: String::new()
            }
        ));
    }
}
