//! Holds the simulator to TikTok's wire shapes: every endpoint with a response fixture in
//! `tests/fixtures/tiktok/` is called over HTTP the way TikTok is called, and its answer must
//! have the fixture's keys and value types; webhook bodies the sim builds are compared the
//! same way (their `content` string too). Refusals are checked by code.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tiktok_sim::{Fault, Incoming, Sim, Sink};

const APP_ID: &str = "7301234567890123456";
const SECRET: &str = "f3a9c0e1b2d4e5f60718293a4b5c6d7e8f901a2b";
const BIZ: &str = "-000qXw3bGf2kZr9LmN_4TgYcVa8HsEuJdK1";
const CONV: &str = "a9Fk2Lq+T7xB3mWz0Rc8Nv1Hs5Yd4Gp6Ju2Ki9Oe0Ql==";
const CUSTOMER: &str = "Xq7Pz2Lm+8vKc4Rt/1Nw6Hy0Bd3Fs5Gj9Ua2Ei7Oo4Ql8Wx1Zc6Vb3Tn5Mk0Yh9J";
const REDIRECT: &str = "https://inbox.example.com/tiktok/callback/";

/// Keys the reference marks optional: they may be absent, but must have the fixture's type.
const OPTIONAL: &[&str] = &[
    "referral",
    "referenced_message_info",
    "reactions",
    "auto_message_type",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/tiktok/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Collects every difference in keys or value types between `actual` and `expected`.
/// Array elements must each match one of the fixture's elements.
fn shape(actual: &Value, expected: &Value, path: &str, errs: &mut Vec<String>) {
    if kind(actual) != kind(expected) {
        errs.push(format!(
            "{path}: {} where the fixture has {}",
            kind(actual),
            kind(expected)
        ));
        return;
    }
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => shape(av, ev, &format!("{path}.{k}"), errs),
                    None if OPTIONAL.contains(&k.as_str()) => {}
                    None => errs.push(format!("{path}.{k}: missing")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                errs.push(format!("{path}.{k}: not in the fixture"));
            }
        }
        (Value::Array(a), Value::Array(e)) if !e.is_empty() => {
            if a.is_empty() {
                errs.push(format!("{path}: empty, so nothing was compared"));
            }
            for (i, av) in a.iter().enumerate() {
                let tries: Vec<Vec<String>> = e
                    .iter()
                    .map(|ev| {
                        let mut x = Vec::new();
                        shape(av, ev, &format!("{path}[{i}]"), &mut x);
                        x
                    })
                    .collect();
                if !tries.iter().any(Vec::is_empty) {
                    errs.extend(tries.into_iter().min_by_key(Vec::len).unwrap_or_default());
                }
            }
        }
        _ => {}
    }
}

#[track_caller]
fn assert_shape(actual: &Value, expected: &Value, what: &str) {
    let mut errs = Vec::new();
    shape(actual, expected, "$", &mut errs);
    assert!(
        errs.is_empty(),
        "{what} differs from its fixture:\n  {}\nactual: {actual}",
        errs.join("\n  ")
    );
}

