//! Request dispatch: one function from a runtime-neutral [`Request`] to a [`Response`].
//! It assigns the request id, routes, runs the handler, maps any [`Error`] to its JSON body
//! exactly once and writes one structured log line per request.

use crate::config::Config;
use crate::config::Presence;
use crate::error::{Error, Result};
use crate::health::health;
use crate::http::ctx::Ctx;
use crate::http::routes::{resolve, Endpoint};
use crate::http::{Request, Response};
use crate::oauth;
use crate::ports::{Level, Platform};

/// `Retry-After` on 429 answers.
pub const RETRY_AFTER_SECS: u64 = 5;

/// The request id: Cloudflare's `cf-ray` when present (so our logs join theirs), else random.
pub fn request_id<P: Platform>(p: &P, req: &Request) -> String {
    req.headers
        .get("cf-ray")
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| p.hex(8))
}

/// Handles one HTTP request end to end.
#[cfg_attr(not(test), allow(dead_code))] // the edge calls `handle_with_id`
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &Result<Config>,
    presence: &Presence,
    req: Request,
) -> Response {
    let id = request_id(p, &req);
    handle_with_id(p, cfg, presence, req, id).await
}

/// [`handle`] with the request id already chosen (the edge sets it on its platform first, so
/// the platform's own log lines carry it too).
pub async fn handle_with_id<P: Platform>(
    p: &P,
    cfg: &Result<Config>,
    presence: &Presence,
    req: Request,
    request_id: String,
) -> Response {
    let started = p.now_ms();
    let ctx = Ctx {
        p,
        cfg,
        presence,
        request_id,
        notes: Default::default(),
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
    let mut line = crate::json::object!({"method": req.method.as_str(), "path": req.path(), "status": resp.status,
               "ms": p.now_ms().saturating_sub(started)});
    if let Some(m) = line.as_object_mut() {
        m.extend(ctx.notes.take());
    }
    ctx.log(level, "request", line);
    resp
}

/// Answers a request refused before it could be read (e.g. a body over the size limit).
pub fn reject<P: Platform>(p: &P, e: &Error, request_id: String) -> Response {
    let unloaded: Result<Config> = Err(Error::Internal("configuration not loaded".into()));
    let presence = Presence::default();
    let ctx = Ctx {
        p,
        cfg: &unloaded,
        presence: &presence,
        request_id,
        notes: Default::default(),
    };
    let mut resp = error_response(&ctx, e);
    resp.headers.set("x-request-id", ctx.request_id.clone());
    ctx.log(
        Level::Info,
        "request refused",
        crate::json::object!({"status": resp.status, "code": e.code()}),
    );
    resp
}

/// Maps an error to its JSON response, logging server-side ones with their message.
pub fn error_response<P: Platform>(ctx: &Ctx<'_, P>, e: &Error) -> Response {
    if e.is_server_side() {
        ctx.log(
            Level::Error,
            "error",
            crate::json::object!({"code": e.code(), "message": e.to_string()}),
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
        Endpoint::OAuthStart => oauth::start(ctx, req).await,
        Endpoint::OAuthCallback => oauth::callback(ctx, req).await,
        Endpoint::ListAccounts => crate::accounts::routes::list_accounts(ctx, req).await,
        Endpoint::DeleteAccount => crate::accounts::routes::delete_account(ctx, req, param()).await,
        Endpoint::ListConversations => crate::inbox::routes::list_conversations(ctx, req).await,
        Endpoint::ListMessages => crate::inbox::routes::list_messages(ctx, req, param()).await,
        Endpoint::MessageMedia => {
            let message = params.get(1).map(String::as_str).unwrap_or_default();
            crate::messages::listings::message_media(ctx, req, param(), message).await
        }
        Endpoint::GetHandoff => crate::messages::handoff::handoff(ctx, req, param(), false).await,
        Endpoint::SetHandoff => crate::messages::handoff::handoff(ctx, req, param(), true).await,
        Endpoint::WebhookReceive => crate::webhooks::receive::receive(ctx, req).await,
        Endpoint::WebhookChallenge => Ok(crate::webhooks::receive::challenge(req)),
        Endpoint::GetRules => crate::rules::routes::get_rules(ctx, req).await,
        Endpoint::PutRules => crate::rules::routes::put_rules(ctx, req).await,
        Endpoint::DeleteRules => crate::rules::routes::delete_rules(ctx, req).await,
        Endpoint::TestRules => crate::rules::dry_run::test_rules(ctx, req).await,
        Endpoint::ListFailedEvents => crate::webhooks::failures::list_failed(ctx, req).await,
        Endpoint::ReplayEvent => crate::webhooks::failures::replay_route(ctx, req).await,
        Endpoint::SendMessage => crate::messages::send::send_message(ctx, req).await,
        Endpoint::PutSubscription => {
            crate::webhooks::subscription::put_subscription(ctx, req).await
        }
        Endpoint::GetSubscription => {
            crate::webhooks::subscription::get_subscription(ctx, req).await
        }
        Endpoint::DeleteSubscription => {
            crate::webhooks::subscription::delete_subscription(ctx, req).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::ROUTES;
    use crate::http::{Headers, Method};
    use crate::ports::Clock;
    use crate::testutil::{block_on, Fake};
    use serde_json::json;
    use serde_json::Value;

    const ADMIN: &str = "0123456789abcdef0123";

    fn platform() -> (Fake, Result<Config>) {
        let cfg = crate::config::load(|k| crate::testutil::fixtures::full().get(k).cloned());
        let mut f = Fake::new(1_720_000_000);
        f.cfg = cfg.as_ref().ok().cloned();
        (f, cfg)
    }

    fn req(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
        Request {
            method,
            url: crate::weburl::Url::parse(url).unwrap(),
            headers: headers
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect::<Headers>(),
            body: body.to_vec(),
        }
    }

    fn call(f: &Fake, cfg: &Result<Config>, r: Request) -> Response {
        block_on(handle(f, cfg, &Presence::default(), r))
    }

    fn envelope(data: Value) -> Response {
        Response::json(
            200,
            &json!({"code": 0, "message": "OK", "request_id": "r", "data": data}),
        )
    }

    #[test]
    fn failed_events_are_listed_without_the_event() {
        use crate::ports::{Bucket, Store};
        let (f, cfg) = platform();
        let key = format!(
            "{}f1",
            crate::webhooks::pipeline::failures_prefix(Some("biz"))
        );
        let record = r#"{"id":"f1","account_id":"biz","event_key":"m:1","stage":"forward",
            "url":"https://x.example/","code":"c","message":"m","attempts":3,"failed_at":9,
            "event":"{\"secret\":1}","zeta":[1]}"#;
        block_on(f.put(Bucket::State, &key, record, None)).unwrap();
        let r = call(
            &f,
            &cfg,
            req(
                Method::Get,
                "https://w.example/v1/events/failed",
                &[("authorization", &format!("Bearer {ADMIN}"))],
                b"",
            ),
        );
        assert_eq!(r.status, 200);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let mut want: Value = serde_json::from_str(record).unwrap();
        want.as_object_mut().unwrap().remove("event");
        assert_eq!(body["failures"], json!([want]));
    }

    #[test]
    fn oauth_flow_stores_an_encrypted_account_and_state_is_single_use() {
        let (f, cfg) = platform();
        let start = call(
            &f,
            &cfg,
            req(Method::Get, "https://w.example/oauth/start", &[], b""),
        );
        assert_eq!(start.status, 302);
        let loc = crate::weburl::Url::parse(start.headers.get("location").unwrap()).unwrap();
        let state = loc
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        f.answer(envelope(
            json!({"access_token": "act.NATIVE", "refresh_token": "rft.NATIVE",
            "expires_in": 86400, "refresh_token_expires_in": 31536000, "open_id": "biz-9",
            "scope": "user.info.basic"}),
        ));
        f.answer(envelope(
            json!({"username": "acme.store", "display_name": "Acme Store", "profile_image": "https://p16.tiktokcdn.com/a.jpeg"}),
        ));
        // The nonce cookie binds the flow to this browser; nothing was written to KV.
        let set_cookie = start.headers.get("set-cookie").unwrap().to_string();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("Secure"));
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        assert!(block_on(crate::ports::Store::list(
            &f,
            crate::ports::Bucket::State,
            "",
            None,
            1000
        ))
        .unwrap()
        .keys
        .is_empty());
        let cb = format!("https://w.example/oauth/callback/?code=a%2Ab&state={state}");
        let other = call(&f, &cfg, req(Method::Get, &cb, &[], b""));
        assert!(String::from_utf8_lossy(&other.body).contains("state_other_browser"));
        let page = call(&f, &cfg, req(Method::Get, &cb, &[("cookie", &cookie)], b""));
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let sent: Value = serde_json::from_slice(f.sent()[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(sent["auth_code"], "a*b");
        assert_eq!(sent["redirect_uri"], "https://w.example/oauth/callback/");
        assert!(f.sent()[1].url.contains("/business/get/?business_id=biz-9"));
        assert_eq!(f.sent()[1].headers.get("access-token"), Some("act.NATIVE"));
        let raw = f.raw(crate::ports::Bucket::Tokens, "acct:biz-9").unwrap();
        assert!(!raw.contains("NATIVE"), "tokens sealed at rest");
        assert!(raw.contains("\"display_name\":\"Acme Store\"") && raw.contains("acme.store"));
        let again = call(&f, &cfg, req(Method::Get, &cb, &[("cookie", &cookie)], b""));
        assert_eq!(again.status, 400);
        assert!(String::from_utf8_lossy(&again.body).contains("already used"));
        assert_eq!(f.sent().len(), 2, "no second exchange");
        let logs = format!("{:?}", f.logs.borrow());
        assert!(
            !logs.contains("NATIVE") && !logs.contains(&state),
            "no token or state in logs"
        );
    }

    #[test]
    fn webhook_is_verified_accepted_once_and_answered_after_the_response() {
        let (f, cfg) = platform();
        let acct = crate::accounts::vault::Account::from_grant(
            "biz",
            &crate::testutil::fixtures::grant("act.x", "rft.x", 86_400, 999_999),
            f.now_secs(),
            &cfg.as_ref().unwrap().keyring,
            &f,
        );
        block_on(crate::accounts::vault::Vault::new(&f, &cfg.as_ref().unwrap().keyring).put(&acct))
            .unwrap();
        let rules =
            r#"{"rules":[{"id":"p","match":"contains","keywords":["price"],"text":"Prices!"}]}"#;
        let r = call(
            &f,
            &cfg,
            req(
                Method::Put,
                "https://w/v1/rules",
                &[("authorization", &format!("Bearer {ADMIN}"))],
                rules.as_bytes(),
            ),
        );
        assert_eq!(r.status, 200);
        let body = json!({"event": "im_receive_msg", "user_openid": "biz", "content":
            json!({"conversation_id": "c", "message_id": "m1", "type": "text", "text": {"body": "price?"}}).to_string()}).to_string();
        let now = f.now_secs();
        let sig = format!(
            "t={now},s={}",
            hex::encode(crate::webhooks::verify::sign(
                b"cs-very-secret",
                now,
                body.as_bytes()
            ))
        );
        let hook = |sig: &str| {
            req(
                Method::Post,
                "https://w/webhooks/tiktok",
                &[("tiktok-signature", sig)],
                body.as_bytes(),
            )
        };
        let bad = call(&f, &cfg, hook("t=1,s=00"));
        assert_eq!((bad.status, block_on(f.run_later())), (401, 0));
        let ok = call(&f, &cfg, hook(&sig));
        assert_eq!(ok.status, 200);
        assert!(f.sent().is_empty(), "nothing sent before the response");
        f.answer(envelope(json!({"message_id": "out-1", "create_time": 1})));
        assert_eq!(
            block_on(f.run_later()),
            1,
            "the actor processes it after replying"
        );
        let dup = call(&f, &cfg, hook(&sig));
        assert_eq!((dup.status, block_on(f.run_later())), (200, 0));
        let sent = f.sent();
        assert_eq!(sent.len(), 1);
        let b: Value = serde_json::from_slice(sent[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(b["text"]["body"], "Prices!");
        assert_eq!(sent[0].headers.get("access-token"), Some("act.x"));
    }

    #[test]
    fn every_answer_has_a_request_id_and_one_log_line_without_query() {
        let (f, cfg) = platform();
        let r = call(
            &f,
            &cfg,
            req(Method::Get, "https://w/nope?code=SECRET", &[], b""),
        );
        assert_eq!(r.status, 404);
        let rid = r.headers.get("x-request-id").unwrap().to_string();
        let logs = f.logs.borrow();
        let (_, msg, fields) = logs.last().unwrap();
        assert_eq!(msg, "request");
        assert_eq!(fields["request_id"], rid.as_str());
        assert!(!fields.to_string().contains("SECRET"));
        drop(logs);
        let r = call(
            &f,
            &cfg,
            req(
                Method::Head,
                "https://w/health",
                &[("cf-ray", "abc-AMS")],
                b"",
            ),
        );
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(r.headers.get("x-request-id"), Some("abc-AMS"));
    }

    /// The OpenAPI 3.1 description of every route. It is a static asset (`public/`), served by
    /// Workers static assets before a request reaches this code.
    pub const OPENAPI: &str = include_str!("../public/openapi.json");

    /// Paths served from `public/` by Workers static assets, documented with the routes.
    const STATIC_PATHS: &[&str] = &["/admin", "/admin/{asset}", "/openapi.json"];

    #[test]
    fn every_static_file_is_under_a_documented_static_path() {
        let public = concat!(env!("CARGO_MANIFEST_DIR"), "/public");
        let mut files = vec![];
        let mut dirs = vec![std::path::PathBuf::from(public)];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                match e.file_type().unwrap().is_dir() {
                    true => dirs.push(e.path()),
                    false => {
                        files.push(e.path().strip_prefix(public).unwrap().display().to_string())
                    }
                }
            }
        }
        files.sort();
        // `_headers` is the asset server's configuration, never served.
        assert_eq!(
            files,
            [
                "_headers",
                "admin/app.css",
                "admin/app.js",
                "admin/index.html",
                "openapi.json"
            ]
        );
        for f in files.iter().filter(|f| *f != "_headers") {
            let served = match f.strip_suffix("/index.html") {
                Some(dir) => format!("/{dir}"),
                None if f.starts_with("admin/") => "/admin/{asset}".to_string(),
                None => format!("/{f}"),
            };
            assert!(STATIC_PATHS.contains(&served.as_str()), "{f}");
        }
    }

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
        for p in STATIC_PATHS {
            assert!(paths.get(*p).is_some(), "{p} undocumented");
            assert!(ROUTES.iter().all(|r| r.pattern != *p), "{p} is static");
        }
        assert_eq!(
            paths.len(),
            ROUTES.len() + STATIC_PATHS.len(),
            "documented paths nothing serves"
        );
    }
}
