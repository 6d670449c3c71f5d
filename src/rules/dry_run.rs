//! `POST /v1/rules/test` (admin): which rules a customer message would fire and what would be
//! sent, decided by the same engine, rule set and local time the account's actor uses.
//! Nothing is sent or stored.

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::{check_id, json_body};
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::rules::engine::{self, ConversationState, Inbound};
use crate::rules::store::load_rules;
use crate::time::{LocalTime, Zone};
use serde::Deserialize;

/// Largest request body: a message and a few fields.
const MAX_BODY: usize = 32 * 1024;
/// Longest message text tried (TikTok's own limit for a text message is lower).
const MAX_TEXT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    #[serde(default)]
    text: Option<String>,
    /// A tapped card button's id (rules with `buttons`).
    #[serde(default)]
    button_id: Option<String>,
    /// The account whose rules apply (its own, else the global set); none: the global set.
    #[serde(default)]
    account_id: Option<String>,
    /// When the message arrives (unix seconds); default now. Away hours depend on it.
    #[serde(default)]
    at: Option<u64>,
    /// Whether this is the conversation's first customer message (the welcome); default true.
    #[serde(default)]
    first_message: Option<bool>,
    /// The customer's name, for `{{display_name}}`.
    #[serde(default)]
    display_name: Option<String>,
    /// TikTok's id of the message, quoted by rules with `quote`.
    #[serde(default)]
    message_id: Option<String>,
}

/// `POST /v1/rules/test`.
pub async fn test_rules<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    if req.body.len() > MAX_BODY {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY });
    }
    let d: DryRun = json_body(req)?;
    if d.text.is_none() && d.button_id.is_none() {
        return Err(Error::invalid(
            "text",
            "give the message's text or a button_id",
        ));
    }
    if d.text
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT)
    {
        return Err(Error::invalid(
            "text",
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    if let Some(a) = &d.account_id {
        check_id("account_id", a)?;
    }
    // Up to the year 9999.
    if d.at.is_some_and(|t| t > 253_402_300_799) {
        return Err(Error::invalid("at", "unix seconds up to the year 9999"));
    }
    let cfg = ctx.config()?;
    let (rules, source) = load_rules(ctx.p, cfg, d.account_id.as_deref()).await?;
    let now = d.at.unwrap_or_else(|| ctx.p.now_secs());
    let mut conv = ConversationState::default();
    if !d.first_message.unwrap_or(true) {
        // An earlier customer message, an hour before, that got no auto-reply.
        conv.record_inbound(now.saturating_sub(3_600));
    }
    conv.record_inbound(now);
    let zone = Zone::parse(&rules.timezone).unwrap_or(Zone::Fixed(0));
    let local = ctx
        .p
        .local_time(&zone, now)
        .unwrap_or_else(|| LocalTime::at_offset(now, 0));
    let inbound = Inbound {
        text: d.text.as_deref(),
        button_id: d.button_id.as_deref(),
        message_id: d.message_id.as_deref(),
    };
    let name = d.display_name.as_deref().filter(|n| !n.trim().is_empty());
    let plan = engine::decide(&rules, &conv, inbound, name, local, now);
    let messages: Vec<_> = plan
        .messages
        .iter()
        .map(|(rule, m)| crate::json::object!({"rule": rule, "message": m}))
        .collect();
    let mut fired: Vec<&str> = Vec::new();
    for (rule, _) in &plan.messages {
        if !fired.contains(&rule.as_str()) {
            fired.push(rule);
        }
    }
    Ok(Response::json(
        200,
        &crate::json::object!({
            "sent": false,
            "source": source.as_str(),
            "account_id": d.account_id,
            "at": crate::time::iso8601(now.saturating_mul(1000)),
            "timezone": rules.timezone,
            "local_time": {"weekday": local.weekday, "minute": local.minute},
            "fired": fired,
            "messages": messages,
            "held_back": plan.held_back,
            "mark_read": plan.mark_read,
            "typing": plan.typing,
            "pause": plan.pause,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::Presence;
    use crate::http::{Headers, Method, Request};
    use crate::ports::{Bucket, Store};
    use crate::testutil::{block_on, fixtures, Fake};
    use serde_json::{json, Value};

    fn dry(f: &Fake, key: &str, body: Value) -> (u16, Value) {
        let cfg = Ok(fixtures::config());
        let req = Request {
            method: Method::Post,
            url: crate::weburl::Url::parse("https://w.example/v1/rules/test").unwrap(),
            headers: [
                ("authorization", format!("Bearer {key}")),
                ("content-type", "application/json".to_string()),
            ]
            .into_iter()
            .collect::<Headers>(),
            body: body.to_string().into_bytes(),
        };
        let r = block_on(crate::app::handle(f, &cfg, &Presence::default(), req));
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn answers_the_engine_s_plan_for_the_stored_rules_and_sends_nothing() {
        let f = Fake::new(1_720_000_000);
        let set = json!({"welcome": "Hi {{display_name}}!", "rules": [
            {"id": "price", "match": "contains", "keywords": ["price"], "text": "On the site."}]});
        block_on(f.put(Bucket::State, "rules", &set.to_string(), None)).unwrap();
        let admin = "0123456789abcdef0123";
        let (s, b) = dry(
            &f,
            admin,
            json!({"text": "the PRICE?", "display_name": "Ada"}),
        );
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["source"], "stored");
        assert_eq!(b["fired"], json!(["welcome", "price"]));
        assert_eq!(b["messages"][0]["message"]["text"], "Hi Ada!");
        assert_eq!(b["messages"][1]["message"]["text"], "On the site.");
        let (_, later) = dry(&f, admin, json!({"text": "price", "first_message": false}));
        assert_eq!(later["fired"], json!(["price"]));
        let (_, none) = dry(&f, admin, json!({"text": "hello"}));
        assert_eq!(none["fired"], json!(["welcome"]));
        assert!(f.sent().is_empty(), "nothing sent");
        for bad in [
            json!({}),
            json!({"text": "x", "colour": "red"}),
            json!({"text": "x", "account_id": ""}),
            json!({"text": "x", "at": 300_000_000_000u64}),
            json!({"text": "é".repeat(10_001)}),
        ] {
            let (s, b) = dry(&f, admin, bad.clone());
            assert_eq!(s, 400, "{bad} -> {b}");
        }
    }
}
