//! The ports implemented with the Workers runtime: KV, `fetch`, `Date.now`,
//! `crypto.getRandomValues` and `console.log`.

use crate::error::{Error, Result};
use crate::http::{
    Headers as CoreHeaders, Method as CoreMethod, Outbound, Response as CoreResponse,
};
use crate::ports::{Bucket, KeyPage, Level, Store, TransportError};
use futures_util::future::{select, Either};
use serde_json::Value;
use std::time::Duration;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{self, RequestRedirect};
use worker::{Delay, Env, Method};

/// KV's smallest accepted expiry.
const KV_MIN_TTL: u64 = 60;

/// The two KV namespaces (either may be unbound: reported by `/health`, an error on use),
/// looked up on first use: most requests and actor calls touch no KV at all.
///
/// Called through `js_sys` rather than `worker::kv`, whose option objects and list answers
/// go through serde_wasm_bindgen: its serialiser and deserialiser (with their derive
/// instances) weighed several KiB in the `.wasm` for a handful of plain properties.
pub struct Kv {
    env: Env,
    tokens: std::cell::OnceCell<Option<JsValue>>,
    state: std::cell::OnceCell<Option<JsValue>>,
    /// `FAULT_FAIL_KV_PUTS` (`<key prefix>*<n>`), for the fault tests only (also applied to
    /// the actors' own writes of several records at once).
    fail_puts: std::cell::OnceCell<Option<(String, u32)>>,
}

/// Writes failed so far by `FAULT_FAIL_KV_PUTS`, per isolate.
static FAILED_PUTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether `FAULT_FAIL_KV_PUTS` (`fail`) asks this write of `key` to fail.
fn injected(fail: &Option<(String, u32)>, key: &str) -> bool {
    use std::sync::atomic::Ordering;
    match fail {
        Some((prefix, n)) if key.starts_with(prefix.as_str()) => FAILED_PUTS
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < *n).then_some(c + 1)
            })
            .is_ok(),
        _ => false,
    }
}

impl Kv {
    pub fn new(env: &Env) -> Self {
        Kv {
            env: env.clone(),
            tokens: Default::default(),
            state: Default::default(),
            fail_puts: Default::default(),
        }
    }

    fn fail_puts(&self) -> &Option<(String, u32)> {
        self.fail_puts.get_or_init(|| {
            self.env
                .var("FAULT_FAIL_KV_PUTS")
                .ok()
                .map(|v| v.to_string())
                .and_then(|v| {
                    let (prefix, n) = v.rsplit_once('*')?;
                    Some((prefix.to_string(), n.parse().ok()?))
                })
        })
    }

    /// Whether this write is one the fault tests asked to fail.
    fn injected_failure(&self, key: &str) -> bool {
        injected(self.fail_puts(), key)
    }

    /// The same test for writes made where `self` cannot go (an actor's storage transaction).
    pub fn injected_failures(&self) -> impl Fn(&str) -> bool + 'static {
        let fail = self.fail_puts().clone();
        move |key| injected(&fail, key)
    }

    /// The namespace object (see [`kv_binding`]), looked up once.
    fn kv(&self, bucket: Bucket) -> Result<&JsValue> {
        let (kv, name) = match bucket {
            Bucket::Tokens => (&self.tokens, "TOKENS"),
            Bucket::State => (&self.state, "STATE"),
        };
        kv.get_or_init(|| kv_binding(&self.env, name))
            .as_ref()
            .ok_or_else(|| Error::Config {
                problems: vec![format!("missing KV binding {name}")],
            })
    }

    /// Calls `method` of the namespace with `args` and awaits its promise; any failure is
    /// `KV <op>`.
    async fn call(
        &self,
        bucket: Bucket,
        method: &str,
        op: &str,
        args: &[&JsValue],
    ) -> Result<JsValue> {
        use worker::js_sys::{Array, Function, Reflect};
        use worker::wasm_bindgen::JsCast;
        let kv = self.kv(bucket)?;
        let failed = || Error::Storage(format!("KV {op}"));
        let f: Function = prop(kv, method)
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(failed)?;
        let args: Array = args.iter().copied().collect();
        let promise = Reflect::apply(&f, kv, &args).map_err(|_| failed())?;
        worker::wasm_bindgen_futures::JsFuture::from(worker::js_sys::Promise::from(promise))
            .await
            .map_err(|_| failed())
    }

    /// `put(key, value, options)`, `options` holding the TTL and the listing metadata if any.
    async fn put_with(
        &self,
        bucket: Bucket,
        key: &str,
        value: &str,
        ttl: Option<u64>,
        meta: Option<JsValue>,
    ) -> Result<()> {
        let opts = worker::js_sys::Object::new();
        if let Some(t) = ttl {
            set(
                &opts,
                "expirationTtl",
                &JsValue::from_f64(t.max(KV_MIN_TTL) as f64),
            );
        }
        if let Some(m) = meta {
            set(&opts, "metadata", &m);
        }
        self.call(bucket, "put", "put", &[&key.into(), &value.into(), &opts])
            .await
            .map(drop)
    }
}

