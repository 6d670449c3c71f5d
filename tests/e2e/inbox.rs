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
use tiktok_sim::{Incoming, Sink};

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

/// Registers the Worker at `base` for TikTok's webhooks (`PUT /v1/webhook-subscription`), so
/// the simulator echoes its sends back to it.
pub async fn subscribe_at(env: &Env, base: &str) {
    let r = env
        .call_at(
            base,
            "PUT",
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
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
    subscribe_at(&env, &w.url).await;
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
        "source=store&type=SINGLE",
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

/// The sink's origin (its URL without the `/hook` path), for URLs with paths of our own.
fn origin(sink: &Sink) -> String {
    sink.url.trim_end_matches("/hook").to_string()
}

/// The bodies `sink` received (as JSON), once at least `n` arrived or 8 s passed.
async fn received(sink: &Sink, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(8);
    while sink.received().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.received()
        .into_iter()
        .map(|(_, b)| serde_json::from_str(&b).unwrap_or(Value::Null))
        .collect()
}

/// Issue 14, item 4: notifications reach Slack, Discord and Telegram in each one's format, for
/// a new conversation, a handoff request, a message while paused, a reply failed after retries
/// and an account needing re-authorisation; a target that keeps failing is retried, recorded
/// (without its URL) and replayed.
pub async fn notifications_reach_slack_discord_and_telegram(env: Arc<Env>) {
    const ACCT: &str = "e2e-notify";
    let (slack, discord, telegram) = (
        Sink::start().await.unwrap(),
        Sink::start().await.unwrap(),
        Sink::start().await.unwrap(),
    );
    let urls = format!(
        "slack:{}/services/T0/B0/slack-secret, discord:{}/api/webhooks/1/discord-secret, \
         telegram:{}/bot123:TELEGRAM-SECRET/sendMessage?chat_id=-1001",
        origin(&slack),
        origin(&discord),
        origin(&telegram)
    );
    let w = Worker::start(&env.sim, "notify", |v| {
        v.push(("NOTIFY_URLS", Some(urls.clone())))
    });
    connect_at(&env, &w.url, ACCT).await;
    let rules = json!({"handoff": {"keywords": ["agent"], "text": "A colleague will answer."},
                       "rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P"}]});
    let r = env
        .call_at(
            &w.url,
            "PUT",
            &format!("/v1/rules?account_id={ACCT}"),
            Some(ADMIN_KEY),
            Some(&rules),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.sim
        .set_customer("cust-notify", "maria.lopez92", "María López");
    let say = |conv: &str, text: &str| {
        env.sim
            .customer_message(Incoming::text(ACCT, conv, text).from_customer("cust-notify"))
            .body
    };

    // A new conversation: one message each, in each service's shape.
    let c = env.sim.new_conversation_id();
    deliver(&env, &w.url, &say(&c, "hello <there> & all")).await;
    let s = received(&slack, 1).await;
    let d = received(&discord, 1).await;
    let t = received(&telegram, 1).await;
    assert_eq!((s.len(), d.len(), t.len()), (1, 1, 1), "{}", w.log_tail(20));
    let want = format!(
        "New TikTok conversation: @maria.lopez92 wrote: “hello <there> & all”\nAccount {ACCT} · conversation {c}"
    );
    assert_eq!(
        s[0]["text"],
        want.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    );
    assert_eq!(d[0]["content"], want.as_str());
    assert_eq!(d[0]["allowed_mentions"]["parse"], json!([]));
    assert_eq!(
        (t[0]["chat_id"].clone(), t[0]["text"].clone()),
        (json!("-1001"), json!(want))
    );
    assert_eq!(slack.paths(), ["/services/T0/B0/slack-secret"]);
    assert_eq!(
        telegram.paths(),
        ["/bot123:TELEGRAM-SECRET/sendMessage"],
        "chat in the body, not the query"
    );

    // A handoff request, then a message while paused: each told once.
    deliver(&env, &w.url, &say(&c, "an agent please")).await;
    let t = received(&telegram, 2).await;
    assert!(
        t[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("@maria.lopez92 asked for a person: “an agent please”"),
        "{}",
        t[1]
    );
    deliver(&env, &w.url, &say(&c, "hello?")).await;
    let t = received(&telegram, 3).await;
    assert!(
        t[2]["text"]
            .as_str()
            .unwrap()
            .contains("wrote while auto-replies are paused"),
        "{}",
        t[2]
    );

    // Discord keeps failing: retried, then recorded as a failure without its URL, replayed.
    discord.fail_next(4);
    let c2 = env.sim.new_conversation_id();
    deliver(&env, &w.url, &say(&c2, "first words")).await;
    let failures = env
        .failures_at(&w.url, Some(ACCT), 1, Duration::from_secs(15))
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f["stage"], "notify");
    assert!(f["target"].as_str().unwrap().starts_with("discord-"), "{f}");
    assert_eq!(f["attempts"], 4);
    let listed = env
        .call_at(&w.url, "GET", "/v1/events/failed", Some(ADMIN_KEY), None)
        .await
        .text;
    assert!(
        !listed.contains("discord-secret"),
        "no URL in failures: {listed}"
    );
    assert_eq!(
        received(&discord, 3).await.len(),
        3,
        "the other two were taken"
    );
    let r = env.replay_at(&w.url, ACCT, &f["id"]).await;
    assert_eq!(r.json()["replayed"], true, "{}", r.text);
    let d = received(&discord, 4).await;
    assert!(
        d[3]["content"].as_str().unwrap().contains("“first words”"),
        "{}",
        d[3]
    );
    assert_eq!(
        received(&slack, 4).await.len(),
        4,
        "a replay goes to its one target"
    );

    // A reply that fails after its retries.
    env.sim.push_faults(
        "/business/message/send/",
        std::iter::repeat_n(tiktok_sim::Fault::Code { code: 51065 }, 4),
    );
    let c3 = env.sim.new_conversation_id();
    deliver(&env, &w.url, &say(&c3, "price?")).await;
    let s = received(&slack, 6).await;
    assert!(
        s[5]["text"]
            .as_str()
            .unwrap()
            .starts_with("An auto-reply to @maria.lopez92 could not be sent (tiktok_system_error)"),
        "{s:?}"
    );

    // TikTok drops the grant: the next call finds out, and people are told once.
    env.sim.expire_access_tokens();
    env.sim.expire_refresh_tokens();
    let send = json!({"account_id": ACCT, "conversation_id": c, "type": "text", "text": "hi"});
    for _ in 0..2 {
        let r = env
            .call_at(
                &w.url,
                "POST",
                "/v1/messages",
                Some(SENDER_KEY),
                Some(&send),
            )
            .await;
        r.expect_error(409, "account_needs_reauth");
    }
    received(&slack, 7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = received(&slack, 7).await;
    assert_eq!(s.len(), 7, "{s:?}");
    let reauth: Vec<&Value> = s
        .iter()
        .filter(|m| {
            m["text"]
                .as_str()
                .unwrap()
                .contains("needs to be connected again")
        })
        .collect();
    assert_eq!(reauth.len(), 1, "{s:?}");
    let all: String = [&slack, &discord, &telegram]
        .iter()
        .flat_map(|k| k.received())
        .map(|(_, b)| b)
        .collect();
    for secret in [
        "slack-secret",
        "discord-secret",
        "TELEGRAM-SECRET",
        "act.",
        "rft.",
    ] {
        assert!(!all.contains(secret), "{secret} in a notification");
    }
    assert!(
        !w.log_tail(400).contains("discord-secret"),
        "no URL in the logs"
    );
}
