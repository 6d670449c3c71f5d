//! The simulator's own control API, for people trying the Worker locally (not part of
//! TikTok): play a customer writing a DM, and see what the business sent.
//!
//! - `POST /_sim/inbound` `{"text", "conversation_id"?, "business_id"?, "customer"?}` builds the
//!   `im_receive_msg` webhook exactly as TikTok would, signs it with the app secret and
//!   delivers it to the callback URL registered with `/business/webhook/update/`. Defaults: the
//!   last business that connected, a new conversation, the customer `maria.lopez92`.
//! - `GET /_sim/sent[?conversation_id=]` lists what the business sent through the API, newest
//!   first.

use crate::state::Shared;
use crate::{webhooks, Incoming, IncomingKind};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct InboundReq {
    text: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    business_id: Option<String>,
    #[serde(default)]
    customer: Option<String>,
}

fn answer(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

pub async fn inbound(shared: &Shared, body: &[u8]) -> Response {
    let req: InboundReq = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("send {{\"text\": \"...\"}} ({e})")}),
            )
        }
    };
    let (business, url, conversation) = {
        let mut st = shared.lock();
        let business = req.business_id.clone().or_else(|| st.last_open_id.clone());
        let url = st.webhooks.get("DIRECT_MESSAGE").cloned();
        let conversation = req
            .conversation_id
            .clone()
            .unwrap_or_else(|| st.new_conversation_id());
        (business, url, conversation)
    };
    let Some(business) = business else {
        return answer(
            StatusCode::CONFLICT,
            json!({"error": "no business is connected yet: connect one through the Worker's /oauth/start first"}),
        );
    };
    let Some(url) = url else {
        return answer(
            StatusCode::CONFLICT,
            json!({"error": "no webhook is registered: PUT /v1/webhook-subscription on the Worker first"}),
        );
    };
    let customer = req.customer.unwrap_or_else(|| "maria.lopez92".into());
    let customer_id = {
        let mut st = shared.lock();
        let id = format!("cust-{customer}");
        let c = st.customer_mut(&id);
        if c.handle.is_empty() || c.handle != customer {
            c.handle = customer.clone();
        }
        id
    };
    let mut msg = Incoming::new(&business, &conversation, IncomingKind::Text(req.text));
    msg.customer = Some(customer_id);
    let built = webhooks::customer_message(shared, msg);
    match webhooks::deliver(shared, &url, &built.body).await {
        Ok((status, worker_answer)) => answer(
            StatusCode::OK,
            json!({"business_id": business, "conversation_id": conversation,
                   "message_id": built.message_id, "delivered_to": url,
                   "worker_status": status, "worker_answer": worker_answer}),
        ),
        Err(e) => answer(
            StatusCode::BAD_GATEWAY,
            json!({"error": format!("the Worker at {url} did not answer: {e}")}),
        ),
    }
}

pub fn sent(shared: &Shared, query: &str) -> Response {
    let conv: Option<String> = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "conversation_id")
        .map(|(_, v)| v.into_owned());
    let st = shared.lock();
    let list: Vec<serde_json::Value> = st
        .sent
        .iter()
        .rev()
        .filter(|m| conv.as_ref().is_none_or(|c| *c == m.conversation_id))
        .take(100)
        .map(|m| {
            json!({"business_id": m.business_id, "conversation_id": m.conversation_id,
                   "message_type": m.message_type, "message_id": m.message_id,
                   "text": m.body.get("text").and_then(|t| t.get("body")),
                   "template": m.body.get("template"), "share_post": m.body.get("share_post"),
                   "sender_action": m.body.get("sender_action")})
        })
        .collect();
    answer(StatusCode::OK, json!({ "sent": list }))
}
