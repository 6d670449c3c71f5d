//! TikTok pass-through listings: conversations, messages and message media.

use crate::auth::Role;
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::ctx::Ctx;
use crate::http::extract::check_id;
use crate::http::extract::id_param;
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::tiktok::client::ConversationType;
use crate::tiktok::retry::with_token;
use crate::tiktok::types::{ListedMessage, MediaIn, MessagePage, Participant};
use crate::tiktok::Client;
use serde_json::{json, Value};

/// `GET /v1/conversations?source=tiktok&account_id&type=STRANGER|SINGLE&cursor&limit`:
/// TikTok's own listing.
pub async fn list_conversations<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
    ctx.authorize_account(req, &account)?;
    let kind = match req.query("type") {
        None => ConversationType::Single,
        Some(t) => ConversationType::parse(&t)
            .ok_or_else(|| Error::invalid("type", "must be STRANGER or SINGLE"))?,
    };
    let cursor = match req.query("cursor") {
        Some(c) => {
            check_id("cursor", &c)?;
            Some(c)
        }
        None => None,
    };
    let limit = match req.query("limit") {
        Some(l) => Some(
            l.parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 100"))?,
        ),
        None => None,
    };
    let client = Client::for_config(ctx.p, cfg);
    let page = with_token(ctx, &account, async |t: &str| {
        client
            .list_conversations(t, &account, kind, cursor.as_deref(), limit)
            .await
    })
    .await?;
    Ok(Response::json(
        200,
        &crate::json::object!({
            "account_id": account, "source": "tiktok", "type": kind.as_str(),
            "conversations": page.conversations.iter().map(|c| crate::json::object!({
                "id": c.conversation_id, "updated_at": c.update_time, "referral": c.referral,
            })).collect::<Vec<_>>(),
            "has_more": page.has_more, "cursor": page.cursor.filter(|c| !c.is_empty() && page.has_more),
        }),
    ))
}

/// One listed message in our shape: lower-case enums, direction from the sender.
fn message_json(m: &ListedMessage, business_id: &str) -> Value {
    let from_business = m.from_user.as_ref().is_some_and(|u| {
        u.id.as_deref() == Some(business_id)
            || u.role
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("business_account"))
    });
    let lower = |s: &Option<String>| s.as_deref().map(str::to_ascii_lowercase);
    let mut v = crate::json::object!({
        "id": m.message_id,
        "type": lower(&m.message_type),
        "timestamp_ms": m.timestamp,
        "direction": if from_business { "outbound" } else { "inbound" },
        "source": m.message_tag.as_ref().and_then(|t| t.source.as_deref()).map(str::to_ascii_lowercase),
        "sender": m.sender, "recipient": m.recipient,
    });
    let mut put = |k: &str, x: Value| {
        if !x.is_null() {
            v[k] = x;
        }
    };
    put("text", json!(m.text.as_ref().map(|t| &t.body)));
    put("image", MediaIn::api_json(&m.image));
    put("video", MediaIn::api_json(&m.video));
    put(
        "share_post",
        json!(m
            .share_post
            .as_ref()
            .map(|p| crate::json::object!({"embed_url": p.embed_url}))),
    );
    put("template", m.template.clone().unwrap_or(Value::Null));
    put("sticker", m.sticker.clone().unwrap_or(Value::Null));
    put("emoji", m.emoji.clone().unwrap_or(Value::Null));
    put("auto_message_type", json!(lower(&m.auto_message_type)));
    put(
        "reply_to",
        json!(m
            .referenced_message_info
            .as_ref()
            .and_then(|r| r.referenced_message_id.as_ref())),
    );
    if !m.reactions.is_empty() {
        v["reactions"] = json!(m.reactions);
    }
    v
}

fn participant_json(p: &Participant) -> Value {
    crate::json::object!({
        "role": p.role.as_deref().map(str::to_ascii_lowercase), "id": p.id,
        "display_name": p.display_name, "profile_image": p.profile_image,
        "is_follower": p.is_follower,
    })
}

/// The checks of a route about one conversation of one account: a sender key allowed for
/// the account, valid ids. Returns the configuration and the account.
pub(crate) fn conversation_scope<'c, P: Platform>(
    ctx: &'c Ctx<'_, P>,
    req: &Request,
    conversation: &str,
) -> Result<(&'c crate::config::Config, String)> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
    ctx.authorize_account(req, &account)?;
    check_id("conversation_id", conversation)?;
    Ok((cfg, account))
}

