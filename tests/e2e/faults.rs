//! Issue 6: the fault suite. Every accepted request ends delivered, reported to the caller, or
//! recorded as failed and replayable: nothing is lost silently.

use crate::harness::{free_port, Worker, ADMIN_KEY, SENDER_KEY};
use crate::oauth::{consent, page_code};
use crate::{send, Env};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tiktok_sim::Fault;

/// Connects `account` on the Worker at `base`.
async fn connect_at(env: &Env, base: &str, account: &str) {
    let cb = consent(env, base, None, &format!("&sim_open_id={account}")).await;
    let r = send(env.http.get(cb)).await;
    assert_eq!(page_code(&r), "connected", "{}", r.text);
}

async fn put_rules(env: &Env, base: &str) {
    let rules =
        json!({"rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P"}]});
    let r = env
        .call_at(base, "PUT", "/v1/rules", Some(ADMIN_KEY), Some(&rules))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Delivers a signed inbound "price?" message to the Worker at `base`; TikTok must get a 200
/// whatever happens to the reply afterwards.
async fn deliver_inbound(env: &Env, base: &str, account: &str, conv: &str, id: &str) {
    let body = env.sim.event(
        "im_receive_msg",
        account,
        &json!({"conversation_id": conv, "message_id": id, "type": "text",
        "text": {"body": "price?"}, "from_user": {"id": "u", "role": "personal_account"}}),
    );
    let url = format!("{base}/webhooks/tiktok");
    let (status, text) = env.sim.deliver(&url, &body).await.expect("delivery");
    assert_eq!(status, 200, "the webhook is acknowledged: {text}");
}

/// Each fault on a refresh is reported to the caller with a stable code; the account stays
/// usable and the next call refreshes.
pub async fn refresh_faults_are_reported_and_recoverable(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "refreshfaults", |v| {
        v.push(("TIKTOK_TIMEOUT_MS", Some("700".into())))
    });
    let path = "/v1/conversations?account_id=e2e-fault-refresh";
    let cases = [
        (Fault::Http { status: 500 }, 502, "tiktok_http_error"),
        (Fault::Code { code: 51065 }, 503, "tiktok_system_error"),
        (Fault::Code { code: 40100 }, 429, "tiktok_rate_limited"),
        (Fault::MalformedJson, 502, "tiktok_malformed_response"),
        (Fault::Slow { ms: 1_500 }, 504, "tiktok_timeout"),
    ];
    env.sim.settings(|s| s.access_ttl = 30);
    connect_at(&env, &w.url, "e2e-fault-refresh").await;
    env.sim.settings(|s| s.access_ttl = 86_400);
    for (fault, status, code) in cases {
        env.sim
            .push_faults("/oauth2/refresh_token/", [fault.clone()]);
        let r = env
            .call_at(&w.url, "GET", path, Some(SENDER_KEY), None)
            .await;
        r.expect_error(status, code);
    }
    let accounts = env
        .call_at(&w.url, "GET", "/v1/accounts", Some(ADMIN_KEY), None)
        .await
        .json();
    assert_eq!(
        accounts["accounts"][0]["status"], "active",
        "transient refresh faults never mark needs_reauth"
    );
    env.sim.clear_faults();
    // The slow answer may still have rotated the refresh token at the simulator, exactly as a
    // lost response would at TikTok: the account then needs a new consent, reported clearly.
    let r = env
        .call_at(&w.url, "GET", path, Some(SENDER_KEY), None)
        .await;
    assert!(
        r.status == 200 || r.json()["error"]["code"] == "account_needs_reauth",
        "{}",
        r.text
    );
}

