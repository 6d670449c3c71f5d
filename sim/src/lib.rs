//! A TikTok Business Messaging API simulator for end-to-end tests and local runs.
//!
//! It answers like TikTok does (HTTP 200 with the `{code, message, request_id, data}`
//! envelope, errors as non-zero codes), checks what TikTok checks (client credentials,
//! `Access-Token` validity and expiry, required fields, text length, trailing slashes), records
//! every request for assertions, injects faults on demand and delivers signed webhooks.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Multipart, State as AxState};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const API_PREFIX: &str = "/open_api/v1.3";
pub const AUTHORIZE_PATH: &str = "/v2/auth/authorize/";
const MAX_TEXT: usize = 6000;
const MAX_IMAGE: usize = 3 * 1024 * 1024;

/// One request as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub method: String,
    /// Path without the API prefix, e.g. `/business/message/send/`.
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// Envelope code answered (or -1 for an HTTP-level fault).
    pub code: i64,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn query_value(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A fault applied to the next request whose path contains `path`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Plain HTTP error status with a non-JSON body.
    Http { status: u16 },
    /// HTTP 200 with this envelope code (51065, 40100, 40105, ...).
    Code { code: i64 },
    /// Wait this long, then answer normally.
    Slow { ms: u64 },
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
}

#[derive(Debug, Clone)]
struct Grant {
    open_id: String,
    expires_at: u64,
}

#[derive(Debug, Clone)]
struct Code {
    open_id: String,
    scope: String,
    redirect_uri: String,
    expires_at: u64,
    used: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SentMessage {
    pub business_id: String,
    pub conversation_id: String,
    pub message_type: String,
    pub body: Value,
    pub message_id: String,
}

/// Tunables a test can change at any time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub access_ttl: u64,
    pub refresh_ttl: u64,
    pub code_ttl: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            access_ttl: 86_400,
            refresh_ttl: 31_536_000,
            code_ttl: 300,
        }
    }
}

#[derive(Default)]
struct State {
    client_key: String,
    client_secret: String,
    settings: Settings,
    codes: HashMap<String, Code>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    media: HashMap<String, usize>,
    sent: Vec<SentMessage>,
    webhook: Option<String>,
    requests: Vec<Recorded>,
    faults: Vec<(String, VecDeque<Fault>)>,
    issued: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    seq: AtomicU64,
}

