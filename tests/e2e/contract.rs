//! Issue 9: the Worker against a simulator built from TikTok's reference: profiles, share
//! posts, cards and button taps, quoted replies, image capability, customer media, echoes and
//! staff replies, expired access tokens.

use crate::harness::{ADMIN_KEY, SENDER_KEY};
use crate::oauth::connect;
use crate::{send, Env};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_sim::{Incoming, Sim};

async fn post(env: &Env, body: &Value) -> crate::Reply {
    env.call("POST", "/v1/messages", Some(SENDER_KEY), Some(body))
        .await
}

/// `id` encoded for a URL path segment or query value.
pub(crate) fn enc(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Waits up to 8 s until `conv` has `n` messages at TikTok (sender actions excluded).
async fn wait_sent(env: &Env, conv: &str, n: usize) -> Vec<tiktok_sim::SentMessage> {
    let deadline = Instant::now() + Duration::from_secs(8);
    let msgs = |env: &Env| -> Vec<tiktok_sim::SentMessage> {
        env.sim
            .sent_to(conv)
            .into_iter()
            .filter(|m| m.message_type != "SENDER_ACTION")
            .collect()
    };
    while msgs(env).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    msgs(env)
}

async fn deliver(env: &Env, body: &str) {
    let (status, text) = env
        .sim
        .deliver(&env.url("/webhooks/tiktok"), body)
        .await
        .expect("delivery");
    assert_eq!(status, 200, "{text}");
}

pub async fn accounts_show_the_business_profile(env: Arc<Env>) {
    env.sim.set_profile("e2e-prof", "acme.store", "Acme Store");
    connect(&env, "e2e-prof").await;
    let r = env.call("GET", "/v1/accounts", Some(ADMIN_KEY), None).await;
    let a = r.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "e2e-prof")
        .cloned()
        .unwrap();
    assert_eq!(a["display_name"], "Acme Store");
    assert_eq!(a["username"], "acme.store");
    assert!(a["profile_image"].as_str().unwrap().starts_with("http"));
    let scopes: Vec<&str> = a["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"message.list.send"), "{scopes:?}");
    // Expiries come from TikTok's `expires_in` / `refresh_token_expires_in`.
    let now = tiktok_sim::now();
    let access = a["access_token_expires_at"].as_u64().unwrap();
    let refresh = a["refresh_token_expires_at"].as_u64().unwrap();
    assert!((now + 86_000..now + 86_800).contains(&access), "{a}");
    assert!(refresh > now + 300 * 86_400, "{a}");
}

pub async fn share_posts_cards_and_quoted_replies_are_sent(env: Arc<Env>) {
    connect(&env, "e2e-types").await;
    let conv = env.sim.new_conversation_id();
    let inbound = env
        .sim
        .customer_message(Incoming::text("e2e-types", &conv, "is it back in M?"));
    let post_id = Sim::default_post_id("e2e-types");
    let bodies = [
        json!({"account_id": "e2e-types", "conversation_id": conv, "type": "text", "text": "Yes!", "reply_to": inbound.message_id}),
        json!({"account_id": "e2e-types", "conversation_id": conv, "type": "share_post", "share_post": {"item_id": post_id}}),
        json!({"account_id": "e2e-types", "conversation_id": conv, "type": "template", "template": {"type": "QA_BUTTON_CARD", "title": "How can we help?", "buttons": [{"title": "Track my order", "id": "track"}, {"title": "Returns", "id": "returns"}]}}),
    ];
    for b in &bodies {
        let r = post(&env, b).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.json()["message_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 19));
    }
    let sent = env.sim.sent_to(&conv);
    let types: Vec<&str> = sent.iter().map(|m| m.message_type.as_str()).collect();
    assert_eq!(types, ["TEXT", "SHARE_POST", "TEMPLATE"]);
    assert_eq!(
        sent[0].body["referenced_message_info"]["referenced_message_id"],
        inbound.message_id.as_str()
    );
    assert_eq!(sent[2].body["template"]["buttons"][0]["type"], "REPLY");
    // TikTok refuses a post that is not the account's own: its answer is passed on.
    let foreign = json!({"account_id": "e2e-types", "conversation_id": conv, "type": "share_post", "share_post": {"item_id": "1234567890123456789"}});
    post(&env, &foreign)
        .await
        .expect_error(400, "tiktok_invalid_parameter");
    // Our own limits are checked before TikTok is asked.
    let long = json!({"account_id": "e2e-types", "conversation_id": conv, "type": "template", "template": {"type": "QA_BUTTON_CARD", "title": "T", "buttons": [{"title": "twenty-one characters", "id": "x"}]}});
    let b = post(&env, &long).await.expect_error(400, "invalid_request");
    assert_eq!(b["error"]["details"]["field"], "template.buttons[0].title");
}

pub async fn images_are_refused_where_tiktok_does_not_allow_them(env: Arc<Env>) {
    connect(&env, "e2e-caps").await;
    let conv = env.sim.new_conversation_id();
    env.sim
        .customer_message(Incoming::text("e2e-caps", &conv, "hi"));
    env.sim.set_image_send(&conv, false);
    let url = format!("{}/_sim/images/ok.png", env.sim.origin);
    let body = json!({"account_id": "e2e-caps", "conversation_id": conv, "type": "image", "image": {"url": url}});
    let before = env.sim.requests_to("/media/upload/").len();
    post(&env, &body)
        .await
        .expect_error(422, "image_not_allowed");
    assert_eq!(
        env.sim.requests_to("/media/upload/").len(),
        before,
        "nothing uploaded"
    );
    let cap = env.sim.requests_to("/capabilities/get/").pop().unwrap();
    assert_eq!(
        cap.query_value("conversation_id").as_deref(),
        Some(conv.as_str())
    );
    assert!(env.sim.sent_to(&conv).is_empty());
    // The answer is cached per conversation: a second try does not ask again.
    let asked = env.sim.requests_to("/capabilities/get/").len();
    post(&env, &body)
        .await
        .expect_error(422, "image_not_allowed");
    assert_eq!(env.sim.requests_to("/capabilities/get/").len(), asked);
    // Another conversation of the same account may send images.
    let other = env.sim.new_conversation_id();
    env.sim
        .customer_message(Incoming::text("e2e-caps", &other, "hi"));
    let ok = json!({"account_id": "e2e-caps", "conversation_id": other, "type": "image", "image": {"url": url}});
    let r = post(&env, &ok).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

pub async fn customer_media_is_downloadable(env: Arc<Env>) {
    connect(&env, "e2e-media").await;
    let conv = env.sim.new_conversation_id();
    let img = env
        .sim
        .customer_message(Incoming::image("e2e-media", &conv));
    let media = img.media_id.clone().expect("image media id");
    let base = format!(
        "/v1/conversations/{}/messages/{}/media?account_id=e2e-media",
        enc(&conv),
        img.message_id
    );
    // Without media_id: found in TikTok's listing.
    let r = env.call("GET", &base, Some(SENDER_KEY), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(b["media_id"], media.as_str());
    assert!(b["download_url"].as_str().unwrap().starts_with("http"));
    assert!(!r.text.contains("act."), "no token in the answer");
    let req = env.sim.requests_to("/media/download/").pop().unwrap();
    assert_eq!(req.json()["media_type"], "IMAGE");
    // The URL alone does not work: TikTok wants the token, which only the Worker has.
    let raw = send(env.http.get(b["download_url"].as_str().unwrap())).await;
    assert_eq!(raw.status, 403);
    let file = send(
        env.http
            .get(env.url(&format!("{base}&media_id={media}&download=1")))
            .bearer_auth(SENDER_KEY),
    )
    .await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert!(file
        .header("content-type")
        .is_some_and(|c| c.starts_with("image/")));
    // A message that is not there.
    env.call(
        "GET",
        &format!(
            "/v1/conversations/{}/messages/1234/media?account_id=e2e-media",
            enc(&conv)
        ),
        Some(SENDER_KEY),
        None,
    )
    .await
    .expect_error(404, "not_found");
}

pub async fn button_taps_and_display_names_drive_rules(env: Arc<Env>) {
    connect(&env, "e2e-tap").await;
    let rules = json!({"welcome": "Hi {{display_name}}!", "rules": [
        {"id": "menu", "keywords": ["help"], "card": {"type": "QA_BUTTON_CARD", "title": "How can we help?",
          "buttons": [{"title": "Track my order", "id": "track_order"}, {"title": "Returns", "id": "returns"}]}},
        {"id": "track", "buttons": ["track_order"], "text": "Send us your order number.", "quote": true}]});
    let r = env
        .call(
            "PUT",
            "/v1/rules?account_id=e2e-tap",
            Some(ADMIN_KEY),
            Some(&rules),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let conv = env.sim.new_conversation_id();
    env.sim
        .set_customer("cust-tap", "maria.lopez92", "Maria L.");
    let first = env.sim.customer_message(
        Incoming::text("e2e-tap", &conv, "help please").from_customer("cust-tap"),
    );
    deliver(&env, &first.body).await;
    let sent = wait_sent(&env, &conv, 2).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].body["text"]["body"], "Hi maria.lopez92!");
    assert_eq!(sent[1].message_type, "TEMPLATE");
    let card_id = sent[1].message_id.clone();
    let tap = env.sim.customer_message(
        Incoming::button_tap("e2e-tap", &conv, &card_id, "track_order").from_customer("cust-tap"),
    );
    deliver(&env, &tap.body).await;
    let sent = wait_sent(&env, &conv, 3).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2].body["text"]["body"], "Send us your order number.");
    assert_eq!(
        sent[2].body["referenced_message_info"]["referenced_message_id"],
        tap.message_id.as_str()
    );
    env.call(
        "DELETE",
        "/v1/rules?account_id=e2e-tap",
        Some(ADMIN_KEY),
        None,
    )
    .await;
}

pub async fn staff_replies_and_early_echoes_are_not_answered(env: Arc<Env>) {
    connect(&env, "e2e-echo").await;
    let rules = json!({"rules": [{"id": "any", "match": "contains", "keywords": ["a", "e", "i", "o", "u", "y"], "text": "Thanks for your message"}]});
    env.call(
        "PUT",
        "/v1/rules?account_id=e2e-echo",
        Some(ADMIN_KEY),
        Some(&rules),
    )
    .await;
    let conv = env.sim.new_conversation_id();
    // TikTok echoes API sends to the registered webhook, here before the send call returns.
    let reg = env
        .call("PUT", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(reg.status, 200, "{}", reg.text);
    env.sim.settings(|s| {
        s.echo = true;
        s.echo_before_reply = true;
    });
    let msg = env
        .sim
        .customer_message(Incoming::text("e2e-echo", &conv, "hello there"));
    deliver(&env, &msg.body).await;
    let sent = wait_sent(&env, &conv, 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let staff = env
        .sim
        .staff_reply("e2e-echo", &conv, "Hi, this is Tom from the shop");
    deliver(&env, &staff).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.sim.settings(|s| s.echo_before_reply = false);
    env.call("DELETE", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await;
    let echoes: Vec<_> = env
        .sim
        .deliveries()
        .into_iter()
        .filter(|d| d.body.contains(&sent[0].message_id))
        .collect();
    assert_eq!(echoes.len(), 1, "the echo of our reply was delivered");
    assert_eq!(echoes[0].status, Some(200));
    assert_eq!(
        wait_sent(&env, &conv, 2).await.len(),
        1,
        "neither the echo nor the staff reply is answered"
    );
    env.call(
        "DELETE",
        "/v1/rules?account_id=e2e-echo",
        Some(ADMIN_KEY),
        None,
    )
    .await;
}

pub async fn expired_access_token_is_refreshed_and_dead_grant_needs_reauth(env: Arc<Env>) {
    connect(&env, "e2e-exp").await;
    let conv = env.sim.new_conversation_id();
    env.sim
        .customer_message(Incoming::text("e2e-exp", &conv, "hi"));
    let refreshes = env.sim.requests_to("/oauth2/refresh_token/").len();
    env.sim.expire_access_tokens();
    let body = json!({"account_id": "e2e-exp", "conversation_id": conv, "type": "text", "text": "after 40102"});
    let r = post(&env, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(env
        .sim
        .requests_to("/business/message/send/")
        .iter()
        .any(|q| q.code == 40102));
    assert_eq!(
        env.sim.requests_to("/oauth2/refresh_token/").len(),
        refreshes + 1
    );
    // The refresh token dies (40103 at TikTok): sends answer 409 and the account says so.
    env.sim.expire_access_tokens();
    env.sim.expire_refresh_tokens();
    post(&env, &body)
        .await
        .expect_error(409, "account_needs_reauth");
    assert!(env
        .sim
        .requests_to("/oauth2/refresh_token/")
        .iter()
        .any(|q| q.code == 40103));
    let a = env
        .call("GET", "/v1/accounts", Some(ADMIN_KEY), None)
        .await
        .json();
    let acct = a["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "e2e-exp")
        .cloned()
        .unwrap();
    assert_eq!(acct["status"], "needs_reauth");
    // No more refresh attempts for a dead grant.
    let tries = env.sim.requests_to("/oauth2/refresh_token/").len();
    post(&env, &body)
        .await
        .expect_error(409, "account_needs_reauth");
    assert_eq!(env.sim.requests_to("/oauth2/refresh_token/").len(), tries);
}
