//! Webhooks: the app-level subscription calls, signing and delivery, and the event bodies
//! TikTok posts (customer messages, staff replies, API echoes).

use crate::router::{fail, field, invalid, param, request_id, Out, Req};
use crate::state::{Body, Media, Shared, State, StoredMessage};
use crate::{media, now, now_ms, Delivery, InboundMessage, Incoming, IncomingKind};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

const EVENT_TYPES: [&str; 4] = ["DIRECT_MESSAGE", "COMMENT", "VIDEO", "BRAND_MENTION"];

/// `t=<ts>,s=hex(HMAC-SHA256(key=secret, msg="<ts>.<body>"))`.
pub fn signature(secret: &str, ts: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{ts}.{body}").as_bytes());
    format!("t={ts},s={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` signed with the app secret, as TikTok delivers webhooks; records it.
pub async fn deliver(shared: &Shared, url: &str, body: &str) -> reqwest::Result<(u16, String)> {
    let (secret, logid) = {
        let mut st = shared.lock();
        (st.client_secret.clone(), request_id(&mut st))
    };
    let sent = shared
        .http
        .post(url)
        // TikTok gives up on slow receivers too; a hung receiver fails the caller.
        .timeout(Duration::from_secs(30))
        .header("content-type", "application/json")
        .header("TikTok-Signature", signature(&secret, now(), body))
        .header("x-tt-logid", logid)
        .header("webhook-schema-version", "1.0")
        .body(body.to_string())
        .send()
        .await;
    let result = match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            r.text().await.map(|t| (status, t))
        }
        Err(e) => Err(e),
    };
    shared.lock().deliveries.push(Delivery {
        url: url.into(),
        body: body.into(),
        status: result.as_ref().ok().map(|(s, _)| *s),
    });
    result
}

/// An echo of an API send, due at the subscribed callback URL.
pub struct Echo {
    pub url: String,
    pub body: String,
    pub before_reply: bool,
}

/// Delivers the echo now (before the send reply) or in the background (it may still land
/// before the reply, as TikTok's can). One attempt; the result is in `Sim::deliveries`.
pub async fn echo(shared: &Arc<Shared>, e: Echo) {
    if e.before_reply {
        let _ = deliver(shared, &e.url, &e.body).await;
    } else {
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = deliver(&shared, &e.url, &e.body).await;
        });
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    client_key: &'a str,
    event: &'a str,
    create_time: u64,
    user_openid: &'a str,
    content: String,
}

/// The outer webhook body; `content` is already a JSON string.
pub fn envelope(client_key: &str, event: &str, business_id: &str, content: String) -> String {
    envelope_at(client_key, event, business_id, content, now())
}

fn envelope_at(
    client_key: &str,
    event: &str,
    business_id: &str,
    content: String,
    create_time: u64,
) -> String {
    serde_json::to_string(&Envelope {
        client_key,
        event,
        create_time,
        user_openid: business_id,
        content,
    })
    .expect("serializable")
}

#[derive(Serialize)]
struct User<'a> {
    id: &'a str,
    role: &'static str,
}

#[derive(Serialize)]
struct Tag {
    source: &'static str,
}

#[derive(Serialize)]
struct Text<'a> {
    body: &'a str,
}

#[derive(Serialize)]
struct Image<'a> {
    media_id: &'a str,
}

#[derive(Serialize)]
struct SharePost {
    embed_url: String,
    video_id: String,
}

#[derive(Serialize)]
struct WebButton<'a> {
    text: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct Element<'a> {
    title: &'a str,
    buttons: Vec<WebButton<'a>>,
}

#[derive(Serialize)]
struct Template<'a> {
    #[serde(rename = "type")]
    kind: String,
    elements: Vec<Element<'a>>,
}

#[derive(Serialize)]
struct Referenced<'a> {
    referenced_message_id: &'a str,
}

#[derive(Serialize)]
struct ReplySource<'a> {
    reply_source_msg_id: &'a str,
    reply_source_unique_id: &'a str,
}

