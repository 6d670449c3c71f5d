//! HTTP front: routes TikTok's paths, wraps answers in the envelope, applies faults, records
//! and logs every API request. Unknown paths, missing trailing slashes and wrong methods get
//! a 404 page, as TikTok's gateway answers them.

use crate::state::{Shared, State};
use crate::{
    control, conversations, media, messaging, now, oauth, webhooks, Fault, Recorded, API_PREFIX,
};
use axum::body::{to_bytes, Body};
use axum::extract::{DefaultBodyLimit, Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Larger than the 3 MB upload cap, so an oversized image reaches the 40907 check.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(detached)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// An error answer: envelope code and message (`data` is `{}`).
#[derive(Debug)]
pub struct ApiErr {
    pub code: i64,
    pub message: String,
}

pub type Out = Result<Value, ApiErr>;

pub fn fail<T>(code: i64, message: impl Into<String>) -> Result<T, ApiErr> {
    Err(ApiErr {
        code,
        message: message.into(),
    })
}

/// 40002 for a parameter that is missing.
pub fn missing<T>(name: &str) -> Result<T, ApiErr> {
    fail(40002, format!("Param {name} is required."))
}

/// 40002 for a parameter with a bad value.
pub fn invalid<T>(name: &str) -> Result<T, ApiErr> {
    fail(40002, format!("Param {name} is invalid."))
}

/// A required non-empty string field of a JSON body.
pub fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiErr> {
    match body.get(name) {
        None | Some(Value::Null) => missing(name),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => missing(name),
        Some(_) => invalid(name),
    }
}

/// A required non-empty query parameter.
pub fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiErr> {
    match q.get(name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => missing(name),
    }
}

/// TikTok's message for a code, used for injected faults and as a default.
pub fn message_for(code: i64) -> &'static str {
    match code {
        0 => "OK",
        40001 => "No permission to operate this resource.",
        40002 => "Invalid parameter.",
        40007 => "The object does not exist.",
        40064 => "You are sending messages too fast. Take a rest.",
        40100 => "Requests made too frequently. Please try again later.",
        40102 => "Access token has expired.",
        40103 => "Refresh token has expired. Please re-authorize.",
        40104 => "Access token is empty.",
        40105 => "Access token is invalid or has been revoked.",
        40107 => "Refresh token is invalid.",
        40108 => "Invalid grant_type.",
        40110 => "The auth_code is invalid or has expired. Please re-authorize.",
        40907 => "File size exceeds the limit.",
        40908 => "File type is not supported.",
        50000 => "System error.",
        50002 => "Error on the TikTok side. Please retry the call.",
        51065 => "Internal service error. Please retry the call.",
        _ => "Error.",
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Token,
    Refresh,
    Revoke,
    TokenInfo,
    BusinessGet,
    Send,
    Upload,
    Download,
    ConversationList,
    ContentList,
    Capabilities,
    WebhookUpdate,
    WebhookList,
    WebhookDelete,
}

fn route(method: &Method, path: &str) -> Option<Route> {
    use Route::*;
    let (m, r) = match path {
        "/tt_user/oauth2/token/" => (Method::POST, Token),
        "/tt_user/oauth2/refresh_token/" => (Method::POST, Refresh),
        "/tt_user/oauth2/revoke/" => (Method::POST, Revoke),
        "/tt_user/token_info/get/" => (Method::POST, TokenInfo),
        "/business/get/" => (Method::GET, BusinessGet),
        "/business/message/send/" => (Method::POST, Send),
        "/business/message/media/upload/" => (Method::POST, Upload),
        "/business/message/media/download/" => (Method::POST, Download),
        "/business/message/conversation/list/" => (Method::GET, ConversationList),
        "/business/message/content/list/" => (Method::GET, ContentList),
        "/business/message/capabilities/get/" => (Method::GET, Capabilities),
        "/business/webhook/update/" => (Method::POST, WebhookUpdate),
        "/business/webhook/list/" => (Method::GET, WebhookList),
        "/business/webhook/delete/" => (Method::POST, WebhookDelete),
        _ => return None,
    };
    (*method == m).then_some(r)
}

/// What a handler gets: decoded query, lower-case headers, raw body text.
pub struct Req {
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Req {
    pub fn json(&self) -> Result<Value, ApiErr> {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => fail(40002, "The request body must be a JSON object."),
        }
    }
}

pub fn header_map(h: &HeaderMap) -> HashMap<String, String> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/html; charset=utf-8")],
        "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>",
    )
        .into_response()
}

/// `YYYYMMDDhhmmss` (UTC) + 20 upper-case hex digits.
pub fn request_id(st: &mut State) -> String {
    let secs = now();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}{mo:02}{d:02}{:02}{:02}{:02}{}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        st.random_hex_upper(20)
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn envelope(code: i64, message: &str, data: Value, rid: &str) -> Response {
    let body = json!({"code": code, "message": message, "request_id": rid, "data": data});
    (
        StatusCode::OK,
        [("content-type", "application/json"), ("x-tt-logid", rid)],
        body.to_string(),
    )
        .into_response()
}

fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut st = shared.lock();
    let slot = st
        .faults
        .iter_mut()
        .find(|(p, q)| path.contains(p.as_str()) && !q.is_empty())?;
    slot.1.pop_front()
}

/// Like TikTok, finishes what it received even when the caller gives up (a client deadline
/// closing the connection): a send answered late has still been sent.
async fn detached(state: AxState<Arc<Shared>>, req: Request<Body>) -> Response {
    match tokio::spawn(handle(state, req)).await {
        Ok(r) => r,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request<Body>) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let Some(api_path) = path.strip_prefix(API_PREFIX).map(str::to_string) else {
        let resp = match (method.as_str(), path.as_str()) {
            ("POST", "/_sim/inbound") => {
                let body = to_bytes(req.into_body(), 64 * 1024)
                    .await
                    .unwrap_or_default();
                control::inbound(&shared, &body).await
            }
            ("GET", "/_sim/sent") => control::sent(&shared, &raw_query),
            _ => pages(&shared, &method, &path, &raw_query, req.headers()).await,
        };
        // A download path holds its link token: log the route only.
        let shown = if path.starts_with("/_sim/media/") {
            "/_sim/media/…"
        } else {
            path.as_str()
        };
        shared.log_call(format_args!(
            "tiktok-sim {method} {shown} http={} {}ms",
            resp.status().as_u16(),
            started.elapsed().as_millis()
        ));
        return resp;
    };
    let headers = header_map(req.headers());
    let query: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let route = route(&method, &api_path);
    let fault = route.and_then(|_| take_fault(&shared, &api_path));
    if let Some(Fault::Slow { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let skip = matches!(
        fault,
        Some(Fault::Http { .. } | Fault::Code { .. } | Fault::MalformedJson)
    );
    let (outcome, body_text) = match route {
        None => (None, String::new()),
        Some(Route::Upload) if !skip => {
            let out = media::upload(&shared, &headers, req).await;
            (Some(out), "<multipart>".to_string())
        }
        Some(r) => {
            let bytes = to_bytes(req.into_body(), BODY_LIMIT)
                .await
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            let rq = Req {
                query,
                headers: headers.clone(),
                body,
            };
            let out = if skip {
                None
            } else {
                Some(dispatch(&shared, r, &rq).await)
            };
            (out, rq.body)
        }
    };
    let rid = request_id(&mut shared.lock());
    let (code, resp) = match (route, fault, outcome) {
        (None, _, _) => (-1, not_found()),
        (_, Some(Fault::Http { status }), _) => (
            -1,
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [("content-type", "text/html")],
                "<html><body>upstream error</body></html>",
            )
                .into_response(),
        ),
        (_, Some(Fault::MalformedJson), _) => (
            -1,
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"code\":0,\"data\":",
            )
                .into_response(),
        ),
        (_, Some(Fault::Code { code }), _) => {
            (code, envelope(code, message_for(code), json!({}), &rid))
        }
        (_, _, Some(Ok(data))) => (0, envelope(0, "OK", data, &rid)),
        (_, _, Some(Err(e))) => (e.code, envelope(e.code, &e.message, json!({}), &rid)),
        (_, _, None) => (-1, not_found()),
    };
    let rid_shown = if code == -1 { "-" } else { rid.as_str() };
    shared.log_call(format_args!(
        "tiktok-sim {method} {api_path} code={code} request_id={rid_shown} {}ms",
        started.elapsed().as_millis()
    ));
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: api_path,
        query: raw_query,
        headers,
        body: body_text,
        code,
    });
    resp
}

async fn dispatch(shared: &Arc<Shared>, route: Route, rq: &Req) -> Out {
    match route {
        Route::Token => oauth::token(shared, rq),
        Route::Refresh => oauth::refresh(shared, rq),
        Route::Revoke => oauth::revoke(shared, rq),
        Route::TokenInfo => oauth::token_info(shared, rq),
        Route::BusinessGet => conversations::business_get(shared, rq),
        Route::Send => messaging::send(shared, rq).await,
        Route::Download => media::download(shared, rq),
        Route::ConversationList => conversations::list(shared, rq),
        Route::ContentList => conversations::content(shared, rq),
        Route::Capabilities => conversations::capabilities(shared, rq),
        Route::WebhookUpdate => webhooks::update(shared, rq),
        Route::WebhookList => webhooks::list(shared, rq),
        Route::WebhookDelete => webhooks::delete(shared, rq),
        Route::Upload => fail(40002, "multipart/form-data expected"),
    }
}

/// Non-API pages: the consent screen, media downloads, avatars and test images.
async fn pages(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Response {
    if *method != Method::GET {
        return not_found();
    }
    // Both spellings are used in the wild for the consent page.
    if path == "/v2/auth/authorize/" || path == "/v2/auth/authorize" {
        return oauth::authorize(shared, query);
    }
    if let Some(token) = path.strip_prefix("/_sim/media/") {
        return media::serve_download(shared, token, headers);
    }
    if path.starts_with("/_sim/avatar/") {
        return media::test_image("ok.jpg");
    }
    if let Some(name) = path.strip_prefix("/_sim/images/") {
        return media::test_image(name);
    }
    not_found()
}
