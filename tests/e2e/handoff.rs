//! Issue 14, item 3: a person taking over pauses the bot. A staff reply from the TikTok app
//! pauses auto-replies in that conversation for `HANDOFF_PAUSE_SECS` (5 s here) and the pause
//! ends on time; a handoff keyword answers once and pauses; the API pauses and resumes by hand.

use crate::contract::enc;
use crate::faults::connect_at;
use crate::harness::{Worker, ADMIN_KEY, SENDER_KEY};
use crate::webhooks::texts;
use crate::Env;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "e2e-handoff";

async fn say(env: &Env, base: &str, conv: &str, id: &str, text: &str) {
    let body = env.sim.event(
        "im_receive_msg",
        ACCOUNT,
        &json!({"conversation_id": conv, "message_id": id, "type": "text",
                "text": {"body": text}, "from_user": {"id": "u-h", "role": "personal_account"}}),
    );
    let (status, text) = env
        .sim
        .deliver(&format!("{base}/webhooks/tiktok"), &body)
        .await
        .expect("delivery");
    assert_eq!(status, 200, "{text}");
}

/// The texts sent to `conv`, once `n` are there or 6 s passed, after a short settle.
async fn replies(env: &Env, conv: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(6);
    while texts(env, conv).len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    texts(env, conv)
}

async fn state(env: &Env, base: &str, conv: &str, change: Option<Value>) -> Value {
    let path = format!(
        "/v1/conversations/{}/handoff?account_id={ACCOUNT}",
        enc(conv)
    );
    let method = if change.is_some() { "POST" } else { "GET" };
    let r = env
        .call_at(base, method, &path, Some(SENDER_KEY), change.as_ref())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

pub async fn a_person_taking_over_pauses_the_bot(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "handoff", |v| {
        v.push(("HANDOFF_PAUSE_SECS", Some("5".into())))
    });
    connect_at(&env, &w.url, ACCOUNT).await;
    let rules = json!({"handoff": {"keywords": ["agent", "human"], "text": "A colleague will answer."},
                       "rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P"}]});
    let r = env
        .call_at(&w.url, "PUT", "/v1/rules", Some(ADMIN_KEY), Some(&rules))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A staff reply from the app pauses the bot, for HANDOFF_PAUSE_SECS.
    let c1 = env.sim.new_conversation_id();
    say(&env, &w.url, &c1, "h-m1", "price?").await;
    assert_eq!(replies(&env, &c1, 1).await, ["P"]);
    let staff = env.sim.staff_reply(ACCOUNT, &c1, "Tom here, let me check");
    let (status, _) = env
        .sim
        .deliver(&format!("{}/webhooks/tiktok", w.url), &staff)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let paused_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = state(&env, &w.url, &c1, None).await;
    assert_eq!(
        (s["paused"].clone(), s["paused_by"].clone()),
        (json!(true), json!("staff_reply")),
        "{s}\n{}",
        w.log_tail(20)
    );
    say(&env, &w.url, &c1, "h-m2", "price again?").await;
    assert_eq!(replies(&env, &c1, 2).await, ["P"], "paused: not answered");
    // The pause ends on time.
    tokio::time::sleep(
        Duration::from_secs(5).saturating_sub(paused_at.elapsed()) + Duration::from_millis(300),
    )
    .await;
    assert_eq!(state(&env, &w.url, &c1, None).await["paused"], false);
    say(&env, &w.url, &c1, "h-m3", "and the price?").await;
    assert_eq!(replies(&env, &c1, 2).await, ["P", "P"], "answered again");

    // A handoff keyword answers once, then the bot is paused.
    let c2 = env.sim.new_conversation_id();
    say(&env, &w.url, &c2, "h-n1", "Can I talk to a HUMAN?").await;
    assert_eq!(replies(&env, &c2, 1).await, ["A colleague will answer."]);
    assert_eq!(
        state(&env, &w.url, &c2, None).await["paused_by"],
        "handoff_request"
    );
    say(&env, &w.url, &c2, "h-n2", "price? agent?").await;
    assert_eq!(
        replies(&env, &c2, 2).await,
        ["A colleague will answer."],
        "answered once, then paused"
    );

    // By hand: resume, then pause for longer than HANDOFF_PAUSE_SECS.
    let s = state(&env, &w.url, &c2, Some(json!({"paused": false}))).await;
    assert_eq!(
        (s["paused"].clone(), s["paused_until"].clone()),
        (json!(false), Value::Null)
    );
    say(&env, &w.url, &c2, "h-n3", "price").await;
    assert_eq!(replies(&env, &c2, 2).await.len(), 2, "resumed by hand");
    let s = state(
        &env,
        &w.url,
        &c2,
        Some(json!({"paused": true, "for_secs": 600})),
    )
    .await;
    assert_eq!(
        (s["paused"].clone(), s["paused_by"].clone()),
        (json!(true), json!("manual"))
    );
    say(&env, &w.url, &c2, "h-n4", "price").await;
    assert_eq!(replies(&env, &c2, 3).await.len(), 2, "paused by hand");
    let bad = env
        .call_at(
            &w.url,
            "POST",
            &format!(
                "/v1/conversations/{}/handoff?account_id={ACCOUNT}",
                enc(&c2)
            ),
            Some(SENDER_KEY),
            Some(&json!({"paused": false, "for_secs": 5})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    // The dry run says a handoff request pauses.
    let dry = env
        .call_at(
            &w.url,
            "POST",
            "/v1/rules/test",
            Some(ADMIN_KEY),
            Some(&json!({"text": "agent please"})),
        )
        .await
        .json();
    assert_eq!(
        (dry["pause"].clone(), dry["fired"].clone()),
        (json!(true), json!(["handoff"]))
    );
}