/// `content` of `im_receive_msg` / `im_send_msg`; field order as TikTok sends it.
#[derive(Serialize)]
struct MessageContent<'a> {
    from: &'a str,
    to: &'a str,
    unique_identifier: &'a str,
    from_user: User<'a>,
    to_user: User<'a>,
    conversation_id: &'a str,
    message_id: &'a str,
    timestamp: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    scene_type: u8,
    is_follower: bool,
    message_tag: Tag,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<Image<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_post: Option<SharePost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<Template<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referenced_message_info: Option<Referenced<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_source_payload: Option<ReplySource<'a>>,
}

pub fn embed_url(item_id: &str) -> String {
    format!("https://www.tiktok.com/player/v1/{item_id}")
}

/// The webhook body TikTok posts for a stored message: `im_send_msg` when the business sent
/// it, `im_receive_msg` when the customer did.
pub fn message_event(st: &State, biz: &str, conversation_id: &str, m: &StoredMessage) -> String {
    let customer_id = st
        .conversation(biz, conversation_id)
        .map(|c| c.customer_id.clone())
        .unwrap_or_default();
    let customer = st.customer(&customer_id);
    let business = st.profile(biz);
    let business_user = User {
        id: biz,
        role: "business_account",
    };
    let customer_user = User {
        id: &customer_id,
        role: "personal_account",
    };
    let (from, to, from_user, to_user, event) = if m.from_business {
        let b = business.username.as_str();
        (
            b,
            customer.handle.as_str(),
            business_user,
            customer_user,
            "im_send_msg",
        )
    } else {
        let c = customer.handle.as_str();
        (
            c,
            business.username.as_str(),
            customer_user,
            business_user,
            "im_receive_msg",
        )
    };
    let mut content = MessageContent {
        from,
        to,
        unique_identifier: &customer_id,
        from_user,
        to_user,
        conversation_id,
        message_id: &m.id,
        timestamp: m.ts_ms,
        kind: "text",
        scene_type: 0,
        is_follower: customer.is_follower,
        message_tag: Tag { source: m.source },
        text: None,
        image: None,
        share_post: None,
        template: None,
        referenced_message_info: m.referenced.as_deref().map(|id| Referenced {
            referenced_message_id: id,
        }),
        reply_source_payload: m.reply_source.as_ref().map(|(msg, button)| ReplySource {
            reply_source_msg_id: msg,
            reply_source_unique_id: button,
        }),
    };
    match &m.body {
        Body::Text(t) => content.text = Some(Text { body: t }),
        Body::Image(id) => {
            content.kind = "image";
            content.image = Some(Image { media_id: id });
        }
        Body::SharePost(item) => {
            content.kind = "share_post";
            content.share_post = Some(SharePost {
                embed_url: embed_url(item),
                video_id: item.clone(),
            });
        }
        Body::Template {
            kind,
            title,
            buttons,
        } => {
            content.kind = "template";
            content.template = Some(Template {
                kind: kind.to_ascii_lowercase(),
                elements: vec![Element {
                    title,
                    buttons: buttons
                        .iter()
                        .map(|b| WebButton {
                            text: &b.title,
                            kind: "REPLY",
                            id: &b.id,
                        })
                        .collect(),
                }],
            });
        }
    }
    let content = serde_json::to_string(&content).expect("serializable");
    envelope_at(&st.client_key, event, biz, content, m.ts_ms / 1000)
}