/// `GET /v1/conversations/{id}/messages?account_id&source=tiktok`: TikTok's 20 latest
/// messages, oldest first, with the two participants.
pub async fn list_messages<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
) -> Result<Response> {
    let (cfg, account) = conversation_scope(ctx, req, conversation)?;
    let client = Client::for_config(ctx.p, cfg);
    let mut page: MessagePage = with_token(ctx, &account, async |t: &str| {
        client.list_messages(t, &account, conversation).await
    })
    .await?;
    // TikTok does not document the order; answer oldest first, like a chat.
    page.messages = oldest_first(std::mem::take(&mut page.messages));
    Ok(Response::json(
        200,
        &crate::json::object!({
            "account_id": account, "conversation_id": conversation, "source": "tiktok",
            "messages": page.messages.iter().map(|m| message_json(m, &account)).collect::<Vec<_>>(),
            "participants": page.participants.iter().map(participant_json).collect::<Vec<_>>(),
            "has_more": false,
        }),
    ))
}

/// `messages` by timestamp, a stable sort (of a page at most): each message goes after those
/// not later than it, without a sort routine compiled for this one list.
fn oldest_first(messages: Vec<ListedMessage>) -> Vec<ListedMessage> {
    let at = |m: &ListedMessage| m.timestamp.unwrap_or(0);
    let mut sorted: Vec<ListedMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        // In order already (the common case): at the end, without a search or a shift.
        if sorted.last().is_none_or(|o| at(o) <= at(&m)) {
            sorted.push(m);
            continue;
        }
        let i = sorted.partition_point(|o| at(o) <= at(&m));
        sorted.insert(i, m);
    }
    sorted
}

/// `GET /v1/conversations/{id}/messages/{message_id}/media?account_id[&media_id][&media_type]`:
/// a download URL for a customer's image or video, valid 24 h. TikTok only serves it with
/// the account's access token, so `?download=1` fetches it through the Worker instead.
pub async fn message_media<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
    message: &str,
) -> Result<Response> {
    let (cfg, account) = conversation_scope(ctx, req, conversation)?;
    check_id("message_id", message)?;
    let media_type = match req.query("media_type").as_deref() {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("image") => Some("IMAGE"),
        Some(t) if t.eq_ignore_ascii_case("video") => Some("VIDEO"),
        Some(_) => return Err(Error::invalid("media_type", "must be image or video")),
    };
    let client = Client::for_config(ctx.p, cfg);
    let (media_id, media_type) = match req.query("media_id") {
        Some(id) => {
            check_id("media_id", &id)?;
            (id, media_type.unwrap_or("IMAGE"))
        }
        None => {
            // Found in TikTok's listing (the 20 latest messages).
            let page = with_token(ctx, &account, async |t: &str| {
                client.list_messages(t, &account, conversation).await
            })
            .await?;
            let m = page
                .messages
                .iter()
                .find(|m| m.message_id == message)
                .ok_or_else(|| Error::Missing {
                    what: format!(
                        "message {message} among the conversation's latest messages (give media_id)"
                    ),
                })?;
            match (&m.image, &m.video) {
                (Some(i), _) if i.media_id.is_some() => {
                    (i.media_id.clone().unwrap_or_default(), "IMAGE")
                }
                (_, Some(v)) if v.media_id.is_some() => {
                    (v.media_id.clone().unwrap_or_default(), "VIDEO")
                }
                _ => {
                    return Err(Error::Missing {
                        what: format!("media in message {message}"),
                    })
                }
            }
        }
    };
    let got = with_token(ctx, &account, async |t: &str| {
        client
            .media_download(t, &account, conversation, message, &media_id, media_type)
            .await
    })
    .await?;
    if req.query("download").as_deref() == Some("1") {
        return download_media(ctx, &account, &got.download_url).await;
    }
    Ok(Response::json(
        200,
        &crate::json::object!({
            "account_id": account, "conversation_id": conversation, "message_id": message,
            "media_id": media_id, "media_type": media_type.to_ascii_lowercase(),
            "download_url": got.download_url, "expires_in_secs": 86_400,
            "note": "TikTok serves this URL only with the account's access token in `x-user`; add download=1 to fetch it through the Worker",
        }),
    ))
}

