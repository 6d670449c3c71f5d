//! The authenticated JSON API under `/v1`: account administration and TikTok pass-through
//! listings. Handlers validate, call TikTok with the account's token (from the account's
//! coordinator, which refreshes it), and reshape answers into our own JSON.

use crate::app::Ctx;
use crate::auth::Role;
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::{Request, Response};
use crate::lossless;
use crate::ports::{Level, Platform};
use crate::tiktok::client::ConversationType;
use crate::tiktok::{AppCredentials, Client};
use crate::tokens::Vault;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest id we accept from a caller.
const MAX_ID: usize = 256;

/// A required id-like query value.
pub fn id_param(req: &Request, name: &str) -> Result<String> {
    let v = req
        .query(name)
        .ok_or_else(|| Error::invalid(name, "is required"))?;
    check_id(name, &v)?;
    Ok(v)
}

pub fn check_id(name: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_ID {
        return Err(Error::invalid(name, format!("must be 1 to {MAX_ID} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(name, "must not contain control characters"));
    }
    Ok(())
}

/// Refuses a body declared as something other than JSON.
fn require_json(req: &Request) -> Result<()> {
    match req.headers.get("content-type") {
        Some(ct) if !ct.to_ascii_lowercase().contains("json") => {
            Err(Error::invalid("content-type", "must be application/json"))
        }
        _ => Ok(()),
    }
}

/// Deserializes JSON into `T`, naming the offending field. Syntax errors are `invalid_json`;
/// errors about the whole document name `root`, or are `invalid_json` without one.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8], root: Option<&str>) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match root {
            _ if inner.is_syntax() || inner.is_eof() => Error::InvalidJson(inner.to_string()),
            Some(root) if path == "." => Error::invalid(root, inner.to_string()),
            None if path == "." => Error::InvalidJson(inner.to_string()),
            _ => Error::invalid(path, inner.to_string()),
        }
    })
}

/// Parses a JSON request body into `T`, naming the offending field.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T> {
    if req.body.is_empty() {
        return Err(Error::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    require_json(req)?;
    from_json(&req.body, None)
}

fn is_token_rejected(e: &Error) -> bool {
    matches!(
        e,
        Error::Upstream {
            failure: UpstreamFailure::Api { code: 40105, .. },
            ..
        }
    )
}

/// Runs `op` with the account's access token; if TikTok rejects the token (40105), gets a
/// refreshed one (single-flight in the coordinator) and runs `op` once more.
pub async fn with_token<P: Platform, T>(
    ctx: &Ctx<'_, P>,
    account: &str,
    op: impl AsyncFn(&str) -> Result<T>,
) -> Result<T> {
    let token = ctx.p.access_token(account, None).await?;
    match op(token.expose()).await {
        Err(e) if is_token_rejected(&e) => {
            ctx.log(
                Level::Warn,
                "access token rejected; refreshing",
                json!({"account_id": account}),
            );
            let fresh = ctx.p.access_token(account, Some(token.expose())).await?;
            op(fresh.expose()).await
        }
        other => other,
    }
}

/// `GET /v1/accounts` (admin): connected accounts, never tokens.
pub async fn list_accounts<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let now = ctx.p.now_secs();
    let accounts: Vec<Value> = Vault::new(ctx.p, &cfg.keyring)
        .list()
        .await?
        .into_iter()
        .map(|m| {
            let status = if m.status == crate::tokens::Status::Active && m.refresh_expires_at <= now
            {
                crate::tokens::Status::NeedsReauth
            } else {
                m.status
            };
            json!({
                "id": m.account_id, "display_name": m.display_name, "scopes": m.scopes,
                "status": status, "access_token_expires_at": m.access_expires_at,
                "refresh_token_expires_at": m.refresh_expires_at, "connected_at": m.created_at,
                "updated_at": m.updated_at, "refreshed_at": m.refreshed_at,
            })
        })
        .collect();
    Ok(Response::json(200, &json!({ "accounts": accounts })))
}

