//! The edge: Workers entry points and the adapters binding the core's ports to the runtime.

mod actor;
mod platform;

use crate::app;
use crate::config;
use crate::config::Presence;
use crate::coordinator::protocol::{ActorRequest, Call, Reply};
use crate::error::{Error, Result};
use crate::http::{Method as CoreMethod, Request as CoreRequest, Response as CoreResponse};
use crate::ports::{Accounts, Level, Log};
use crate::secret::Secret;
use platform::{runtime_ports, Kv};
use worker::{
    event, Context, Env, ObjectNamespace, Request, Response, ScheduleContext, ScheduledEvent,
};

/// Largest request body read at all; routes set smaller limits of their own.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Bindings `/health` reports on.
const KV_BINDINGS: &[&str] = &["TOKENS", "STATE"];
const ACTOR_BINDING: &str = "ACCOUNTS";

/// How far ahead the cron refreshes, beyond the margin: two cron intervals (10 min each).
const CRON_LOOKAHEAD_SECS: u64 = 1_200;

/// A setting's value: secrets and vars both arrive as strings on `Env`.
pub(crate) fn lookup(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The runtime's WHATWG URL parser (`new URL(input, base)`), the one `fetch` uses: a thrown
/// `TypeError` is a parse error. Two crossings: the constructor and `href`.
fn parse_url(input: &str, base: Option<&str>) -> Option<String> {
    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = URL)]
        type JsUrl;
        #[wasm_bindgen(constructor, js_class = "URL", catch)]
        fn new(input: &str, base: Option<&str>) -> Result<JsUrl, wasm_bindgen::JsValue>;
        #[wasm_bindgen(method, getter)]
        fn href(this: &JsUrl) -> String;
    }
    JsUrl::new(input, base).ok().map(|u| u.href())
}

/// Gives the core its URL parser; every entry point calls it first (cheap after the first).
pub(crate) fn install_url_parser() {
    crate::weburl::install(parse_url);
}

/// A JSON error response (for the actor's internal answers).
pub(crate) fn error_json(e: &Error, request_id: &str) -> worker::Result<Response> {
    Ok(Response::from_json(&e.body(request_id))?.with_status(e.status()))
}

