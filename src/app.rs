//! Request dispatch: one function from a runtime-neutral [`Request`] to a [`Response`].
//! It assigns the request id, routes, runs the handler, maps any [`Error`] to its JSON body
//! exactly once and writes one structured log line per request.

use crate::auth::Role;
use crate::config::{Config, SETTINGS};
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::ports::{Level, Platform};
use crate::routes::{resolve, Endpoint};
use crate::tiktok::{AppCredentials, Client};
use crate::{api, events, oauth};
use serde_json::{json, Map, Value};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// `Retry-After` on 429 answers.
pub const RETRY_AFTER_SECS: u64 = 5;

/// What the edge found in `Env`: presence only, never values.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    /// Binding name and whether it is bound.
    pub bindings: Vec<(&'static str, bool)>,
    /// Setting name and whether it has a non-empty value.
    pub settings: Vec<(&'static str, bool)>,
}

impl Presence {
    /// Presence of every documented setting according to `lookup`.
    pub fn settings_from(lookup: impl Fn(&str) -> bool) -> Vec<(&'static str, bool)> {
        SETTINGS.iter().map(|s| (s.name, lookup(s.name))).collect()
    }
}

/// Work a handler leaves for after the response (`ctx.wait_until` at the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    ProcessEvent { account: String, key: String },
}

impl Job {
    /// Runs the job; failures are logged (the actor's alarm retries event processing).
    pub async fn run<P: Platform>(self, p: &P) {
        match self {
            Job::ProcessEvent { account, key } => {
                if let Err(e) = p.process_event(&account, &key).await {
                    p.log(
                        Level::Warn,
                        "deferred processing failed; the actor's alarm will retry",
                        json!({"account_id": account, "key": key, "code": e.code()}),
                    );
                }
            }
        }
    }
}

/// Per-request context handed to handlers.
pub struct Ctx<'a, P: Platform> {
    pub p: &'a P,
    cfg: &'a Result<Config>,
    pub presence: &'a Presence,
    pub request_id: String,
    jobs: std::cell::RefCell<Vec<Job>>,
}

impl<P: Platform> Ctx<'_, P> {
    /// Leaves `job` to run after the response is sent.
    pub fn defer(&self, job: Job) {
        self.jobs.borrow_mut().push(job);
    }

    /// The validated config, or the error naming what is missing.
    pub fn config(&self) -> Result<&Config> {
        self.cfg.as_ref().map_err(|e| match e {
            Error::Config { problems } => Error::Config {
                problems: problems.clone(),
            },
            other => Error::Internal(other.to_string()),
        })
    }

    /// Checks the Bearer key for `role`; 401/403 otherwise.
    pub fn authorize(&self, req: &Request, role: Role) -> Result<Role> {
        self.config()?
            .api_keys
            .authorize(req.headers.get("authorization"), role)
    }

    pub fn log(&self, level: Level, msg: &str, mut fields: Value) {
        if let Some(m) = fields.as_object_mut() {
            m.insert("request_id".into(), json!(self.request_id));
        }
        self.p.log(level, msg, fields);
    }
}

/// The request id: Cloudflare's `cf-ray` when present (so our logs join theirs), else random.
fn request_id<P: Platform>(p: &P, req: &Request) -> String {
    req.headers
        .get("cf-ray")
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| p.hex(8))
}

/// Handles one HTTP request end to end; returns the response and the work left for after it.
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &Result<Config>,
    presence: &Presence,
    req: Request,
) -> (Response, Vec<Job>) {
    let started = p.now_ms();
    let ctx = Ctx {
        p,
        cfg,
        presence,
        request_id: request_id(p, &req),
        jobs: Default::default(),
    };
    let result = match resolve(req.method, req.path()) {
        Ok((endpoint, params)) => dispatch(&ctx, endpoint, params, &req).await,
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&ctx, &e),
    };
    if req.method == crate::http::Method::Head {
        resp.body.clear();
    }
    resp.headers.set("x-request-id", ctx.request_id.clone());
    let level = if resp.status >= 500 {
        Level::Error
    } else {
        Level::Info
    };
    // Path only: query strings carry OAuth codes and states.
    ctx.log(
        level,
        "request",
        json!({"method": req.method.as_str(), "path": req.path(), "status": resp.status,
               "ms": p.now_ms().saturating_sub(started)}),
    );
    (resp, ctx.jobs.take())
}