/// `DELETE /v1/accounts/{id}` (admin): revoke at TikTok, then wipe, even if revoking failed.
pub async fn delete_account<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    id: &str,
) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let vault = Vault::new(ctx.p, &cfg.keyring);
    if vault.meta(id).await?.is_none() {
        return Err(Error::Missing {
            what: format!("account {id}"),
        });
    }
    let revoke = match vault.get(id).await {
        Ok(Some(acct)) => {
            let client = Client::for_config(ctx.p, cfg);
            let app = AppCredentials {
                client_key: &cfg.client_key,
                client_secret: &cfg.client_secret,
            };
            // The refresh token is the long-lived grant; revoking it ends the whole grant.
            client.revoke(app, acct.refresh_token.expose()).await
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    vault.delete(id).await?;
    ctx.p.forget(id).await?;
    let mut body = json!({"id": id, "deleted": true, "revoked": revoke.is_ok()});
    if let Err(e) = &revoke {
        ctx.log(
            Level::Warn,
            "revoke failed; account wiped anyway",
            json!({"account_id": id, "code": e.code()}),
        );
        body["revoke_error"] = json!({"code": e.code(), "message": e.to_string()});
    }
    Ok(Response::json(200, &body))
}

#[derive(Debug, Deserialize, Serialize)]
struct Conversation {
    #[serde(deserialize_with = "lossless::id", rename(serialize = "id"))]
    conversation_id: String,
    #[serde(default, rename(serialize = "updated_at"))]
    update_time: Option<i64>,
    #[serde(default)]
    referral: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ConversationPage {
    #[serde(default)]
    conversations: Vec<Conversation>,
    #[serde(default)]
    has_more: bool,
    #[serde(default, deserialize_with = "lossless::opt_id")]
    cursor: Option<String>,
}

/// `GET /v1/conversations?account_id&type=STRANGER|SINGLE&cursor&limit`.
pub async fn list_conversations<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
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
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 50"))?,
        ),
        None => None,
    };
    let client = Client::for_config(ctx.p, cfg);
    let page: ConversationPage = with_token(ctx, &account, async |t: &str| {
        client
            .list_conversations(t, &account, kind, cursor.as_deref(), limit)
            .await
    })
    .await?;
    Ok(Response::json(
        200,
        &json!({
            "account_id": account, "type": kind.as_str(), "conversations": page.conversations,
            "has_more": page.has_more, "cursor": page.cursor.filter(|c| !c.is_empty() && page.has_more),
        }),
    ))
}

/// One message as TikTok lists it; ids stay exact strings.
#[derive(Debug, Deserialize, Serialize)]
struct Message {
    #[serde(deserialize_with = "lossless::id", rename(serialize = "id"))]
    message_id: String,
    #[serde(default, rename(serialize = "type"))]
    message_type: Option<String>,
    #[serde(default, rename(serialize = "created_at"))]
    create_time: Option<i64>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    sender: Option<Value>,
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    has_more: bool,
}

/// `GET /v1/conversations/{id}/messages?account_id`: TikTok's 20 latest messages.
pub async fn list_messages<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    conversation: &str,
) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    let cfg = ctx.config()?;
    let account = id_param(req, "account_id")?;
    check_id("conversation_id", conversation)?;
    let client = Client::for_config(ctx.p, cfg);
    let page: MessagePage = with_token(ctx, &account, async |t: &str| {
        client.list_messages(t, &account, conversation).await
    })
    .await?;
    Ok(Response::json(
        200,
        &json!({
            "account_id": account, "conversation_id": conversation,
            "messages": page.messages, "has_more": page.has_more,
        }),
    ))
}

// ---------- outbound messages ----------

pub use crate::tiktok::types::SenderAction;

