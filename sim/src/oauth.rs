//! TikTok account holder OAuth: the consent page and the `/tt_user/` token calls.

use crate::now;
use crate::router::{fail, field, Out, Req};
use crate::state::{AuthCode, Shared, State, TokenRec, DEFAULT_OPEN_ID};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The consent screen: approves at once and redirects back with `code` and `state`.
/// Test switches: `sim_open_id=<business id>` picks the account, `sim_deny=1` refuses,
/// `sim_scope=<a,b>` grants only those of the asked scopes.
pub fn authorize(shared: &Shared, query: &str) -> Response {
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let page = |m: &str| {
        (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/html; charset=utf-8")],
            format!("<html><body><h1>Something went wrong</h1><p>{m}</p></body></html>"),
        )
            .into_response()
    };
    let mut st = shared.lock();
    if q.get("client_key") != Some(&st.client_key) {
        return page("client_key is unknown");
    }
    let Some(redirect) = q.get("redirect_uri") else {
        return page("redirect_uri is required");
    };
    // Exact string match: a trailing slash or a query string makes it a different URI.
    if !st.settings.redirect_uris.iter().any(|u| u == redirect) {
        return page("redirect_uri is not registered for this app");
    }
    let Ok(mut to) = url::Url::parse(redirect) else {
        return page("redirect_uri is not an absolute URL");
    };
    let state = q.get("state").cloned().unwrap_or_default();
    let back = |to: url::Url| (StatusCode::FOUND, [("location", to.to_string())]).into_response();
    let refuse = |mut to: url::Url, error: &str, code: &str, description: &str| {
        to.query_pairs_mut()
            .append_pair("error", error)
            .append_pair("error_code", code)
            .append_pair("error_description", description)
            .append_pair("state", &state);
        back(to)
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return refuse(to, "invalid_request", "10003", "response_type must be code");
    }
    let asked: Vec<String> = q
        .get("scope")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_default();
    if asked.iter().all(String::is_empty)
        || asked
            .iter()
            .any(|s| !st.settings.app_scopes.iter().any(|a| a == s))
    {
        return refuse(
            to,
            "invalid_scope",
            "10004",
            "The app is not approved for a requested scope",
        );
    }
    if q.contains_key("sim_deny") {
        return refuse(to, "access_denied", "10007", "The user denied the request");
    }
    let granted: Vec<String> = match q.get("sim_scope") {
        Some(only) => asked
            .iter()
            .filter(|s| only.split(',').any(|o| o.trim() == s.as_str()))
            .cloned()
            .collect(),
        None => asked,
    };
    // TikTok's codes carry `*` and `!`, which must travel percent-encoded.
    let code = format!("{}*3!{}", st.random_alnum(44), 1000 + st.random() % 9000);
    let ttl = st.settings.code_ttl;
    st.codes.insert(
        code.clone(),
        AuthCode {
            open_id: q
                .get("sim_open_id")
                .cloned()
                .unwrap_or_else(|| DEFAULT_OPEN_ID.into()),
            scope: granted.join(","),
            redirect_uri: redirect.clone(),
            expires_at: now() + ttl,
            used: false,
        },
    );
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    back(to)
}

/// The app credentials of the OAuth calls (`client_id` is the client key).
fn client_auth(st: &State, b: &Value) -> Result<(), crate::router::ApiErr> {
    let id = field(b, "client_id")?;
    let secret = field(b, "client_secret")?;
    if id != st.client_key || secret != st.client_secret {
        return fail(40001, "Invalid client_id or client_secret.");
    }
    Ok(())
}

/// Issues an access token and a refresh token for a grant; the reply `data`.
fn issue(st: &mut State, grant: u64, refresh_expires_at: u64) -> Value {
    let access = format!(
        "act.{}!{}.va",
        st.random_alnum(56),
        1000 + st.random() % 9000
    );
    let refresh = format!(
        "rft.{}!{}.va",
        st.random_alnum(56),
        1000 + st.random() % 9000
    );
    let at = st.settings.access_ttl;
    let t = now();
    st.issued.push(access.clone());
    st.issued.push(refresh.clone());
    st.access.insert(
        access.clone(),
        TokenRec {
            grant,
            expires_at: t + at,
        },
    );
    st.refresh.insert(
        refresh.clone(),
        TokenRec {
            grant,
            expires_at: refresh_expires_at,
        },
    );
    let g = &st.grants[&grant];
    json!({
        "access_token": access,
        "token_type": "Bearer",
        "scope": g.scope,
        "expires_in": at,
        "refresh_token": refresh,
        "refresh_token_expires_in": refresh_expires_at.saturating_sub(t),
        "open_id": g.open_id,
    })
}