/// Stores a customer message (creating the conversation) and builds its webhook body.
pub fn customer_message(shared: &Shared, msg: Incoming) -> InboundMessage {
    let mut st = shared.lock();
    let (biz, conv) = (msg.business_id.as_str(), msg.conversation_id.as_str());
    let customer_id = st
        .conversation_mut(biz, conv, msg.customer.as_deref())
        .customer_id
        .clone();
    if let Some(f) = msg.is_follower {
        st.customer_mut(&customer_id).is_follower = f;
    }
    let ts_ms = msg.at_ms.unwrap_or_else(now_ms);
    let id = st.snowflake();
    let mut media_id = None;
    let mut reply_source = None;
    let body = match msg.kind {
        IncomingKind::Text(t) => Body::Text(t),
        IncomingKind::SharePost(item) => Body::SharePost(item),
        IncomingKind::Image(given) => {
            let mid = given.unwrap_or_else(|| st.snowflake());
            st.media.entry(mid.clone()).or_insert_with(|| Media {
                owner: customer_id.clone(),
                bytes: media::PNG_1X1.to_vec(),
                content_type: "image/png".into(),
                created_ms: ts_ms,
            });
            media_id = Some(mid.clone());
            Body::Image(mid)
        }
        IncomingKind::ButtonTap {
            card_message_id,
            button_id,
        } => {
            let title = st
                .conversation(biz, conv)
                .and_then(|c| c.find(&card_message_id))
                .and_then(|m| match &m.body {
                    Body::Template { buttons, .. } => buttons
                        .iter()
                        .find(|b| b.id == button_id)
                        .map(|b| b.title.clone()),
                    _ => None,
                });
            let Some(title) = title else {
                drop(st);
                panic!("no card {card_message_id} with button {button_id} in conversation {conv}");
            };
            reply_source = Some((card_message_id, button_id));
            Body::Text(title)
        }
    };
    let m = StoredMessage {
        id: id.clone(),
        ts_ms,
        from_business: false,
        source: "APP",
        body,
        referenced: None,
        reply_source,
    };
    st.conversation_mut(biz, conv, None).insert(m.clone());
    InboundMessage {
        body: message_event(&st, biz, conv, &m),
        message_id: id,
        media_id,
    }
}

/// A staff member's reply typed in the TikTok app (`im_send_msg`, source APP).
pub fn staff_reply(shared: &Shared, biz: &str, conv: &str, text: &str) -> String {
    let mut st = shared.lock();
    let m = StoredMessage {
        id: st.snowflake(),
        ts_ms: now_ms(),
        from_business: true,
        source: "APP",
        body: Body::Text(text.into()),
        referenced: None,
        reply_source: None,
    };
    st.conversation_mut(biz, conv, None).insert(m.clone());
    message_event(&st, biz, conv, &m)
}

fn app_auth(st: &State, app_id: &str, secret: &str) -> Result<(), crate::router::ApiErr> {
    if app_id != st.client_key || secret != st.client_secret {
        return fail(40001, "Invalid app_id or secret.");
    }
    Ok(())
}

fn event_type(t: &str) -> Result<(), crate::router::ApiErr> {
    if EVENT_TYPES.contains(&t) {
        Ok(())
    } else {
        invalid("event_type")
    }
}

/// POST `/business/webhook/update/`: one callback URL per app and event type.
pub fn update(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let (app_id, secret) = (field(&b, "app_id")?, field(&b, "secret")?);
    let kind = field(&b, "event_type")?;
    let url = field(&b, "callback_url")?;
    let mut st = shared.lock();
    app_auth(&st, app_id, secret)?;
    event_type(kind)?;
    let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
    if !ok {
        return invalid("callback_url");
    }
    st.webhooks.insert(kind.into(), url.into());
    Ok(json!({"app_id": app_id, "event_type": kind, "callback_url": url}))
}

/// GET `/business/webhook/list/`: flat; `callback_url` absent when none is registered.
pub fn list(shared: &Shared, rq: &Req) -> Out {
    let (app_id, secret) = (param(&rq.query, "app_id")?, param(&rq.query, "secret")?);
    let kind = param(&rq.query, "event_type")?;
    let st = shared.lock();
    app_auth(&st, app_id, secret)?;
    event_type(kind)?;
    let mut data = json!({"app_id": app_id, "event_type": kind});
    if let Some(url) = st.webhooks.get(kind) {
        data["callback_url"] = json!(url);
    }
    Ok(data)
}

/// POST `/business/webhook/delete/`.
pub fn delete(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let (app_id, secret) = (field(&b, "app_id")?, field(&b, "secret")?);
    let kind = field(&b, "event_type")?;
    let mut st = shared.lock();
    app_auth(&st, app_id, secret)?;
    event_type(kind)?;
    st.webhooks.remove(kind);
    Ok(json!({"app_id": app_id, "event_type": kind}))
}