/// Whether the account's access token may be sent to `url` for a media download: https on
/// the default port of a TikTok host, or exactly the configured API origin (the simulator).
pub fn media_url_allowed(url: &crate::weburl::Url, api_base: &str) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let tiktok_host = ["tiktok.com", "tiktokcdn.com", "tiktokv.com"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")));
    let tiktok_https = tiktok_host && url.scheme() == "https" && url.port().is_none();
    let own_api = crate::weburl::Url::parse(api_base).is_ok_and(|a| a.origin() == url.origin());
    tiktok_https || own_api
}

/// Largest media file passed through the Worker.
const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

async fn download_media<P: Platform>(
    ctx: &Ctx<'_, P>,
    account: &str,
    url: &str,
) -> Result<Response> {
    let parsed = crate::weburl::Url::parse(url).map_err(|_| Error::Upstream {
        endpoint: "/business/message/media/download/",
        failure: UpstreamFailure::Malformed,
        request_id: None,
    })?;
    if !media_url_allowed(&parsed, &ctx.config()?.api_base) {
        return Err(Error::Refused {
            code: "tiktok_media_host_refused",
            message: "TikTok's download link points outside TikTok's hosts; the access token is not sent there".into(),
        });
    }
    let token = ctx.p.access_token(account, None).await?;
    let resp = ctx
        .p
        .send(crate::http::Outbound {
            method: crate::http::Method::Get,
            url: parsed.to_string(),
            headers: crate::http::Headers::new().with("x-user", token.expose()),
            body: None,
            timeout_ms: ctx.config()?.tiktok_timeout_ms,
            max_body: Some(MAX_MEDIA_BYTES),
        })
        .await
        .map_err(|e| Error::Upstream {
            endpoint: "media file",
            failure: match e {
                crate::ports::TransportError::Timeout => UpstreamFailure::Timeout,
                crate::ports::TransportError::TooLarge => UpstreamFailure::Malformed,
                crate::ports::TransportError::Unreachable(_) => UpstreamFailure::Unreachable,
            },
            request_id: None,
        })?;
    if resp.status != 200 {
        return Err(Error::Upstream {
            endpoint: "media file",
            failure: UpstreamFailure::Http {
                status: resp.status,
            },
            request_id: None,
        });
    }
    let ct = resp
        .headers
        .get("content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let mut out = Response::bytes(200, &ct, resp.body);
    out.headers.set("cache-control", "private, no-store");
    Ok(out)
}

// ---------- outbound messages ----------

#[cfg(test)]
mod tests {
    #[test]
    fn messages_are_sorted_oldest_first_and_stably() {
        let times = [
            Some(5),
            None,
            Some(3),
            Some(5),
            Some(0),
            Some(3),
            None,
            Some(9),
        ];
        let messages: Vec<ListedMessage> = times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                serde_json::from_value(
                    serde_json::json!({"message_id": i.to_string(), "timestamp": t}),
                )
                .unwrap()
            })
            .collect();
        let mut want = messages.clone();
        want.sort_by_key(|m| m.timestamp.unwrap_or(0));
        let ids = |v: &[ListedMessage]| v.iter().map(|m| m.message_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&super::oldest_first(messages)), ids(&want));
    }

    use super::*;

    #[test]
    fn the_token_goes_only_to_tiktok_hosts_for_media() {
        let ok = |u: &str| {
            media_url_allowed(
                &crate::weburl::Url::parse(u).unwrap(),
                "https://business-api.tiktok.com/open_api/v1.3",
            )
        };
        assert!(ok(
            "https://business-api.tiktok.com/open_api/v1.3/business/message/media/file/?token=x"
        ));
        assert!(ok("https://p16-sign.tiktokcdn.com/a.jpeg"));
        for bad in [
            "http://business-api.tiktok.com/x",
            "https://business-api.tiktok.com:8443/x",
            "https://evil-tiktok.com/x",
            "https://tiktok.com.evil.example/x",
            "https://tiktok.com@evil.example/x",
            "https://127.0.0.1/x",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        let sim = |u: &str| {
            media_url_allowed(
                &crate::weburl::Url::parse(u).unwrap(),
                "http://127.0.0.1:9797/open_api/v1.3",
            )
        };
        assert!(sim("http://127.0.0.1:9797/_sim/media/t"));
        assert!(!sim("http://127.0.0.1:9798/_sim/media/t"), "another port");
    }
}