fn presence(env: &Env) -> Presence {
    let mut bindings: Vec<(&'static str, bool)> = KV_BINDINGS
        .iter()
        .map(|b| (*b, platform::kv_binding(env, b).is_some()))
        .collect();
    bindings.push((ACTOR_BINDING, env.durable_object(ACTOR_BINDING).is_ok()));
    Presence {
        bindings,
        settings: Presence::settings_from(|n| lookup(env, n).is_some()),
    }
}

/// The ports for a request: KV, fetch, and the account actors as the [`Accounts`] coordinator.
pub struct WorkerPlatform {
    kv: Kv,
    actors: Option<ObjectNamespace>,
    /// Set once the request id is known; every log line and actor call carries it.
    request_id: std::cell::RefCell<String>,
    /// See [`Settings::actor_calls_over_fetch`].
    over_fetch: bool,
}

runtime_ports!(WorkerPlatform);

impl WorkerPlatform {
    fn new(env: &Env, settings: &Settings) -> Self {
        WorkerPlatform {
            kv: Kv::new(env),
            actors: env.durable_object(ACTOR_BINDING).ok(),
            request_id: std::cell::RefCell::new(String::new()),
            over_fetch: settings.actor_calls_over_fetch,
        }
    }

    /// Sends `call` to the actor that serves it, over Durable Object RPC (see
    /// `AccountActor::rpc_call`), or over `fetch` to an actor still running a version from
    /// before RPC (during a deployment, objects restart on the new version at their own pace).
    async fn actor(&self, call: Call) -> Result<Reply> {
        let ns = self.actors.as_ref().ok_or_else(|| Error::Config {
            problems: vec![format!("missing Durable Object binding {ACTOR_BINDING}")],
        })?;
        let internal = |e: String| Error::Internal(format!("account actor: {e}"));
        let stub: ActorStub = ns
            .get_by_name(&format!("account:{}", call.object()))
            .map_err(|e| internal(e.to_string()))?
            .into_rpc();
        let body = ActorRequest {
            request_id: Some(self.request_id.borrow().clone()),
            call,
        };
        let body = serde_json::to_string(&body)
            .map_err(|e| Error::Internal(format!("account actor call: {e}")))?;
        let answer = match self.over_fetch {
            true => actor_over_fetch(&stub, body).await?,
            false => match actor_over_rpc(&stub, &body).await {
                Ok(answer) => answer,
                // Refused before the actor ran anything (its class is not a
                // `DurableObject` yet): the same call as an older Worker made it.
                Err(e) if e.contains("does not support RPC") => {
                    self.log(
                        Level::Info,
                        "account actor runs an older version; called over fetch",
                        crate::json::object!({}),
                    );
                    actor_over_fetch(&stub, body).await?
                }
                Err(e) => return Err(internal(e)),
            },
        };
        crate::coordinator::answer::decode(&answer)
    }
}

/// One call over RPC: the answer as [`crate::coordinator::answer`] encodes it, or the
/// rejection's message.
async fn actor_over_rpc(stub: &ActorStub, body: &str) -> std::result::Result<String, String> {
    let sent = stub
        .call(body)
        .map_err(|e| worker::Error::from(e).to_string())?;
    worker::wasm_bindgen_futures::JsFuture::from(sent)
        .await
        .map_err(|e| worker::Error::from(e).to_string())?
        .as_string()
        .ok_or_else(|| "the answer is not a string".to_string())
}

/// One call over `fetch` (the actor's route for Workers from before RPC), its answer in the
/// same encoding.
async fn actor_over_fetch(stub: &ActorStub, body: String) -> Result<String> {
    let internal = |e: String| Error::Internal(format!("account actor: {e}"));
    let init = worker::web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&wasm_bindgen::JsValue::from_str(&body));
    let sent = stub
        .fetch("https://actor/call", &init)
        .map_err(|e| internal(worker::Error::from(e).to_string()))?;
    let resp: worker::web_sys::Response = worker::wasm_bindgen_futures::JsFuture::from(sent)
        .await
        .map_err(|e| internal(worker::Error::from(e).to_string()))?
        .into();
    let status = resp.status();
    let bytes = platform::whole_body(resp).await.map_err(internal)?;
    Ok(format!("{status:03}{}", String::from_utf8_lossy(&bytes)))
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A stub of the account actor, as RPC sees it (`src/edge/entry.js`).
    type ActorStub;
    /// `AccountActor::rpc_call`. RPC answers with a promise-like object that
    /// `JsFuture` awaits through its `then`.
    #[wasm_bindgen(method, catch, js_name = call)]
    fn call(
        this: &ActorStub,
        request: &str,
    ) -> std::result::Result<worker::js_sys::Promise, wasm_bindgen::JsValue>;
    /// The actor's `fetch` route.
    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch(
        this: &ActorStub,
        url: &str,
        init: &worker::web_sys::RequestInit,
    ) -> std::result::Result<worker::js_sys::Promise, wasm_bindgen::JsValue>;
}

/// Panics after an await, so in a task woken from a microtask: the path a panic inside
/// processing takes (through `entry.js`'s `queueMicrotask`).
async fn injected_panic() {
    let ready = worker::js_sys::Promise::resolve(&wasm_bindgen::JsValue::UNDEFINED);
    let _ = worker::wasm_bindgen_futures::JsFuture::from(ready).await;
    panic!("injected by FAULT_PANIC_PATH");
}

