//! Issue 14, items 1 and 2: every conversation kept in the account actor's SQLite database and
//! read back through the inbox API, across a restart of the runtime; a 1,000-message
//! conversation pages without gaps or repeats; a conversation the Worker never saw falls back
//! to TikTok's listing.

use crate::contract::enc;
use crate::faults::connect_at;
use crate::harness::{Worker, ADMIN_KEY, SENDER_KEY};
use crate::webhooks::texts;
use crate::Env;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_sim::Incoming;

const ACCOUNT: &str = "e2e-inbox";

async fn deliver(env: &Env, base: &str, body: &str) {
    let (status, text) = env
        .sim
        .deliver(&format!("{base}/webhooks/tiktok"), body)
        .await
        .expect("delivery");
    assert_eq!(status, 200, "{text}");
}

async fn get(env: &Env, base: &str, path: &str) -> Value {
    let r = env.call_at(base, "GET", path, Some(SENDER_KEY), None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json()
}

/// Every stored message of `conv`, page by page (`limit` each) in `order`.
async fn all_messages(env: &Env, base: &str, conv: &str, order: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!(
            "/v1/conversations/{}/messages?account_id={ACCOUNT}&order={order}&limit={limit}",
            enc(conv)
        );
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(env, base, &path).await;
        assert_eq!(page["source"], "store", "{page}");
        let msgs = page["messages"].as_array().unwrap();
        assert!(msgs.len() <= limit);
        out.extend(msgs.iter().cloned());
        match page["cursor"].as_str() {
            Some(c) => {
                assert_eq!(page["has_more"], true);
                assert_eq!(msgs.len(), limit, "only the last page is short");
                cursor = Some(c.to_string());
            }
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

/// Waits until the stored history of `conv` has `n` messages (6 s at most).
async fn stored(env: &Env, base: &str, conv: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let path = format!(
            "/v1/conversations/{}/messages?account_id={ACCOUNT}&order=oldest_first&limit=200",
            enc(conv)
        );
        let r = env
            .call_at(base, "GET", &path, Some(SENDER_KEY), None)
            .await;
        let page = r.json();
        let msgs = page["messages"].as_array().cloned().unwrap_or_default();
        if (page["source"] == "store" && msgs.len() >= n) || Instant::now() > deadline {
            return msgs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn history_is_kept_paged_and_survives_a_restart(env: Arc<Env>) {
    let mut w = Worker::start(&env.sim, "inbox", |_| {});
    connect_at(&env, &w.url, ACCOUNT).await;
    // Echoes of API sends come back to this Worker while the test runs.
    let r = env
        .call_at(
            &w.url,
            "PUT",
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rules = json!({"welcome": "Welcome!",
                       "rules": [{"id": "price", "match": "contains", "keywords": ["price"], "text": "It is 5 EUR."},
                                 {"id": "menu", "keywords": ["help"], "card": {"type": "QA_BUTTON_CARD",
                                   "title": "How can we help?", "buttons": [{"title": "Track my order", "id": "track_order"}]}}]});
    let r = env
        .call_at(
            &w.url,
            "PUT",
            &format!("/v1/rules?account_id={ACCOUNT}"),
            Some(ADMIN_KEY),
            Some(&rules),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.sim
        .set_customer("cust-inbox", "maria.lopez92", "María López");

    // A conversation: text, image, share post and a card button tap from the customer, the
    // auto-replies, an API send (and its echo), a staff reply from the app.
    let c = env.sim.new_conversation_id();
    let m = |i: Incoming| env.sim.customer_message(i.from_customer("cust-inbox"));
    let hi = m(Incoming::text(ACCOUNT, &c, "hi, the price?"));
    deliver(&env, &w.url, &hi.body).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    while texts(&env, &c).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(texts(&env, &c), ["Welcome!", "It is 5 EUR."]);
    let image = m(Incoming::image(ACCOUNT, &c));
    deliver(&env, &w.url, &image.body).await;
    let post = Incoming::share_post(ACCOUNT, &c, &tiktok_sim::Sim::default_post_id(ACCOUNT));
    deliver(&env, &w.url, &m(post).body).await;
    deliver(&env, &w.url, &m(Incoming::text(ACCOUNT, &c, "help")).body).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    let card = loop {
        let card = env
            .sim
            .sent_to(&c)
            .into_iter()
            .find(|m| m.message_type == "TEMPLATE");
        match card {
            Some(card) => break card,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            None => panic!("no card sent\n{}", w.log_tail(30)),
        }
    };
    let tap = Incoming::button_tap(ACCOUNT, &c, &card.message_id, "track_order");
    deliver(&env, &w.url, &m(tap).body).await;
    let send = json!({"account_id": ACCOUNT, "conversation_id": c, "type": "text", "text": "From the API"});
    let r = env
        .call_at(
            &w.url,
            "POST",
            "/v1/messages",
            Some(SENDER_KEY),
            Some(&send),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let api_id = r.json()["message_id"].as_str().unwrap().to_string();
    deliver(&env, &w.url, &env.sim.staff_reply(ACCOUNT, &c, "Tom here")).await;

    let msgs = stored(&env, &w.url, &c, 10).await;
    let summary: Vec<(String, String, String)> = msgs
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (s("direction"), s("source"), s("type"))
        })
        .collect();
    let want = [
        ("inbound", "customer", "text"),
        ("outbound", "auto_reply", "text"),
        ("outbound", "auto_reply", "text"),
        ("inbound", "customer", "image"),
        ("inbound", "customer", "share_post"),
        ("inbound", "customer", "text"),
        ("outbound", "auto_reply", "template"),
        ("inbound", "customer", "text"),
        ("outbound", "api", "text"),
        ("outbound", "staff", "text"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(summary, want, "{msgs:#?}\n{}", w.log_tail(30));
    assert_eq!(msgs[0]["id"], hi.message_id.as_str());
    assert_eq!(msgs[0]["text"], "hi, the price?");
    assert_eq!(
        (msgs[1]["rule"].clone(), msgs[2]["rule"].clone()),
        (json!("welcome"), json!("price"))
    );
    assert_eq!(msgs[2]["text"], "It is 5 EUR.");
    assert_eq!(
        msgs[3]["image"]["media_id"],
        image.media_id.clone().unwrap().as_str()
    );
    assert!(
        msgs[4]["share_post"]["embed_url"].is_string(),
        "{}",
        msgs[4]
    );
    assert_eq!(msgs[5]["text"], "help");
    assert_eq!(
        (msgs[6]["rule"].clone(), msgs[6]["id"].clone()),
        (json!("menu"), json!(card.message_id))
    );
    assert_eq!(
        msgs[6]["template"]["buttons"][0]["id"], "track_order",
        "{}",
        msgs[6]
    );
    assert_eq!(msgs[7]["button_id"], "track_order");
    assert_eq!(
        (msgs[8]["id"].clone(), msgs[8]["text"].clone()),
        (json!(api_id), json!("From the API"))
    );
    assert_eq!(msgs[9]["text"], "Tom here");
    let ids: HashSet<&str> = msgs.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids.len(), msgs.len(), "a send and its echo are one message");

    // The conversation in the inbox: customer, last message, unread, window, pause.
    let list = get(
        &env,
        &w.url,
        &format!("/v1/conversations?account_id={ACCOUNT}"),
    )
    .await;
    let conv = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == c.as_str())
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(conv["customer"]["handle"], "maria.lopez92", "{conv}");
    assert_eq!(conv["last_message"]["text"], "Tom here");
    assert_eq!(conv["unread"], 0, "staff answered: read");
    assert_eq!(conv["window"]["open"], true);
    assert_eq!(conv["bot"]["paused"], true, "a person answered: {conv}");
    assert_eq!(conv["bot"]["paused_by"], "staff_reply");
    // Opening the conversation learns the customer's display name from TikTok, once.
    let page = get(
        &env,
        &w.url,
        &format!(
            "/v1/conversations/{}/messages?account_id={ACCOUNT}&limit=2",
            enc(&c)
        ),
    )
    .await;
    assert_eq!(
        page["conversation"]["customer"]["display_name"], "María López",
        "{page}"
    );
    assert_eq!(page["order"], "newest_first");
    assert_eq!(page["messages"][0]["text"], "Tom here", "newest first");
    // A customer message after that counts as unread.
    deliver(&env, &w.url, &m(Incoming::text(ACCOUNT, &c, "thanks")).body).await;
    stored(&env, &w.url, &c, 11).await;
    let list = get(
        &env,
        &w.url,
        &format!("/v1/conversations?account_id={ACCOUNT}&limit=1"),
    )
    .await;
    assert_eq!(
        list["conversations"][0]["id"],
        c.as_str(),
        "latest activity first"
    );
    assert_eq!(list["conversations"][0]["unread"], 1);

    // A 1,000-message conversation, delivered 8 at a time; no auto-reply for this one.
    let long = env.sim.new_conversation_id();
    let r = env
        .call_at(
            &w.url,
            "PUT",
            &format!("/v1/rules?account_id={ACCOUNT}"),
            Some(ADMIN_KEY),
            Some(&json!({"rules": []})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let base_ms = tiktok_sim::now_ms() - 3_600_000;
    let bodies: Vec<String> = (0..1_000u64)
        .map(|i| {
            env.sim
                .customer_message(
                    Incoming::text(ACCOUNT, &long, &format!("n{i}")).at_ms(base_ms + i),
                )
                .body
        })
        .collect();
    let url = format!("{}/webhooks/tiktok", w.url);
    for chunk in bodies.chunks(8) {
        let sends = chunk.iter().map(|b| env.sim.deliver(&url, b));
        for (status, text) in futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
        {
            assert_eq!(status, 200, "{text}");
        }
    }
    let want: Vec<String> = (0..1_000).map(|i| format!("n{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let texts_of = |msgs: &[Value]| -> Vec<String> {
        msgs.iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    loop {
        let got = all_messages(&env, &w.url, &long, "oldest_first", 200).await;
        if got.len() >= 1_000 || Instant::now() > deadline {
            assert_eq!(texts_of(&got), want, "oldest first, every message once");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let newest = all_messages(&env, &w.url, &long, "newest_first", 64).await;
    let mut reversed = want.clone();
    reversed.reverse();
    assert_eq!(texts_of(&newest), reversed, "newest first in pages of 64");

    // Everything is still there after the runtime is killed and started again.
    let before = all_messages(&env, &w.url, &c, "oldest_first", 3).await;
    w.restart();
    let after = all_messages(&env, &w.url, &c, "oldest_first", 3).await;
    assert_eq!(before, after, "history survives a restart");
    assert_eq!(
        all_messages(&env, &w.url, &long, "oldest_first", 200)
            .await
            .len(),
        1_000
    );

    // A conversation the Worker never saw: TikTok's own listing answers.
    let old = env.sim.new_conversation_id();
    let _ = env.sim.inbound(ACCOUNT, &old, "from before the Worker");
    let page = get(
        &env,
        &w.url,
        &format!(
            "/v1/conversations/{}/messages?account_id={ACCOUNT}",
            enc(&old)
        ),
    )
    .await;
    assert_eq!(page["source"], "tiktok", "{page}");
    assert_eq!(page["messages"][0]["text"], "from before the Worker");

    // Bad cursors and parameters are refused before the actor is asked.
    for bad in [
        "cursor=nope",
        "limit=0",
        "limit=201",
        "source=kv",
        "type=SINGLE",
    ] {
        let r = env
            .call_at(
                &w.url,
                "GET",
                &format!("/v1/conversations?account_id={ACCOUNT}&{bad}"),
                Some(SENDER_KEY),
                None,
            )
            .await;
        r.expect_error(400, "invalid_request");
    }
    let r = env
        .call_at(
            &w.url,
            "GET",
            &format!(
                "/v1/conversations/{}/messages?account_id={ACCOUNT}&order=sideways",
                enc(&c)
            ),
            Some(SENDER_KEY),
            None,
        )
        .await;
    r.expect_error(400, "invalid_request");
    let r = env
        .call_at(
            &w.url,
            "DELETE",
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
