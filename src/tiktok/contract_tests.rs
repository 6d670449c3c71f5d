//! Contract tests: TikTok's wire format as recorded in `tests/fixtures/tiktok/` against the
//! client's own requests and wire types. A wrong field name or path fails here.

use super::client::ConversationType;
use super::types::{Button, Outgoing, SenderAction, Template, TemplateKind};
use super::{AppCredentials, Client};
use crate::http::{Method, Response};
use crate::secret::Secret;
use crate::testutil::fixtures::fixture;
use crate::testutil::{block_on, Fake};
use crate::webhooks::envelope::{self, EventKind};
use serde_json::Value;

const BUSINESS: &str = "-000qXw3bGf2kZr9LmN_4TgYcVa8HsEuJdK1";
const CONVERSATION: &str = "a9Fk2Lq+T7xB3mWz0Rc8Nv1Hs5Yd4Gp6Ju2Ki9Oe0Ql==";
const APP_ID: &str = "7301234567890123456";
const APP_SECRET: &str = "f3a9c0e1b2d4e5f60718293a4b5c6d7e8f901a2b";
const BASE: &str = "https://business-api.tiktok.com/open_api/v1.3";

/// A fake TikTok answering with the fixture `name`.
fn answering(name: &str) -> Fake {
    let f = Fake::new(1_760_351_400);
    f.answer(Response::json(200, &fixture(name)));
    f
}

fn secret() -> Secret {
    Secret::new(APP_SECRET)
}

fn app(secret: &Secret) -> AppCredentials<'_> {
    AppCredentials {
        client_key: APP_ID,
        client_secret: secret,
    }
}

/// The one request the client sent: method, URL, JSON body.
fn sent(f: &Fake) -> (Method, String, Value, Option<String>) {
    let sent = f.sent();
    assert_eq!(sent.len(), 1, "one request");
    let r = &sent[0];
    let body = r
        .body
        .as_ref()
        .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (
        r.method,
        r.url.clone(),
        body,
        r.headers.get("access-token").map(str::to_string),
    )
}

#[test]
fn token_exchange_sends_the_documented_body_and_reads_expiries() {
    let f = answering("oauth-token.response.json");
    let s = secret();
    let req = fixture("oauth-token.request.json");
    let g = block_on(Client::new(&f, BASE).exchange_code(
        app(&s),
        req["auth_code"].as_str().unwrap(),
        req["redirect_uri"].as_str().unwrap(),
    ))
    .unwrap();
    let (method, url, body, token) = sent(&f);
    assert_eq!(method, Method::Post);
    assert_eq!(url, format!("{BASE}/tt_user/oauth2/token/"));
    assert_eq!(body, req);
    assert_eq!(token, None, "OAuth calls carry no Access-Token");
    assert_eq!(g.expires_in, 86_400);
    assert_eq!(g.refresh_token_expires_in, 31_536_000);
    assert_eq!(g.open_id.as_deref(), Some(BUSINESS));
    assert!(g.access_token.expose().starts_with("act."));
    assert!(g.refresh_token.expose().starts_with("rft."));
    assert_eq!(g.scope.len(), 7);
    assert!(g.scope.iter().any(|s| s == "message.list.send"));
}

#[test]
fn refresh_sends_the_documented_body_and_reads_the_rotated_token() {
    let f = answering("oauth-refresh.response.json");
    let s = secret();
    let req = fixture("oauth-refresh.request.json");
    let g =
        block_on(Client::new(&f, BASE).refresh(app(&s), req["refresh_token"].as_str().unwrap()))
            .unwrap();
    let (_, url, body, _) = sent(&f);
    assert_eq!(url, format!("{BASE}/tt_user/oauth2/refresh_token/"));
    assert_eq!(body, req);
    assert_eq!(g.refresh_token_expires_in, 31_449_600);
    assert_ne!(
        g.refresh_token.expose(),
        req["refresh_token"].as_str().unwrap(),
        "rotated"
    );
}

#[test]
fn revoke_sends_the_access_token_to_the_revoke_path() {
    let f = answering("oauth-revoke.response.json");
    let s = secret();
    let req = fixture("oauth-revoke.request.json");
    block_on(Client::new(&f, BASE).revoke(app(&s), req["access_token"].as_str().unwrap())).unwrap();
    let (method, url, body, _) = sent(&f);
    assert_eq!(method, Method::Post);
    assert_eq!(url, format!("{BASE}/tt_user/oauth2/revoke/"));
    assert_eq!(body, req);
}

