//! `POST /v1/messages`: validation, image fetching, the capability check and the send.

use crate::auth::Role;
use crate::coordinator::protocol::{Begin, Call, Settle, Stored};
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::check_id;
use crate::http::extract::from_json;
use crate::http::extract::require_json;
use crate::http::{Request, Response};
use crate::ports::{Level, Platform};
use crate::tiktok::client::ConversationType;
use crate::tiktok::delivery::{Found, Outcome, Retry, RECONCILE_AFTER_MS};
use crate::tiktok::retry::transient_retries;
use crate::tiktok::retry::with_token;
use crate::tiktok::types::{Outgoing, Template};
use crate::tiktok::Client;
use serde::Deserialize;
use serde_json::{json, Value};

pub use crate::tiktok::types::SenderAction;

/// Images TikTok accepts.
pub const MAX_IMAGE_BYTES: usize = 3 * 1024 * 1024;

/// Largest `POST /v1/messages` body.
pub const MAX_SEND_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    account_id: String,
    conversation_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// A message id of this conversation to quote (text only).
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    image: Option<ImageRef>,
    #[serde(default)]
    share_post: Option<crate::rules::engine::SharePost>,
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageRef {
    #[serde(default)]
    media_id: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// A validated send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Ready for TikTok as it is.
    Message(Outgoing),
    /// An image to fetch and upload first.
    ImageUrl(crate::weburl::Url),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPlan {
    pub account: String,
    pub conversation: String,
    pub what: Planned,
}

impl Planned {
    fn kind(&self) -> &'static str {
        match self {
            Planned::Message(m) => m.kind(),
            Planned::ImageUrl(_) => "image",
        }
    }
}

const SEND_TYPES: &str = "text, image, share_post, template, typing, mark_read";

