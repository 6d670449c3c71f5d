//! The app's webhook subscription at TikTok: `PUT`/`GET`/`DELETE /v1/webhook`.

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::extract::json_body;
use crate::http::{Request, Response};
use crate::ports::{Level, Platform};
use crate::tiktok::retry::transient_retries;
use crate::tiktok::{AppCredentials, Client};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionRequest {
    #[serde(default)]
    callback_url: Option<String>,
}

pub(crate) fn app_creds(cfg: &crate::config::Config) -> AppCredentials<'_> {
    AppCredentials {
        client_key: &cfg.client_key,
        client_secret: &cfg.client_secret,
    }
}

/// `PUT /v1/webhook-subscription` (admin): registers this Worker's `/webhooks/tiktok` (or the
/// given URL) for `DIRECT_MESSAGE` events. The app secret travels in the request body only.
pub async fn put_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let body: SubscriptionRequest = if req.body.iter().all(u8::is_ascii_whitespace) {
        SubscriptionRequest::default()
    } else {
        json_body(req)?
    };
    let url = match body.callback_url {
        Some(u) => {
            let parsed = crate::weburl::Url::parse(&u)
                .map_err(|_| Error::invalid("callback_url", "must be an absolute URL"))?;
            if !parsed.is_http() {
                return Err(Error::invalid(
                    "callback_url",
                    "must be an http(s) URL (TikTok requires https)",
                ));
            }
            parsed.to_string()
        }
        None => format!("{}/webhooks/tiktok", req.origin()),
    };
    let client = Client::for_config(ctx.p, cfg);
    transient_retries(ctx.p, async || {
        client.webhook_update(app_creds(cfg), &url).await
    })
    .await?;
    ctx.log(
        Level::Info,
        "webhook subscription updated",
        crate::json::object!({}),
    );
    Ok(Response::json(
        200,
        &crate::json::object!({"event_type": "DIRECT_MESSAGE", "callback_url": url}),
    ))
}

/// `GET /v1/webhook-subscription` (admin).
pub async fn get_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    let data = transient_retries(ctx.p, async || client.webhook_list(app_creds(cfg)).await).await?;
    let url = data.callback_url.filter(|u| !u.is_empty());
    Ok(Response::json(
        200,
        &crate::json::object!({
            "event_type": data.event_type.unwrap_or_else(|| "DIRECT_MESSAGE".into()),
            "registered": url.is_some(), "callback_url": url,
        }),
    ))
}

/// `DELETE /v1/webhook-subscription` (admin).
pub async fn delete_subscription<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    ctx.authorize(req, Role::Admin)?;
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    transient_retries(ctx.p, async || client.webhook_delete(app_creds(cfg)).await).await?;
    Ok(Response::json(
        200,
        &crate::json::object!({"deleted": true, "event_type": "DIRECT_MESSAGE"}),
    ))
}