impl crate::ports::Store for WorkerPlatform {
    async fn get(&self, b: crate::ports::Bucket, k: &str) -> Result<Option<String>> {
        self.kv.get(b, k).await
    }
    async fn put(&self, b: crate::ports::Bucket, k: &str, v: &str, ttl: Option<u64>) -> Result<()> {
        self.kv.put(b, k, v, ttl).await
    }
    async fn delete(&self, b: crate::ports::Bucket, k: &str) -> Result<()> {
        self.kv.delete(b, k).await
    }
    async fn put_listed(&self, b: crate::ports::Bucket, k: &str, v: &str, m: &str) -> Result<()> {
        self.kv.put_listed(b, k, v, m).await
    }
    async fn list(
        &self,
        b: crate::ports::Bucket,
        prefix: &str,
        c: Option<String>,
        limit: usize,
    ) -> Result<crate::ports::KeyPage> {
        self.kv.list(b, prefix, c, limit).await
    }
}

/// How long a Worker isolate uses an access token without asking the actor again. Only the
/// actor hears of a disconnect or a dead grant (in this isolate, `forget` clears it at once):
/// other isolates stop using the token within this time, even if TikTok still accepts it.
const TOKEN_MEMORY_SECS: u64 = 60;

thread_local! {
    /// Access tokens this isolate was handed by the actors (see [`platform::TokenMemory`]).
    static TOKENS: std::rc::Rc<platform::TokenMemory> = std::rc::Rc::default();
}

impl Accounts for WorkerPlatform {
    async fn call(&self, call: Call) -> Result<Reply> {
        self.actor(call).await
    }

    /// From this isolate's memory while the actor allows, so a send costs no actor round trip.
    async fn access_token(&self, account: &str, rejected: Option<&str>) -> Result<Secret> {
        let memory = TOKENS.with(|t| t.clone());
        platform::remembered_token(&memory, account, rejected, TOKEN_MEMORY_SECS, |c| {
            self.actor(c)
        })
        .await
    }

    async fn forget(&self, account: &str) -> Result<()> {
        TOKENS.with(|t| t.forget(account));
        let account = account.to_string();
        self.actor(Call::Forget { account }).await.map(drop)
    }
}

/// What the Worker reads from its `Env` once per isolate: the settings and which bindings and
/// settings are present. An isolate serves one deployment, whose settings cannot change under
/// it (a new secret or var is a new deployment, hence new isolates).
struct Settings {
    cfg: crate::error::Result<config::Config>,
    presence: Presence,
    /// `FAULT_ACTOR_CALLS_OVER_FETCH` (tests only): every actor call goes over `fetch`, as
    /// from a Worker of the version before RPC, so that route stays tested.
    actor_calls_over_fetch: bool,
    /// `FAULT_PANIC_PATH` (tests only): a request to exactly this path panics, as a bug would,
    /// so the e2e suite sees the runtime start a fresh instance after it.
    panic_path: Option<String>,
}

thread_local! {
    static SETTINGS: std::cell::OnceCell<std::rc::Rc<Settings>> = const { std::cell::OnceCell::new() };
}

fn settings(env: &Env) -> std::rc::Rc<Settings> {
    SETTINGS.with(|s| {
        s.get_or_init(|| {
            let cfg = config::load(|k| lookup(env, k));
            if let Ok(c) = &cfg {
                platform::set_log_level(c.log_level);
            }
            std::rc::Rc::new(Settings {
                cfg,
                presence: presence(env),
                actor_calls_over_fetch: lookup(env, "FAULT_ACTOR_CALLS_OVER_FETCH").is_some(),
                panic_path: lookup(env, "FAULT_PANIC_PATH"),
            })
        })
        .clone()
    })
}