#[test]
fn token_info_reads_scopes_and_owner() {
    let f = answering("token-info.response.json");
    let s = secret();
    let req = fixture("token-info.request.json");
    let info =
        block_on(Client::new(&f, BASE).token_info(app(&s), req["access_token"].as_str().unwrap()))
            .unwrap();
    let (_, url, body, _) = sent(&f);
    assert_eq!(url, format!("{BASE}/tt_user/token_info/get/"));
    assert_eq!(body, req);
    assert_eq!(info.app_id.as_deref(), Some(APP_ID));
    assert_eq!(info.creator_id.as_deref(), Some(BUSINESS));
    assert!(info.scope.iter().any(|s| s == "message.list.read"));
}

#[test]
fn business_profile_is_flat() {
    let f = answering("business-get.response.json");
    let p = block_on(Client::new(&f, BASE).business_profile("tok", BUSINESS)).unwrap();
    let (method, url, _, token) = sent(&f);
    assert_eq!(method, Method::Get);
    assert!(url.starts_with(&format!("{BASE}/business/get/?business_id=")));
    let q: Vec<(String, String)> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let fields = &q.iter().find(|(k, _)| k == "fields").unwrap().1;
    let fields: Vec<String> = serde_json::from_str(fields).expect("fields is a JSON array");
    assert!(fields.contains(&"display_name".to_string()));
    assert_eq!(token.as_deref(), Some("tok"));
    assert_eq!(p.username.as_deref(), Some("acme.store"));
    assert_eq!(p.display_name.as_deref(), Some("Acme Store"));
    assert!(p.profile_image.unwrap().contains("x-expires="));
}

fn template(kind: TemplateKind, fixture_name: &str) -> Template {
    let t = &fixture(fixture_name)["template"];
    Template {
        kind,
        title: t["title"].as_str().unwrap().into(),
        buttons: t["buttons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| Button {
                title: b["title"].as_str().unwrap().into(),
                id: b["id"].as_str().unwrap().into(),
            })
            .collect(),
    }
}