/// The KV namespace bound as `name`. One that is absent or not an object counts as unbound
/// (as with `Env::kv`, which fails on both).
pub fn kv_binding(env: &Env, name: &str) -> Option<JsValue> {
    prop(env, name).filter(|b| b.is_object())
}

/// `o[name]`, `None` when reading it throws.
fn prop(o: &JsValue, name: &str) -> Option<JsValue> {
    worker::js_sys::Reflect::get(o, &JsValue::from_str(name)).ok()
}

/// `o[name] = value` on a fresh plain object (which cannot throw).
fn set(o: &worker::js_sys::Object, name: &str, value: &JsValue) {
    let _ = worker::js_sys::Reflect::set(o, &JsValue::from_str(name), value);
}

impl Store for Kv {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<String>> {
        let opts = worker::js_sys::Object::new();
        set(&opts, "type", &JsValue::from_str("text"));
        let value = self
            .call(bucket, "get", "get", &[&key.into(), &opts])
            .await?;
        Ok(value.as_string())
    }

    async fn put(&self, bucket: Bucket, key: &str, value: &str, ttl: Option<u64>) -> Result<()> {
        if self.injected_failure(key) {
            return Err(Error::Storage(
                "KV put (injected by FAULT_FAIL_KV_PUTS)".into(),
            ));
        }
        self.put_with(bucket, key, value, ttl, None).await
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<()> {
        self.call(bucket, "delete", "delete", &[&key.into()])
            .await
            .map(drop)
    }

    async fn put_listed(&self, bucket: Bucket, key: &str, value: &str, meta: &str) -> Result<()> {
        if self.injected_failure(key) {
            return Err(Error::Storage(
                "KV put (injected by FAULT_FAIL_KV_PUTS)".into(),
            ));
        }
        let meta = worker::js_sys::JSON::parse(meta)
            .map_err(|_| Error::Internal("KV metadata is not JSON".into()))?;
        self.put_with(bucket, key, value, None, Some(meta)).await
    }

    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<KeyPage> {
        use worker::js_sys::{Array, JSON};
        use worker::wasm_bindgen::JsCast;
        let opts = worker::js_sys::Object::new();
        let limit = limit.clamp(1, crate::ports::MAX_PAGE);
        set(&opts, "limit", &JsValue::from_f64(limit as f64));
        if let Some(c) = cursor {
            set(&opts, "cursor", &JsValue::from(c));
        }
        set(&opts, "prefix", &JsValue::from_str(prefix));
        let page = self.call(bucket, "list", "list", &[&opts]).await?;
        let malformed = || Error::Storage("KV list".into());
        let complete = prop(&page, "list_complete")
            .and_then(|c| c.as_bool())
            .ok_or_else(malformed)?;
        let keys = prop(&page, "keys")
            .filter(Array::is_array)
            .map(JsCast::unchecked_into::<Array>)
            .ok_or_else(malformed)?;
        let mut out = KeyPage {
            keys: Vec::new(),
            metadata: Vec::new(),
            cursor: None,
        };
        for k in keys.iter() {
            out.keys.push(
                prop(&k, "name")
                    .and_then(|n| n.as_string())
                    .ok_or_else(malformed)?,
            );
            // Metadata as JSON text; absent (`undefined` or `null`) is none.
            let meta = prop(&k, "metadata").filter(|m| !m.is_undefined() && !m.is_null());
            out.metadata.push(
                meta.and_then(|m| JSON::stringify(&m).ok())
                    .and_then(|m| m.as_string()),
            );
        }
        if !complete {
            out.cursor = prop(&page, "cursor").and_then(|c| c.as_string());
        }
        Ok(out)
    }
}

fn method(m: CoreMethod) -> Method {
    match m {
        CoreMethod::Get => Method::Get,
        CoreMethod::Head => Method::Head,
        CoreMethod::Post => Method::Post,
        CoreMethod::Put => Method::Put,
        CoreMethod::Patch => Method::Patch,
        CoreMethod::Delete => Method::Delete,
        CoreMethod::Options | CoreMethod::Other => Method::Options,
    }
}

/// Headers as an array of `[name, value]` pairs, which the runtime takes wherever it takes a
/// `Headers`: building a `Headers` object first would make the runtime copy it into the
/// request's or response's own, and each one left behind is freed only by a full collection,
/// in the pause (its strings one by one). The pairs are made in JS from one string (one
/// crossing instead of four a header). Headers with a line feed, which that string cannot
/// carry, go pair by pair, and the runtime judges them as it did before.
pub fn header_pairs(headers: &CoreHeaders) -> worker::js_sys::Array {
    if let Some(text) = headers.to_lines() {
        return header_pairs_of(&text);
    }
    let pairs = worker::js_sys::Array::new();
    for (k, v) in headers.iter() {
        pairs.push(&worker::js_sys::Array::of2(
            &JsValue::from_str(k),
            &JsValue::from_str(v),
        ));
    }
    pairs
}

#[worker::wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function headerText(headers) {
  let text = "";
  headers.forEach((value, name) => {
    text += name + "\n" + value + "\n";
  });
  return text;
}

