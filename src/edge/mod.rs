//! The edge: Workers entry points and the adapters binding the core's ports to the runtime.

mod platform;

use crate::app::{self, Presence};
use crate::config;
use crate::http::{
    Headers as CoreHeaders, Method as CoreMethod, Request as CoreRequest, Response as CoreResponse,
};
use crate::ports::Level;
use platform::{log_line, WorkerPlatform};
use serde_json::json;
use worker::{event, Context, Env, Headers, Request, Response};

/// Largest request body read at all; routes set smaller limits of their own.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Bindings `/health` reports on.
const BINDINGS: &[&str] = &["TOKENS", "STATE"];

/// A setting's value: secrets and vars both arrive as strings on `Env`.
fn lookup(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

fn presence(env: &Env) -> Presence {
    Presence {
        bindings: BINDINGS.iter().map(|b| (*b, env.kv(b).is_ok())).collect(),
        settings: Presence::settings_from(|n| lookup(env, n).is_some()),
    }
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    console_error_panic_hook::set_once();
    let platform = WorkerPlatform::new(&env);
    let cfg = config::load(|k| lookup(&env, k));
    let presence = presence(&env);
    let resp = match into_core(req).await {
        Ok(r) => app::handle(&platform, &cfg, &presence, r).await,
        Err(resp) => resp,
    };
    into_worker(resp)
}

/// Reads the request into the core's type; a body that is too large is answered here.
async fn into_core(mut req: Request) -> Result<CoreRequest, CoreResponse> {
    let bad = |status: u16, code: &str, message: String| {
        CoreResponse::json(
            status,
            &json!({"error": {"code": code, "message": message}}),
        )
    };
    let url = req
        .url()
        .map_err(|e| bad(400, "invalid_request", e.to_string()))?;
    let headers: CoreHeaders = req.headers().entries().collect();
    let declared = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let too_large = || {
        bad(
            413,
            "payload_too_large",
            format!("request body exceeds {MAX_BODY} bytes"),
        )
    };
    if declared > MAX_BODY {
        return Err(too_large());
    }
    let body = req.bytes().await.unwrap_or_default();
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(CoreRequest {
        method: CoreMethod::parse(req.method().as_ref()),
        url,
        headers,
        body,
    })
}

fn into_worker(resp: CoreResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in resp.headers.iter() {
        headers.set(k, v)?;
    }
    let out = if resp.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(resp.body)?
    };
    Ok(out.with_status(resp.status).with_headers(headers))
}

#[allow(dead_code)]
fn log(level: Level, msg: &str, fields: serde_json::Value) {
    log_line(level, msg, fields);
}
