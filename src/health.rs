//! `GET /health`: what is configured (presence only) and whether TikTok answers.

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::ctx::Ctx;
use crate::http::{Request, Response};
use crate::ports::Platform;
use crate::tiktok::{AppCredentials, Client};
use serde_json::{json, Map, Value};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Liveness plus configuration presence. `?probe=tiktok` (admin key) also makes one call to
/// TikTok with the app credentials, proving outbound `fetch` and the credentials work.
pub(crate) async fn health<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    // Inserted one by one: collecting into the map would compile a sort for it.
    let flags = |list: &[(&str, bool)]| -> Map<String, Value> {
        let mut map = Map::new();
        for (k, v) in list {
            map.insert(k.to_string(), Value::Bool(*v));
        }
        map
    };
    let problems = match ctx.cfg {
        Err(Error::Config { problems }) => Some(problems.clone()),
        _ => None,
    };
    let bindings_ok = ctx.presence.bindings.iter().all(|(_, b)| *b);
    let mut body = crate::json::object!({
        "status": if problems.is_none() && bindings_ok { "ok" } else { "degraded" },
        "version": VERSION,
        "config": flags(&ctx.presence.settings),
        "bindings": flags(&ctx.presence.bindings),
    });
    if let Some(p) = problems {
        body["config_problems"] = json!(p);
    }
    // A boolean setting shows its value, not only whether it is set.
    if let Ok(cfg) = ctx.cfg {
        body["config"]["OAUTH_START_PROTECTED"] = json!(cfg.oauth_start_protected);
    }
    if req.query("probe").as_deref() == Some("tiktok") {
        ctx.authorize(req, Role::Admin)?;
        body["tiktok"] = probe_tiktok(ctx).await?;
    }
    let mut r = Response::json(200, &body);
    r.headers.set("cache-control", "no-store");
    Ok(r)
}

async fn probe_tiktok<P: Platform>(ctx: &Ctx<'_, P>) -> Result<Value> {
    let cfg = ctx.config()?;
    let client = Client::for_config(ctx.p, cfg);
    let app = AppCredentials {
        client_key: &cfg.client_key,
        client_secret: &cfg.client_secret,
    };
    let started = ctx.p.now_ms();
    let outcome = client.webhook_list(app).await;
    let ms = ctx.p.now_ms().saturating_sub(started);
    Ok(match outcome {
        Ok(_) => crate::json::object!({"reachable": true, "credentials_accepted": true, "ms": ms}),
        Err(e) => {
            crate::json::object!({"reachable": !matches!(e.code(), "tiktok_timeout" | "tiktok_unreachable"),
                         "credentials_accepted": false, "error": e.code(), "ms": ms})
        }
    })
}
