//! Issue 4: webhook receiver, de-duplication, auto-replies, retries, failures, forwarding.

use crate::harness::{Worker, ADMIN_KEY, CLIENT_SECRET, SENDER_KEY};
use crate::oauth::{connect, futures_join_all};
use crate::{send, Env, Reply};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_sim::{Fault, Sim, Sink};

async fn put_rules(env: &Env, rules: Value) {
    let r = env
        .call("PUT", "/v1/rules", Some(ADMIN_KEY), Some(&rules))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn message(conv: &str, id: &str, text: &str) -> Value {
    json!({"conversation_id": conv, "message_id": id, "type": "text", "text": {"body": text},
           "from": "Ada", "to": "shop", "message_tag": {"source": "APP"},
           "from_user": {"id": "user-77", "role": "personal_account"},
           "timestamp": tiktok_sim::now() * 1000})
}

fn hook(env: &Env) -> String {
    env.url("/webhooks/tiktok")
}

/// Delivers a signed `im_receive_msg` and returns the Worker's answer and its latency.
async fn deliver(env: &Env, account: &str, content: Value) -> ((u16, String), Duration) {
    let body = env.sim.event("im_receive_msg", account, &content);
    let t = Instant::now();
    let r = env.sim.deliver(&hook(env), &body).await.expect("delivery");
    (r, t.elapsed())
}

/// The texts sent to `conv` so far.
pub(crate) fn texts(env: &Env, conv: &str) -> Vec<String> {
    env.sim
        .sent_to(conv)
        .into_iter()
        .filter(|m| m.message_type == "TEXT")
        .map(|m| {
            m.body["text"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Waits until `conv` has `n` texts (or 8 s), then a little longer to catch extras.
async fn wait_texts(env: &Env, conv: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(8);
    while texts(env, conv).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    texts(env, conv)
}

/// For "nothing more happens": gives deferred processing time to (wrongly) send.
async fn settle(env: &Env, conv: &str) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    texts(env, conv)
}

const KEYWORDS: &str = r#"{"rules":[{"id":"price","match":"any_of","keywords":["price","prices"],"text":"Our prices are on the site."}]}"#;

pub async fn keyword_reply_is_sent(env: Arc<Env>) {
    connect(&env, "e2e-wh-kw").await;
    put_rules(&env, serde_json::from_str(KEYWORDS).unwrap()).await;
    let ((status, body), latency) = deliver(
        &env,
        "e2e-wh-kw",
        message("kw-c1", "kw-m1", "What's the PRICE?"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eprintln!(
        "webhook ack latency (new message, reply deferred): {} ms",
        latency.as_millis()
    );
    assert_eq!(
        wait_texts(&env, "kw-c1", 1).await,
        vec!["Our prices are on the site."]
    );
    let other = deliver(&env, "e2e-wh-kw", message("kw-c2", "kw-m2", "hello there"))
        .await
        .0;
    assert_eq!(other.0, 200);
    assert!(
        settle(&env, "kw-c2").await.is_empty(),
        "no rule matched: no reply"
    );
}

pub async fn welcome_then_keywords_with_typing_and_mark_read(env: Arc<Env>) {
    connect(&env, "e2e-wh-welcome").await;
    put_rules(&env, json!({"welcome": "Hi {{display_name}}!", "typing": true, "mark_read": true,
        "rules": [{"id": "price", "match": "contains", "keywords": ["price"], "text": "Prices: see site."}]}))
    .await;
    deliver(&env, "e2e-wh-welcome", message("wel-c", "wel-m1", "hello")).await;
    assert_eq!(wait_texts(&env, "wel-c", 1).await, vec!["Hi Ada!"]);
    let actions: Vec<String> = env
        .sim
        .sent_to("wel-c")
        .into_iter()
        .filter(|m| m.message_type == "SENDER_ACTION")
        .map(|m| m.body["sender_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, vec!["MARK_READ", "TYPING"]);
    deliver(&env, "e2e-wh-welcome", message("wel-c", "wel-m2", "price?")).await;
    assert_eq!(
        wait_texts(&env, "wel-c", 2).await,
        vec!["Hi Ada!", "Prices: see site."],
        "welcome only once"
    );
}

pub async fn away_hours_use_iana_time_zone(env: Arc<Env>) {
    connect(&env, "e2e-wh-away").await;
    let bad = env
        .call(
            "PUT",
            "/v1/rules",
            Some(ADMIN_KEY),
            Some(&json!({"timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(
        bad.expect_error(400, "invalid_request")["error"]["details"]["field"],
        "timezone"
    );
    let all_day: Value = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!(["00:00-24:00"])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let kw = json!([{"id": "hi", "match": "exact", "keywords": ["hi"], "text": "Hello!"}]);
    put_rules(&env, json!({"timezone": "America/New_York", "away": {"text": "We are closed.", "open": all_day}, "rules": kw})).await;
    deliver(&env, "e2e-wh-away", message("away-open", "away-m1", "Hi")).await;
    assert_eq!(wait_texts(&env, "away-open", 1).await, vec!["Hello!"]);
    put_rules(&env, json!({"timezone": "America/New_York", "away": {"text": "We are closed.", "open": {}}, "rules": kw})).await;
    deliver(&env, "e2e-wh-away", message("away-closed", "away-m2", "Hi")).await;
    assert_eq!(
        wait_texts(&env, "away-closed", 1).await,
        vec!["We are closed."]
    );
}

pub async fn cooldown_limits_replies(env: Arc<Env>) {
    connect(&env, "e2e-wh-cool").await;
    put_rules(&env, json!({"cooldown_secs": 3600, "rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P"}]})).await;
    deliver(&env, "e2e-wh-cool", message("cool-c", "cool-m1", "price")).await;
    assert_eq!(wait_texts(&env, "cool-c", 1).await.len(), 1);
    deliver(
        &env,
        "e2e-wh-cool",
        message("cool-c", "cool-m2", "price again"),
    )
    .await;
    assert_eq!(
        settle(&env, "cool-c").await.len(),
        1,
        "second reply held back by the cooldown"
    );
}

pub async fn echoes_and_own_messages_are_never_answered(env: Arc<Env>) {
    connect(&env, "e2e-wh-echo").await;
    put_rules(&env, serde_json::from_str(KEYWORDS).unwrap()).await;
    let echo = env.sim.event(
        "im_send_msg",
        "e2e-wh-echo",
        &message("echo-c", "echo-m1", "price"),
    );
    assert_eq!(env.sim.deliver(&hook(&env), &echo).await.unwrap().0, 200);
    let mut own = message("echo-c", "echo-m2", "price");
    own["from_user"] = json!({"id": "e2e-wh-echo", "role": "business_account"});
    deliver(&env, "e2e-wh-echo", own).await;
    assert!(settle(&env, "echo-c").await.is_empty());
}

pub async fn unknown_events_and_types_get_200(env: Arc<Env>) {
    for (event, content) in [
        ("im_mark_read_msg", json!({"conversation_id": "u-c"})),
        ("im_receive_msg_eu", json!({"type": "text"})),
        ("brand_new_event", json!({"anything": [1, 2, 3]})),
    ] {
        let body = env.sim.event(event, "e2e-wh-unknown", &content);
        let (status, text) = env.sim.deliver(&hook(&env), &body).await.unwrap();
        assert_eq!(status, 200, "{event}: {text}");
    }
    let r = env
        .call("GET", "/webhooks/tiktok?challenge=abc123", None, None)
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, "abc123"));
}

async fn raw_delivery(env: &Env, body: &str, sig: Option<String>) -> Reply {
    let mut rb = env
        .http
        .post(hook(env))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = sig {
        rb = rb.header("TikTok-Signature", s);
    }
    send(rb).await
}

pub async fn bad_and_stale_signatures_get_401(env: Arc<Env>) {
    let body = env.sim.event(
        "im_receive_msg",
        "e2e-wh-sig",
        &message("sig-c", "sig-m", "price"),
    );
    let now = tiktok_sim::now();
    let cases = [
        None,
        Some("garbage".to_string()),
        Some(Sim::signature("wrong-secret", now, &body)),
        Some(Sim::signature(CLIENT_SECRET, now - 301, &body)),
        Some(Sim::signature(CLIENT_SECRET, now + 400, &body)),
        Some(Sim::signature(CLIENT_SECRET, now, &format!("{body} "))),
    ];
    for sig in cases {
        let r = raw_delivery(&env, &body, sig.clone()).await;
        r.expect_error(401, "invalid_signature");
        assert!(!r.text.contains(CLIENT_SECRET));
    }
    let ok = raw_delivery(
        &env,
        &body,
        Some(Sim::signature(CLIENT_SECRET, now - 290, &body)),
    )
    .await;
    assert_eq!(
        ok.status, 200,
        "290 s old is within the tolerance: {}",
        ok.text
    );
    let huge = "x".repeat(300 * 1024);
    raw_delivery(&env, &huge, Some(Sim::signature(CLIENT_SECRET, now, &huge)))
        .await
        .expect_error(413, "payload_too_large");
}

pub async fn duplicate_storm_replies_once(env: Arc<Env>) {
    connect(&env, "e2e-wh-storm").await;
    put_rules(&env, serde_json::from_str(KEYWORDS).unwrap()).await;
    let body = env.sim.event(
        "im_receive_msg",
        "e2e-wh-storm",
        &message("storm-c", "storm-m1", "price"),
    );
    let url = hook(&env);
    let started = Instant::now();
    let results = futures_join_all((0..50).map(|_| env.sim.deliver(&url, &body))).await;
    let elapsed = started.elapsed();
    let mut fresh = 0;
    for r in results {
        let (status, text) = r.unwrap();
        assert_eq!(status, 200, "{text}");
        if text.contains("\"duplicate\":false") {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one delivery accepted as new");
    let replies = wait_texts(&env, "storm-c", 1).await;
    eprintln!(
        "duplicate storm: 50 concurrent deliveries → {} reply(ies), all acked in {} ms",
        replies.len(),
        elapsed.as_millis()
    );
    assert_eq!(replies.len(), 1);
    // Redelivery later is still recognised.
    let (status, text) = env.sim.deliver(&url, &body).await.unwrap();
    assert_eq!((status, text.contains("\"duplicate\":true")), (200, true));
}

pub async fn transient_faults_are_retried(env: Arc<Env>) {
    connect(&env, "e2e-wh-retry").await;
    put_rules(&env, serde_json::from_str(KEYWORDS).unwrap()).await;
    env.sim.push_faults(
        "/message/send/",
        [
            Fault::Code { code: 51065 },
            Fault::Code { code: 50002 },
            Fault::Code { code: 40100 },
        ],
    );
    deliver(
        &env,
        "e2e-wh-retry",
        message("retry-c", "retry-m1", "price"),
    )
    .await;
    assert_eq!(
        wait_texts(&env, "retry-c", 1).await.len(),
        1,
        "TikTok's error codes say nothing was sent: delivered on the 4th attempt"
    );
    env.sim.clear_faults();
}

pub async fn persistent_faults_are_recorded_and_replayable(env: Arc<Env>) {
    connect(&env, "e2e-wh-fail").await;
    put_rules(&env, serde_json::from_str(KEYWORDS).unwrap()).await;
    env.sim.push_faults(
        "/message/send/",
        (0..4).map(|_| Fault::Code { code: 51065 }),
    );
    deliver(&env, "e2e-wh-fail", message("fail-c", "fail-m1", "price")).await;
    let failures = env
        .failures_at(
            &env.worker.url,
            Some("e2e-wh-fail"),
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(
        (
            f["stage"].as_str(),
            f["code"].as_str(),
            f["attempts"].as_u64()
        ),
        (Some("reply"), Some("tiktok_system_error"), Some(4))
    );
    assert!(texts(&env, "fail-c").is_empty());
    env.call("GET", "/v1/events/failed", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    let r = env
        .replay_at(&env.worker.url, "e2e-wh-fail", &f["id"])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["replayed"], true);
    assert_eq!(texts(&env, "fail-c"), vec!["Our prices are on the site."]);
    let r = env
        .call(
            "GET",
            "/v1/events/failed?account_id=e2e-wh-fail",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert!(r.json()["failures"].as_array().unwrap().is_empty());
    env.replay_at(&env.worker.url, "e2e-wh-fail", &f["id"])
        .await
        .expect_error(404, "not_found");
}

pub async fn forwarding_is_signed_retried_and_replayable(env: Arc<Env>) {
    let sink = Sink::start().await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let w = Worker::start(&env.sim, "forward", |v| {
        v.push(("FORWARD_URLS", Some(sink.url.clone())));
        v.push(("FORWARD_SECRET", Some(secret.into())));
    });
    let url = format!("{}/webhooks/tiktok", w.url);
    let body = read_receipt(&env, "fwd-m1");
    assert_eq!(env.sim.deliver(&url, &body).await.unwrap().0, 200);
    wait_forwarded(&sink, &body).await;
    let (headers, got) = sink.received().pop().expect("forwarded");
    assert_eq!(got, body, "TikTok's delivery is forwarded unchanged");
    let (id, ts) = (&headers["webhook-id"], &headers["webhook-timestamp"]);
    assert!(id.starts_with("evt_"));
    let expected = standard_webhooks_signature(secret, id, ts, &got);
    assert_eq!(headers["webhook-signature"], expected);

    sink.fail_next(4);
    let body2 = read_receipt(&env, "fwd-m2");
    assert_eq!(env.sim.deliver(&url, &body2).await.unwrap().0, 200);
    let failures = env
        .failures_at(&w.url, None, 1, Duration::from_secs(10))
        .await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["stage"], "forward");
    let r = env
        .replay_at(&w.url, "e2e-wh-fwd", &failures[0]["id"])
        .await;
    assert_eq!(r.json()["replayed"], true, "{}", r.text);
    assert_eq!(sink.received().last().unwrap().1, body2);

    // A receiver that answers 204 (no body, so no length) has accepted: delivered once, not
    // retried as if it had failed.
    sink.answer_no_content(true);
    let body3 = read_receipt(&env, "fwd-m3");
    assert_eq!(env.sim.deliver(&url, &body3).await.unwrap().0, 200);
    wait_forwarded(&sink, &body3).await;
    // Long enough for the retries a failure would make (the first comes within a second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let times = sink.received().iter().filter(|(_, b)| *b == body3).count();
    assert_eq!(times, 1, "a 204 answer is an accepted delivery");
}

/// A read receipt in the forwarding test's conversation, signed as TikTok delivers it.
fn read_receipt(env: &Env, message_id: &str) -> String {
    env.sim.event(
        "im_mark_read_msg",
        "e2e-wh-fwd",
        &json!({"conversation_id": "fwd-c", "message_id": message_id}),
    )
}

/// Waits up to 8 s for `body` to reach the sink.
async fn wait_forwarded(sink: &Sink, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    while !sink.received().iter().any(|(_, b)| b == body) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Standard Webhooks v1, computed here independently of the Worker's code.
fn standard_webhooks_signature(secret: &str, id: &str, ts: &str, body: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

pub async fn rules_api_validates_and_round_trips(env: Arc<Env>) {
    env.call("GET", "/v1/rules", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    let bad = json!({"rules": [{"id": "a", "match": "contains", "keywords": ["x"], "text": "ok"},
                               {"id": "b", "match": "contains", "keywords": [], "text": "ok"}]});
    let r = env
        .call("PUT", "/v1/rules", Some(ADMIN_KEY), Some(&bad))
        .await;
    assert_eq!(
        r.expect_error(400, "invalid_request")["error"]["details"]["field"],
        "rules[1].keywords"
    );
    let r = send(
        env.http
            .put(env.url("/v1/rules"))
            .bearer_auth(ADMIN_KEY)
            .body("{not json"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let good: Value = serde_json::from_str(KEYWORDS).unwrap();
    put_rules(&env, good).await;
    let got = env
        .call("GET", "/v1/rules", Some(ADMIN_KEY), None)
        .await
        .json();
    assert_eq!(got["source"], "stored");
    assert_eq!(got["rules"]["rules"][0]["id"], "price");
}

pub async fn per_account_rules_override_the_global_set(env: Arc<Env>) {
    connect(&env, "e2e-wh-own").await;
    connect(&env, "e2e-wh-shared").await;
    let rules = |text: &str| json!({"rules": [{"id": "hi", "match": "exact", "keywords": ["hi"], "text": text}]});
    put_rules(&env, rules("Global hello")).await;
    let own = env
        .call(
            "PUT",
            "/v1/rules?account_id=e2e-wh-own",
            Some(ADMIN_KEY),
            Some(&rules("Own hello")),
        )
        .await;
    assert_eq!(
        (own.status, own.json()["source"].as_str()),
        (200, Some("account")),
        "{}",
        own.text
    );
    deliver(&env, "e2e-wh-own", message("own-c1", "own-m1", "hi")).await;
    deliver(
        &env,
        "e2e-wh-shared",
        message("shared-c1", "shared-m1", "hi"),
    )
    .await;
    assert_eq!(wait_texts(&env, "own-c1", 1).await, vec!["Own hello"]);
    assert_eq!(wait_texts(&env, "shared-c1", 1).await, vec!["Global hello"]);
    let got = env
        .call(
            "GET",
            "/v1/rules?account_id=e2e-wh-shared",
            Some(ADMIN_KEY),
            None,
        )
        .await
        .json();
    assert_eq!(got["source"], "stored", "falls back to the global set");
    let d = env
        .call(
            "DELETE",
            "/v1/rules?account_id=e2e-wh-own",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(d.status, 200);
    deliver(&env, "e2e-wh-own", message("own-c2", "own-m2", "hi")).await;
    assert_eq!(wait_texts(&env, "own-c2", 1).await, vec!["Global hello"]);
}

/// The account's actor remembers the rules it read; a change through the API reaches it at
/// once (global or the account's own), not after the minute it would otherwise keep them.
pub async fn rules_changes_apply_to_the_next_message(env: Arc<Env>) {
    connect(&env, "e2e-wh-change").await;
    let rules = |text: &str| json!({"rules": [{"id": "hi", "match": "exact", "keywords": ["hi"], "text": text}]});
    put_rules(&env, rules("First answer")).await;
    deliver(&env, "e2e-wh-change", message("chg-c1", "chg-m1", "hi")).await;
    assert_eq!(wait_texts(&env, "chg-c1", 1).await, vec!["First answer"]);
    put_rules(&env, rules("Second answer")).await;
    deliver(&env, "e2e-wh-change", message("chg-c2", "chg-m2", "hi")).await;
    assert_eq!(wait_texts(&env, "chg-c2", 1).await, vec!["Second answer"]);
    let own = env
        .call(
            "PUT",
            "/v1/rules?account_id=e2e-wh-change",
            Some(ADMIN_KEY),
            Some(&rules("Own answer")),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    deliver(&env, "e2e-wh-change", message("chg-c3", "chg-m3", "hi")).await;
    assert_eq!(wait_texts(&env, "chg-c3", 1).await, vec!["Own answer"]);
    let d = env
        .call(
            "DELETE",
            "/v1/rules?account_id=e2e-wh-change",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    deliver(&env, "e2e-wh-change", message("chg-c4", "chg-m4", "hi")).await;
    assert_eq!(wait_texts(&env, "chg-c4", 1).await, vec!["Second answer"]);
}

/// `POST /v1/rules/test` answers what the engine would send, and the real delivery of the same
/// message sends exactly that; the dry run itself sends nothing.
pub async fn rules_dry_run_matches_what_is_sent(env: Arc<Env>) {
    connect(&env, "e2e-wh-dry").await;
    let rules = json!({"welcome": "Welcome {{display_name}}!", "rules": [
        {"id": "price", "match": "contains", "keywords": ["price"], "text": "Prices are on the site."},
        {"id": "hours", "match": "contains", "keywords": ["open"], "text": "9 to 5."}]});
    let own = env
        .call(
            "PUT",
            "/v1/rules?account_id=e2e-wh-dry",
            Some(ADMIN_KEY),
            Some(&rules),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let sent_before = env.sim.sent().len();
    let ask =
        json!({"account_id": "e2e-wh-dry", "text": "what is the price?", "display_name": "Ada"});
    let dry = env
        .call("POST", "/v1/rules/test", Some(ADMIN_KEY), Some(&ask))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let d = dry.json();
    assert_eq!(
        (d["sent"].clone(), d["source"].clone()),
        (json!(false), json!("account"))
    );
    assert!(
        d["fired"].as_array().unwrap().contains(&json!("price")),
        "{d}"
    );
    let expected: Vec<String> = d["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["text"].as_str().unwrap().to_string())
        .collect();
    assert!(!expected.is_empty(), "{d}");
    assert_eq!(env.sim.sent().len(), sent_before, "a dry run sends nothing");
    deliver(
        &env,
        "e2e-wh-dry",
        message("dry-c1", "dry-m1", "what is the price?"),
    )
    .await;
    assert_eq!(wait_texts(&env, "dry-c1", expected.len()).await, expected);
    // Not the first message: no welcome, only the rule.
    let later =
        json!({"account_id": "e2e-wh-dry", "text": "when are you open?", "first_message": false});
    let d = env
        .call("POST", "/v1/rules/test", Some(ADMIN_KEY), Some(&later))
        .await
        .json();
    assert_eq!(d["fired"], json!(["hours"]), "{d}");
    deliver(
        &env,
        "e2e-wh-dry",
        message("dry-c1", "dry-m2", "when are you open?"),
    )
    .await;
    assert_eq!(
        wait_texts(&env, "dry-c1", expected.len() + 1).await[expected.len()..],
        ["9 to 5.".to_string()]
    );
    env.call(
        "POST",
        "/v1/rules/test",
        Some(ADMIN_KEY),
        Some(&json!({"account_id": "e2e-wh-dry"})),
    )
    .await
    .expect_error(400, "invalid_request");
    env.call("POST", "/v1/rules/test", Some(SENDER_KEY), Some(&ask))
        .await
        .expect_error(403, "forbidden");
}