export function headerPairs(text) {
  const parts = text.split("\n");
  const pairs = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    pairs.push([parts[i], parts[i + 1]]);
  }
  return pairs;
}
"#)]
extern "C" {
    /// A `Headers` object's entries as one string, each name and value followed by a line
    /// feed ([`CoreHeaders::from_lines`]; the runtime's headers never hold one). `forEach`
    /// walks the runtime's own list: `entries()` makes an iterator object that holds a copy
    /// of every header until a full collection frees it, in its pause, and reading it from
    /// Rust crosses into JS five times a header.
    #[wasm_bindgen(js_name = headerText)]
    fn header_text(headers: &web_sys::Headers) -> String;
    /// The `[name, value]` pairs of a [`CoreHeaders::to_lines`] string.
    #[wasm_bindgen(js_name = headerPairs)]
    fn header_pairs_of(text: &str) -> worker::js_sys::Array;
}

/// The runtime's headers in the core's type.
pub fn core_headers(headers: &web_sys::Headers) -> CoreHeaders {
    CoreHeaders::from_lines(&header_text(headers))
}

#[worker::wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The global `fetch(url, init)`: one request object, where building a `Request` first
    /// and passing it made two (and two `Headers`).
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_with_init(
        url: &str,
        init: &web_sys::RequestInit,
    ) -> std::result::Result<worker::js_sys::Promise, JsValue>;
}