/// Maps an error to its JSON response, logging server-side ones with their message.
pub fn error_response<P: Platform>(ctx: &Ctx<'_, P>, e: &Error) -> Response {
    if e.is_server_side() {
        ctx.log(
            Level::Error,
            "error",
            json!({"code": e.code(), "message": e.to_string()}),
        );
    }
    let mut resp = Response::json(e.status(), &e.body(&ctx.request_id));
    if let Error::MethodNotAllowed { allowed, .. } = e {
        resp.headers.set("allow", allowed.join(", "));
    }
    if let Error::Unauthorized(_) = e {
        resp.headers.set("www-authenticate", "Bearer");
    }
    if e.status() == 429 {
        // TikTok gives no hint; a few seconds is what its throttling needs in practice.
        resp.headers
            .set("retry-after", RETRY_AFTER_SECS.to_string());
    }
    resp
}

async fn dispatch<P: Platform>(
    ctx: &Ctx<'_, P>,
    endpoint: Endpoint,
    params: Vec<String>,
    req: &Request,
) -> Result<Response> {
    let param = || params.first().map(String::as_str).unwrap_or_default();
    match endpoint {
        Endpoint::Health => health(ctx, req).await,
        Endpoint::OpenApi => Ok(openapi()),
        Endpoint::OAuthStart => oauth::start(ctx, req).await,
        Endpoint::OAuthCallback => oauth::callback(ctx, req).await,
        Endpoint::ListAccounts => api::list_accounts(ctx, req).await,
        Endpoint::DeleteAccount => api::delete_account(ctx, req, param()).await,
        Endpoint::ListConversations => api::list_conversations(ctx, req).await,
        Endpoint::ListMessages => api::list_messages(ctx, req, param()).await,
        Endpoint::WebhookReceive => events::receive(ctx, req).await,
        Endpoint::WebhookChallenge => Ok(events::challenge(req)),
        Endpoint::GetRules => events::get_rules(ctx, req).await,
        Endpoint::PutRules => events::put_rules(ctx, req).await,
        Endpoint::ListFailedEvents => events::list_failed(ctx, req).await,
        Endpoint::ReplayEvent => events::replay_route(ctx, req).await,
        Endpoint::SendMessage => api::send_message(ctx, req).await,
        Endpoint::PutSubscription => api::put_subscription(ctx, req).await,
        Endpoint::GetSubscription => api::get_subscription(ctx, req).await,
        Endpoint::DeleteSubscription => api::delete_subscription(ctx, req).await,
    }
}

/// The OpenAPI 3.1 description of every route, served as is.
pub const OPENAPI: &str = include_str!("openapi.json");

fn openapi() -> Response {
    let mut r = Response::text(200, OPENAPI);
    r.headers
        .set("content-type", "application/json; charset=utf-8");
    r
}

/// Liveness plus configuration presence. `?probe=tiktok` (admin key) also makes one call to
/// TikTok with the app credentials, proving outbound `fetch` and the credentials work.
async fn health<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    let flags = |list: &[(&str, bool)]| -> Map<String, Value> {
        list.iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    };
    let problems = match ctx.cfg {
        Err(Error::Config { problems }) => Some(problems.clone()),
        _ => None,
    };
    let bindings_ok = ctx.presence.bindings.iter().all(|(_, b)| *b);
    let mut body = json!({
        "status": if problems.is_none() && bindings_ok { "ok" } else { "degraded" },
        "version": VERSION,
        "config": flags(&ctx.presence.settings),
        "bindings": flags(&ctx.presence.bindings),
    });
    if let Some(p) = problems {
        body["config_problems"] = json!(p);
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
        Ok(_) => json!({"reachable": true, "credentials_accepted": true, "ms": ms}),
        Err(e) => json!({"reachable": !matches!(e.code(), "tiktok_timeout" | "tiktok_unreachable"),
                         "credentials_accepted": false, "error": e.code(), "ms": ms}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;

    #[test]
    fn openapi_lists_exactly_the_routes_served() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for r in ROUTES {
            let p = paths
                .get(r.pattern)
                .unwrap_or_else(|| panic!("{} undocumented", r.pattern));
            for (m, _) in r.methods {
                let m = m.as_str().to_ascii_lowercase();
                assert!(p.get(&m).is_some(), "{} {} undocumented", m, r.pattern);
            }
            let documented = p
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .count();
            assert_eq!(
                documented,
                r.methods.len(),
                "{} documents methods it does not serve",
                r.pattern
            );
        }
        assert_eq!(
            paths.len(),
            ROUTES.len(),
            "documented paths the router does not serve"
        );
    }
}
