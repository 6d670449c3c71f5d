//! Issue 12: the OpenAPI document cannot drift. Real answers of the running Worker are checked
//! against the schemas it documents: types, enums, required keys, and no undocumented key
//! (an object lists its properties, unless it says `additionalProperties: true`).

use crate::harness::{ADMIN_KEY, SENDER_KEY};
use crate::oauth::connect;
use crate::Env;
use serde_json::{json, Value};
use std::sync::Arc;
use tiktok_sim::Incoming;

/// Why `value` does not match `schema` (a subset of JSON Schema as the document uses it).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc
            .pointer(&r[1..])
            .unwrap_or_else(|| panic!("dangling {r}"));
        return check(doc, target, value, at, out);
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            out.push(format!("{at}: {value} not in {options:?}"));
        }
        return;
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let fits = |t: &str| t == kind || (t == "number" && kind == "integer");
    if !allowed.is_empty() && !allowed.iter().any(|t| fits(t)) {
        out.push(format!("{at}: {kind} where the document says {allowed:?}"));
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(req) {
                    out.push(format!("{at}.{req}: required, missing"));
                }
            }
            let open = schema.get("additionalProperties") == Some(&Value::Bool(true));
            for (k, v) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(doc, s, v, &format!("{at}.{k}"), out),
                    None if open => {}
                    None => out.push(format!("{at}.{k}: answered but not documented")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(doc, s, v, &format!("{at}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Method, path, documented pattern, API key, body.
type ApiCall<'a> = (&'a str, String, &'a str, Option<&'a str>, Option<Value>);

/// The documented schema of a 200 JSON answer.
fn schema_of<'a>(doc: &'a Value, method: &str, pattern: &str) -> &'a Value {
    let s =
        &doc["paths"][pattern][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(
        s.is_object(),
        "{method} {pattern}: no documented 200 JSON schema"
    );
    s
}

pub async fn documented_schemas_match_real_answers(env: Arc<Env>) {
    let doc: Value =
        serde_json::from_str(include_str!("../../public/openapi.json")).expect("the document");
    connect(&env, "e2e-openapi").await;
    let conv = env.sim.new_conversation_id();
    let img = env
        .sim
        .customer_message(Incoming::image("e2e-openapi", &conv));
    let enc = url::form_urlencoded::byte_serialize(conv.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let signed = env.sim.inbound("e2e-openapi", &conv, "hello");
    let rules = json!({"rules": [{"id": "hi", "keywords": ["hello"], "text": "Hello!"}]});
    let send =
        json!({"account_id": "e2e-openapi", "conversation_id": conv, "type": "text", "text": "hi"});
    let calls: Vec<ApiCall> = vec![
        ("get", "/health".into(), "/health", None, None),
        (
            "put",
            "/v1/rules?account_id=e2e-openapi".into(),
            "/v1/rules",
            Some(ADMIN_KEY),
            Some(rules),
        ),
        (
            "get",
            "/v1/rules?account_id=e2e-openapi".into(),
            "/v1/rules",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "post",
            "/v1/rules/test".into(),
            "/v1/rules/test",
            Some(ADMIN_KEY),
            Some(json!({"account_id": "e2e-openapi", "text": "hello"})),
        ),
        (
            "post",
            format!("/v1/conversations/{enc}/handoff?account_id=e2e-openapi"),
            "/v1/conversations/{id}/handoff",
            Some(SENDER_KEY),
            Some(json!({"paused": true, "for_secs": 60})),
        ),
        (
            "get",
            format!("/v1/conversations/{enc}/handoff?account_id=e2e-openapi"),
            "/v1/conversations/{id}/handoff",
            Some(SENDER_KEY),
            None,
        ),
        (
            "post",
            format!("/v1/conversations/{enc}/handoff?account_id=e2e-openapi"),
            "/v1/conversations/{id}/handoff",
            Some(SENDER_KEY),
            Some(json!({"paused": false})),
        ),
        (
            "post",
            "/v1/messages".into(),
            "/v1/messages",
            Some(SENDER_KEY),
            Some(send),
        ),
        (
            "get",
            "/v1/conversations?account_id=e2e-openapi".into(),
            "/v1/conversations",
            Some(SENDER_KEY),
            None,
        ),
        (
            "get",
            "/v1/conversations?account_id=e2e-openapi&source=tiktok&type=SINGLE".into(),
            "/v1/conversations",
            Some(SENDER_KEY),
            None,
        ),
        (
            "get",
            format!("/v1/conversations/{enc}/messages?account_id=e2e-openapi&limit=1"),
            "/v1/conversations/{id}/messages",
            Some(SENDER_KEY),
            None,
        ),
        (
            "get",
            format!("/v1/conversations/{enc}/messages?account_id=e2e-openapi&source=tiktok"),
            "/v1/conversations/{id}/messages",
            Some(SENDER_KEY),
            None,
        ),
        (
            "get",
            format!(
                "/v1/conversations/{enc}/messages/{}/media?account_id=e2e-openapi",
                img.message_id
            ),
            "/v1/conversations/{id}/messages/{message_id}/media",
            Some(SENDER_KEY),
            None,
        ),
        (
            "get",
            "/v1/accounts?limit=100".into(),
            "/v1/accounts",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "get",
            "/v1/events/failed?limit=10".into(),
            "/v1/events/failed",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "put",
            "/v1/webhook-subscription".into(),
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "get",
            "/v1/webhook-subscription".into(),
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "delete",
            "/v1/webhook-subscription".into(),
            "/v1/webhook-subscription",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "delete",
            "/v1/rules?account_id=e2e-openapi".into(),
            "/v1/rules",
            Some(ADMIN_KEY),
            None,
        ),
        (
            "delete",
            "/v1/accounts/e2e-openapi".into(),
            "/v1/accounts/{id}",
            Some(ADMIN_KEY),
            None,
        ),
    ];
    let mut problems = Vec::new();
    let (status, text) = env
        .sim
        .deliver(&env.url("/webhooks/tiktok"), &signed)
        .await
        .expect("delivery");
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&text).unwrap();
    check(
        &doc,
        schema_of(&doc, "post", "/webhooks/tiktok"),
        &answer,
        "POST /webhooks/tiktok",
        &mut problems,
    );
    // The stored inbox answers below only once the event is processed (after the 200).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let r = env
            .call(
                "GET",
                "/v1/conversations?account_id=e2e-openapi",
                Some(SENDER_KEY),
                None,
            )
            .await;
        if r.json()["conversations"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (method, path, pattern, key, body) in calls {
        let r = env
            .call(&method.to_ascii_uppercase(), &path, key, body.as_ref())
            .await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
        let at = format!("{} {pattern}", method.to_ascii_uppercase());
        check(
            &doc,
            schema_of(&doc, method, pattern),
            &r.json(),
            &at,
            &mut problems,
        );
    }
    assert!(
        problems.is_empty(),
        "the document and the answers differ:\n{}",
        problems.join("\n")
    );
}
