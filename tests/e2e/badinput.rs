//! Issue 6: malformed requests across every route get a clean 4xx (JSON; the browser-facing
//! OAuth callback answers HTML pages), never a 5xx, and nothing panics.

use crate::harness::{ADMIN_KEY, CLIENT_SECRET, SENDER_KEY};
use crate::oauth::connect;
use crate::{send, Env};
use std::sync::Arc;
use tiktok_sim::Sim;

struct Case {
    method: &'static str,
    path: String,
    key: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

fn case(method: &'static str, path: &str, key: Option<&'static str>, body: Option<&[u8]>) -> Case {
    Case {
        method,
        path: path.to_string(),
        key,
        headers: vec![("content-type", "application/json".into())],
        body: body.map(<[u8]>::to_vec),
    }
}

fn cases(env: &Env) -> Vec<Case> {
    let a = Some(ADMIN_KEY);
    let s = Some(SENDER_KEY);
    let msg = "/v1/messages";
    let mut v = vec![
        // bad JSON and wrong types on sends
        case("POST", msg, s, Some(b"{")),
        case("POST", msg, s, Some(b"")),
        case("POST", msg, s, Some(b"null")),
        case("POST", msg, s, Some(b"[]")),
        case("POST", msg, s, Some(b"\"text\"")),
        case("POST", msg, s, Some(br#"{"account_id":1,"conversation_id":"c","type":"text","text":"x"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":["c"],"type":"text","text":"x"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":5}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":null}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":{"body":"x"}}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"image","image":"m"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"image","image":{"media_id":7}}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"gif"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":"x","text":"y"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"../../etc/passwd","conversation_id":"c","type":"text"}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"a'; DROP TABLE accounts;--","conversation_id":"c","type":"text","text":""}"#)),
        case("POST", msg, s, Some(br#"{"account_id":"<script>alert(1)</script>","conversation_id":"c","type":"video"}"#)),
        case("POST", msg, s, Some(b"{\"account_id\":\"\xff\xfe\",\"conversation_id\":\"c\",\"type\":\"text\",\"text\":\"x\"}")),
        case("POST", msg, s, Some(b"\xef\xbb\xbf{\"a\":1}")),
        case("POST", msg, s, Some(format!(r#"{{"account_id":"{}","conversation_id":"c","type":"text","text":"x"}}"#, "a".repeat(300)).as_bytes())),
        case("POST", msg, s, Some(format!(r#"{{"account_id":"a","conversation_id":"c","type":"text","text":"{}"}}"#, "a".repeat(70_000)).as_bytes())),
        case("POST", msg, s, Some(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes())),
        // auth problems
        case("POST", msg, None, Some(b"{}")),
        case("POST", msg, Some("short"), Some(b"{}")),
        case("GET", "/v1/accounts", None, None),
        case("GET", "/v1/accounts", s, None),
        case("DELETE", "/v1/accounts/x", None, None),
        case("DELETE", "/v1/accounts/x", s, None),
        case("GET", "/v1/rules", s, None),
        case("PUT", "/v1/rules", s, Some(b"{}")),
        case("GET", "/v1/events/failed", s, None),
        case("POST", "/v1/events/replay", s, Some(b"{}")),
        case("PUT", "/v1/webhook-subscription", s, None),
        case("GET", "/v1/webhook-subscription", None, None),
        case("GET", "/v1/conversations?account_id=a", None, None),
        case("GET", "/health?probe=tiktok", s, None),
        // listings
        case("GET", "/v1/conversations", s, None),
        case("GET", "/v1/conversations?account_id=", s, None),
        case("GET", "/v1/conversations?account_id=a&type=ALL", s, None),
        case("GET", "/v1/conversations?account_id=a&limit=0", s, None),
        case("GET", "/v1/conversations?account_id=a&limit=abc", s, None),
        case("GET", "/v1/conversations?account_id=a&limit=99999999999999999999", s, None),
        case("GET", "/v1/conversations?account_id=%00", s, None),
        case("GET", "/v1/conversations/x/messages", s, None),
        case("GET", "/v1/conversations/%ff%fe/messages?account_id=a", s, None),
        case("GET", "/v1/conversations/%0a/messages?account_id=a", s, None),
        case("GET", &format!("/v1/conversations/{}/messages?account_id=a", "x".repeat(600)), s, None),
        case("GET", "/v1/conversations/..%2F..%2Fetc/messages?account_id=nobody", s, None),
        // rules
        case("PUT", "/v1/rules", a, Some(b"not json")),
        case("PUT", "/v1/rules", a, Some(br#"{"rules":"all"}"#)),
        case("PUT", "/v1/rules", a, Some(br#"{"rules":[{"id":"a","match":"regex","keywords":[".*"],"text":"x"}]}"#)),
        case("PUT", "/v1/rules", a, Some(br#"{"timezone":"../../etc/localtime"}"#)),
        case("PUT", "/v1/rules", a, Some(br#"{"cooldown_secs":1e99}"#)),
        case("PUT", "/v1/rules", a, Some(&vec![b' '; 300 * 1024])),
        // replay, accounts, subscription
        case("POST", "/v1/events/replay", a, Some(br#"{"account_id":"a"}"#)),
        case("POST", "/v1/events/replay", a, Some(br#"{"account_id":"a","id":"nope"}"#)),
        case("POST", "/v1/events/replay", a, Some(br#"{"account_id":"a","id":"x","extra":true}"#)),
        case("GET", "/v1/events/failed?account_id=%01", a, None),
        case("DELETE", "/v1/accounts/does-not-exist", a, None),
        case("DELETE", "/v1/accounts/%2e%2e", a, None),
        case("PUT", "/v1/webhook-subscription", a, Some(br#"{"callback_url":"javascript:alert(1)"}"#)),
        case("PUT", "/v1/webhook-subscription", a, Some(br#"{"callback_url":42}"#)),
        case("PUT", "/v1/webhook-subscription", a, Some(br#"{"url":"https://x"}"#)),
        // wrong methods and unknown paths
        case("GET", msg, s, None),
        case("PATCH", "/v1/rules", a, Some(b"{}")),
        case("POST", "/v1/accounts", a, Some(b"{}")),
        case("PUT", "/oauth/start", None, None),
        case("DELETE", "/webhooks/tiktok", None, None),
        case("GET", "/v2/messages", s, None),
        case("GET", "/etc/passwd", None, None),
        case("GET", "/v1/accounts/x/y/z", a, None),
        // webhooks
        case("POST", "/webhooks/tiktok", None, Some(b"{}")),
        case("POST", "/webhooks/tiktok", None, Some(&vec![b'{'; 300 * 1024])),
        // oauth start
        case("GET", "/oauth/start?return_to=javascript:alert(1)", None, None),
        case("GET", "/oauth/start?return_to=https://evil.example/", None, None),
    ];
    // Bad headers.
    let mut c = case(
        "POST",
        msg,
        s,
        Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":"x"}"#),
    );
    c.headers = vec![("content-type", "text/plain".into())];
    v.push(c);
    let mut c = case(
        "POST",
        msg,
        s,
        Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":"x"}"#),
    );
    c.headers.push(("idempotency-key", "k".repeat(300)));
    v.push(c);
    let mut c = case(
        "POST",
        msg,
        s,
        Some(br#"{"account_id":"a","conversation_id":"c","type":"text","text":"x"}"#),
    );
    c.headers.push(("idempotency-key", "has space".into()));
    v.push(c);
    let mut c = case("GET", "/v1/accounts", None, None);
    c.headers.push(("authorization", "Bearer".into()));
    v.push(c);
    let mut c = case("GET", "/v1/accounts", None, None);
    c.headers
        .push(("authorization", format!("Bearer {ADMIN_KEY}x")));
    v.push(c);
    let mut c = case("GET", "/v1/accounts", None, None);
    c.headers
        .push(("authorization", format!("Token {ADMIN_KEY}")));
    v.push(c);
    // Signed webhook bodies that are not envelopes, and signature header garbage.
    for body in [
        &b"not json"[..],
        b"[]",
        br#"{"event":"im_receive_msg"}"#,
        br#"{"user_openid":{"x":1},"event":"e"}"#,
    ] {
        let text = String::from_utf8_lossy(body).into_owned();
        let mut c = case("POST", "/webhooks/tiktok", None, Some(body));
        c.headers.push((
            "tiktok-signature",
            Sim::signature(CLIENT_SECRET, tiktok_sim::now(), &text),
        ));
        v.push(c);
    }
    for sig in [
        "t=,s=",
        "t=1,s=zz",
        &format!("t={},s={}", u64::MAX, "0".repeat(64)),
        &"t=1,".repeat(400),
    ] {
        let mut c = case(
            "POST",
            "/webhooks/tiktok",
            None,
            Some(br#"{"event":"x","user_openid":"a"}"#),
        );
        c.headers.push(("tiktok-signature", sig.to_string()));
        v.push(c);
    }
    let _ = env;
    v
}

pub async fn malformed_requests_get_clean_4xx(env: Arc<Env>) {
    connect(&env, "e2e-bad").await;
    let all = cases(&env);
    assert!(all.len() >= 60, "only {} cases", all.len());
    let mut failures = Vec::new();
    for c in &all {
        let m = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut rb = env.http.request(m, env.url(&c.path));
        if let Some(k) = c.key {
            rb = rb.bearer_auth(k);
        }
        for (h, v) in &c.headers {
            rb = rb.header(*h, v.as_str());
        }
        if let Some(b) = &c.body {
            rb = rb.body(b.clone());
        }
        let r = send(rb).await;
        let json_error = serde_json::from_str::<serde_json::Value>(&r.text)
            .ok()
            .is_some_and(|b| b["error"]["code"].is_string() && b["error"]["message"].is_string());
        if !(400..500).contains(&r.status) || !json_error {
            failures.push(format!(
                "{} {} → {} {}",
                c.method,
                &c.path[..c.path.len().min(80)],
                r.status,
                &r.text[..r.text.len().min(200)]
            ));
        }
    }
    // The browser-facing callback: 4xx HTML pages with a stable code.
    for q in [
        "",
        "?state=",
        "?state=%00",
        "?code=x&state=nope",
        "?error=access_denied&state=nope",
        &format!("?state={}", "a".repeat(2000)),
    ] {
        let r = env
            .call("GET", &format!("/oauth/callback{q}"), None, None)
            .await;
        if !(400..500).contains(&r.status) || !r.text.contains("data-code=") {
            failures.push(format!("GET /oauth/callback{q} → {} {}", r.status, r.text));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases misbehaved:\n{}",
        failures.len(),
        all.len() + 6,
        failures.join("\n")
    );
    for path in ["/v1/messages", "/webhooks/tiktok", "/v1/rules"] {
        let (status, body) = declare_huge_body(env.worker.port, path);
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["error"]["code"].as_str().map(str::to_string));
        if status != 413 || code.as_deref() != Some("payload_too_large") {
            failures.push(format!("5 MiB declared to POST {path} → {status} {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "oversized bodies were not refused unread:\n{}",
        failures.join("\n")
    );
    let logs = env.worker.logs();
    assert!(!logs.contains("panicked"), "a panic reached the runtime");
    eprintln!(
        "bad input: {} malformed requests, all clean 4xx",
        all.len() + 9
    );
}

/// Sends only the head of a POST that declares a 5 MiB body, then reads the answer: the Worker
/// must refuse it without waiting for (or reading) the body. Returns status and body.
fn declare_huge_body(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {SENDER_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        5 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).expect("write head");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the Worker closes the connection, or the answer is complete and nothing follows.
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match (text.find('{'), text.rfind('}')) {
        (Some(i), Some(j)) if i < j => text[i..=j].to_string(),
        _ => text,
    };
    (status, body)
}