#[event(fetch)]
async fn fetch(
    req: worker::web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<worker::web_sys::Response> {
    // The runtime's request as is: `worker::Request` would read `request.cf` (an object
    // built per read) and parse the URL, which nothing here needs.
    console_error_panic_hook::set_once();
    install_url_parser();
    let settings = settings(&env);
    let platform = WorkerPlatform::new(&env, &settings);
    let cf_ray = req.headers().get("cf-ray").ok().flatten();
    let resp = match into_core(req).await {
        Ok(r) => {
            if settings.panic_path.as_deref() == Some(r.url.path()) {
                injected_panic().await;
            }
            let id = app::request_id(&platform, &r);
            platform.request_id.replace(id.clone());
            app::handle_with_id(&platform, &settings.cfg, &settings.presence, r, id).await
        }
        Err(e) => {
            let id = cf_ray.unwrap_or_else(|| crate::ports::Rng::hex(&platform, 8));
            platform.request_id.replace(id.clone());
            app::reject(&platform, &e, id)
        }
    };
    into_worker(resp)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    install_url_parser();
    let settings = settings(&env);
    let platform = WorkerPlatform::new(&env, &settings);
    let id = format!("cron-{}", crate::ports::Rng::hex(&platform, 8));
    platform.request_id.replace(id);
    let cfg = match &settings.cfg {
        Ok(c) => c,
        Err(e) => {
            platform.log(
                Level::Error,
                "cron skipped: configuration",
                crate::json::object!({"message": e.to_string()}),
            );
            return;
        }
    };
    let window = cfg.refresh_margin_secs + CRON_LOOKAHEAD_SECS;
    match crate::accounts::cron::refresh_due(&platform, &cfg.keyring, window).await {
        Ok(report) => platform.log(
            Level::Info,
            "cron token refresh",
            crate::json::object!({"cron": event.cron(), "report": report}),
        ),
        Err(e) => platform.log(
            Level::Error,
            "cron token refresh failed",
            crate::json::object!({"code": e.code(), "message": e.to_string()}),
        ),
    }
}

/// The largest body a path may send: TikTok's deliveries and sends are small, so their caps
/// are tight; everything else shares [`MAX_BODY`].
fn body_limit(path: &str) -> usize {
    match path {
        "/webhooks/tiktok" => crate::webhooks::verify::MAX_BODY,
        "/v1/messages" => crate::messages::send::MAX_SEND_BODY,
        _ => MAX_BODY,
    }
}

/// Reads the request into the core's type. The body is refused unread when its declared length
/// is too large, and read chunk by chunk up to the path's cap otherwise (a chunked body without
/// `content-length` cannot make the isolate buffer more than the cap).
async fn into_core(req: worker::web_sys::Request) -> std::result::Result<CoreRequest, Error> {
    // Already serialized by the runtime, but parsed by the same parser as every other URL: a
    // shortcut would have to match it exactly.
    let url =
        crate::weburl::Url::parse(&req.url()).map_err(|e| Error::invalid("url", e.to_string()))?;
    let headers = platform::core_headers(&req.headers());
    let method = CoreMethod::parse(&req.method());
    let limit = body_limit(url.path());
    let declared = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if declared > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    let unreadable = |_| Error::invalid("body", "the request body could not be read");
    let body = if declared > 0 {
        // A declared length is the body's length (the runtime holds the sender to it): one
        // read, where the stream costs a promise and a reader per chunk.
        platform::array_buffer(req.array_buffer())
            .await
            .map_err(|_| unreadable(()))?
    } else if req.body().is_none() {
        // No body at all (GET, HEAD).
        Vec::new()
    } else {
        let stream = Request::from(req).stream().map_err(|_| unreadable(()))?;
        platform::read_stream_capped(stream, limit)
            .await
            .map_err(|e| match e {
                crate::ports::TransportError::TooLarge => Error::PayloadTooLarge { limit },
                _ => unreadable(()),
            })?
    };
    Ok(CoreRequest {
        method,
        url,
        headers,
        body,
    })
}

/// The runtime's response, built directly: `worker::Response` would make a `Headers` of its
/// own, and ours another, before the runtime copies them into the response's (see
/// [`platform::header_pairs`]).
fn into_worker(resp: CoreResponse) -> worker::Result<worker::web_sys::Response> {
    let init = worker::web_sys::ResponseInit::new();
    init.set_status(resp.status);
    init.set_headers(&platform::header_pairs(&resp.headers));
    let body = (!resp.body.is_empty()).then(|| worker::js_sys::Uint8Array::from(&resp.body[..]));
    Ok(
        worker::web_sys::Response::new_with_opt_buffer_source_and_init(
            body.as_ref().map(|b| b.as_ref()),
            &init,
        )?,
    )
}