/// `fetch` with a deadline (the request is aborted when `timeout_ms` passes first) and an
/// optional body cap, enforced from `content-length` and while streaming, so an oversized
/// answer is never held in memory.
pub async fn fetch(out: Outbound) -> std::result::Result<CoreResponse, TransportError> {
    let unreachable = |e: worker::Error| TransportError::Unreachable(e.to_string());
    let init = web_sys::RequestInit::new();
    init.set_method(method(out.method).as_ref());
    init.set_headers(&header_pairs(&out.headers));
    if let Some(b) = &out.body {
        init.set_body(&worker::js_sys::Uint8Array::from(&b[..]));
    }
    // Redirects are never followed by the runtime: headers (tokens) would go along to
    // wherever they point. Callers that follow one check the next hop first.
    init.set_redirect(RequestRedirect::Manual);
    let controller = web_sys::AbortController::new()
        .map_err(|_| TransportError::Unreachable("AbortController".into()))?;
    init.set_signal(Some(&controller.signal()));
    let limit = out.max_body;
    let exchange = async {
        let sent = fetch_with_init(&out.url, &init).map_err(|e| {
            TransportError::Unreachable(
                e.as_string()
                    .unwrap_or_else(|| "invalid URL or options for Request".to_string()),
            )
        })?;
        let resp: web_sys::Response = worker::wasm_bindgen_futures::JsFuture::from(sent)
            .await
            .map_err(|e| unreachable(e.into()))?
            .into();
        // The runtime's response as is: `worker::Response` would take its body stream and
        // build a second response around it to read it (one more response, stream and
        // `Headers` per call, each freed only by a full collection, in its pause).
        let status = resp.status();
        let headers = core_headers(&resp.headers());
        let body = read_capped(resp, &headers, limit).await?;
        Ok::<_, TransportError>((status, headers, body))
    };
    let timer = Delay::from(Duration::from_millis(out.timeout_ms));
    let outcome = select(Box::pin(exchange), Box::pin(timer)).await;
    match outcome {
        Either::Left((Ok((status, headers, body)), _)) => Ok(CoreResponse {
            status,
            headers,
            body,
        }),
        Either::Left((Err(e), _)) => {
            controller.abort();
            Err(e)
        }
        Either::Right(_) => {
            controller.abort();
            Err(TransportError::Timeout)
        }
    }
}

/// Reads a response body, at most `limit` bytes of it when there is a limit. A body whose
/// length is declared and within the limit, and not compressed (the runtime would inflate
/// it), is read in one piece; any other is read chunk by chunk and cut off past the limit.
async fn read_capped(
    resp: web_sys::Response,
    headers: &CoreHeaders,
    limit: Option<usize>,
) -> std::result::Result<Vec<u8>, TransportError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let encoded = headers
        .get("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let whole = match (limit, declared) {
        (Some(l), Some(n)) if n > l => return Err(TransportError::TooLarge),
        (Some(_), Some(_)) => !encoded,
        (Some(_), None) => false,
        (None, _) => true,
    };
    if whole {
        return whole_body(resp).await.map_err(TransportError::Unreachable);
    }
    // A 204, 205 or 304 has no body, and so usually no length: there is nothing to read (the
    // stream below would not exist).
    if resp.body().is_none() {
        return Ok(Vec::new());
    }
    let stream = worker::Response::from(resp)
        .stream()
        .map_err(|e| TransportError::Unreachable(e.to_string()))?;
    read_stream_capped(stream, limit.unwrap_or(usize::MAX)).await
}

/// A body in one piece (`arrayBuffer()`): one promise, where reading the stream costs a
/// promise and a reader per chunk.
pub async fn whole_body(resp: worker::web_sys::Response) -> std::result::Result<Vec<u8>, String> {
    array_buffer(resp.array_buffer()).await
}

/// The bytes of an `arrayBuffer()` promise (a request's or a response's body in one piece).
pub async fn array_buffer(
    promise: std::result::Result<worker::js_sys::Promise, worker::wasm_bindgen::JsValue>,
) -> std::result::Result<Vec<u8>, String> {
    let unreadable = || "the body could not be read".to_string();
    let buf = worker::wasm_bindgen_futures::JsFuture::from(promise.map_err(|_| unreadable())?)
        .await
        .map_err(|e| e.as_string().unwrap_or_else(unreadable))?;
    Ok(worker::js_sys::Uint8Array::new(&buf).to_vec())
}

