//! Read side of the inbox: business profile, conversation list, content list, capabilities.

use crate::now_ms;
use crate::oauth::authed;
use crate::router::{fail, invalid, param, Out, Req};
use crate::state::{Body, Conversation, Shared, State, StoredMessage};
use crate::webhooks::embed_url;
use serde_json::{json, Map, Value};

/// Conversations older than this drop out of the list.
const LIST_HORIZON_MS: u64 = 90 * 86_400_000;
/// The content list has no paging: the latest messages only.
const CONTENT_LIMIT: usize = 20;

fn business_id(rq: &Req) -> Option<&str> {
    rq.query.get("business_id").map(String::as_str)
}

/// A JSON array given as a query string, e.g. `["IMAGE_SEND"]`.
fn json_list(raw: &str, name: &str) -> Result<Vec<String>, crate::router::ApiErr> {
    serde_json::from_str::<Vec<String>>(raw).or_else(|_| invalid(name))
}

/// GET `/business/get/`: the flat profile, only the asked fields.
pub fn business_get(shared: &Shared, rq: &Req) -> Out {
    let st = shared.lock();
    let biz = authed(&st, &rq.headers, business_id(rq), "user.info.basic")?;
    let fields = match rq.query.get("fields").filter(|f| !f.is_empty()) {
        Some(raw) => json_list(raw, "fields")?,
        None => vec!["display_name".into(), "profile_image".into()],
    };
    let p = st.profile(&biz);
    let mut data = Map::new();
    for f in fields {
        let v = match f.as_str() {
            "username" => json!(p.username),
            "display_name" => json!(p.display_name),
            "profile_image" => json!(st.avatar_url(&shared.origin, &biz)),
            // Insight fields (followers, metrics, ...) are not simulated.
            _ => continue,
        };
        data.insert(f, v);
    }
    Ok(Value::Object(data))
}

fn conversation_type(rq: &Req) -> Result<&str, crate::router::ApiErr> {
    let t = param(&rq.query, "conversation_type")?;
    match t {
        "STRANGER" | "SINGLE" => Ok(t),
        _ => invalid("conversation_type"),
    }
}

/// An optional numeric query parameter within bounds.
fn number(
    rq: &Req,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, crate::router::ApiErr> {
    match rq.query.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => invalid(name),
        },
    }
}

/// GET `/business/message/conversation/list/`: newest first, offset cursor.
pub fn list(shared: &Shared, rq: &Req) -> Out {
    let st = shared.lock();
    let biz = authed(&st, &rq.headers, business_id(rq), "message.list.read")?;
    let kind = conversation_type(rq)?;
    let limit = number(rq, "limit", 100, 1..=100)? as usize;
    let cursor = number(rq, "cursor", 0, 0..=u64::MAX)? as usize;
    let horizon = now_ms().saturating_sub(LIST_HORIZON_MS);
    let mut all: Vec<&Conversation> = st
        .conversations
        .values()
        .filter(|c| c.business_id == biz && c.update_time() >= horizon)
        .filter(|c| c.business_replied() == (kind == "SINGLE"))
        .collect();
    all.sort_by(|a, b| {
        b.update_time()
            .cmp(&a.update_time())
            .then_with(|| a.id.cmp(&b.id))
    });
    let page: Vec<Value> = all
        .iter()
        .skip(cursor)
        .take(limit)
        .map(|c| json!({"conversation_id": c.id, "update_time": c.update_time()}))
        .collect();
    let next = cursor.min(all.len()) + page.len();
    Ok(json!({"conversations": page, "has_more": next < all.len(), "cursor": next}))
}