impl Shared {
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator; dropping it does not stop the server (it dies with the runtime).
#[derive(Clone)]
pub struct Sim {
    /// `http://127.0.0.1:<port>`
    pub origin: String,
    shared: Arc<Shared>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Sim {
    /// Starts on 127.0.0.1:`port` (0 = any free port) on the current tokio runtime.
    pub async fn start(client_key: &str, client_secret: &str, port: u16) -> std::io::Result<Sim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                client_key: client_key.into(),
                client_secret: client_secret.into(),
                ..State::default()
            }),
            seq: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sim { origin, shared })
    }

    /// `TIKTOK_API_BASE` for the Worker.
    pub fn api_base(&self) -> String {
        format!("{}{}", self.origin, API_PREFIX)
    }

    /// `TIKTOK_AUTH_URL` for the Worker.
    pub fn auth_url(&self) -> String {
        format!("{}{}", self.origin, AUTHORIZE_PATH)
    }

    /// Every API request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Requests whose path ends with `suffix` (e.g. `"/oauth2/refresh_token/"`).
    pub fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    /// Messages and sender actions sent to one conversation, in order.
    pub fn sent_to(&self, conversation_id: &str) -> Vec<SentMessage> {
        self.sent()
            .into_iter()
            .filter(|m| m.conversation_id == conversation_id)
            .collect()
    }

    /// Every access and refresh token issued so far (for secret-hygiene checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Successfully sent messages.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    /// Queues faults for the next requests whose path contains `path`, in order.
    pub fn push_faults(&self, path: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut st = self.shared.lock();
        st.faults
            .push((path.to_string(), faults.into_iter().collect()));
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut self.shared.lock().settings);
    }

    /// Makes every access token issued so far expire now (as if a day had passed).
    pub fn expire_access_tokens(&self) {
        let t = now();
        for g in self.shared.lock().access.values_mut() {
            g.expires_at = t;
        }
    }

    /// Makes every refresh token issued so far expire now.
    pub fn expire_refresh_tokens(&self) {
        let t = now();
        for g in self.shared.lock().refresh.values_mut() {
            g.expires_at = t;
        }
    }

    /// Makes every authorization code issued so far expire now.
    pub fn expire_codes(&self) {
        for c in self.shared.lock().codes.values_mut() {
            c.expires_at = 0;
        }
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.shared.lock().webhook.clone()
    }

    /// Whether `token` is a currently valid access token.
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.shared
            .lock()
            .access
            .get(token)
            .is_some_and(|g| g.expires_at > now())
    }

    /// Signs `body` the way TikTok does: `t=<ts>,s=hex(HMAC-SHA256(secret, "<ts>.<body>"))`.
    pub fn signature(secret: &str, ts: u64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{ts}.{body}").as_bytes());
        format!("t={ts},s={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// POSTs a signed delivery of `body` to `url` now; returns status and response body.
    pub async fn deliver(&self, url: &str, body: &str) -> reqwest::Result<(u16, String)> {
        let secret = self.shared.lock().client_secret.clone();
        let sig = Self::signature(&secret, now(), body);
        let r = reqwest::Client::new()
            .post(url)
            // TikTok gives up on slow receivers too; a hung Worker fails the caller.
            .timeout(Duration::from_secs(30))
            .header("content-type", "application/json")
            .header("TikTok-Signature", sig)
            .body(body.to_string())
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    /// A DM event envelope as TikTok sends it (`content` is a JSON string).
    pub fn event(&self, event: &str, business_id: &str, content: &Value) -> String {
        let ck = self.shared.lock().client_key.clone();
        json!({"client_key": ck, "event": event, "create_time": now(),
               "user_openid": business_id, "content": content.to_string()})
        .to_string()
    }
}

fn envelope(code: i64, message: &str, data: Value, rid: u64) -> Response {
    let body =
        json!({"code": code, "message": message, "request_id": format!("sim-{rid}"), "data": data});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Outcome of a handler: `Ok(data)` or `Err((code, message))`.
type Out = Result<Value, (i64, String)>;

fn err(code: i64, msg: &str) -> Out {
    Err((code, msg.to_string()))
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request<Body>) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if path == AUTHORIZE_PATH && method == Method::GET {
        return authorize(&shared, &query);
    }
    if let Some(name) = path.strip_prefix("/_sim/images/") {
        return image(name);
    }
    let Some(api_path) = path.strip_prefix(API_PREFIX).map(str::to_string) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let headers: HashMap<String, String> = header_map(req.headers());
    let is_multipart = headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("multipart/form-data"));
    let rid = shared.next();
    let fault = take_fault(&shared, &api_path);
    if let Some(Fault::Slow { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let (out, body_text) = if is_multipart {
        let form = Multipart::from_request(req, &()).await;
        match form {
            Ok(f) => (
                upload(&shared, &headers, f).await,
                String::from("<multipart>"),
            ),
            Err(_) => (err(40002, "malformed multipart body"), String::new()),
        }
    } else {
        let bytes = to_bytes(req.into_body(), 8 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let out = match fault {
            Some(Fault::Http { .. }) | Some(Fault::Code { .. }) | Some(Fault::MalformedJson) => {
                Ok(Value::Null)
            }
            _ => api(&shared, &method, &api_path, &query, &headers, &text),
        };
        (out, text)
    };
    let code = match (&fault, &out) {
        (Some(Fault::Http { .. }), _) | (Some(Fault::MalformedJson), _) => -1,
        (Some(Fault::Code { code }), _) => *code,
        (_, Ok(_)) => 0,
        (_, Err((c, _))) => *c,
    };
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: api_path,
        query,
        headers,
        body: body_text,
        code,
    });
    match (fault, out) {
        (Some(Fault::Http { status }), _) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "<html>upstream error</html>",
        )
            .into_response(),
        (Some(Fault::MalformedJson), _) => {
            (StatusCode::OK, "{\"code\":0,\"data\":").into_response()
        }
        (Some(Fault::Code { code }), _) => envelope(code, "injected fault", Value::Null, rid),
        (_, Ok(data)) => envelope(0, "OK", data, rid),
        (_, Err((c, m))) => envelope(c, &m, Value::Null, rid),
    }
}

fn header_map(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut st = shared.lock();
    let slot = st
        .faults
        .iter_mut()
        .find(|(p, q)| path.contains(p.as_str()) && !q.is_empty())?;
    slot.1.pop_front()
}

/// The consent page: approves at once and redirects back with `code` and `state`.
/// Test switches: `sim_open_id=<business id>` picks the account, `sim_deny=1` denies.
fn authorize(shared: &Shared, query: &str) -> Response {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let bad = |m: &str| (StatusCode::BAD_REQUEST, format!("authorize: {m}")).into_response();
    let mut st = shared.lock();
    if q.get("client_key") != Some(&st.client_key) {
        return bad("unknown client_key");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad("response_type must be code");
    }
    let Some(redirect) = q.get("redirect_uri").and_then(|r| url::Url::parse(r).ok()) else {
        return bad("redirect_uri missing or not absolute");
    };
    let scope = q.get("scope").cloned().unwrap_or_default();
    if scope.is_empty() || scope.contains(' ') {
        return bad("scope must be a comma-separated list");
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let mut to = redirect.clone();
    if q.contains_key("sim_deny") {
        to.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied the request")
            .append_pair("state", &state);
    } else {
        let n = shared.next();
        // Real codes contain `*` and `!`, which arrive percent-encoded.
        let code = format!("sim*code!{n}_{:x}", now());
        let open_id = q
            .get("sim_open_id")
            .cloned()
            .unwrap_or_else(|| "sim-business-1".into());
        let code_ttl = st.settings.code_ttl;
        st.codes.insert(
            code.clone(),
            Code {
                open_id,
                scope: scope.clone(),
                redirect_uri: redirect.to_string(),
                expires_at: now() + code_ttl,
                used: false,
            },
        );
        to.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("scopes", &scope)
            .append_pair("state", &state);
    }
    (StatusCode::FOUND, [("location", to.to_string())]).into_response()
}

/// Test images: `ok.png`, `ok.jpg`, `big.jpg` (over 3 MB), `stream.jpg` (5 MB, chunked, no
/// content-length), `text.png` (not an image).
fn image(name: &str) -> Response {
    let (ct, bytes): (&str, Vec<u8>) = match name {
        "ok.png" => (
            "image/png",
            [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64]].concat(),
        ),
        "ok.jpg" => (
            "image/jpeg",
            [&b"\xFF\xD8\xFF\xE0"[..], &[0u8; 64]].concat(),
        ),
        "big.jpg" => (
            "image/jpeg",
            [&b"\xFF\xD8\xFF\xE0"[..], &vec![0u8; MAX_IMAGE + 10]].concat(),
        ),
        "text.png" => ("image/png", b"hello, not an image".to_vec()),
        "stream.jpg" => {
            // 5 MB in chunks, without content-length: the size is only known while reading.
            let chunks = (0..80).map(|i| {
                let mut c = vec![0u8; 64 * 1024];
                if i == 0 {
                    c[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
                }
                Ok::<_, std::io::Error>(c)
            });
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            return (StatusCode::OK, [("content-type", "image/jpeg")], body).into_response();
        }
        _ => return (StatusCode::NOT_FOUND, "no such image").into_response(),
    };
    (StatusCode::OK, [("content-type", ct)], bytes).into_response()
}

fn api(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HashMap<String, String>,
    body: &str,
) -> Out {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let json_body =
        || serde_json::from_str::<Value>(body).map_err(|_| (40002, "body is not JSON".to_string()));
    match (method.as_str(), path) {
        ("POST", "/tt_user/oauth2/token/") => token(shared, &json_body()?),
        ("POST", "/tt_user/oauth2/refresh_token/") => refresh(shared, &json_body()?),
        ("POST", "/tt_user/oauth2/token/revoke/") => revoke(shared, &json_body()?),
        ("POST", "/business/message/send/") => {
            let b = json_body()?;
            let biz = authed(shared, headers, b["business_id"].as_str())?;
            send(shared, &biz, &b)
        }
        ("GET", "/business/message/conversation/list/") => {
            let biz = authed(shared, headers, q.get("business_id").map(String::as_str))?;
            conversations(&biz, &q)
        }
        ("GET", "/business/message/content/list/") => {
            let biz = authed(shared, headers, q.get("business_id").map(String::as_str))?;
            messages(shared, &biz, &q)
        }
        ("POST", "/business/webhook/update/") => {
            let b = json_body()?;
            app_auth(shared, b["app_id"].as_str(), b["secret"].as_str())?;
            if b["event_type"] != "DIRECT_MESSAGE" {
                return err(40002, "event_type must be DIRECT_MESSAGE");
            }
            let Some(url) = b["callback_url"]
                .as_str()
                .filter(|u| url::Url::parse(u).is_ok())
            else {
                return err(40002, "callback_url must be an absolute URL");
            };
            shared.lock().webhook = Some(url.to_string());
            Ok(json!({"app_id": b["app_id"], "event_type": "DIRECT_MESSAGE", "callback_url": url}))
        }
        ("GET", "/business/webhook/list/") => {
            app_auth(
                shared,
                q.get("app_id").map(String::as_str),
                q.get("secret").map(String::as_str),
            )?;
            let url = shared.lock().webhook.clone();
            let list: Vec<Value> = url
                .map(|u| json!({"event_type": "DIRECT_MESSAGE", "callback_url": u}))
                .into_iter()
                .collect();
            Ok(json!({"app_id": q.get("app_id"), "list": list}))
        }
        ("POST", "/business/webhook/delete/") => {
            let b = json_body()?;
            app_auth(shared, b["app_id"].as_str(), b["secret"].as_str())?;
            shared.lock().webhook = None;
            Ok(json!({"app_id": b["app_id"], "event_type": "DIRECT_MESSAGE"}))
        }
        _ => err(40002, "unknown endpoint or method (paths end with /)"),
    }
}

fn app_auth(shared: &Shared, id: Option<&str>, secret: Option<&str>) -> Result<(), (i64, String)> {
    let st = shared.lock();
    if id != Some(st.client_key.as_str()) || secret != Some(st.client_secret.as_str()) {
        return Err((40001, "invalid app credentials".into()));
    }
    Ok(())
}

/// Checks `Access-Token` and that it belongs to `business_id`.
fn authed(
    shared: &Shared,
    headers: &HashMap<String, String>,
    business_id: Option<&str>,
) -> Result<String, (i64, String)> {
    let st = shared.lock();
    let token = headers
        .get("access-token")
        .map(String::as_str)
        .unwrap_or("");
    let grant = st
        .access
        .get(token)
        .filter(|g| g.expires_at > now())
        .ok_or((40105, "access token is invalid or has expired".to_string()))?;
    match business_id {
        None | Some("") => Err((40002, "business_id is required".into())),
        Some(b) if b != grant.open_id => Err((
            40001,
            "token does not grant access to this business_id".into(),
        )),
        Some(b) => Ok(b.to_string()),
    }
}

fn issue(st: &mut State, open_id: &str, scope: &str, n: u64) -> Value {
    let access = format!("act.sim{n}x{:x}", now());
    let refresh = format!("rft.sim{n}x{:x}", now());
    let (at, rt) = (st.settings.access_ttl, st.settings.refresh_ttl);
    st.issued.push(access.clone());
    st.issued.push(refresh.clone());
    st.access.insert(
        access.clone(),
        Grant {
            open_id: open_id.into(),
            expires_at: now() + at,
        },
    );
    st.refresh.insert(
        refresh.clone(),
        Grant {
            open_id: open_id.into(),
            expires_at: now() + rt,
        },
    );
    json!({"access_token": access, "refresh_token": refresh, "access_token_expire_in": at,
           "refresh_token_expire_in": rt, "token_type": "Bearer", "scope": scope, "open_id": open_id})
}

fn client_auth(st: &State, b: &Value) -> Result<(), (i64, String)> {
    if b["client_id"].as_str() != Some(st.client_key.as_str())
        || b["client_secret"].as_str() != Some(st.client_secret.as_str())
    {
        return Err((40001, "invalid client_id or client_secret".into()));
    }
    Ok(())
}

fn token(shared: &Shared, b: &Value) -> Out {
    let n = shared.next();
    let mut st = shared.lock();
    client_auth(&st, b)?;
    if b["grant_type"] != "authorization_code" {
        return err(40002, "grant_type must be authorization_code");
    }
    let code = b["auth_code"].as_str().unwrap_or("");
    let Some(c) = st.codes.get_mut(code) else {
        return err(40002, "auth_code is invalid");
    };
    if c.used {
        return err(40002, "auth_code has already been used");
    }
    if c.expires_at <= now() {
        return err(40131, "auth_code has expired");
    }
    if b["redirect_uri"].as_str() != Some(c.redirect_uri.as_str()) {
        return err(
            40002,
            "redirect_uri does not match the authorization request",
        );
    }
    c.used = true;
    let (open_id, scope) = (c.open_id.clone(), c.scope.clone());
    Ok(issue(&mut st, &open_id, &scope, n))
}

fn refresh(shared: &Shared, b: &Value) -> Out {
    let n = shared.next();
    let mut st = shared.lock();
    client_auth(&st, b)?;
    if b["grant_type"] != "refresh_token" {
        return err(40002, "grant_type must be refresh_token");
    }
    let rt = b["refresh_token"].as_str().unwrap_or("");
    let Some(g) = st.refresh.get(rt).filter(|g| g.expires_at > now()).cloned() else {
        return err(40105, "refresh token is invalid or has expired");
    };
    // Rotation: the old refresh token stops working.
    st.refresh.remove(rt);
    Ok(issue(
        &mut st,
        &g.open_id,
        "user.info.basic,message.list.read,message.list.send,message.list.manage",
        n,
    ))
}

fn revoke(shared: &Shared, b: &Value) -> Out {
    let mut st = shared.lock();
    client_auth(&st, b)?;
    let token = b["token"].as_str().unwrap_or("");
    let owner = st
        .access
        .get(token)
        .or_else(|| st.refresh.get(token))
        .map(|g| g.open_id.clone());
    let Some(owner) = owner else {
        return err(40105, "token is invalid");
    };
    st.access.retain(|_, g| g.open_id != owner);
    st.refresh.retain(|_, g| g.open_id != owner);
    Ok(json!({}))
}

fn send(shared: &Shared, biz: &str, b: &Value) -> Out {
    if b["recipient_type"] != "CONVERSATION" {
        return err(40002, "recipient_type must be CONVERSATION");
    }
    let Some(conv) = b["recipient"].as_str().filter(|r| !r.is_empty()) else {
        return err(40002, "recipient is required");
    };
    let kind = b["message_type"].as_str().unwrap_or("");
    let has_text = !b["text"].is_null();
    let has_image = !b["image"].is_null();
    match kind {
        "TEXT" => {
            let text = b["text"]["body"].as_str().unwrap_or("");
            if has_image {
                return err(40002, "a message is text or image, not both");
            }
            if text.is_empty() || text.chars().count() > MAX_TEXT {
                return err(40002, "text.body must be 1 to 6000 characters");
            }
        }
        "IMAGE" => {
            let id = b["image"]["media_id"].as_str().unwrap_or("");
            if has_text {
                return err(40002, "a message is text or image, not both");
            }
            if !shared.lock().media.contains_key(id) {
                return err(40007, "media_id not found");
            }
        }
        "SENDER_ACTION" => {
            if !matches!(b["sender_action"].as_str(), Some("TYPING" | "MARK_READ")) {
                return err(40002, "sender_action must be TYPING or MARK_READ");
            }
        }
        _ => return err(40002, "message_type must be TEXT, IMAGE or SENDER_ACTION"),
    }
    let n = shared.next();
    // Beyond 2^53, as TikTok's ids can be.
    let message_id = format!("7{:020}", 90_071_992_547_409_920u128 * 10 + n as u128);
    let mut st = shared.lock();
    if kind != "SENDER_ACTION" {
        st.sent.push(SentMessage {
            business_id: biz.into(),
            conversation_id: conv.into(),
            message_type: kind.into(),
            body: b.clone(),
            message_id: message_id.clone(),
        });
        return Ok(json!({"message_id": message_id, "create_time": now()}));
    }
    st.sent.push(SentMessage {
        business_id: biz.into(),
        conversation_id: conv.into(),
        message_type: kind.into(),
        body: b.clone(),
        message_id: String::new(),
    });
    Ok(json!({}))
}

async fn upload(shared: &Shared, headers: &HashMap<String, String>, mut form: Multipart) -> Out {
    let mut fields: HashMap<String, Vec<u8>> = HashMap::new();
    let mut file_type = String::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            file_type = field.content_type().unwrap_or("").to_string();
        }
        let Ok(bytes) = field.bytes().await else {
            return err(40002, "unreadable multipart field");
        };
        fields.insert(name, bytes.to_vec());
    }
    let text = |k: &str| {
        fields
            .get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    authed(shared, headers, text("business_id").as_deref())?;
    if text("media_type").as_deref() != Some("IMAGE") {
        return err(40002, "media_type must be IMAGE");
    }
    let Some(file) = fields.get("file") else {
        return err(40002, "file is required");
    };
    let is_png = file.starts_with(b"\x89PNG\r\n\x1a\n");
    let is_jpg = file.starts_with(b"\xFF\xD8\xFF");
    if !(is_png || is_jpg) || !(file_type.is_empty() || file_type.starts_with("image/")) {
        return err(40908, "unsupported file type: JPG or PNG only");
    }
    if file.len() > MAX_IMAGE {
        return err(40002, "file exceeds 3 MB");
    }
    let id = format!("media-{}", shared.next());
    shared.lock().media.insert(id.clone(), file.len());
    Ok(json!({"media_id": id}))
}

/// Fixed conversations; one id contains `+` and `/` as real ones can.
fn conversations(biz: &str, q: &HashMap<String, String>) -> Out {
    let kind = q.get("conversation_type").map(String::as_str).unwrap_or("");
    if !matches!(kind, "STRANGER" | "SINGLE") {
        return err(40002, "conversation_type must be STRANGER or SINGLE");
    }
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 20);
    let start: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let all: Vec<Value> = (0..3)
        .map(|i| {
            json!({"conversation_id": format!("{biz}:{kind}:c+{i}/x=="), "update_time": 1_720_000_000 + i,
                   "referral": {"ad": [], "short_link": []}})
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let next = start + page.len();
    Ok(json!({"conversations": page, "has_more": next < all.len(), "cursor": next.to_string()}))
}

fn messages(shared: &Shared, biz: &str, q: &HashMap<String, String>) -> Out {
    let Some(conv) = q.get("conversation_id").filter(|c| !c.is_empty()) else {
        return err(40002, "conversation_id is required");
    };
    if !conv.starts_with(&format!("{biz}:")) && !conv.contains('+') {
        return err(40007, "conversation not found");
    }
    let st = shared.lock();
    let mut msgs: Vec<Value> = vec![json!({
        "message_id": "9007199254740993123", "conversation_id": conv, "message_type": "TEXT",
        "create_time": 1_720_000_000, "direction": "INBOUND", "status": "READ",
        "sender": {"open_id": "user-1", "display_name": "Ada", "avatar_url": "https://example.invalid/a.png"},
        "content": {"body": "hello"}})];
    for m in st
        .sent
        .iter()
        .filter(|m| &m.conversation_id == conv && !m.message_id.is_empty())
    {
        msgs.push(json!({"message_id": m.message_id, "conversation_id": conv,
            "message_type": m.message_type, "create_time": now(), "direction": "OUTBOUND",
            "status": "SENT", "sender": {"open_id": biz}, "content": m.body.get("text").cloned().unwrap_or(Value::Null)}));
    }
    let total = msgs.len();
    let latest: Vec<Value> = msgs.into_iter().rev().take(20).collect();
    Ok(json!({"messages": latest, "next_cursor": "", "has_more": false, "total": total}))
}

/// A forwarding target for tests: records every POST and can fail the next ones.
#[derive(Clone)]
pub struct Sink {
    pub url: String,
    inner: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    received: Vec<(HashMap<String, String>, String)>,
    fail_next: u32,
}

impl Sink {
    pub async fn start() -> std::io::Result<Sink> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let inner: Arc<Mutex<SinkState>> = Arc::default();
        let state = inner.clone();
        let app = Router::new().fallback(move |req: Request<Body>| {
            let state = state.clone();
            async move {
                let headers = header_map(req.headers());
                let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if st.fail_next > 0 {
                    st.fail_next -= 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                st.received
                    .push((headers, String::from_utf8_lossy(&body).into_owned()));
                StatusCode::OK
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url, inner })
    }

    /// Headers and body of every accepted delivery.
    pub fn received(&self) -> Vec<(HashMap<String, String>, String)> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .received
            .clone()
    }

    /// Answers 503 to the next `n` deliveries.
    pub fn fail_next(&self, n: u32) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fail_next = n;
    }
}