/// Faults on sends through the API: reported to the caller after bounded retries.
pub async fn send_faults_are_reported(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "sendfaults", |v| {
        v.push(("TIKTOK_TIMEOUT_MS", Some("500".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-send").await;
    let body = json!({"account_id": "e2e-fault-send", "conversation_id": "fs-c", "type": "text", "text": "x"});
    let cases = [
        (
            vec![Fault::Http { status: 503 }; 4],
            502,
            "tiktok_http_error",
        ),
        (
            vec![Fault::Code { code: 51065 }; 4],
            503,
            "tiktok_system_error",
        ),
        (
            vec![Fault::MalformedJson; 4],
            502,
            "tiktok_malformed_response",
        ),
        (vec![Fault::Slow { ms: 800 }; 4], 504, "tiktok_timeout"),
        (
            vec![Fault::Code { code: 40100 }],
            429,
            "tiktok_rate_limited",
        ),
        (
            vec![Fault::Code { code: 40105 }, Fault::Code { code: 40105 }],
            502,
            "tiktok_token_rejected",
        ),
    ];
    for (faults, status, code) in cases {
        env.sim.push_faults("/message/send/", faults);
        env.call_at(
            &w.url,
            "POST",
            "/v1/messages",
            Some(SENDER_KEY),
            Some(&body),
        )
        .await
        .expect_error(status, code);
        env.sim.clear_faults();
    }
    let ok = env
        .call_at(
            &w.url,
            "POST",
            "/v1/messages",
            Some(SENDER_KEY),
            Some(&body),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// Faults on auto-replies: retried, then recorded and replayable.
pub async fn reply_faults_are_recorded_and_replayable(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "replyfaults", |v| {
        v.push(("TIKTOK_TIMEOUT_MS", Some("500".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-reply").await;
    put_rules(&env, &w.url).await;
    let faults = [
        vec![Fault::Http { status: 500 }; 4],
        vec![Fault::Code { code: 40100 }; 4],
        vec![Fault::MalformedJson; 4],
        vec![Fault::Slow { ms: 800 }; 4],
    ];
    for (i, f) in faults.iter().enumerate() {
        env.sim.push_faults("/message/send/", f.clone());
        deliver_inbound(
            &env,
            &w.url,
            "e2e-fault-reply",
            &format!("rf-c{i}"),
            &format!("rf-m{i}"),
        )
        .await;
        let got = env
            .failures_at(
                &w.url,
                Some("e2e-fault-reply"),
                i + 1,
                Duration::from_secs(15),
            )
            .await;
        assert_eq!(got.len(), i + 1, "fault {i} recorded");
        env.sim.clear_faults();
    }
    let all = env
        .failures_at(&w.url, Some("e2e-fault-reply"), 4, Duration::from_secs(1))
        .await;
    let codes: Vec<&str> = all.iter().map(|f| f["code"].as_str().unwrap()).collect();
    for c in [
        "tiktok_http_error",
        "tiktok_rate_limited",
        "tiktok_malformed_response",
        "tiktok_timeout",
    ] {
        assert!(codes.contains(&c), "{c} in {codes:?}");
    }
    for f in &all {
        let r = env.replay_at(&w.url, "e2e-fault-reply", &f["id"]).await;
        assert_eq!(r.json()["replayed"], true, "{}", r.text);
    }
    for i in 0..4 {
        assert_eq!(env.sim.sent_to(&format!("rf-c{i}")).len(), 1);
    }
}

/// TikTok unreachable (connection refused): sends report it, replies are recorded.
pub async fn connection_refused_is_reported_and_recorded(env: Arc<Env>) {
    let mut w = Worker::start(&env.sim, "refused", |_| {});
    connect_at(&env, &w.url, "e2e-fault-refused").await;
    put_rules(&env, &w.url).await;
    let dead = format!("http://127.0.0.1:{}/open_api/v1.3", free_port());
    w.restart_with(&env.sim, |v| {
        for (k, val) in v.iter_mut() {
            if *k == "TIKTOK_API_BASE" {
                *val = Some(dead.clone());
            }
        }
    });
    let body = json!({"account_id": "e2e-fault-refused", "conversation_id": "cr-c", "type": "text", "text": "x"});
    env.call_at(
        &w.url,
        "POST",
        "/v1/messages",
        Some(SENDER_KEY),
        Some(&body),
    )
    .await
    .expect_error(502, "tiktok_unreachable");
    deliver_inbound(&env, &w.url, "e2e-fault-refused", "cr-c", "cr-m1").await;
    let got = env
        .failures_at(
            &w.url,
            Some("e2e-fault-refused"),
            1,
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["code"], "tiktok_unreachable");
    // TikTok is back: the recorded reply is replayed.
    w.restart_with(&env.sim, |_| {});
    let r = env
        .replay_at(&w.url, "e2e-fault-refused", &got[0]["id"])
        .await;
    assert_eq!(r.json()["replayed"], true, "{}", r.text);
    assert_eq!(env.sim.sent_to("cr-c").len(), 1);
}

/// The Worker restarts while an accepted event is being processed: the actor's alarm finds it
/// unfinished after EVENT_PROCESSING_TIMEOUT_SECS and records it as interrupted; a replay
/// processes it again.
pub async fn restart_mid_processing_is_recorded_and_replayable(env: Arc<Env>) {
    let mut w = Worker::start(&env.sim, "restart", |v| {
        v.push(("EVENT_PROCESSING_TIMEOUT_SECS", Some("10".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-restart").await;
    put_rules(&env, &w.url).await;
    env.sim
        .push_faults("/message/send/", [Fault::Slow { ms: 6_000 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-restart", "rs-c", "rs-m1").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    w.restart();
    let got = env
        .failures_at(
            &w.url,
            Some("e2e-fault-restart"),
            1,
            Duration::from_secs(75),
        )
        .await;
    eprintln!(
        "restart mid-processing: recorded {:?}",
        got.iter().map(|f| f["stage"].clone()).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 1, "interrupted event recorded");
    assert_eq!(got[0]["stage"], "interrupted");
    let before = env.sim.sent_to("rs-c").len();
    let r = env
        .replay_at(&w.url, "e2e-fault-restart", &got[0]["id"])
        .await;
    assert_eq!(r.json()["replayed"], true, "{}", r.text);
    assert!(env.sim.sent_to("rs-c").len() > before);
}