/// The reply matches the fixture's shape and code, and carries a TikTok-style request id.
#[track_caller]
fn assert_fixture(actual: &Value, name: &str) {
    let f = fixture(name);
    assert_eq!(actual["code"], f["code"], "{name}: {actual}");
    assert_shape(actual, &f, name);
    let rid = actual["request_id"].as_str().unwrap_or("");
    assert_eq!(rid.len(), 34, "request_id {rid}");
    assert!(rid[..14].bytes().all(|b| b.is_ascii_digit()), "{rid}");
    assert!(rid[..4] >= *"2025", "{rid}");
    assert!(
        rid[14..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{rid}"
    );
}

/// A webhook body: the envelope and, parsed again, its `content`.
#[track_caller]
fn assert_webhook(body: &str, name: &str) {
    let actual: Value = serde_json::from_str(body).expect("webhook body is JSON");
    let f = fixture(name);
    assert_shape(&actual, &f, name);
    assert_eq!(actual["event"], f["event"]);
    let content: Value = serde_json::from_str(actual["content"].as_str().expect("content"))
        .expect("content is a JSON string");
    let expected: Value = serde_json::from_str(f["content"].as_str().unwrap()).unwrap();
    assert_shape(&content, &expected, &format!("{name} content"));
    assert_eq!(content["type"], expected["type"], "{name}");
    assert_eq!(content["message_tag"], expected["message_tag"], "{name}");
    // Enums inside `content` are lower case, unlike REST.
    for side in ["from_user", "to_user"] {
        assert_eq!(
            content[side]["role"], expected[side]["role"],
            "{name} {side}"
        );
    }
}

fn content_of(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap();
    serde_json::from_str(v["content"].as_str().unwrap()).unwrap()
}

struct T {
    sim: Sim,
    http: reqwest::Client,
}

async fn start() -> T {
    let sim = Sim::start(APP_ID, SECRET, 0).await.expect("sim");
    sim.register_redirect_uri(REDIRECT);
    sim.set_profile(BIZ, "acme.store", "Acme Store");
    sim.set_customer(CUSTOMER, "maria.lopez92", "Maria L.");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    T { sim, http }
}

impl T {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.api_base())
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Value {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.header("Access-Token", t);
        }
        let resp = r.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.expect("JSON envelope")
    }

    async fn get(&self, path: &str, query: &[(&str, &str)], token: Option<&str>) -> Value {
        let url = url::Url::parse_with_params(&self.url(path), query).unwrap();
        self.get_raw(url.as_str(), token).await
    }

    async fn get_raw(&self, url: &str, token: Option<&str>) -> Value {
        let mut r = self.http.get(url);
        if let Some(t) = token {
            r = r.header("Access-Token", t);
        }
        let resp = r.send().await.expect("request");
        assert_eq!(resp.status(), 200, "{url}");
        resp.json().await.expect("JSON envelope")
    }

    /// Consent (with `extra` switches) and the code from the redirect.
    async fn consent(&self, redirect: &str, extra: &str) -> reqwest::Response {
        let url = url::Url::parse_with_params(
            &self.sim.auth_url(),
            &[
                ("client_key", APP_ID),
                ("response_type", "code"),
                (
                    "scope",
                    "user.info.basic,message.list.read,message.list.send",
                ),
                ("redirect_uri", redirect),
                ("state", "st4te"),
            ],
        )
        .unwrap();
        self.http
            .get(format!("{url}{extra}"))
            .send()
            .await
            .expect("authorize")
    }

    async fn code(&self, open_id: &str) -> String {
        let r = self
            .consent(REDIRECT, &format!("&sim_open_id={open_id}"))
            .await;
        assert_eq!(r.status(), 302);
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(loc.as_str().starts_with(REDIRECT), "{loc}");
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st4te");
        q["code"].clone()
    }

    async fn exchange(&self, code: &str) -> Value {
        let mut b = fixture("oauth-token.request.json");
        b["auth_code"] = json!(code);
        self.post("/tt_user/oauth2/token/", &b, None).await
    }

    /// The whole OAuth flow for `open_id`; the token reply.
    async fn connect(&self, open_id: &str) -> Value {
        let code = self.code(open_id).await;
        let r = self.exchange(&code).await;
        assert_eq!(r["code"], 0, "{r}");
        r
    }

    async fn token(&self) -> String {
        self.connect(BIZ).await["data"]["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn send(&self, token: &str, body: &Value) -> Value {
        self.post("/business/message/send/", body, Some(token))
            .await
    }

    async fn upload(&self, token: &str, bytes: &[u8], content_type: &str) -> Value {
        let boundary = "simboundary7MA4YWxk";
        let mut body = Vec::new();
        for (name, value) in [("business_id", BIZ), ("media_type", "IMAGE")] {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(self.url("/business/message/media/upload/"))
            .header("Access-Token", token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload");
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn subscribe(&self, url: &str) -> Value {
        let mut b = fixture("webhook-update.request.json");
        b["callback_url"] = json!(url);
        self.post("/business/webhook/update/", &b, None).await
    }
}

/// Waits (bounded) until the sink holds `n` deliveries.
async fn received(
    sink: &Sink,
    n: usize,
) -> Vec<(std::collections::HashMap<String, String>, String)> {
    for _ in 0..100 {
        if sink.received().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = sink.received();
    assert!(got.len() >= n, "expected {n} deliveries, got {}", got.len());
    got
}

fn png() -> Vec<u8> {
    [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 32]].concat()
}

fn send_body(name: &str) -> Value {
    fixture(name)
}

#[test]
fn shape_check_flags_every_kind_of_difference() {
    let f = json!({"a": 1, "b": [{"x": "s"}], "referral": {}});
    let wrong = [
        json!({"a": "1", "b": [{"x": "s"}]}),
        json!({"b": [{"x": "s"}]}),
        json!({"a": 1, "b": [{"x": "s"}], "c": 0}),
        json!({"a": 1, "b": [{"x": 1}]}),
        json!({"a": 1, "b": [{"x": "s", "y": 1}]}),
        json!({"a": 1, "b": []}),
        json!({"a": 1, "b": [{"x": "s"}], "referral": []}),
    ];
    for w in wrong {
        let mut errs = Vec::new();
        shape(&w, &f, "$", &mut errs);
        assert!(!errs.is_empty(), "{w} passed");
    }
    let mut errs = Vec::new();
    shape(
        &json!({"a": 2.5, "b": [{"x": "t"}, {"x": "u"}]}),
        &f,
        "$",
        &mut errs,
    );
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn signature_matches_the_fixture_example() {
    let f = fixture("webhook-signature.example.json");
    let header = f["header_value"].as_str().unwrap();
    let t: u64 = header[2..header.find(',').unwrap()].parse().unwrap();
    let sig = Sim::signature(
        f["client_secret"].as_str().unwrap(),
        t,
        f["raw_body"].as_str().unwrap(),
    );
    assert_eq!(sig, header);
}

#[tokio::test]
async fn oauth_calls_answer_in_fixture_shapes() {
    let t = start().await;
    let tok = t.connect(BIZ).await;
    assert_fixture(&tok, "oauth-token.response.json");
    let d = &tok["data"];
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["expires_in"], 86_400);
    assert_eq!(d["refresh_token_expires_in"], 31_536_000);
    assert_eq!(d["open_id"], BIZ);
    assert_eq!(
        d["scope"],
        "user.info.basic,message.list.read,message.list.send"
    );
    let access = d["access_token"].as_str().unwrap().to_string();
    let refresh = d["refresh_token"].as_str().unwrap().to_string();

    let mut info = fixture("token-info.request.json");
    info["access_token"] = json!(access);
    let r = t.post("/tt_user/token_info/get/", &info, None).await;
    assert_fixture(&r, "token-info.response.json");
    assert_eq!(r["data"]["creator_id"], BIZ);

    let mut rb = fixture("oauth-refresh.request.json");
    rb["refresh_token"] = json!(refresh);
    let r = t.post("/tt_user/oauth2/refresh_token/", &rb, None).await;
    assert_fixture(&r, "oauth-refresh.response.json");
    let new_access = r["data"]["access_token"].as_str().unwrap().to_string();
    assert_ne!(r["data"]["refresh_token"], json!(refresh), "rotated");
    assert_ne!(new_access, access);

    let mut rv = fixture("oauth-revoke.request.json");
    rv["access_token"] = json!(new_access);
    let r = t.post("/tt_user/oauth2/revoke/", &rv, None).await;
    assert_fixture(&r, "oauth-revoke.response.json");
    assert_eq!(r["data"], json!({}));
    // The whole grant is gone: the first access token too.
    assert!(!t.sim.access_token_valid(&access));
    let r = t
        .get(
            "/business/get/",
            &[("business_id", BIZ), ("fields", r#"["username"]"#)],
            Some(&access),
        )
        .await;
    assert_fixture(&r, "error-40105.response.json");
}

#[tokio::test]
async fn used_auth_code_is_40110() {
    let t = start().await;
    let code = t.code(BIZ).await;
    assert_eq!(t.exchange(&code).await["code"], 0);
    let again = t.exchange(&code).await;
    assert_fixture(&again, "error-40110.response.json");
    let code = t.code(BIZ).await;
    t.sim.expire_codes();
    assert_eq!(t.exchange(&code).await["code"], 40110);
    assert_eq!(t.exchange("no-such-code").await["code"], 40110);
}

#[tokio::test]
async fn business_get_is_flat_and_only_the_asked_fields() {
    let t = start().await;
    let tok = t.token().await;
    let r = t
        .get(
            "/business/get/",
            &[
                ("business_id", BIZ),
                ("fields", r#"["username","display_name","profile_image"]"#),
            ],
            Some(&tok),
        )
        .await;
    assert_fixture(&r, "business-get.response.json");
    assert_eq!(r["data"]["username"], "acme.store");
    let r = t
        .get("/business/get/", &[("business_id", BIZ)], Some(&tok))
        .await;
    let keys: Vec<&String> = r["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["display_name", "profile_image"]);
}

#[tokio::test]
async fn sends_answer_in_fixture_shapes_and_echo() {
    let t = start().await;
    let tok = t.token().await;
    let sink = Sink::start().await.unwrap();
    let r = t.subscribe(&sink.url).await;
    assert_fixture(&r, "webhook-update.response.json");

    let inbound = t
        .sim
        .inbound(BIZ, CONV, "Hi! Is the green jacket back in size M?");
    assert_webhook(&inbound, "webhook-im_receive_msg-text.json");
    let first = content_of(&inbound)["message_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut reply = send_body("message-send-reply.request.json");
    reply["referenced_message_info"]["referenced_message_id"] = json!(first);
    let r = t.send(&tok, &reply).await;
    assert_fixture(&r, "message-send.response.json");
    let id = r["data"]["message"]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 19, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_digit()));

    let got = received(&sink, 1).await;
    let (headers, body) = &got[0];
    assert_webhook(body, "webhook-im_send_msg-api-echo.json");
    let echo = content_of(body);
    assert_eq!(echo["message_id"], json!(id));
    assert_eq!(
        echo["referenced_message_info"]["referenced_message_id"],
        json!(first)
    );
    // The echo is signed like the fixture example.
    let sig = &headers["tiktok-signature"];
    let (ts, s) = sig.split_once(",s=").unwrap();
    let ts = ts.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    assert_eq!(s, hex::encode(mac.finalize().into_bytes()));

    let r = t
        .send(
            &tok,
            &send_body("message-send-template-button.request.json"),
        )
        .await;
    assert_fixture(&r, "message-send.response.json");
    let got = received(&sink, 2).await;
    assert_webhook(&got[1].1, "webhook-im_send_msg-template-echo.json");
    let card = content_of(&got[1].1);
    assert_eq!(card["template"]["type"], "qa_button_card");
    assert_eq!(
        card["template"]["elements"][0]["buttons"][0]["text"],
        "Track my order"
    );

    for name in [
        "message-send-sender-action-typing.request.json",
        "message-send-sender-action-mark-read.request.json",
    ] {
        let r = t.send(&tok, &send_body(name)).await;
        assert_fixture(&r, "message-send-sender-action.response.json");
        assert_eq!(r["data"]["message"]["message_id"], "");
    }
    let r = t
        .send(&tok, &send_body("message-send-template-link.request.json"))
        .await;
    assert_eq!(r["code"], 0, "{r}");
    let mut share = send_body("message-send-share_post.request.json");
    share["share_post"]["item_id"] = json!(Sim::default_post_id(BIZ));
    assert_eq!(t.send(&tok, &share).await["code"], 0);

    let staff = t.sim.staff_reply(BIZ, CONV, "Hi Maria, this is Tom.");
    assert_webhook(&staff, "webhook-im_send_msg-app.json");

    // Sender actions are recorded but not stored in the history nor echoed.
    let sent = t.sim.sent_to(CONV);
    assert_eq!(sent.len(), 6);
    assert_eq!(sent[2].message_type, "SENDER_ACTION");
    assert_eq!(sent[2].message_id, "");
    assert_eq!(sent[0].body, reply);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.received().len(), 4, "echoes of 4 API messages");
}

#[tokio::test]
async fn button_tap_arrives_as_text_with_reply_source() {
    let t = start().await;
    let tok = t.token().await;
    t.sim.inbound(BIZ, CONV, "hello");
    let r = t
        .send(
            &tok,
            &send_body("message-send-template-button.request.json"),
        )
        .await;
    let card = r["data"]["message"]["message_id"].as_str().unwrap();
    let tap = t
        .sim
        .customer_message(Incoming::button_tap(BIZ, CONV, card, "track_order"));
    assert_webhook(&tap.body, "webhook-im_receive_msg-template-click.json");
    let c = content_of(&tap.body);
    assert_eq!(c["text"]["body"], "Track my order");
    assert_eq!(c["reply_source_payload"]["reply_source_msg_id"], card);
    let img = t.sim.customer_message(Incoming::image(BIZ, CONV));
    assert_webhook(&img.body, "webhook-im_receive_msg-image.json");
    let post = t
        .sim
        .customer_message(Incoming::share_post(BIZ, CONV, "7551203948172635401"));
    assert_webhook(&post.body, "webhook-im_receive_msg-share_post.json");
}

#[tokio::test]
async fn media_upload_download_and_image_send() {
    let t = start().await;
    let tok = t.token().await;
    let r = t.upload(&tok, &png(), "image/png").await;
    assert_fixture(&r, "media-upload.response.json");
    let media = r["data"]["media_id"].as_str().unwrap().to_string();
    t.sim.inbound(BIZ, CONV, "hi");
    let mut img = send_body("message-send-image.request.json");
    img["image"]["media_id"] = json!(media);
    assert_eq!(t.send(&tok, &img).await["code"], 0);

    let sent = t.sim.customer_message(Incoming::image(BIZ, CONV));
    let mut d = fixture("media-download.request.json");
    d["message_id"] = json!(sent.message_id);
    d["media_id"] = json!(sent.media_id.clone().unwrap());
    let r = t
        .post("/business/message/media/download/", &d, Some(&tok))
        .await;
    assert_fixture(&r, "media-download.response.json");
    let link = r["data"]["download_url"].as_str().unwrap();
    let ok = t
        .http
        .get(link)
        .header("x-user", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let no = t.http.get(link).send().await.unwrap();
    assert_eq!(no.status(), 403);

    // The media must belong to that message.
    d["message_id"] = json!("7000000000000000001");
    let r = t
        .post("/business/message/media/download/", &d, Some(&tok))
        .await;
    assert_eq!(r["code"], 40007, "{r}");

    let r = t.upload(&tok, b"hello, not an image", "image/png").await;
    assert_eq!(r["code"], 40908);
    let big = [&b"\xFF\xD8\xFF\xE0"[..], &vec![0u8; 3 * 1024 * 1024 + 1]].concat();
    assert_eq!(t.upload(&tok, &big, "image/jpeg").await["code"], 40907);
}

#[tokio::test]
async fn conversation_and_content_lists_match_fixtures() {
    let t = start().await;
    let tok = t.token().await;
    let hi = t
        .sim
        .customer_message(Incoming::text(BIZ, CONV, "Hi!").from_customer(CUSTOMER));
    let first = hi.message_id;
    t.sim.customer_message(Incoming::image(BIZ, CONV));
    let mut reply = send_body("message-send-reply.request.json");
    reply["referenced_message_info"]["referenced_message_id"] = json!(first);
    assert_eq!(t.send(&tok, &reply).await["code"], 0);
    let stranger = t.sim.new_conversation_id();
    t.sim.inbound(BIZ, &stranger, "anyone there?");

    let list = |kind: &'static str| {
        let t = &t;
        let tok = tok.clone();
        async move {
            t.get(
                "/business/message/conversation/list/",
                &[("business_id", BIZ), ("conversation_type", kind)],
                Some(&tok),
            )
            .await
        }
    };
    let single = list("SINGLE").await;
    assert_fixture(&single, "conversation-list.response.json");
    assert_eq!(single["data"]["conversations"][0]["conversation_id"], CONV);
    assert_eq!(single["data"]["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(single["data"]["cursor"], 1);
    assert_eq!(single["data"]["has_more"], false);
    let strangers = list("STRANGER").await;
    assert_fixture(&strangers, "conversation-list.response.json");
    assert_eq!(
        strangers["data"]["conversations"][0]["conversation_id"],
        json!(stranger)
    );

    let r = t
        .get(
            "/business/message/content/list/",
            &[("business_id", BIZ), ("conversation_id", CONV)],
            Some(&tok),
        )
        .await;
    assert_fixture(&r, "content-list.response.json");
    let msgs = r["data"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["sender"], "maria.lopez92");
    assert_eq!(msgs[0]["from_user"]["role"], "PERSONAL_ACCOUNT");
    assert_eq!(msgs[1]["message_type"], "IMAGE");
    assert_eq!(msgs[2]["message_tag"]["source"], "API");
    assert_eq!(
        msgs[2]["referenced_message_info"]["referenced_message_id"],
        json!(first)
    );
    assert_eq!(r["data"]["participants"][1]["display_name"], "Maria L.");
}

#[tokio::test]
async fn content_list_keeps_the_20_latest() {
    let t = start().await;
    let tok = t.token().await;
    for i in 0..25 {
        t.sim.inbound(BIZ, CONV, &format!("m{i}"));
    }
    let r = t
        .get(
            "/business/message/content/list/",
            &[("business_id", BIZ), ("conversation_id", CONV)],
            Some(&tok),
        )
        .await;
    let msgs = r["data"]["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 20);
    assert_eq!(msgs[0]["text"]["body"], "m5");
    assert_eq!(msgs[19]["text"]["body"], "m24");
}

#[tokio::test]
async fn capabilities_match_fixture_and_can_be_turned_off() {
    let t = start().await;
    let tok = t.token().await;
    let q = [
        ("business_id", BIZ),
        ("capability_types", r#"["IMAGE_SEND"]"#),
        ("conversation_id", CONV),
        ("conversation_type", "SINGLE"),
    ];
    let path = "/business/message/capabilities/get/";
    let r = t.get(path, &q, Some(&tok)).await;
    assert_fixture(&r, "capabilities.response.json");
    assert_eq!(r["data"]["capability_infos"][0]["capability_result"], true);
    t.sim.set_image_send(CONV, false);
    let r = t.get(path, &q, Some(&tok)).await;
    assert_eq!(r["data"]["capability_infos"][0]["capability_result"], false);
    let r = t.get(path, &q[..2], Some(&tok)).await;
    assert_eq!(r["code"], 40002, "conversation_id required: {r}");
}

#[tokio::test]
async fn webhook_subscription_list_and_delete() {
    let t = start().await;
    let q = [
        ("app_id", APP_ID),
        ("secret", SECRET),
        ("event_type", "DIRECT_MESSAGE"),
    ];
    let r = t.get("/business/webhook/list/", &q, None).await;
    assert_fixture(&r, "webhook-list-empty.response.json");
    let r = t
        .subscribe("https://inbox.example.com/webhooks/tiktok")
        .await;
    assert_fixture(&r, "webhook-update.response.json");
    let r = t.get("/business/webhook/list/", &q, None).await;
    assert_fixture(&r, "webhook-list.response.json");
    assert_eq!(
        t.sim.webhook_url().as_deref(),
        Some("https://inbox.example.com/webhooks/tiktok")
    );
    let r = t
        .post(
            "/business/webhook/delete/",
            &fixture("webhook-delete.request.json"),
            None,
        )
        .await;
    assert_fixture(&r, "webhook-delete.response.json");
    let r = t.get("/business/webhook/list/", &q, None).await;
    assert_fixture(&r, "webhook-list-empty.response.json");
    let mut bad = fixture("webhook-update.request.json");
    bad["secret"] = json!("wrong");
    assert_eq!(
        t.post("/business/webhook/update/", &bad, None).await["code"],
        40001
    );
}

#[tokio::test]
async fn error_fixtures_unencoded_plus_and_faults() {
    let t = start().await;
    let tok = t.token().await;
    t.sim.inbound(BIZ, CONV, "hi");
    // `+` sent raw decodes to a space: the id no longer matches.
    let raw = format!(
        "{}?business_id={BIZ}&conversation_id={CONV}",
        t.url("/business/message/content/list/")
    );
    let r = t.get_raw(&raw, Some(&tok)).await;
    assert_fixture(&r, "error-40002.response.json");
    assert_eq!(
        r["message"],
        fixture("error-40002.response.json")["message"]
    );
    let unknown = t.sim.new_conversation_id();
    let r = t
        .get(
            "/business/message/content/list/",
            &[("business_id", BIZ), ("conversation_id", &unknown)],
            Some(&tok),
        )
        .await;
    assert_fixture(&r, "error-40002.response.json");

    for (code, name) in [
        (40100, "error-40100.response.json"),
        (51065, "error-51065.response.json"),
    ] {
        t.sim.push_faults("/message/send/", [Fault::Code { code }]);
        let r = t
            .send(&tok, &send_body("message-send-text.request.json"))
            .await;
        assert_fixture(&r, name);
    }
    assert_eq!(
        t.sim.sent_to(CONV).len(),
        0,
        "faulted sends are not applied"
    );
    let codes: Vec<i64> = t
        .sim
        .requests_to("/message/send/")
        .iter()
        .map(|r| r.code)
        .collect();
    assert_eq!(codes, [40100, 51065]);
}

#[tokio::test]
async fn paths_without_slash_unknown_or_wrong_method_are_404_pages() {
    let t = start().await;
    let cases = [
        ("POST", "/tt_user/oauth2/token"),
        ("POST", "/tt_user/oauth2/token/revoke/"),
        ("GET", "/tt_user/oauth2/token/"),
        ("POST", "/business/message/content/list/"),
        ("GET", "/business/nope/"),
    ];
    for (method, path) in cases {
        let req = match method {
            "GET" => t.http.get(t.url(path)),
            _ => t.http.post(t.url(path)).json(&json!({})),
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
        let text = r.text().await.unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }
    assert!(t.sim.requests().iter().all(|r| r.code == -1));
}

#[tokio::test]
async fn missing_fields_are_40002_naming_them() {
    let t = start().await;
    let tok = t.token().await;
    let code = t.code(BIZ).await;
    let mut b = fixture("oauth-token.request.json");
    b["auth_code"] = json!(code);
    b.as_object_mut().unwrap().remove("redirect_uri");
    let r = t.post("/tt_user/oauth2/token/", &b, None).await;
    assert_eq!(r["code"], 40002);
    assert!(
        r["message"].as_str().unwrap().contains("redirect_uri"),
        "{r}"
    );
    assert_eq!(r["data"], json!({}));

    let mut s = send_body("message-send-text.request.json");
    s.as_object_mut().unwrap().remove("recipient");
    let r = t.send(&tok, &s).await;
    assert_eq!(r["code"], 40002);
    assert!(r["message"].as_str().unwrap().contains("recipient"), "{r}");
}

#[tokio::test]
async fn send_validation_refuses_what_tiktok_refuses() {
    let t = start().await;
    let tok = t.token().await;
    let inbound = t.sim.inbound(BIZ, CONV, "hello");
    let user_msg = content_of(&inbound)["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let card = t
        .send(
            &tok,
            &send_body("message-send-template-button.request.json"),
        )
        .await["data"]["message"]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = send_body("message-send-text.request.json");
    let button = send_body("message-send-template-button.request.json");
    let edit = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(&str, Value)> = vec![
        (
            "recipient_type",
            edit(&text, &|v| v["recipient_type"] = json!("USER")),
        ),
        (
            "message_type",
            edit(&text, &|v| v["message_type"] = json!("VIDEO")),
        ),
        ("text.body", edit(&text, &|v| v["text"]["body"] = json!(""))),
        (
            "text.body",
            edit(&text, &|v| v["text"]["body"] = json!("é".repeat(6001))),
        ),
        (
            "image",
            edit(&text, &|v| v["image"] = json!({"media_id": "1"})),
        ),
        (
            "image.media_id",
            edit(&send_body("message-send-image.request.json"), &|_| {}),
        ),
        (
            "share_post.item_id",
            edit(&send_body("message-send-share_post.request.json"), &|_| {}),
        ),
        (
            "template.type",
            edit(&button, &|v| v["template"]["type"] = json!("CAROUSEL")),
        ),
        (
            "template.title",
            edit(&button, &|v| v["template"]["title"] = json!("x".repeat(41))),
        ),
        (
            "template.buttons",
            edit(&button, &|v| v["template"]["buttons"] = json!([])),
        ),
        (
            "template.buttons",
            edit(&button, &|v| {
                let b = v["template"]["buttons"][0].clone();
                v["template"]["buttons"] = json!([b.clone(), b.clone(), b.clone(), b]);
            }),
        ),
        (
            "template.buttons[0].title",
            edit(&button, &|v| {
                v["template"]["buttons"][0]["title"] = json!("x".repeat(21))
            }),
        ),
        (
            "template.buttons[1].id",
            edit(&button, &|v| {
                v["template"]["buttons"][1]["id"] = json!("x".repeat(41))
            }),
        ),
        (
            "template.buttons[0].type",
            edit(&button, &|v| {
                v["template"]["buttons"][0]["type"] = json!("URL")
            }),
        ),
        (
            "sender_action",
            edit(
                &send_body("message-send-sender-action-typing.request.json"),
                &|v| v["sender_action"] = json!("WAVE"),
            ),
        ),
        (
            "referenced_message_info",
            edit(&button, &|v| {
                v["referenced_message_info"] = json!({"referenced_message_id": user_msg})
            }),
        ),
        (
            "referenced_message_info.referenced_message_id",
            edit(&text, &|v| {
                v["referenced_message_info"] = json!({"referenced_message_id": card})
            }),
        ),
        (
            "referenced_message_info.referenced_message_id",
            edit(&text, &|v| {
                v["referenced_message_info"] =
                    json!({"referenced_message_id": "7000000000000000009"})
            }),
        ),
    ];
    for (field, body) in cases {
        let r = t.send(&tok, &body).await;
        assert_eq!(r["code"], 40002, "{field}: {r}");
        let msg = r["message"].as_str().unwrap();
        assert!(msg.contains(field), "message {msg:?} should name {field}");
    }
    // Link cards allow 40-character button titles.
    let link = edit(
        &send_body("message-send-template-link.request.json"),
        &|v| v["template"]["buttons"][0]["title"] = json!("x".repeat(40)),
    );
    assert_eq!(t.send(&tok, &link).await["code"], 0);
    let quote = edit(&text, &|v| {
        v["referenced_message_info"] = json!({"referenced_message_id": user_msg})
    });
    assert_eq!(t.send(&tok, &quote).await["code"], 0);
    let direct = send_body("message-send-direct-reply.request.json");
    assert_eq!(t.send(&tok, &direct).await["code"], 0);
    let with_recipient = edit(&direct, &|v| v["recipient"] = json!(CONV));
    assert_eq!(t.send(&tok, &with_recipient).await["code"], 40002);
    let sent = t.sim.sent();
    assert_eq!(sent.len(), 4, "only the accepted sends are recorded");
    assert_eq!(
        sent[3].conversation_id, "",
        "a comment reply has no conversation yet"
    );
}

#[tokio::test]
async fn redirect_uri_must_match_exactly() {
    let t = start().await;
    for other in [
        "https://inbox.example.com/tiktok/callback",
        "https://inbox.example.com/tiktok/callback/?x=1",
        "https://evil.example.com/tiktok/callback/",
    ] {
        let r = t.consent(other, "").await;
        assert_eq!(r.status(), 400, "{other}");
    }
    // The token call must repeat the code's redirect URI.
    let code = t.code(BIZ).await;
    let other = "https://inbox.example.com/other/callback/";
    t.sim.register_redirect_uri(other);
    let mut b = fixture("oauth-token.request.json");
    b["auth_code"] = json!(code);
    b["redirect_uri"] = json!(other);
    let r = t.post("/tt_user/oauth2/token/", &b, None).await;
    assert_eq!(r["code"], 40002, "{r}");
    assert!(r["message"].as_str().unwrap().contains("redirect_uri"));
    // Nothing registered: everything is refused.
    t.sim.settings(|s| s.redirect_uris.clear());
    assert_eq!(t.consent(REDIRECT, "").await.status(), 400);
}

#[tokio::test]
async fn consent_denied_and_unapproved_scope_redirect_with_error() {
    let t = start().await;
    let r = t.consent(REDIRECT, "&sim_deny=1").await;
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.contains("error=access_denied") && loc.contains("state=st4te"),
        "{loc}"
    );
    t.sim
        .settings(|s| s.app_scopes.retain(|x| x != "message.list.send"));
    let r = t.consent(REDIRECT, "").await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("error=invalid_scope"), "{loc}");
}

#[tokio::test]
async fn refresh_rotation_expiry_and_grant_type() {
    let t = start().await;
    let tok = t.connect(BIZ).await;
    let old = tok["data"]["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: &str, grant: &str| {
        let mut b = fixture("oauth-refresh.request.json");
        b["refresh_token"] = json!(token);
        b["grant_type"] = json!(grant);
        b
    };
    let r = t
        .post(
            "/tt_user/oauth2/refresh_token/",
            &refresh(&old, "refresh_token"),
            None,
        )
        .await;
    assert_eq!(r["code"], 0);
    let new = r["data"]["refresh_token"].as_str().unwrap().to_string();
    let r = t
        .post(
            "/tt_user/oauth2/refresh_token/",
            &refresh(&old, "refresh_token"),
            None,
        )
        .await;
    assert_eq!(r["code"], 40107, "rotated away: {r}");
    let r = t
        .post(
            "/tt_user/oauth2/refresh_token/",
            &refresh(&new, "client_credentials"),
            None,
        )
        .await;
    assert_eq!(r["code"], 40108);
    t.sim.expire_refresh_tokens();
    let r = t
        .post(
            "/tt_user/oauth2/refresh_token/",
            &refresh(&new, "refresh_token"),
            None,
        )
        .await;
    assert_eq!(r["code"], 40103);
    let mut bad = refresh(&new, "refresh_token");
    bad["client_secret"] = json!("nope");
    let r = t.post("/tt_user/oauth2/refresh_token/", &bad, None).await;
    assert_eq!(r["code"], 40001);
}

#[tokio::test]
async fn access_token_checks() {
    let t = start().await;
    let tok = t.token().await;
    let q = [("business_id", BIZ)];
    let r = t.get("/business/get/", &q, None).await;
    assert_eq!(r["code"], 40104);
    let r = t.get("/business/get/", &q, Some("act.unknown")).await;
    assert_eq!(r["code"], 40105);
    let r = t
        .get(
            "/business/get/",
            &[("business_id", "someone-else")],
            Some(&tok),
        )
        .await;
    assert_eq!(r["code"], 40001);
    t.sim.expire_access_tokens();
    let r = t.get("/business/get/", &q, Some(&tok)).await;
    assert_eq!(r["code"], 40102);
    assert_eq!(r["data"], json!({}));
}

#[tokio::test]
async fn list_limits_and_horizon() {
    let t = start().await;
    let tok = t.token().await;
    let path = "/business/message/conversation/list/";
    for limit in ["0", "101", "x"] {
        let r = t
            .get(
                path,
                &[
                    ("business_id", BIZ),
                    ("conversation_type", "STRANGER"),
                    ("limit", limit),
                ],
                Some(&tok),
            )
            .await;
        assert_eq!(r["code"], 40002, "limit {limit}");
    }
    let old = tiktok_sim::now_ms() - 91 * 86_400_000;
    t.sim
        .customer_message(Incoming::text(BIZ, "old+conv==", "long ago").at_ms(old));
    for i in 0..3 {
        t.sim.inbound(BIZ, &format!("c{i}+x=="), "hi");
    }
    let r = t
        .get(
            path,
            &[
                ("business_id", BIZ),
                ("conversation_type", "STRANGER"),
                ("limit", "2"),
            ],
            Some(&tok),
        )
        .await;
    assert_eq!(r["data"]["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(r["data"]["has_more"], true);
    assert_eq!(r["data"]["cursor"], 2);
    let r = t
        .get(
            path,
            &[
                ("business_id", BIZ),
                ("conversation_type", "STRANGER"),
                ("limit", "2"),
                ("cursor", "2"),
            ],
            Some(&tok),
        )
        .await;
    let rest = r["data"]["conversations"].as_array().unwrap();
    assert_eq!(
        rest.len(),
        1,
        "the 91-day-old conversation is left out: {r}"
    );
    assert_eq!(r["data"]["has_more"], false);
}

#[tokio::test]
async fn reply_window_when_enforced() {
    let t = start().await;
    let tok = t.token().await;
    t.sim.settings(|s| s.enforce_window = true);
    let text = send_body("message-send-text.request.json");
    let r = t.send(&tok, &text).await;
    assert_eq!(r["code"], 40064, "the user never wrote: {r}");
    let old = tiktok_sim::now_ms() - 49 * 3_600_000;
    t.sim
        .customer_message(Incoming::text(BIZ, CONV, "old").at_ms(old));
    assert_eq!(t.send(&tok, &text).await["code"], 40064, "48 h passed");
    t.sim.inbound(BIZ, CONV, "new");
    for _ in 0..10 {
        assert_eq!(t.send(&tok, &text).await["code"], 0);
    }
    let r = t.send(&tok, &text).await;
    assert_eq!(r["code"], 40064, "quota of 10: {r}");
    t.sim.inbound(BIZ, CONV, "again");
    assert_eq!(t.send(&tok, &text).await["code"], 0);
}

#[tokio::test]
async fn echo_before_reply_and_echo_off() {
    let t = start().await;
    let tok = t.token().await;
    let sink = Sink::start().await.unwrap();
    t.subscribe(&sink.url).await;
    t.sim.settings(|s| s.echo_before_reply = true);
    let text = send_body("message-send-text.request.json");
    let r = t.send(&tok, &text).await;
    let got = sink.received();
    assert_eq!(got.len(), 1, "delivered before the reply");
    assert_eq!(
        content_of(&got[0].1)["message_id"],
        r["data"]["message"]["message_id"]
    );
    t.sim.settings(|s| {
        s.echo_before_reply = false;
        s.echo = false
    });
    assert_eq!(t.send(&tok, &text).await["code"], 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.received().len(), 1);
    assert_eq!(t.sim.deliveries().len(), 1);
}
