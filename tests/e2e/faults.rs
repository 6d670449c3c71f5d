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
pub(crate) async fn connect_at(env: &Env, base: &str, account: &str) {
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

/// A signed delivery of an inbound "price?" message (the rules of [`put_rules`] answer it).
fn inbound_event(env: &Env, account: &str, conv: &str, id: &str) -> String {
    env.sim.event(
        "im_receive_msg",
        account,
        &json!({"conversation_id": conv, "message_id": id, "type": "text",
        "text": {"body": "price?"}, "from_user": {"id": "u", "role": "personal_account"}}),
    )
}

/// Delivers a signed inbound "price?" message to the Worker at `base`; TikTok must get a 200
/// whatever happens to the reply afterwards.
async fn deliver_inbound(env: &Env, base: &str, account: &str, conv: &str, id: &str) {
    let body = inbound_event(env, account, conv, id);
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
    let path = "/v1/conversations?account_id=e2e-fault-refresh&source=tiktok";
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

/// TikTok refusing an auto-reply (its error codes, so nothing was sent): retried while the
/// code says so, then recorded and replayable; the replay sends it once.
pub async fn reply_faults_are_recorded_and_replayable(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "replyfaults", |v| {
        v.push(("TIKTOK_TIMEOUT_MS", Some("500".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-reply").await;
    put_rules(&env, &w.url).await;
    let faults = [
        vec![Fault::Code { code: 40100 }; 4],
        vec![Fault::Code { code: 51065 }; 4],
        vec![Fault::Code { code: 40064 }],
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
        .failures_at(&w.url, Some("e2e-fault-reply"), 3, Duration::from_secs(1))
        .await;
    let codes: Vec<&str> = all.iter().map(|f| f["code"].as_str().unwrap()).collect();
    for c in [
        "tiktok_rate_limited",
        "tiktok_system_error",
        "tiktok_message_blocked",
    ] {
        assert!(codes.contains(&c), "{c} in {codes:?}");
    }
    for f in &all {
        let r = env.replay_at(&w.url, "e2e-fault-reply", &f["id"]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["replayed"], true, "{}", r.text);
    }
    for i in 0..3 {
        assert_eq!(env.sim.sent_to(&format!("rf-c{i}")).len(), 1);
    }
    // A replay that fails again answers an error status, not 200.
    let failed_again = {
        env.sim
            .push_faults("/message/send/", [Fault::Code { code: 40064 }]);
        deliver_inbound(&env, &w.url, "e2e-fault-reply", "rf-c9", "rf-m9").await;
        let got = env
            .failures_at(&w.url, Some("e2e-fault-reply"), 1, Duration::from_secs(15))
            .await;
        env.sim
            .push_faults("/message/send/", [Fault::Code { code: 40064 }]);
        env.replay_at(&w.url, "e2e-fault-reply", &got[0]["id"])
            .await
    };
    env.sim.clear_faults();
    let b = failed_again.expect_error_status(502);
    assert_eq!(b["replayed"], false, "{b}");
    assert_eq!(b["error"]["code"], "tiktok_message_blocked", "{b}");
}

/// Waits until `conv` has received `n` messages (or `wait` passed), then a little longer to
/// catch extras; returns how many it got.
async fn wait_sent(env: &Env, conv: &str, n: usize, wait: Duration) -> usize {
    let deadline = std::time::Instant::now() + wait;
    let count = || {
        env.sim
            .sent_to(conv)
            .iter()
            .filter(|m| m.message_type != "SENDER_ACTION")
            .count()
    };
    while count() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    count()
}

/// Waits up to 60 s for the Worker to log a reply found at TikTok (a send of unknown
/// outcome reconciled), failing with its last log lines otherwise.
async fn wait_reconciled(w: &Worker) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let found = || w.logs().contains("\"how\":\"reconciled\"");
    while !found() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found(), "{}", w.log_tail(30));
}

/// TikTok unreachable (connection refused): a send reports it and says the outcome is
/// unknown; an auto-reply stays pending, is looked for at TikTok once it is back, and is sent
/// exactly once.
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
    let b = env
        .call_at(
            &w.url,
            "POST",
            "/v1/messages",
            Some(SENDER_KEY),
            Some(&body),
        )
        .await
        .expect_error(502, "tiktok_unreachable");
    assert_eq!(b["error"]["details"]["outcome"], "unknown", "{b}");
    deliver_inbound(&env, &w.url, "e2e-fault-refused", "cr-c", "cr-m1").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // TikTok is back: the pending reply is reconciled (not there) and sent, once.
    w.restart_with(&env.sim, |_| {});
    assert_eq!(
        wait_sent(&env, "cr-c", 1, Duration::from_secs(60)).await,
        1,
        "exactly one reply\n{}",
        w.log_tail(30)
    );
    assert!(env
        .failures_at(&w.url, Some("e2e-fault-refused"), 0, Duration::ZERO)
        .await
        .is_empty());
}

/// The runtime is killed while a reply is in flight (TikTok is slow): after the restart the
/// actor resumes the event, finds the reply at TikTok (it went out) and sends nothing again.
pub async fn restart_mid_processing_is_recorded_and_replayable(env: Arc<Env>) {
    let mut w = Worker::start(&env.sim, "restart", |_| {});
    connect_at(&env, &w.url, "e2e-fault-restart").await;
    put_rules(&env, &w.url).await;
    env.sim
        .push_faults("/message/send/", [Fault::Slow { ms: 4_000 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-restart", "rs-c", "rs-m1").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    w.restart();
    assert_eq!(
        wait_sent(&env, "rs-c", 1, Duration::from_secs(10)).await,
        1,
        "TikTok finished the send it had received"
    );
    // The resumed event finds it (reconciled) instead of sending it again.
    wait_reconciled(&w).await;
    assert_eq!(
        env.sim
            .sent_to("rs-c")
            .iter()
            .filter(|m| m.message_type == "TEXT")
            .count(),
        1
    );
    assert!(env
        .failures_at(&w.url, Some("e2e-fault-restart"), 0, Duration::ZERO)
        .await
        .is_empty());
}

/// Issue 10, item 1: the actor already had its housekeeping alarm hours ahead when the
/// runtime died with an acknowledged event pending: the event is still processed within
/// seconds (the alarm is pulled forward on acceptance).
pub async fn crash_with_a_far_alarm_is_processed_within_seconds(env: Arc<Env>) {
    let mut w = Worker::start(&env.sim, "faralarm", |_| {});
    connect_at(&env, &w.url, "e2e-fault-far").await;
    // The reply greets by name; the event has no handle, so the name is looked up first.
    let rules = json!({"rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P {{display_name}}"}]});
    let r = env
        .call_at(&w.url, "PUT", "/v1/rules", Some(ADMIN_KEY), Some(&rules))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An idempotent send schedules the 6-hourly housekeeping alarm in the account's actor.
    let r = send(
        env.http
            .post(format!("{}/v1/messages", w.url))
            .bearer_auth(SENDER_KEY)
            .header("Idempotency-Key", "far-alarm-1")
            .json(&json!({"account_id": "e2e-fault-far", "conversation_id": "fa-c0", "type": "text", "text": "hello"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Processing hangs on that lookup, and the runtime dies meanwhile: nothing was sent.
    env.sim
        .push_faults("/message/content/list/", [Fault::Slow { ms: 3_000 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-far", "fa-c", "fa-m1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.restart();
    let t = std::time::Instant::now();
    assert_eq!(
        wait_sent(&env, "fa-c", 1, Duration::from_secs(75)).await,
        1,
        "processed after the crash, once\n{}",
        w.log_tail(30)
    );
    eprintln!(
        "far alarm: reply out {:.1}s after the restart",
        t.elapsed().as_secs_f64()
    );
}

/// Issue 10, item 2: a storage error while processing (recording the reply's failure fails)
/// leaves the event pending; the alarm tries again and the failure is listed. TikTok was
/// asked once: the retry only records, it does not send again.
pub async fn storage_error_during_processing_keeps_the_event(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "storagefault", |v| {
        v.push(("FAULT_FAIL_KV_PUTS", Some("failed:*1".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-store").await;
    put_rules(&env, &w.url).await;
    env.sim
        .push_faults("/message/send/", [Fault::Code { code: 40064 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-store", "sf-c", "sf-m1").await;
    let got = env
        .failures_at(&w.url, Some("e2e-fault-store"), 1, Duration::from_secs(60))
        .await;
    env.sim.clear_faults();
    assert_eq!(
        got.len(),
        1,
        "recorded after the storage error\n{}",
        w.log_tail(30)
    );
    assert_eq!(got[0]["code"], "tiktok_message_blocked");
    assert!(w.logs().contains("kept pending and tried again later"));
    let asked = env
        .sim
        .requests_to("/business/message/send/")
        .iter()
        .filter(|r| r.json()["recipient"] == "sf-c" && r.json()["message_type"] == "TEXT")
        .count();
    assert_eq!(
        asked, 1,
        "the retry recorded the failure without sending again"
    );
}

/// The actor writes a delivery's "seen" mark and its pending record in one transaction. When
/// the second write fails (injected), the first is rolled back: the delivery gets a 5xx, and
/// TikTok's redelivery is accepted as new, not as a duplicate, and answered exactly once.
/// (Written one after the other, the mark would stay and the event would be lost.)
pub async fn a_failed_acceptance_leaves_no_seen_mark(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "acceptfault", |v| {
        v.push(("FAULT_FAIL_KV_PUTS", Some("pending:m:af-m1*1".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-accept").await;
    put_rules(&env, &w.url).await;
    let body = inbound_event(&env, "e2e-fault-accept", "af-c", "af-m1");
    let url = format!("{}/webhooks/tiktok", w.url);
    let (status, text) = env.sim.deliver(&url, &body).await.expect("delivery");
    assert!(
        status >= 500,
        "the failed acceptance is not acknowledged: {status} {text}"
    );
    let (status, text) = env.sim.deliver(&url, &body).await.expect("redelivery");
    assert_eq!(status, 200, "{text}");
    let b: serde_json::Value = serde_json::from_str(&text).expect("JSON answer");
    assert_eq!(b["duplicate"], false, "the redelivery is new: {b}");
    assert_eq!(
        wait_sent(&env, "af-c", 1, Duration::from_secs(20)).await,
        1,
        "answered exactly once\n{}",
        w.log_tail(20)
    );
}

/// Issue 13: the actors' `fetch` route, which a Worker of the version before Durable Object RPC
/// uses during a deployment (and which a Worker falls back to for an actor of that version),
/// still serves every call: connect, rules, acceptance with de-duplication, processing.
pub async fn actor_calls_over_fetch_still_work(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "overfetch", |v| {
        v.push(("FAULT_ACTOR_CALLS_OVER_FETCH", Some("1".into())))
    });
    connect_at(&env, &w.url, "e2e-over-fetch").await;
    put_rules(&env, &w.url).await;
    let body = inbound_event(&env, "e2e-over-fetch", "of-c", "of-m1");
    let url = format!("{}/webhooks/tiktok", w.url);
    for duplicate in [false, true] {
        let (status, text) = env.sim.deliver(&url, &body).await.expect("delivery");
        assert_eq!(status, 200, "{text}\n{}", w.log_tail(20));
        let b: serde_json::Value = serde_json::from_str(&text).expect("JSON answer");
        assert_eq!(b["duplicate"], duplicate, "{b}");
    }
    assert_eq!(
        wait_sent(&env, "of-c", 1, Duration::from_secs(20)).await,
        1,
        "answered exactly once\n{}",
        w.log_tail(20)
    );
    // An error the actor answers with keeps its status and code over this route too.
    let r = env
        .replay_at(&w.url, "e2e-over-fetch", &json!("no-such-failure"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("no-such-failure"), "{}", r.text);
    assert!(!w.logs().contains("called over fetch"), "not the fallback");
}

/// Issue 13: a panic inside a Rust task woken from a microtask (the path `src/edge/entry.js`
/// reroutes) still reaches the runtime's error handling: the request fails, the shim starts a
/// fresh instance, and the next request is served.
pub async fn a_panic_is_followed_by_a_fresh_instance(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "panic", |v| {
        v.push(("FAULT_PANIC_PATH", Some("/fault/panic".into())))
    });
    let r = env.call_at(&w.url, "GET", "/health", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .http
        .get(format!("{}/fault/panic", w.url))
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    assert!(
        r.as_ref().map_or(true, |r| r.status().is_server_error()),
        "the panicking request is not answered as if it worked: {:?}",
        r.map(|r| r.status())
    );
    let r = env.call_at(&w.url, "GET", "/health", None, None).await;
    assert_eq!(
        r.status,
        200,
        "served after the panic: {}\n{}",
        r.text,
        w.log_tail(20)
    );
    let logs = w.logs();
    assert!(
        logs.contains("injected by FAULT_PANIC_PATH"),
        "{}",
        w.log_tail(20)
    );
    assert!(
        logs.contains("Reinitializing Wasm application"),
        "a fresh instance after the panic\n{}",
        w.log_tail(20)
    );
}

/// Issue 10, item 3: replays of one failure racing each other deliver it once.
pub async fn replay_race_sends_once(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "replayrace", |_| {});
    connect_at(&env, &w.url, "e2e-fault-race").await;
    put_rules(&env, &w.url).await;
    env.sim
        .push_faults("/message/send/", [Fault::Code { code: 40064 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-race", "rr-c", "rr-m1").await;
    let got = env
        .failures_at(&w.url, Some("e2e-fault-race"), 1, Duration::from_secs(15))
        .await;
    assert_eq!(got.len(), 1);
    // TikTok slow enough that the three replays overlap.
    env.sim
        .push_faults("/message/send/", [Fault::Slow { ms: 1_500 }]);
    let id = got[0]["id"].clone();
    let replays = (0..3).map(|_| {
        let env = env.clone();
        let (url, id) = (w.url.clone(), id.clone());
        async move { env.replay_at(&url, "e2e-fault-race", &id).await }
    });
    let answers = crate::oauth::futures_join_all(replays).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one replay ran: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 404, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(wait_sent(&env, "rr-c", 1, Duration::from_secs(5)).await, 1);
}

/// Issue 10, item 4: TikTok answers just after the Worker's deadline. The API send reports
/// an unknown outcome; the retry with the same Idempotency-Key finds the message at TikTok and
/// answers it instead of sending again. An auto-reply in the same situation goes out once.
pub async fn slow_tiktok_sends_exactly_once(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "slowtiktok", |v| {
        v.push(("TIKTOK_TIMEOUT_MS", Some("500".into())))
    });
    connect_at(&env, &w.url, "e2e-fault-slow").await;
    put_rules(&env, &w.url).await;
    let body = json!({"account_id": "e2e-fault-slow", "conversation_id": "sl-c", "type": "text", "text": "your order shipped"});
    let post = || {
        send(
            env.http
                .post(format!("{}/v1/messages", w.url))
                .bearer_auth(SENDER_KEY)
                .header("Idempotency-Key", "slow-1")
                .json(&body),
        )
    };
    env.sim
        .push_faults("/message/send/", [Fault::Slow { ms: 900 }]);
    let first = post().await;
    let b = first.expect_error(504, "tiktok_timeout");
    assert_eq!(b["error"]["details"]["outcome"], "unknown");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = post().await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["reconciled"], true);
    let sent = env.sim.sent_to("sl-c");
    assert_eq!(sent.len(), 1, "one message reached the customer");
    assert_eq!(again.json()["message_id"], sent[0].message_id.as_str());
    let third = post().await;
    assert_eq!(third.json()["message_id"], sent[0].message_id.as_str());
    assert_eq!(env.sim.sent_to("sl-c").len(), 1);
    // An auto-reply whose send times out is looked for, found, and not sent again.
    env.sim
        .push_faults("/message/send/", [Fault::Slow { ms: 900 }]);
    deliver_inbound(&env, &w.url, "e2e-fault-slow", "sl-r", "sl-m1").await;
    wait_reconciled(&w).await;
    assert_eq!(
        wait_sent(&env, "sl-r", 2, Duration::ZERO).await,
        1,
        "one reply"
    );
}

/// Issue 10, item 5: a chunked body without content-length is refused while it streams: the
/// Worker's memory does not grow with it.
pub async fn chunked_oversized_body_is_refused_while_streaming(env: Arc<Env>) {
    let before = env.worker.memory_kib();
    let chunks = (0..1_600).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024]));
    let stream = futures_util::stream::iter(chunks);
    let t = std::time::Instant::now();
    let r = env
        .http
        .post(env.url("/webhooks/tiktok"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // The Worker answers 413 after 256 KB; the client may see the connection end first.
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let after = env.worker.memory_kib();
    eprintln!("chunked 100 MB body: workerd memory {before} KiB -> {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "memory grew from {before} KiB to {after} KiB"
    );
    let health = env.call("GET", "/health", None, None).await;
    assert_eq!(health.status, 200);
}