#[test]
fn every_send_body_matches_the_fixture_and_the_id_is_read_from_data_message() {
    let cases: Vec<(&str, Outgoing)> = vec![
        (
            "message-send-text.request.json",
            Outgoing::text("Hi Maria! Your order #5521 ships tomorrow."),
        ),
        (
            "message-send-reply.request.json",
            Outgoing::Text {
                text: "Yes, size M is back in stock.".into(),
                reply_to: Some("7560938211745563137".into()),
            },
        ),
        (
            "message-send-image.request.json",
            Outgoing::Image {
                media_id: "7560938700001234567".into(),
            },
        ),
        (
            "message-send-share_post.request.json",
            Outgoing::SharePost {
                item_id: "7551203948172635401".into(),
            },
        ),
        (
            "message-send-template-button.request.json",
            Outgoing::Template {
                template: template(
                    TemplateKind::QaButtonCard,
                    "message-send-template-button.request.json",
                ),
            },
        ),
        (
            "message-send-template-link.request.json",
            Outgoing::Template {
                template: template(
                    TemplateKind::QaLinkCard,
                    "message-send-template-link.request.json",
                ),
            },
        ),
    ];
    for (name, msg) in cases {
        if let Outgoing::Template { template } = &msg {
            template.check().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        let f = answering("message-send.response.json");
        let got =
            block_on(Client::new(&f, BASE).send("tok", BUSINESS, CONVERSATION, &msg)).unwrap();
        let (_, url, body, token) = sent(&f);
        assert_eq!(url, format!("{BASE}/business/message/send/"), "{name}");
        assert_eq!(token.as_deref(), Some("tok"), "{name}");
        assert_eq!(body, fixture(name), "{name}");
        assert_eq!(got.message_id.as_deref(), Some("7560938907334426625"));
    }
}

#[test]
fn sender_actions_match_and_answer_no_message_id() {
    for (name, action) in [
        (
            "message-send-sender-action-typing.request.json",
            SenderAction::Typing,
        ),
        (
            "message-send-sender-action-mark-read.request.json",
            SenderAction::MarkRead,
        ),
    ] {
        let f = answering("message-send-sender-action.response.json");
        let msg = Outgoing::Action { action };
        let got =
            block_on(Client::new(&f, BASE).send("tok", BUSINESS, CONVERSATION, &msg)).unwrap();
        assert_eq!(sent(&f).2, fixture(name), "{name}");
        assert_eq!(got.message_id, None, "an empty id is no id");
    }
}

#[test]
fn media_upload_and_download() {
    let f = answering("media-upload.response.json");
    let id = block_on(Client::new(&f, BASE).upload_image(
        "tok",
        BUSINESS,
        b"\x89PNG\r\n\x1a\n....",
        "image/png",
    ))
    .unwrap();
    assert_eq!(id, "7560938700001234567");
    let sent_req = &f.sent()[0];
    assert_eq!(
        sent_req.url,
        format!("{BASE}/business/message/media/upload/")
    );
    assert!(sent_req
        .headers
        .get("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));

    let f = answering("media-download.response.json");
    let req = fixture("media-download.request.json");
    let s = |k: &str| req[k].as_str().unwrap().to_string();
    let d = block_on(Client::new(&f, BASE).media_download(
        "tok",
        &s("business_id"),
        &s("conversation_id"),
        &s("message_id"),
        &s("media_id"),
        &s("media_type"),
    ))
    .unwrap();
    let (_, url, body, token) = sent(&f);
    assert_eq!(url, format!("{BASE}/business/message/media/download/"));
    assert_eq!(body, req);
    assert_eq!(token.as_deref(), Some("tok"));
    assert!(d.download_url.starts_with("https://"));
}

#[test]
fn conversation_list_reads_ids_times_and_referrals() {
    let f = answering("conversation-list.response.json");
    let page = block_on(Client::new(&f, BASE).list_conversations(
        "tok",
        BUSINESS,
        ConversationType::Single,
        None,
        Some(100),
    ))
    .unwrap();
    let (_, url, _, _) = sent(&f);
    assert!(url.contains("conversation_type=SINGLE") && url.contains("limit=100"));
    assert_eq!(page.conversations.len(), 3);
    assert_eq!(page.conversations[0].conversation_id, CONVERSATION);
    assert_eq!(page.conversations[0].update_time, Some(1_760_351_880_000));
    assert!(page.conversations[0].referral.as_ref().unwrap()["ad"].is_array());
    assert!(page.conversations[2].referral.is_none());
    assert!(!page.has_more);
    assert_eq!(page.cursor.as_deref(), Some("3"));
    // One source names the time `up_time`: read it too.
    let alt: super::types::ListedConversation =
        serde_json::from_str(r#"{"conversation_id":"c","up_time":5}"#).unwrap();
    assert_eq!(alt.update_time, Some(5));
}

#[test]
fn message_list_reads_messages_and_participants() {
    let f = answering("content-list.response.json");
    let page =
        block_on(Client::new(&f, BASE).list_messages("tok", BUSINESS, CONVERSATION)).unwrap();
    let (_, url, _, _) = sent(&f);
    assert!(
        url.contains("conversation_id=a9Fk2Lq%2BT7xB3mWz0Rc8Nv1Hs5Yd4Gp6Ju2Ki9Oe0Ql%3D%3D"),
        "`+` travels as %2B: {url}"
    );
    assert_eq!(page.messages.len(), 4);
    let by_id = |id: &str| page.messages.iter().find(|m| m.message_id == id).unwrap();
    let welcome = by_id("7560938105524406273");
    assert_eq!(
        welcome.auto_message_type.as_deref(),
        Some("WELCOME_MESSAGE")
    );
    assert_eq!(
        welcome.message_tag.as_ref().unwrap().source.as_deref(),
        Some("OTHERS")
    );
    let text = by_id("7560938211745563137");
    assert_eq!(
        text.text.as_ref().unwrap().body,
        "Hi! Is the green jacket back in size M? 👍"
    );
    assert_eq!(text.timestamp, Some(1_760_351_400_000));
    assert_eq!(text.sender.as_deref(), Some("maria.lopez92"));
    let image = by_id("7560938388211751425");
    assert_eq!(
        image.image.as_ref().unwrap().media_id.as_deref(),
        Some("7560938388211751426")
    );
    let reply = by_id("7560938907334426625");
    assert_eq!(
        reply
            .referenced_message_info
            .as_ref()
            .unwrap()
            .referenced_message_id
            .as_deref(),
        Some("7560938211745563137")
    );
    assert_eq!(reply.reactions.len(), 1);
    assert_eq!(
        reply.from_user.as_ref().unwrap().id.as_deref(),
        Some(BUSINESS)
    );
    assert_eq!(page.participants.len(), 2);
    assert_eq!(page.customer_name(), Some("Maria L."));
    assert_eq!(page.participants[1].is_follower, Some(true));
}

#[test]
fn capabilities_are_asked_per_conversation() {
    let f = answering("capabilities.response.json");
    let ok = block_on(Client::new(&f, BASE).image_capability(
        "tok",
        BUSINESS,
        CONVERSATION,
        ConversationType::Single,
    ))
    .unwrap();
    assert!(ok);
    let (_, url, _, _) = sent(&f);
    let q: Vec<(String, String)> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("capability_types"), Some(r#"["IMAGE_SEND"]"#));
    assert_eq!(get("conversation_id"), Some(CONVERSATION));
    assert_eq!(get("conversation_type"), Some("SINGLE"));
}

#[test]
fn webhook_subscription_calls() {
    let s = secret();
    let f = answering("webhook-update.response.json");
    let req = fixture("webhook-update.request.json");
    block_on(Client::new(&f, BASE).webhook_update(app(&s), req["callback_url"].as_str().unwrap()))
        .unwrap();
    let (_, url, body, token) = sent(&f);
    assert_eq!(url, format!("{BASE}/business/webhook/update/"));
    assert_eq!(body, req);
    assert_eq!(token, None);

    let f = answering("webhook-list.response.json");
    let got = block_on(Client::new(&f, BASE).webhook_list(app(&s))).unwrap();
    assert_eq!(
        got.callback_url.as_deref(),
        Some("https://inbox.example.com/webhooks/tiktok")
    );
    assert_eq!(got.event_type.as_deref(), Some("DIRECT_MESSAGE"));
    let f = answering("webhook-list-empty.response.json");
    let got = block_on(Client::new(&f, BASE).webhook_list(app(&s))).unwrap();
    assert_eq!(got.callback_url, None, "absent = nothing registered");

    let f = answering("webhook-delete.response.json");
    block_on(Client::new(&f, BASE).webhook_delete(app(&s))).unwrap();
    let (_, url, body, _) = sent(&f);
    assert_eq!(url, format!("{BASE}/business/webhook/delete/"));
    assert_eq!(body, fixture("webhook-delete.request.json"));
}

#[test]
fn error_fixtures_map_to_stable_codes_and_statuses() {
    let cases = [
        ("error-40002.response.json", "tiktok_invalid_parameter", 400),
        ("error-40064.response.json", "tiktok_message_blocked", 409),
        ("error-40100.response.json", "tiktok_rate_limited", 429),
        ("error-40105.response.json", "tiktok_token_rejected", 502),
        (
            "error-40110.response.json",
            "tiktok_authorization_failed",
            502,
        ),
        ("error-51065.response.json", "tiktok_system_error", 503),
    ];
    for (name, code, status) in cases {
        let f = answering(name);
        let e =
            block_on(Client::new(&f, BASE).send("t", BUSINESS, CONVERSATION, &Outgoing::text("x")))
                .unwrap_err();
        assert_eq!(e.code(), code, "{name}");
        assert_eq!(e.status(), status, "{name}");
        let body = e.body("r");
        assert_eq!(
            body["error"]["details"]["tiktok_request_id"],
            fixture(name)["request_id"],
            "{name}"
        );
    }
    let retry = |name: &str| {
        let f = answering(name);
        let e =
            block_on(Client::new(&f, BASE).send("t", "b", "c", &Outgoing::text("x"))).unwrap_err();
        crate::tiktok::retry::retryable(&e)
    };
    assert!(retry("error-40100.response.json") && retry("error-51065.response.json"));
    assert!(!retry("error-40064.response.json") && !retry("error-40002.response.json"));
}

/// Every webhook fixture, its expected classification, and what must be read from it.
#[test]
fn every_webhook_fixture_verifies_parses_and_is_classified() {
    let cases = [
        (
            "webhook-im_receive_msg-text.json",
            EventKind::CustomerMessage,
        ),
        (
            "webhook-im_receive_msg-image.json",
            EventKind::CustomerMessage,
        ),
        (
            "webhook-im_receive_msg-share_post.json",
            EventKind::CustomerMessage,
        ),
        (
            "webhook-im_receive_msg-template-click.json",
            EventKind::CustomerMessage,
        ),
        ("webhook-im_receive_msg-reaction.json", EventKind::Reaction),
        ("webhook-im_send_msg-api-echo.json", EventKind::ApiEcho),
        ("webhook-im_send_msg-template-echo.json", EventKind::ApiEcho),
        ("webhook-im_send_msg-app.json", EventKind::StaffReply),
        ("webhook-im_mark_read_msg.json", EventKind::ReadReceipt),
        ("webhook-im_referral_msg.json", EventKind::Referral),
        (
            "webhook-im_referral_msg-short_link.json",
            EventKind::Referral,
        ),
        ("webhook-im_receive_msg_eu.json", EventKind::EuStripped),
        (
            "webhook-im_receive_high_intent_comment.json",
            EventKind::Other,
        ),
        (
            "webhook-im_auto_message_config_update.json",
            EventKind::Other,
        ),
        (
            "webhook-im_auto_message_audit_update.json",
            EventKind::Other,
        ),
    ];
    let now = 1_760_351_401;
    for (name, want) in cases {
        // The fixtures are pretty-printed; a delivery is the compact serialization, signed.
        let body = serde_json::to_string(&fixture(name)).unwrap();
        let sig = hex::encode(crate::webhooks::verify::sign(
            APP_SECRET.as_bytes(),
            now,
            body.as_bytes(),
        ));
        crate::webhooks::verify::verify(
            APP_SECRET.as_bytes(),
            Some(&format!("t={now},s={sig}")),
            body.as_bytes(),
            now,
            300,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = envelope::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(e.kind, want, "{name}");
        assert_eq!(e.account, BUSINESS, "{name}");
        if want != EventKind::EuStripped
            && !name.contains("auto_message")
            && !name.contains("comment")
        {
            assert!(e.content.conversation_id.is_some(), "{name}");
        }
    }
    let parse = |name: &str| {
        envelope::parse(serde_json::to_string(&fixture(name)).unwrap().as_bytes()).unwrap()
    };
    let text = parse("webhook-im_receive_msg-text.json");
    assert_eq!(text.key, "m:7560938211745563137");
    assert_eq!(text.content.from.as_deref(), Some("maria.lopez92"));
    assert_eq!(
        text.content.text_body(),
        Some("Hi! Is the green jacket back in size M? 👍")
    );
    let tap = parse("webhook-im_receive_msg-template-click.json");
    assert_eq!(tap.content.button_id(), Some("track_order"));
    let image = parse("webhook-im_receive_msg-image.json");
    assert_eq!(
        image.content.image.unwrap().media_id.as_deref(),
        Some("7560938388211751426")
    );
    let post = parse("webhook-im_receive_msg-share_post.json");
    assert!(post.content.share_post.unwrap().embed_url.is_some());
    let echo = parse("webhook-im_send_msg-api-echo.json");
    assert_eq!(
        echo.content.message_id.as_deref(),
        fixture("message-send.response.json")["data"]["message"]["message_id"].as_str(),
        "the echo carries the send reply's id"
    );
    let read = parse("webhook-im_mark_read_msg.json");
    assert!(read.key.starts_with("h:"), "no message id: keyed by body");
}

#[test]
fn the_signature_example_verifies_byte_for_byte() {
    let ex = fixture("webhook-signature.example.json");
    let raw = ex["raw_body"].as_str().unwrap();
    let header = ex["header_value"].as_str().unwrap();
    let secret = ex["client_secret"].as_str().unwrap();
    let t: u64 = ex["signed_payload_prefix"]
        .as_str()
        .unwrap()
        .trim_end_matches('.')
        .parse()
        .unwrap();
    crate::webhooks::verify::verify(secret.as_bytes(), Some(header), raw.as_bytes(), t, 5).unwrap();
    let mut tampered = raw.to_string();
    tampered.push(' ');
    assert!(crate::webhooks::verify::verify(
        secret.as_bytes(),
        Some(header),
        tampered.as_bytes(),
        t,
        5
    )
    .is_err());
    assert_eq!(
        envelope::parse(raw.as_bytes()).unwrap().kind,
        EventKind::CustomerMessage
    );
}