/// Images TikTok accepts.
pub const MAX_IMAGE_BYTES: usize = 3 * 1024 * 1024;
const MAX_SEND_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    account_id: String,
    conversation_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image: Option<ImageRef>,
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
    Text(String),
    Image(String),
    ImageUrl(url::Url),
    Action(SenderAction),
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
            Planned::Text(_) => "text",
            Planned::Image(_) | Planned::ImageUrl(_) => "image",
            Planned::Action(SenderAction::Typing) => "typing",
            Planned::Action(SenderAction::MarkRead) => "mark_read",
        }
    }
}

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
    let what = match r.kind.as_str() {
        "text" => {
            if r.image.is_some() {
                return Err(Error::invalid(
                    "image",
                    "a text message carries no image (send text or image, not both)",
                ));
            }
            let t = r
                .text
                .ok_or_else(|| Error::invalid("text", "is required for type text"))?;
            let n = t.chars().count();
            if t.trim().is_empty() || n > crate::replies::MAX_TEXT_CHARS {
                return Err(Error::invalid(
                    "text",
                    format!("must be 1 to 6000 characters (has {n})"),
                ));
            }
            Planned::Text(t)
        }
        "image" => {
            if r.text.is_some() {
                return Err(Error::invalid(
                    "text",
                    "an image message carries no text (send text or image, not both)",
                ));
            }
            let img = r
                .image
                .ok_or_else(|| Error::invalid("image", "is required for type image"))?;
            match (img.media_id, img.url) {
                (Some(id), None) => {
                    check_id("image.media_id", &id)?;
                    Planned::Image(id)
                }
                (None, Some(u)) => {
                    let url = url::Url::parse(&u)
                        .map_err(|_| Error::invalid("image.url", "must be an absolute URL"))?;
                    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
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
        "typing" | "mark_read" => {
            if r.text.is_some() || r.image.is_some() {
                return Err(Error::invalid(
                    "type",
                    format!("{} carries no text or image", r.kind),
                ));
            }
            Planned::Action(if r.kind == "typing" {
                SenderAction::Typing
            } else {
                SenderAction::MarkRead
            })
        }
        other => {
            return Err(Error::invalid(
                "type",
                format!(
                    "`{}` is not one of text, image, typing, mark_read",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
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
async fn fetch_image<P: Platform>(
    ctx: &Ctx<'_, P>,
    url: &url::Url,
) -> Result<(Vec<u8>, &'static str)> {
    let bad = |reason: String| Error::invalid("image.url", reason);
    let resp = ctx
        .p
        .send(crate::http::Outbound {
            method: crate::http::Method::Get,
            url: url.to_string(),
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
            crate::ports::TransportError::Timeout => bad("did not answer within 10 s".into()),
            crate::ports::TransportError::Unreachable(_) => bad("could not be fetched".into()),
        })?;
    if resp.status != 200 {
        return Err(bad(format!("answered HTTP {}", resp.status)));
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

fn only_transient(e: &Error) -> bool {
    crate::events::retryable(e)
        && !matches!(
            e,
            Error::Upstream {
                failure: UpstreamFailure::Api { code: 40100, .. },
                ..
            }
        )
}

/// Retries 51065, 5xx and timeouts (not 40100: the caller gets 429 and decides).
async fn transient_retries<P: Platform, T>(p: &P, op: impl AsyncFn() -> Result<T>) -> Result<T> {
    crate::events::retry_while(p, only_transient, op)
        .await
        .map_err(|(e, _)| e)
}

async fn perform_send<P: Platform>(ctx: &Ctx<'_, P>, plan: &SendPlan) -> Result<Value> {
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    let (acct, conv) = (&plan.account, &plan.conversation);
    let mut media_id = None;
    let outgoing = match &plan.what {
        Planned::Text(t) => crate::tiktok::types::Outgoing::Text(t.clone()),
        Planned::Image(id) => crate::tiktok::types::Outgoing::Image {
            media_id: id.clone(),
        },
        Planned::Action(a) => crate::tiktok::types::Outgoing::Action(*a),
        Planned::ImageUrl(u) => {
            // Checks the account before fetching anything.
            ctx.p.access_token(acct, None).await?;
            let (bytes, ct) = fetch_image(ctx, u).await?;
            let id = with_token(ctx, acct, async |t: &str| {
                transient_retries(ctx.p, async || {
                    client.upload_image(t, acct, &bytes, ct).await
                })
                .await
            })
            .await?;
            media_id = Some(id.clone());
            crate::tiktok::types::Outgoing::Image { media_id: id }
        }
    };
    let sent = with_token(ctx, acct, async |t: &str| {
        transient_retries(ctx.p, async || client.send(t, acct, conv, &outgoing).await).await
    })
    .await?;
    let mut out = json!({
        "account_id": acct, "conversation_id": conv, "type": plan.what.kind(),
        "message_id": sent.message_id, "create_time": sent.create_time,
    });
    if let Some(m) = media_id.or(match &plan.what {
        Planned::Image(id) => Some(id.clone()),
        _ => None,
    }) {
        out["media_id"] = json!(m);
    }
    Ok(out)
}

/// `POST /v1/messages`.
pub async fn send_message<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Sender)?;
    ctx.config()?;
    require_json(req)?;
    let plan = validate_send(&req.body)?;
    let Some(key) = req.headers.get("idempotency-key") else {
        let v = perform_send(ctx, &plan).await?;
        return Ok(Response::json(200, &v));
    };
    crate::idempotency::check_key(key)?;
    let key_hash = crate::idempotency::hash(key.as_bytes());
    // Canonical JSON (sorted keys), so formatting differences do not count as another body.
    let canonical: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let body_hash = crate::idempotency::hash(canonical.to_string().as_bytes());
    match ctx
        .p
        .idempotency_begin(&plan.account, &key_hash, &body_hash)
        .await?
    {
        crate::idempotency::Begin::Replay { response } => {
            let mut r = Response::json(
                response.status,
                &serde_json::from_str::<Value>(&response.body).unwrap_or(Value::Null),
            );
            r.headers.set("idempotent-replayed", "true");
            Ok(r)
        }
        crate::idempotency::Begin::New => {
            let result = perform_send(ctx, &plan).await;
            let (status, body) = match &result {
                Ok(v) => (200, v.to_string()),
                Err(e) => (e.status(), e.body(&ctx.request_id).to_string()),
            };
            let stored = crate::idempotency::Stored { status, body };
            if let Err(e) = ctx
                .p
                .idempotency_finish(&plan.account, &key_hash, &body_hash, stored)
                .await
            {
                ctx.log(
                    Level::Warn,
                    "idempotency record not stored",
                    json!({"code": e.code()}),
                );
            }
            result.map(|v| Response::json(200, &v))
        }
    }
}

// ---------- webhook subscription ----------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionRequest {
    #[serde(default)]
    callback_url: Option<String>,
}

fn app_creds(cfg: &crate::config::Config) -> AppCredentials<'_> {
    AppCredentials {
        client_key: &cfg.client_key,
        client_secret: &cfg.client_secret,
    }
}

/// `PUT /v1/webhook-subscription` (admin): registers this Worker's `/webhooks/tiktok` (or the
/// given URL) for `DIRECT_MESSAGE` events. The app secret travels in the request body only.
pub async fn put_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let body: SubscriptionRequest = if req.body.iter().all(u8::is_ascii_whitespace) {
        SubscriptionRequest::default()
    } else {
        json_body(req)?
    };
    let url = match body.callback_url {
        Some(u) => {
            let parsed = url::Url::parse(&u)
                .map_err(|_| Error::invalid("callback_url", "must be an absolute URL"))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(Error::invalid(
                    "callback_url",
                    "must be an http(s) URL (TikTok requires https)",
                ));
            }
            parsed.to_string()
        }
        None => format!("{}/webhooks/tiktok", req.origin()),
    };
    let client = Client::for_config(ctx.p, cfg);
    transient_retries(ctx.p, async || {
        client.webhook_update(app_creds(cfg), &url).await
    })
    .await?;
    ctx.log(Level::Info, "webhook subscription updated", json!({}));
    Ok(Response::json(
        200,
        &json!({"event_type": "DIRECT_MESSAGE", "callback_url": url}),
    ))
}

/// `GET /v1/webhook-subscription` (admin).
pub async fn get_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    let data = transient_retries(ctx.p, async || client.webhook_list(app_creds(cfg)).await).await?;
    let subs: Vec<Value> = data
        .get("list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| json!({"event_type": s.get("event_type"), "callback_url": s.get("callback_url")}))
        .collect();
    Ok(Response::json(200, &json!({"subscriptions": subs})))
}

/// `DELETE /v1/webhook-subscription` (admin).
pub async fn delete_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    transient_retries(ctx.p, async || client.webhook_delete(app_creds(cfg)).await).await?;
    Ok(Response::json(
        200,
        &json!({"deleted": true, "event_type": "DIRECT_MESSAGE"}),
    ))
}

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
        assert_eq!(p.what, Planned::Text("hi".into()));
        assert_eq!(p.conversation, "c+1");
        let p = validate_send(
            br#"{"account_id":"a","conversation_id":"c","type":"image","image":{"media_id":"m"}}"#,
        )
        .unwrap();
        assert_eq!(p.what, Planned::Image("m".into()));
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"image","image":{"url":"https://x.example/a.png"}}"#).unwrap();
        assert!(matches!(p.what, Planned::ImageUrl(_)));
        let p = validate_send(br#"{"account_id":"a","conversation_id":"c","type":"mark_read"}"#)
            .unwrap();
        assert_eq!(p.what, Planned::Action(SenderAction::MarkRead));
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
                "body",
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
    fn images_are_sniffed_by_magic_bytes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
