//! Issue 5: the outbound messaging API, listings, subscription management, OpenAPI.

use crate::harness::{ADMIN_KEY, CLIENT_SECRET, SENDER_KEY};
use crate::oauth::connect;
use crate::{send, Env};
use serde_json::{json, Value};
use std::sync::Arc;
use tiktok_sim::Fault;

fn text(account: &str, conv: &str, t: &str) -> Value {
    json!({"account_id": account, "conversation_id": conv, "type": "text", "text": t})
}

async fn post(env: &Env, body: &Value) -> crate::Reply {
    env.call("POST", "/v1/messages", Some(SENDER_KEY), Some(body))
        .await
}

fn sends(env: &Env) -> usize {
    env.sim.requests_to("/business/message/send/").len()
}

pub async fn text_is_sent_with_exact_ids(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    let conv = "e2e-msg:SINGLE:c+1/x==";
    let r = post(&env, &text("e2e-msg", conv, "Hello from the API")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    let id = b["message_id"].as_str().expect("message id as a string");
    assert!(id.len() > 16, "beyond 2^53 and exact: {id}");
    let sent = env
        .sim
        .sent()
        .into_iter()
        .find(|m| m.message_id == id)
        .expect("at TikTok");
    assert_eq!(sent.conversation_id, conv);
    assert_eq!(sent.body["text"]["body"], "Hello from the API");
}

pub async fn sender_actions_are_sent(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    for kind in ["typing", "mark_read"] {
        let body = json!({"account_id": "e2e-msg", "conversation_id": "act-c", "type": kind});
        let r = post(&env, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let acts: Vec<String> = env
        .sim
        .sent_to("act-c")
        .into_iter()
        .map(|m| m.body["sender_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(acts, vec!["TYPING", "MARK_READ"]);
}

pub async fn image_by_url_is_uploaded_then_sent(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    let url = format!("{}/_sim/images/ok.png", env.sim.origin);
    let body = json!({"account_id": "e2e-msg", "conversation_id": "img-c", "type": "image", "image": {"url": url}});
    let r = post(&env, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let media = r.json()["media_id"].as_str().unwrap().to_string();
    let upload = env.sim.requests_to("/media/upload/").pop().unwrap();
    assert!(upload.headers["content-type"].starts_with("multipart/form-data; boundary="));
    let sent = env.sim.sent_to("img-c").pop().unwrap();
    assert_eq!(
        (
            sent.message_type.as_str(),
            sent.body["image"]["media_id"].as_str()
        ),
        ("IMAGE", Some(media.as_str()))
    );
    let again = json!({"account_id": "e2e-msg", "conversation_id": "img-c", "type": "image", "image": {"media_id": media}});
    assert_eq!(post(&env, &again).await.status, 200);
    // A relative redirect is resolved (by the platform's URL parser) and followed.
    let moved = format!("{}/_sim/images/moved.png", env.sim.origin);
    let body = json!({"account_id": "e2e-msg", "conversation_id": "img-c", "type": "image", "image": {"url": moved}});
    let r = post(&env, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (name, why) in [
        ("big.jpg", "larger than"),
        ("stream.jpg", "larger than"),
        ("text.png", "not a JPEG or PNG"),
        ("missing.png", "could not be fetched"),
    ] {
        let url = format!("{}/_sim/images/{name}", env.sim.origin);
        let body = json!({"account_id": "e2e-msg", "conversation_id": "img-c", "type": "image", "image": {"url": url}});
        let b = post(&env, &body).await.expect_error(400, "invalid_request");
        assert_eq!(b["error"]["details"]["field"], "image.url");
        assert!(b["error"]["message"].as_str().unwrap().contains(why), "{b}");
    }
}

pub async fn idempotency_key_sends_once(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    let body = text("e2e-msg", "idem-c", "only once");
    let call = |b: Value| {
        let env = env.clone();
        async move {
            send(
                env.http
                    .post(env.url("/v1/messages"))
                    .bearer_auth(SENDER_KEY)
                    .header("Idempotency-Key", "order-42")
                    .json(&b),
            )
            .await
        }
    };
    let before = sends(&env);
    let first = call(body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = call(body.clone()).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["message_id"], first.json()["message_id"]);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(sends(&env), before + 1, "the repeat did not send again");
    call(text("e2e-msg", "idem-c", "different"))
        .await
        .expect_error(422, "idempotency_key_reused");
    let bad = send(
        env.http
            .post(env.url("/v1/messages"))
            .bearer_auth(SENDER_KEY)
            .header("Idempotency-Key", "")
            .json(&body),
    )
    .await;
    bad.expect_error(400, "invalid_request");
}

pub async fn rejected_token_is_refreshed_once(env: Arc<Env>) {
    connect(&env, "e2e-msg-40105").await;
    let refreshes = env.sim.requests_to("/oauth2/refresh_token/").len();
    env.sim
        .push_faults("/message/send/", [Fault::Code { code: 40105 }]);
    let r = post(&env, &text("e2e-msg-40105", "t-c", "after refresh")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        env.sim.requests_to("/oauth2/refresh_token/").len(),
        refreshes + 1
    );
}

pub async fn tiktok_errors_map_to_stable_codes(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    let cases = [
        (Fault::Code { code: 40100 }, 429, "tiktok_rate_limited"),
        (Fault::Code { code: 40064 }, 409, "tiktok_message_blocked"),
        (Fault::Code { code: 40001 }, 403, "tiktok_permission_denied"),
        (Fault::Code { code: 40002 }, 400, "tiktok_invalid_parameter"),
    ];
    for (fault, status, code) in cases {
        env.sim.push_faults("/message/send/", [fault]);
        let r = post(&env, &text("e2e-msg", "err-c", "x")).await;
        let b = r.expect_error(status, code);
        assert!(
            b["error"]["details"]["tiktok_request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 34),
            "{b}"
        );
        let tiktok_code = b["error"]["details"]["tiktok_code"].as_i64().unwrap();
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("code {tiktok_code}: ")),
            "TikTok's reason kept: {b}"
        );
        if status == 429 {
            assert_eq!(r.header("retry-after"), Some("5"));
        }
    }
    env.sim.clear_faults();
}

pub async fn transient_errors_are_retried_then_succeed_or_502(env: Arc<Env>) {
    connect(&env, "e2e-msg").await;
    let before = sends(&env);
    env.sim.push_faults(
        "/message/send/",
        [Fault::Code { code: 51065 }, Fault::Code { code: 51065 }],
    );
    let r = post(&env, &text("e2e-msg", "retry-c", "x")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(sends(&env), before + 3);
    // An answer that leaves the outcome unknown is never retried blindly: one attempt, and
    // the caller is told the message may have been sent.
    for (fault, code) in [
        (Fault::Http { status: 500 }, "tiktok_http_error"),
        (Fault::MalformedJson, "tiktok_malformed_response"),
    ] {
        let before = sends(&env);
        env.sim.push_faults("/message/send/", [fault]);
        let b = post(&env, &text("e2e-msg", "retry-c", "x"))
            .await
            .expect_error(502, code);
        assert_eq!(b["error"]["details"]["outcome"], "unknown", "{b}");
        assert_eq!(sends(&env), before + 1, "not retried");
    }
    env.sim.clear_faults();
}

pub async fn listings_work_with_plus_in_ids(env: Arc<Env>) {
    connect(&env, "e2e-msg-list").await;
    // Three customers wrote; the business never answered: STRANGER conversations.
    let mut customer_ids = Vec::new();
    for i in 0..3 {
        let conv = env.sim.new_conversation_id();
        let body = env
            .sim
            .inbound("e2e-msg-list", &conv, &format!("hello {i}"));
        let content: Value = serde_json::from_str(
            serde_json::from_str::<Value>(&body).unwrap()["content"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        customer_ids.push((conv, content["message_id"].as_str().unwrap().to_string()));
    }
    let r = env
        .call(
            "GET",
            "/v1/conversations?account_id=e2e-msg-list&source=tiktok&type=STRANGER&limit=2",
            Some(SENDER_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    let convs = b["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(b["has_more"], true);
    let id = convs[0]["id"].as_str().unwrap().to_string();
    assert!(id.contains('+'), "{id}");
    assert!(
        convs[0]["updated_at"].as_i64().unwrap() > 1_700_000_000_000,
        "milliseconds"
    );
    let next = env
        .call(
            "GET",
            &format!(
                "/v1/conversations?account_id=e2e-msg-list&source=tiktok&type=STRANGER&cursor={}",
                b["cursor"].as_str().unwrap()
            ),
            Some(SENDER_KEY),
            None,
        )
        .await
        .json();
    assert_eq!(next["conversations"].as_array().unwrap().len(), 1);
    let enc = url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let path = format!("/v1/conversations/{enc}/messages?account_id=e2e-msg-list");
    let m = env.call("GET", &path, Some(SENDER_KEY), None).await;
    assert_eq!(m.status, 200, "{}", m.text);
    let req = env.sim.requests_to("/content/list/").pop().unwrap();
    assert_eq!(
        req.query_value("conversation_id").as_deref(),
        Some(id.as_str()),
        "sent to TikTok exactly"
    );
    let listed = m.json();
    assert_eq!(
        listed["source"], "tiktok",
        "never stored here: TikTok's listing"
    );
    let msgs = listed["messages"].as_array().unwrap().clone();
    let (_, want_id) = customer_ids.iter().find(|(c, _)| *c == id).unwrap();
    assert_eq!(
        msgs.last().unwrap()["id"],
        *want_id,
        "ids stay exact strings"
    );
    assert_eq!(msgs.last().unwrap()["direction"], "inbound");
    assert!(msgs.last().unwrap()["text"]
        .as_str()
        .unwrap()
        .starts_with("hello "));
    let roles: Vec<&str> = listed["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"personal_account") && roles.contains(&"business_account"));
}

pub async fn webhook_subscription_put_get_delete(env: Arc<Env>) {
    let r = env
        .call("PUT", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let expected = env.url("/webhooks/tiktok");
    assert_eq!(r.json()["callback_url"], expected);
    assert_eq!(env.sim.webhook_url().as_deref(), Some(expected.as_str()));
    let update = env.sim.requests_to("/webhook/update/").pop().unwrap();
    assert_eq!(update.json()["secret"], CLIENT_SECRET, "secret in the body");
    assert!(!update.query.contains(CLIENT_SECRET));
    let g = env
        .call("GET", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(g.json()["callback_url"], expected);
    assert_eq!(g.json()["registered"], true);
    assert!(!g.text.contains(CLIENT_SECRET));
    let custom = json!({"callback_url": "https://hooks.example/tiktok"});
    env.call(
        "PUT",
        "/v1/webhook-subscription",
        Some(ADMIN_KEY),
        Some(&custom),
    )
    .await;
    assert_eq!(
        env.sim.webhook_url().as_deref(),
        Some("https://hooks.example/tiktok")
    );
    let d = env
        .call("DELETE", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(d.status, 200);
    assert_eq!(env.sim.webhook_url(), None);
    let g = env
        .call("GET", "/v1/webhook-subscription", Some(ADMIN_KEY), None)
        .await
        .json();
    assert_eq!(
        (g["registered"].clone(), g["callback_url"].clone()),
        (false.into(), Value::Null)
    );
    env.call("PUT", "/v1/webhook-subscription", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    let bad = json!({"callback_url": "ftp://x"});
    env.call(
        "PUT",
        "/v1/webhook-subscription",
        Some(ADMIN_KEY),
        Some(&bad),
    )
    .await
    .expect_error(400, "invalid_request");
    assert!(
        !env.worker.logs().contains(CLIENT_SECRET),
        "the secret never reaches the logs"
    );
}

pub async fn auth_failures(env: Arc<Env>) {
    let body = text("e2e-msg", "c", "x");
    env.call("POST", "/v1/messages", None, Some(&body))
        .await
        .expect_error(401, "unauthorized");
    env.call(
        "POST",
        "/v1/messages",
        Some("not-a-configured-key-000"),
        Some(&body),
    )
    .await
    .expect_error(401, "unauthorized");
    let basic = send(
        env.http
            .post(env.url("/v1/messages"))
            .header("authorization", format!("Basic {SENDER_KEY}"))
            .json(&body),
    )
    .await;
    basic.expect_error(401, "unauthorized");
    assert_eq!(basic.header("www-authenticate"), Some("Bearer"));
    env.call(
        "GET",
        "/v1/conversations?account_id=e2e-msg",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    env.call(
        "POST",
        "/v1/messages",
        Some(SENDER_KEY),
        Some(&json!({"account_id": "nobody", "conversation_id": "c", "type": "text", "text": "x"})),
    )
    .await
    .expect_error(404, "not_found");
}

pub async fn openapi_documents_every_route(env: Arc<Env>) {
    let doc = env.call("GET", "/openapi.json", None, None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    for route in tiktok_messaging_worker::http::routes::ROUTES {
        for (method, _) in route.methods {
            let op = &paths[route.pattern][method.as_str().to_ascii_lowercase()];
            assert!(
                op["responses"].is_object(),
                "{} {} undocumented",
                method.as_str(),
                route.pattern
            );
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", r.split('"').next().unwrap());
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
}