/// Reads a body stream chunk by chunk and stops at the first chunk past `limit`: memory stays
/// bounded whatever the sender declares (or does not declare, with chunked encoding).
pub async fn read_stream_capped(
    mut stream: worker::ByteStream,
    limit: usize,
) -> std::result::Result<Vec<u8>, TransportError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| TransportError::Unreachable(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(TransportError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Implements the runtime-only ports (clock, randomness, logs, fetch) for a platform type.
macro_rules! runtime_ports {
    ($t:ty) => {
        impl crate::ports::Clock for $t {
            fn now_ms(&self) -> u64 {
                crate::edge::platform::now_ms()
            }

            async fn sleep(&self, ms: u64) {
                worker::Delay::from(std::time::Duration::from_millis(ms)).await;
            }

            fn local_time(
                &self,
                zone: &crate::time::Zone,
                unix_secs: u64,
            ) -> Option<crate::time::LocalTime> {
                match zone {
                    crate::time::Zone::Fixed(off) => {
                        Some(crate::time::LocalTime::at_offset(unix_secs, *off))
                    }
                    crate::time::Zone::Named(name) => {
                        $crate::edge::platform::intl_local_time(name, unix_secs)
                    }
                }
            }

            fn zone_known(&self, name: &str) -> bool {
                $crate::edge::platform::intl_local_time(name, 0).is_some()
            }
        }

        impl crate::ports::Rng for $t {
            fn fill(&self, buf: &mut [u8]) {
                // Only fails without a crypto source, which the Workers runtime always has.
                if getrandom::getrandom(buf).is_err() {
                    panic!("crypto.getRandomValues unavailable");
                }
            }
        }

        impl crate::ports::Log for $t {
            /// Every line carries the request id of the work it belongs to.
            fn log(&self, level: crate::ports::Level, msg: &str, mut fields: serde_json::Value) {
                if let Some(m) = fields.as_object_mut() {
                    m.entry("request_id").or_insert_with(|| {
                        serde_json::Value::String(self.request_id.borrow().clone())
                    });
                }
                $crate::edge::platform::log_line(level, msg, fields);
            }
        }

        impl crate::ports::Transport for $t {
            async fn send(
                &self,
                out: crate::http::Outbound,
            ) -> std::result::Result<crate::http::Response, crate::ports::TransportError> {
                $crate::edge::platform::fetch(out).await
            }
        }
    };
}
pub(crate) use runtime_ports;

/// Weekday and minute in an IANA zone, from the runtime's `Intl` data; `None` for a zone it
/// does not know (the constructor's RangeError is caught, not thrown through Rust).
pub fn intl_local_time(zone: &str, unix_secs: u64) -> Option<crate::time::LocalTime> {
    use worker::js_sys::{Array, Date, Function, Object, Reflect};
    use worker::wasm_bindgen::{JsCast, JsValue};
    let get = |o: &JsValue, k: &str| Reflect::get(o, &JsValue::from_str(k)).ok();
    let intl = get(&worker::js_sys::global().into(), "Intl")?;
    let ctor: Function = get(&intl, "DateTimeFormat")?.dyn_into().ok()?;
    let opts = Object::new();
    for (k, v) in [
        ("timeZone", zone),
        ("weekday", "short"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("hourCycle", "h23"),
    ] {
        Reflect::set(&opts, &JsValue::from_str(k), &JsValue::from_str(v)).ok()?;
    }
    let dtf = Reflect::construct(&ctor, &Array::of2(&JsValue::from_str("en-US"), &opts)).ok()?;
    let format: Function = get(&dtf, "formatToParts")?.dyn_into().ok()?;
    let date = Date::new(&JsValue::from_f64(unix_secs as f64 * 1000.0));
    let parts: Array = format.call1(&dtf, &date).ok()?.dyn_into().ok()?;
    let (mut weekday, mut hour, mut minute) = (None, None, None);
    for part in parts.iter() {
        let kind = get(&part, "type")?.as_string()?;
        let value = get(&part, "value")?.as_string()?;
        match kind.as_str() {
            "weekday" => {
                weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                    .iter()
                    .position(|d| *d == value)
            }
            "hour" => hour = value.parse::<u16>().ok(),
            "minute" => minute = value.parse::<u16>().ok(),
            _ => {}
        }
    }
    Some(crate::time::LocalTime {
        weekday: weekday? as u8,
        minute: (hour? % 24) * 60 + minute?,
    })
}

/// Access tokens the actor handed out, kept until the time it said they may be used without
/// asking again (it refreshes them only after that). A token TikTok refuses is asked for again
/// with `rejected`, which bypasses and replaces this memory.
#[derive(Default)]
pub struct TokenMemory(std::cell::RefCell<std::collections::HashMap<String, (String, u64)>>);

impl TokenMemory {
    pub fn get(&self, account: &str, now_secs: u64) -> Option<crate::secret::Secret> {
        match self.0.borrow().get(account) {
            Some((token, until)) if now_secs < *until => {
                Some(crate::secret::Secret::new(token.clone()))
            }
            _ => None,
        }
    }

    pub fn put(&self, account: &str, token: &str, until: u64) {
        self.0
            .borrow_mut()
            .insert(account.to_string(), (token.to_string(), until));
    }

    pub fn forget(&self, account: &str) {
        self.0.borrow_mut().remove(account);
    }

    pub fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

/// An access token through `memory`: from it while usable, else from the account's actor
/// (`call`), remembered for as long as the actor allows, and at most `at_most_secs`.
pub async fn remembered_token<F, Fut>(
    memory: &TokenMemory,
    account: &str,
    rejected: Option<&str>,
    at_most_secs: u64,
    call: F,
) -> Result<crate::secret::Secret>
where
    F: FnOnce(crate::coordinator::protocol::Call) -> Fut,
    Fut: std::future::Future<Output = Result<crate::coordinator::protocol::Reply>>,
{
    use crate::coordinator::protocol::{Call, Reply};
    let now = crate::edge::platform::now_ms() / 1000;
    match rejected {
        None => {
            if let Some(t) = memory.get(account, now) {
                return Ok(t);
            }
        }
        Some(_) => memory.forget(account),
    }
    let reply = call(Call::AccessToken {
        account: account.to_string(),
        rejected: rejected.map(str::to_string),
    })
    .await?;
    match reply {
        Reply::AccessToken {
            access_token,
            usable_until,
        } => {
            memory.put(
                account,
                &access_token,
                usable_until.min(now.saturating_add(at_most_secs)),
            );
            Ok(crate::secret::Secret::new(access_token))
        }
        _ => Err(Error::Internal(
            "account actor answer: unexpected reply".into(),
        )),
    }
}

thread_local! {
    /// `LOG_LEVEL`, set when the isolate reads its settings.
    static LOG_LEVEL: std::cell::Cell<Level> = const { std::cell::Cell::new(Level::Info) };
}

/// Lines less severe than `level` are not written from now on (in this isolate).
pub fn set_log_level(level: Level) {
    LOG_LEVEL.with(|l| l.set(level));
}

/// Milliseconds since the Unix epoch: `Date.now()`, which allocates no `Date` object (the
/// `worker` crate's `Date::now` builds one per call, on every log line and storage step).
pub fn now_ms() -> u64 {
    worker::js_sys::Date::now() as u64
}

/// One JSON object per line, so `wrangler tail` and Logpush can parse them.
pub fn log_line(level: Level, msg: &str, fields: Value) {
    if level < LOG_LEVEL.with(|l| l.get()) {
        return;
    }
    let mut line = crate::json::object!({"ts": crate::time::iso8601(crate::edge::platform::now_ms()), "level": level.as_str(), "msg": msg});
    if let (Some(l), Value::Object(f)) = (line.as_object_mut(), fields) {
        l.extend(f);
    }
    match level {
        Level::Error => worker::console_error!("{line}"),
        Level::Warn => worker::console_warn!("{line}"),
        _ => worker::console_log!("{line}"),
    }
}