fn rest_body(m: &StoredMessage) -> (&'static str, Value) {
    match &m.body {
        Body::Text(t) => ("text", json!({"body": t})),
        Body::Image(id) => ("image", json!({"media_id": id})),
        Body::SharePost(item) => ("share_post", json!({"embed_url": embed_url(item)})),
        Body::Template {
            kind,
            title,
            buttons,
        } => (
            "template",
            json!({"type": kind, "title": title, "buttons": buttons
                .iter()
                .map(|b| json!({"type": "REPLY", "title": b.title, "id": b.id}))
                .collect::<Vec<_>>()}),
        ),
    }
}

fn rest_message(st: &State, c: &Conversation, m: &StoredMessage) -> Value {
    let business = st.profile(&c.business_id).username;
    let customer = st.customer(&c.customer_id).handle;
    let biz_user = json!({"role": "BUSINESS_ACCOUNT", "id": c.business_id});
    let cust_user = json!({"role": "PERSONAL_ACCOUNT", "id": c.customer_id});
    let (sender, recipient, from_user, to_user) = if m.from_business {
        (business, customer, biz_user, cust_user)
    } else {
        (customer, business, cust_user, biz_user)
    };
    let (key, body) = rest_body(m);
    let mut v = json!({
        "sender": sender,
        "recipient": recipient,
        "conversation_id": c.id,
        "message_id": m.id,
        "timestamp": m.ts_ms,
        "message_tag": {"source": m.source},
        "message_type": m.body.rest_type(),
        "from_user": from_user,
        "to_user": to_user,
    });
    v[key] = body;
    if let Some(r) = &m.referenced {
        v["referenced_message_info"] = json!({"referenced_message_id": r});
    }
    v
}

/// GET `/business/message/content/list/`: the 20 latest messages, oldest first, and both
/// participants. An id that is not one of the business's conversations is "invalid", which
/// is also what a `+` decoded to a space leads to.
pub fn content(shared: &Shared, rq: &Req) -> Out {
    let st = shared.lock();
    let biz = authed(&st, &rq.headers, business_id(rq), "message.list.read")?;
    let id = param(&rq.query, "conversation_id")?;
    let Some(c) = st.conversation(&biz, id) else {
        return fail(40002, "Param conversation_id is invalid.");
    };
    let skip = c.messages.len().saturating_sub(CONTENT_LIMIT);
    let messages: Vec<Value> = c.messages[skip..]
        .iter()
        .map(|m| rest_message(&st, c, m))
        .collect();
    let profile = st.profile(&biz);
    let customer = st.customer(&c.customer_id);
    let participants = json!([
        {"role": "BUSINESS_ACCOUNT", "id": biz, "display_name": profile.display_name,
         "profile_image": st.avatar_url(&shared.origin, &biz)},
        {"role": "PERSONAL_ACCOUNT", "id": c.customer_id, "display_name": customer.display_name,
         "profile_image": st.avatar_url(&shared.origin, &c.customer_id),
         "is_follower": customer.is_follower},
    ]);
    Ok(json!({"messages": messages, "participants": participants}))
}

/// GET `/business/message/capabilities/get/`: only `IMAGE_SEND` exists.
pub fn capabilities(shared: &Shared, rq: &Req) -> Out {
    let st = shared.lock();
    let biz = authed(&st, &rq.headers, business_id(rq), "message.list.send")?;
    let types = json_list(param(&rq.query, "capability_types")?, "capability_types")?;
    if types.is_empty() || types.iter().any(|t| t != "IMAGE_SEND") {
        return invalid("capability_types");
    }
    let conv = param(&rq.query, "conversation_id")?;
    conversation_type(rq)?;
    if conv.chars().any(char::is_whitespace) {
        return invalid("conversation_id");
    }
    // Lenient like send: a conversation the sim has not seen gets its business's answer.
    let on = st
        .image_send
        .get(conv)
        .or_else(|| st.image_send.get(&biz))
        .copied()
        .unwrap_or(st.settings.image_send);
    let infos: Vec<Value> = types
        .iter()
        .map(|t| json!({"capability_type": t, "capability_result": on}))
        .collect();
    Ok(json!({"capability_infos": infos}))
}