/// POST `/tt_user/oauth2/token/`: exchanges a single-use auth code.
pub fn token(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let grant_type = field(&b, "grant_type")?;
    let code = field(&b, "auth_code")?;
    let redirect_uri = field(&b, "redirect_uri")?;
    let mut st = shared.lock();
    client_auth(&st, &b)?;
    if grant_type != "authorization_code" {
        return fail(40108, "Invalid grant_type: expected authorization_code.");
    }
    let t = now();
    let Some(c) = st
        .codes
        .get(code)
        .filter(|c| !c.used && c.expires_at > t)
        .cloned()
    else {
        return fail(
            40110,
            "The auth_code is invalid or has expired. Please re-authorize.",
        );
    };
    if redirect_uri != c.redirect_uri {
        return fail(
            40002,
            "Param redirect_uri does not match the one of the authorization request.",
        );
    }
    if let Some(c) = st.codes.get_mut(code) {
        c.used = true;
    }
    let grant = st.new_grant(&c.open_id, &c.scope);
    let refresh_at = t + st.settings.refresh_ttl;
    Ok(issue(&mut st, grant, refresh_at))
}

/// POST `/tt_user/oauth2/refresh_token/`: rotates the refresh token; the new one keeps the
/// old one's end of life (so `refresh_token_expires_in` shrinks, as in TikTok's replies).
pub fn refresh(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let grant_type = field(&b, "grant_type")?;
    let token = field(&b, "refresh_token")?;
    let mut st = shared.lock();
    client_auth(&st, &b)?;
    if grant_type != "refresh_token" {
        return fail(40108, "Invalid grant_type: expected refresh_token.");
    }
    let Some(rec) = st.refresh.get(token).cloned() else {
        return fail(40107, "Refresh token is invalid.");
    };
    if rec.expires_at <= now() {
        return fail(40103, "Refresh token has expired. Please re-authorize.");
    }
    st.refresh.remove(token);
    Ok(issue(&mut st, rec.grant, rec.expires_at))
}

/// POST `/tt_user/oauth2/revoke/`: ends the grant of that access token (all its tokens).
pub fn revoke(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let token = field(&b, "access_token")?;
    let mut st = shared.lock();
    client_auth(&st, &b)?;
    let Some(grant) = st.access.get(token).map(|a| a.grant) else {
        return fail(40105, "Access token is invalid or has been revoked.");
    };
    st.access.retain(|_, a| a.grant != grant);
    st.refresh.retain(|_, r| r.grant != grant);
    Ok(json!({}))
}

/// POST `/tt_user/token_info/get/`.
pub fn token_info(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let app_id = field(&b, "app_id")?;
    let token = field(&b, "access_token")?;
    let st = shared.lock();
    if app_id != st.client_key {
        return fail(40001, "The app_id does not match the access token's app.");
    }
    let Some(rec) = st.access.get(token) else {
        return fail(40105, "Access token is invalid or has been revoked.");
    };
    if rec.expires_at <= now() {
        return fail(40102, "Access token has expired.");
    }
    let g = &st.grants[&rec.grant];
    Ok(json!({"app_id": app_id, "scope": g.scope, "creator_id": g.open_id}))
}

/// The `Access-Token` check of messaging, profile and media calls; returns the business id.
/// Order: header present (40104), known and live (40105), unexpired (40102), `business_id`
/// given (40002), the token's own account (40001), scope granted (40001).
pub fn authed(
    st: &State,
    headers: &HashMap<String, String>,
    business_id: Option<&str>,
    scope: &str,
) -> Result<String, crate::router::ApiErr> {
    let token = headers.get("access-token").map(|t| t.trim()).unwrap_or("");
    if token.is_empty() {
        return fail(40104, "Access token is empty.");
    }
    let Some(rec) = st.access.get(token) else {
        return fail(40105, "Access token is invalid or has been revoked.");
    };
    if rec.expires_at <= now() {
        return fail(40102, "Access token has expired.");
    }
    let Some(biz) = business_id.filter(|b| !b.is_empty()) else {
        return fail(40002, "Param business_id is required.");
    };
    let g = &st.grants[&rec.grant];
    if g.open_id != biz {
        return fail(
            40001,
            "No permission: the access token does not belong to this business_id.",
        );
    }
    if !g.has_scope(scope) {
        return fail(
            40001,
            format!("No permission: the access token lacks the scope {scope}."),
        );
    }
    Ok(biz.to_string())
}