/// Validates a `POST /v1/messages` body; errors name the field.
pub fn validate_send(body: &[u8]) -> Result<SendPlan> {
    if body.len() > MAX_SEND_BODY {
        return Err(Error::PayloadTooLarge {
            limit: MAX_SEND_BODY,
        });
    }
    let r: SendRequest = from_json(body, Some("body"))?;
    check_id("account_id", &r.account_id)?;
    check_id("conversation_id", &r.conversation_id)?;
    // Each type carries its own field and nothing else.
    let given = [
        ("text", r.text.is_some()),
        ("reply_to", r.reply_to.is_some()),
        ("image", r.image.is_some()),
        ("share_post", r.share_post.is_some()),
        ("template", r.template.is_some()),
    ];
    let own: &[&str] = match r.kind.as_str() {
        "text" => &["text", "reply_to"],
        "image" => &["image"],
        "share_post" => &["share_post"],
        "template" => &["template"],
        "typing" | "mark_read" => &[],
        other => {
            return Err(Error::invalid(
                "type",
                format!(
                    "`{}` is not one of {SEND_TYPES}",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    if let Some((field, _)) = given.iter().find(|(f, set)| *set && !own.contains(f)) {
        let field = if own.is_empty() { "type" } else { field };
        return Err(Error::invalid(
            field,
            format!(
                "a {} message carries only {}",
                r.kind,
                if own.is_empty() {
                    "its type".to_string()
                } else {
                    own.join(" and ")
                }
            ),
        ));
    }
    let what = match r.kind.as_str() {
        "text" => {
            let t = r
                .text
                .ok_or_else(|| Error::invalid("text", "is required for type text"))?;
            let n = t.chars().count();
            if t.trim().is_empty() || n > crate::rules::engine::MAX_TEXT_CHARS {
                return Err(Error::invalid(
                    "text",
                    format!("must be 1 to 6000 characters (has {n})"),
                ));
            }
            if let Some(id) = &r.reply_to {
                check_id("reply_to", id)?;
            }
            Planned::Message(Outgoing::Text {
                text: t,
                reply_to: r.reply_to,
            })
        }
        "image" => {
            let img = r
                .image
                .ok_or_else(|| Error::invalid("image", "is required for type image"))?;
            match (img.media_id, img.url) {
                (Some(id), None) => {
                    check_id("image.media_id", &id)?;
                    Planned::Message(Outgoing::Image { media_id: id })
                }
                (None, Some(u)) => {
                    let url = crate::weburl::Url::parse(&u)
                        .map_err(|_| Error::invalid("image.url", "must be an absolute URL"))?;
                    if !url.is_http() || url.host_str().is_none() {
                        return Err(Error::invalid("image.url", "must be an http(s) URL"));
                    }
                    Planned::ImageUrl(url)
                }
                _ => {
                    return Err(Error::invalid(
                        "image",
                        "give exactly one of media_id or url",
                    ))
                }
            }
        }
        "share_post" => {
            let post = r
                .share_post
                .ok_or_else(|| Error::invalid("share_post", "is required for type share_post"))?;
            check_id("share_post.item_id", &post.item_id)?;
            Planned::Message(Outgoing::SharePost {
                item_id: post.item_id,
            })
        }
        "template" => {
            let template = r
                .template
                .ok_or_else(|| Error::invalid("template", "is required for type template"))?;
            template
                .check()
                .map_err(|(f, why)| Error::invalid(format!("template.{f}"), why))?;
            Planned::Message(Outgoing::Template { template })
        }
        kind => Planned::Message(Outgoing::Action {
            action: if kind == "typing" {
                SenderAction::Typing
            } else {
                SenderAction::MarkRead
            },
        }),
    };
    Ok(SendPlan {
        account: r.account_id,
        conversation: r.conversation_id,
        what,
    })
}

/// The image type from its first bytes: JPEG or PNG only.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Fetches an image for upload, enforcing the size cap and type.
/// Redirects followed when fetching an image, each one checked like the first URL.
const MAX_IMAGE_REDIRECTS: usize = 3;

/// Whether the Worker may fetch `url` for an image: http(s) on the default port, a host name
/// (never an IP literal, so no internal address by number), unless the host is listed in
/// `IMAGE_FETCH_ALLOWED_HOSTS` (local testing).
pub fn image_url_allowed(url: &crate::weburl::Url, allowed: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if allowed.iter().any(|a| *a == host_port || *a == host) {
        return url.is_http();
    }
    url.is_http()
        && url.port().is_none()
        && url.host_kind() == Some(crate::weburl::HostKind::Domain)
        && !is_localhost(host)
}

/// `localhost` and its subdomains, with or without the root's trailing dot (`localhost.`
/// resolves to the same machine).
fn is_localhost(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Fetches an image for upload, enforcing the size cap and type. Redirects are followed by
/// hand, each hop checked again. Every failure to fetch answers the same error, so the Worker
/// tells nothing about hosts it can reach.
async fn fetch_image<P: Platform>(
    ctx: &Ctx<'_, P>,
    url: &crate::weburl::Url,
) -> Result<(Vec<u8>, &'static str)> {
    let allowed = &ctx.config()?.image_fetch_allowed_hosts;
    let bad = |reason: String| Error::invalid("image.url", reason);
    let unreachable = || {
        bad(
            "could not be fetched as an image (check that the URL is public and answers 200)"
                .into(),
        )
    };
    let mut at = url.clone();
    let mut hops = 0;
    let resp = loop {
        if !image_url_allowed(&at, allowed) {
            return Err(if hops == 0 {
                bad("must be a public http(s) URL with a host name and the default port".into())
            } else {
                unreachable()
            });
        }
        let resp = ctx
            .p
            .send(crate::http::Outbound {
                method: crate::http::Method::Get,
                url: at.to_string(),
                headers: crate::http::Headers::new().with("accept", "image/png, image/jpeg"),
                body: None,
                timeout_ms: 10_000,
                max_body: Some(MAX_IMAGE_BYTES),
            })
            .await
            .map_err(|e| match e {
                crate::ports::TransportError::TooLarge => bad(format!(
                    "image is larger than {MAX_IMAGE_BYTES} bytes, TikTok's limit"
                )),
                _ => unreachable(),
            })?;
        if !(300..400).contains(&resp.status) {
            break resp;
        }
        hops += 1;
        let next = resp
            .headers
            .get("location")
            .and_then(|l| at.join(l).ok())
            .filter(|_| hops <= MAX_IMAGE_REDIRECTS)
            .ok_or_else(unreachable)?;
        at = next;
    };
    if resp.status != 200 {
        return Err(unreachable());
    }
    if resp.body.len() > MAX_IMAGE_BYTES {
        return Err(bad(format!(
            "image is {} bytes; TikTok accepts at most {MAX_IMAGE_BYTES}",
            resp.body.len()
        )));
    }
    let ct = sniff_image(&resp.body).ok_or_else(|| bad("is not a JPEG or PNG image".into()))?;
    Ok((resp.body, ct))
}

/// How long TikTok's answer on image sending is trusted, per conversation.
const CAPABILITY_TTL_SECS: u64 = 6 * 3600;

/// Refuses an image where TikTok does not allow one: both sides must be in markets with
/// image messaging. Asked once per conversation and cached.
/// `STATE` key of the cached image capability of one conversation (its id hashed).
fn capability_key(account: &str, conversation: &str) -> String {
    use sha2::Digest;
    format!(
        "cap:image:{account}:{}",
        hex::encode(&sha2::Sha256::digest(conversation.as_bytes())[..12])
    )
}

async fn check_image_allowed<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &Client<'_, P>,
    account: &str,
    conversation: &str,
) -> Result<()> {
    let key = capability_key(account, conversation);
    let allowed = match ctx.p.get(crate::ports::Bucket::State, &key).await? {
        Some(v) => v == "1",
        None => {
            let allowed = with_token(ctx, account, async |t: &str| {
                transient_retries(ctx.p, async || {
                    client
                        .image_capability(t, account, conversation, ConversationType::Single)
                        .await
                })
                .await
            })
            .await?;
            let v = if allowed { "1" } else { "0" };
            if let Err(e) = ctx
                .p
                .put(
                    crate::ports::Bucket::State,
                    &key,
                    v,
                    Some(CAPABILITY_TTL_SECS),
                )
                .await
            {
                ctx.log(
                    Level::Warn,
                    "capability not cached",
                    crate::json::object!({"account_id": account, "code": e.code()}),
                );
            }
            allowed
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Refused {
            code: "image_not_allowed",
            message: "TikTok does not allow image messages in this conversation (image messaging needs both the business and the customer in markets where it is available); send text instead".into(),
        })
    }
}

async fn perform_send<P: Platform>(ctx: &Ctx<'_, P>, plan: &SendPlan) -> Result<Value> {
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    let (acct, conv) = (&plan.account, &plan.conversation);
    let mut media_id = None;
    let outgoing = match &plan.what {
        Planned::Message(m) => {
            if let Outgoing::Image { media_id: id } = m {
                check_image_allowed(ctx, &client, acct, conv).await?;
                media_id = Some(id.clone());
            }
            m.clone()
        }
        Planned::ImageUrl(u) => {
            // Checks the account and the conversation before fetching anything.
            ctx.p.access_token(acct, None).await?;
            check_image_allowed(ctx, &client, acct, conv).await?;
            let (bytes, ct) = fetch_image(ctx, u).await?;
            let id = with_token(ctx, acct, async |t: &str| {
                transient_retries(ctx.p, async || {
                    client.upload_image(t, acct, &bytes, ct).await
                })
                .await
            })
            .await?;
            media_id = Some(id.clone());
            Outgoing::Image { media_id: id }
        }
    };
    // Retried only on TikTok's error codes; an answer that leaves the outcome unknown is
    // reported as such (`details.outcome`), never retried blindly.
    let sent = match crate::tiktok::delivery::deliver(
        ctx.p,
        &client,
        acct,
        conv,
        &outgoing,
        Retry::ServerErrors,
    )
    .await
    {
        Outcome::Sent(s) => s,
        Outcome::NotSent(e, _) | Outcome::Unknown(e, _) => return Err(e),
    };
    // The inbox keeps what was sent from TikTok's echo of it (`im_send_msg`, source API), as it
    // keeps everything else from the webhook: no second round trip on the send path. A
    // mark-read has no echo: the account's actor hears of it, to clear the unread count.
    if matches!(
        outgoing,
        Outgoing::Action {
            action: SenderAction::MarkRead
        }
    ) {
        let record = Call::Record {
            account: acct.clone(),
            conversation: conv.clone(),
            message_id: None,
            message: outgoing.clone(),
        };
        if let Err(e) = ctx.p.call(record).await {
            ctx.log(
                Level::Warn,
                "mark-read not kept in the inbox",
                crate::json::object!({"account_id": acct, "conversation_id": conv, "code": e.code()}),
            );
        }
    }
    let mut out = crate::json::object!({
        "account_id": acct, "conversation_id": conv, "type": plan.what.kind(),
        "message_id": sent.message_id,
    });
    if let Some(m) = media_id {
        out["media_id"] = json!(m);
    }
    Ok(out)
}

/// `POST /v1/messages`.
pub async fn send_message<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    require_json(req)?;
    let plan = validate_send(&req.body)?;
    ctx.authorize_account(req, &plan.account)?;
    let Some(key) = req.headers.get("idempotency-key") else {
        let v = perform_send(ctx, &plan).await?;
        return Ok(Response::json(200, &v));
    };
    crate::messages::idempotency::check_key(key)?;
    let key_hash = crate::messages::idempotency::hash(key.as_bytes());
    // Canonical JSON (sorted keys), so formatting differences do not count as another body.
    let canonical: Value = crate::json::from_slice(&req.body).unwrap_or(Value::Null);
    let body_hash = crate::messages::idempotency::hash(canonical.to_string().as_bytes());
    let keyed = Keyed {
        plan: &plan,
        key_hash: &key_hash,
        body_hash: &body_hash,
    };
    match ctx
        .p
        .idempotency_begin(&plan.account, &key_hash, &body_hash)
        .await?
    {
        Begin::Replay { response } => {
            let mut r = Response::json(
                response.status,
                &crate::json::from_str::<Value>(&response.body).unwrap_or(Value::Null),
            );
            r.headers.set("idempotent-replayed", "true");
            Ok(r)
        }
        Begin::New => keyed.send(ctx).await,
        Begin::Reconcile {
            since_ms,
            settled_ms,
        } => {
            // An earlier attempt with this key may have reached the customer: look first.
            let client = Client::for_config(ctx.p, cfg);
            let probe = match &plan.what {
                Planned::Message(m) => m.clone(),
                Planned::ImageUrl(_) => Outgoing::Image {
                    media_id: String::new(),
                },
            };
            let found = crate::tiktok::delivery::find_sent(
                ctx.p,
                &client,
                &plan.account,
                &plan.conversation,
                &probe,
                since_ms,
                &[],
            )
            .await;
            let wait_ms = (settled_ms + RECONCILE_AFTER_MS).saturating_sub(ctx.p.now_ms());
            match found {
                Ok(Found::Sent(id)) => {
                    let v = crate::json::object!({
                        "account_id": plan.account, "conversation_id": plan.conversation,
                        "type": plan.what.kind(), "message_id": id, "reconciled": true,
                    });
                    keyed.settle(ctx, 200, v.to_string(), Settle::Keep).await;
                    let mut r = Response::json(200, &v);
                    r.headers.set("idempotent-replayed", "true");
                    Ok(r)
                }
                Ok(Found::Unsure) => {
                    keyed
                        .unclaim(ctx, Error::Conflict(
                            "the previous attempt with this Idempotency-Key cannot be confirmed: the conversation has moved on at TikTok since; check it before sending again (with another key)".into(),
                        ))
                        .await
                }
                Ok(Found::Absent) if wait_ms > 0 => {
                    keyed
                        .unclaim(ctx, Error::Conflict(format!(
                            "the previous attempt with this Idempotency-Key may still reach TikTok; it is looked for again in {} s before anything is sent, retry then",
                            wait_ms.div_ceil(1000)
                        )))
                        .await
                }
                // Not at TikTok after the wait: it was never sent. Send now, under the claim.
                Ok(Found::Absent) => keyed.send(ctx).await,
                Err(e) => keyed.unclaim(ctx, e).await,
            }
        }
    }
}

/// A send under a claimed Idempotency-Key.
struct Keyed<'a> {
    plan: &'a SendPlan,
    key_hash: &'a str,
    body_hash: &'a str,
}

impl Keyed<'_> {
    async fn send<P: Platform>(&self, ctx: &Ctx<'_, P>) -> Result<Response> {
        let result = perform_send(ctx, self.plan).await;
        let (status, body, settle) = match &result {
            Ok(v) => (200, v.to_string(), Settle::Keep),
            Err(e) => {
                // Only the send itself can have reached the customer.
                let sending = matches!(
                    e,
                    Error::Upstream {
                        endpoint: "/business/message/send/",
                        ..
                    }
                );
                let settle = if sending && crate::error::is_ambiguous(e) {
                    Settle::Unknown
                } else if e.status() >= 500 || e.status() == 429 || e.status() == 409 {
                    Settle::Release
                } else {
                    Settle::Keep
                };
                (e.status(), e.body(&ctx.request_id).to_string(), settle)
            }
        };
        self.settle(ctx, status, body, settle).await;
        result.map(|v| Response::json(200, &v))
    }

    /// Answers `e` and leaves the key as it was before this request claimed it.
    async fn unclaim<P: Platform>(&self, ctx: &Ctx<'_, P>, e: Error) -> Result<Response> {
        self.settle(
            ctx,
            e.status(),
            e.body(&ctx.request_id).to_string(),
            Settle::Unclaim,
        )
        .await;
        Err(e)
    }

    async fn settle<P: Platform>(
        &self,
        ctx: &Ctx<'_, P>,
        status: u16,
        body: String,
        settle: Settle,
    ) {
        let stored = Stored {
            status,
            body,
            settle,
        };
        if let Err(e) = ctx
            .p
            .idempotency_finish(&self.plan.account, self.key_hash, self.body_hash, stored)
            .await
        {
            ctx.log(
                Level::Warn,
                "idempotency record not stored",
                crate::json::object!({"code": e.code()}),
            );
        }
    }
}

// ---------- webhook subscription ----------

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> (String, String) {
        match validate_send(body.as_bytes()).unwrap_err() {
            Error::Invalid { field, reason } => (field, reason),
            Error::InvalidJson(m) => ("<json>".into(), m),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn valid_sends() {
        let p = validate_send(
            br#"{"account_id":"a","conversation_id":"c+1","type":"text","text":"hi"}"#,
        )
        .unwrap();
        assert_eq!(p.what, Planned::Message(Outgoing::text("hi")));
        assert_eq!(p.conversation, "c+1");
        let p = validate_send(
            br#"{"account_id":"a","conversation_id":"c","type":"image","image":{"media_id":"m"}}"#,
        )
        .unwrap();
        assert_eq!(
            p.what,
            Planned::Message(Outgoing::Image {
                media_id: "m".into()
            })
        );
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"image","image":{"url":"https://x.example/a.png"}}"#).unwrap();
        assert!(matches!(p.what, Planned::ImageUrl(_)));
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"mark_read"}"#)
            .unwrap();
        assert_eq!(
            p.what,
            Planned::Message(Outgoing::Action {
                action: SenderAction::MarkRead
            })
        );
        let six_k = format!(
            r#"{{"account_id":"a","conversation_id":"c","type":"text","text":"{}"}}"#,
            "é".repeat(6000)
        );
        assert!(
            validate_send(six_k.as_bytes()).is_ok(),
            "6000 characters, not bytes"
        );
    }

    #[test]
    fn invalid_sends_name_the_field() {
        let cases = [
            (
                r#"{"conversation_id":"c","type":"text","text":"x"}"#,
                "account_id",
            ),
            (
                r#"{"account_id":"a","type":"text","text":"x"}"#,
                "conversation_id",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"share_post","share_post":{}}"#,
                "share_post.item_id",
            ),
            (
                r#"{"account_id":"","conversation_id":"c","type":"text","text":"x"}"#,
                "account_id",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"video"}"#,
                "type",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"text"}"#,
                "text",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"text","text":"   "}"#,
                "text",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"text","text":"x","image":{"media_id":"m"}}"#,
                "image",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","text":"x"}"#,
                "text",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image"}"#,
                "image",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","image":{}}"#,
                "image",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","image":{"media_id":"m","url":"https://x/"}}"#,
                "image",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","image":{"url":"ftp://x/a.png"}}"#,
                "image.url",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","image":{"url":"nope"}}"#,
                "image.url",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"typing","text":"x"}"#,
                "type",
            ),
            (
                r#"{"account_id":5,"conversation_id":"c","type":"text","text":"x"}"#,
                "account_id",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"text","text":"x","extra":1}"#,
                "extra",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c\u0000","type":"text","text":"x"}"#,
                "conversation_id",
            ),
            (r#"{"account_id":"a""#, "<json>"),
        ];
        for (body, field) in cases {
            assert_eq!(err(body).0, field, "{body}");
        }
        let long = format!(
            r#"{{"account_id":"a","conversation_id":"c","type":"text","text":"{}"}}"#,
            "a".repeat(6001)
        );
        assert!(err(&long).1.contains("6001"));
    }

    #[test]
    fn share_posts_cards_and_quoted_replies() {
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"text","text":"yes","reply_to":"7560938211745563137"}"#).unwrap();
        assert_eq!(
            p.what,
            Planned::Message(Outgoing::Text {
                text: "yes".into(),
                reply_to: Some("7560938211745563137".into())
            })
        );
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"share_post","share_post":{"item_id":"755"}}"#).unwrap();
        assert_eq!(p.what.kind(), "share_post");
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"template","template":{"type":"QA_LINK_CARD","title":"Size?","buttons":[{"title":"Medium (EU 38-40)","id":"m"}]}}"#).unwrap();
        assert_eq!(p.what.kind(), "template");
        let cases = [
            (
                r#"{"account_id":"a","conversation_id":"c","type":"image","image":{"media_id":"m"},"reply_to":"x"}"#,
                "reply_to",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"share_post"}"#,
                "share_post",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"share_post","share_post":{"item_id":""}}"#,
                "share_post.item_id",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"template","template":{"type":"QA_BUTTON_CARD","title":"T","buttons":[{"title":"x","id":"a"},{"title":"y","id":"b"},{"title":"z","id":"c"},{"title":"w","id":"d"}]}}"#,
                "template.buttons",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"template","template":{"type":"QA_BUTTON_CARD","title":"T","buttons":[{"title":"twenty-one characters","id":"a"}]}}"#,
                "template.buttons[0].title",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"template","template":{"type":"CAROUSEL","title":"T","buttons":[]}}"#,
                "template.type",
            ),
            (
                r#"{"account_id":"a","conversation_id":"c","type":"text","text":"x","template":{"type":"QA_LINK_CARD","title":"T","buttons":[]}}"#,
                "template",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(err(body).0, field, "{body}");
        }
    }

    #[test]
    fn image_urls_need_a_public_host_name_on_the_default_port() {
        let ok = |u: &str, allowed: &[String]| {
            image_url_allowed(&crate::weburl::Url::parse(u).unwrap(), allowed)
        };
        assert!(ok("https://cdn.example/a.png", &[]));
        for bad in [
            "http://127.0.0.1/a.png",
            "http://[::1]/a.png",
            "https://cdn.example:8443/a.png",
            "http://localhost/a.png",
            "http://localhost./a.png",
            "http://img.LOCALHOST./a.png",
            "ftp://cdn.example/a.png",
            // The parser maps full-width letters and digits before the host is checked.
            "http://\u{ff4c}\u{ff4f}\u{ff43}\u{ff41}\u{ff4c}\u{ff48}\u{ff4f}\u{ff53}\u{ff54}/a.png",
            "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/a.png",
            "http://0x7f.1/a.png",
        ] {
            assert!(!ok(bad, &[]), "{bad}");
        }
        // Unicode host names are punycoded domains, public like any other.
        assert!(ok("https://b\u{fc}cher.example/a.png", &[]));
        assert!(ok(
            "http://127.0.0.1:9797/_sim/images/ok.png",
            &["127.0.0.1".into()]
        ));
    }

    #[test]
    fn images_are_sniffed_by_magic_bytes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
