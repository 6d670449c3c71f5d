//! Recorded failures: `GET /v1/failed-events` and replaying one.

use crate::auth::Role;
use crate::error::Result;
use crate::http::ctx::Ctx;
use crate::http::{Request, Response};
use crate::ports::{Bucket, Platform};
use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/events/failed?account_id=` (admin).
pub async fn list_failed<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let prefix = match req.query("account_id") {
        Some(a) => {
            crate::http::extract::check_id("account_id", &a)?;
            crate::webhooks::pipeline::failures_prefix(Some(&a))
        }
        None => crate::webhooks::pipeline::failures_prefix(None),
    };
    // One page per request (one list, at most `limit` reads): any number of failures stays
    // within the platform's per-invocation limits.
    let (limit, cursor) = crate::http::extract::page_params(req)?;
    let page = ctx.p.list(Bucket::State, &prefix, cursor, limit).await?;
    let mut out = Vec::new();
    for k in &page.keys {
        if let Some(raw) = ctx.p.get(Bucket::State, k).await? {
            if let Ok(mut v) = crate::json::from_str::<Value>(&raw) {
                if let Some(o) = v.as_object_mut() {
                    // Copied without `event`: removing a key compiles the map's whole removal
                    // and rebalancing for this one use.
                    for (k, field) in std::mem::take(o) {
                        if k != "event" {
                            o.insert(k, field);
                        }
                    }
                }
                out.push(v);
            }
        }
    }
    Ok(Response::json(
        200,
        &crate::json::object!({"failures": out, "cursor": page.cursor}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    account_id: String,
    id: String,
}

/// `POST /v1/events/replay` `{account_id, id}` (admin).
pub async fn replay_route<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let body: ReplayBody = crate::http::extract::json_body(req)?;
    crate::http::extract::check_id("account_id", &body.account_id)?;
    crate::http::extract::check_id("id", &body.id)?;
    let v = ctx.p.replay_failure(&body.account_id, &body.id).await?;
    // 200 done; 202 waiting for a send of unknown outcome to be reconciled; 502 failed again.
    let status = match (v["replayed"].as_bool(), v["pending"].as_bool()) {
        (Some(true), _) => 200,
        (_, Some(true)) => 202,
        _ => 502,
    };
    Ok(Response::json(status, &v))
}
