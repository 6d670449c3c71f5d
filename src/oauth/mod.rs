//! The OAuth redirect URI: `/oauth/start` sends the account owner to TikTok's consent page
//! with a single-use `state`; `/oauth/callback` checks it, exchanges the code and stores the
//! account's tokens in the vault. Both answer browsers, so failures are small HTML pages
//! (with the stable error code in `data-code`) rather than JSON.

pub mod state;

use crate::auth::Role;
use crate::error::{Error, Result, UpstreamFailure};
use crate::http::ctx::Ctx;
use crate::http::{html_escape, Request, Response};

use crate::accounts::vault::{Account, Vault};
use crate::ports::{Level, Platform};
use crate::tiktok::{AppCredentials, Client};

/// The redirect URI registered with TikTok: configured, or this Worker's own callback with a
/// trailing slash (`https://<host>/oauth/callback/`). TikTok compares it exactly, slash
/// included, on the consent page and again in the token call.
pub fn redirect_uri<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<String> {
    Ok(match &ctx.config()?.redirect_uri {
        Some(u) => u.to_string(),
        None => format!("{}/oauth/callback/", req.origin()),
    })
}

/// Checks `return_to` against the allow-list of origins; this Worker's own origin (`own`: the
/// admin console) is always allowed.
pub fn check_return_to(raw: &str, allowed: &[String], own: &str) -> Result<String> {
    let u = crate::weburl::Url::parse(raw)
        .map_err(|_| Error::invalid("return_to", "must be an absolute URL"))?;
    if !u.is_http() {
        return Err(Error::invalid("return_to", "must be an http(s) URL"));
    }
    let origin = u.origin().ascii_serialization();
    if origin != own && !allowed.contains(&origin) {
        return Err(Error::invalid(
            "return_to",
            "origin is not listed in OAUTH_RETURN_TO_ALLOWED",
        ));
    }
    Ok(u.to_string())
}

/// TikTok's consent URL for `state`.
pub fn authorize_url(
    auth_url: &crate::weburl::Url,
    client_key: &str,
    scopes: &[String],
    redirect_uri: &str,
    state: &str,
) -> String {
    let mut u = auth_url.clone();
    u.append_query_pairs(&[
        ("client_key", client_key),
        ("response_type", "code"),
        ("scope", &scopes.join(",")),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ]);
    u.to_string()
}

pub async fn start<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    let cfg = ctx.config()?;
    if cfg.oauth_start_protected {
        ctx.authorize(req, Role::Admin)?;
    }
    let return_to = match req.query("return_to") {
        Some(r) => Some(check_return_to(&r, &cfg.return_to_allowed, &req.origin())?),
        None => None,
    };
    // Nothing is stored: the state is signed, and its nonce goes to this browser only.
    // The cookie can only come back when TikTok redirects to this same origin.
    let redirect = redirect_uri(ctx, req)?;
    let same_origin = crate::weburl::Url::parse(&redirect)
        .is_ok_and(|u| u.origin().ascii_serialization() == req.origin());
    let claims = state::Claims {
        n: ctx.p.hex(16),
        t: ctx.p.now_secs(),
        r: return_to,
        b: same_origin,
    };
    let state = state::sign(&cfg.client_secret, &claims);
    let url = authorize_url(
        &cfg.auth_url,
        &cfg.client_key,
        &cfg.scopes,
        &redirect,
        &state,
    );
    // `format=json` (the admin console, whose fetch can carry an admin key): the consent URL
    // as JSON, with the same cookie, instead of the redirect.
    let mut r = match req.query("format").as_deref() {
        Some("json") => {
            let mut r = Response::json(200, &crate::json::object!({ "authorize_url": url }));
            r.headers.set("cache-control", "no-store");
            r
        }
        _ => Response::redirect(&url),
    };
    r.headers.set(
        "set-cookie",
        state::set_cookie(&claims.n, cfg.state_ttl_secs, req.url.scheme() == "https"),
    );
    Ok(r)
}

/// A failed callback, shown to the account owner.
struct Page {
    status: u16,
    code: &'static str,
    title: &'static str,
    detail: String,
}

impl Page {
    fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Page {
            status,
            code,
            title,
            detail: detail.into(),
        }
    }
}

fn page(status: u16, code: &str, title: &str, body_html: &str) -> Response {
    Response::html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
             <title>{t}</title><style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style>\
             <main data-code=\"{c}\"><h1>{t}</h1>{body_html}</main></html>",
            t = html_escape(title),
            c = html_escape(code),
        ),
    )
}

pub async fn callback<P: Platform>(ctx: &Ctx<'_, P>, req: &Request) -> Result<Response> {
    match connect(ctx, req).await {
        Ok((account, return_to)) => {
            ctx.log(
                Level::Info,
                "account connected",
                crate::json::object!({"account_id": account}),
            );
            let cont = return_to
                .map(|r| format!("<p><a href=\"{}\">Continue</a></p>", html_escape(&r)))
                .unwrap_or_default();
            Ok(page(
                200,
                "connected",
                "TikTok account connected",
                &format!(
                    "<p>The business account <strong data-account=\"{a}\">{a}</strong> is connected. \
                     You can close this page.</p>{cont}",
                    a = html_escape(&account)
                ),
            ))
        }
        Err(p) => {
            ctx.log(
                Level::Warn,
                "oauth callback refused",
                crate::json::object!({"code": p.code}),
            );
            Ok(page(
                p.status,
                p.code,
                p.title,
                &format!("<p>{}</p>", html_escape(&p.detail)),
            ))
        }
    }
}

/// The callback's steps; any failure becomes a page. Nothing is stored unless all succeed.
async fn connect<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
) -> std::result::Result<(String, Option<String>), Page> {
    let internal = |e: Error| {
        Page::new(
            e.status(),
            "internal_error",
            "Something went wrong",
            e.to_string(),
        )
    };
    let cfg = ctx.config().map_err(internal)?;
    let again = "Start again from the link you were given.";
    let state = req
        .query("state")
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .ok_or_else(|| {
            Page::new(
                400,
                "state_missing",
                "Invalid sign-in link",
                format!("The request has no state. {again}"),
            )
        })?;
    let nonce = state::cookie_nonce(req.headers.get("cookie"));
    let now = ctx.p.now_secs();
    let claims = state::verify(
        &cfg.client_secret,
        &state,
        nonce.as_deref(),
        now,
        cfg.state_ttl_secs,
    )
    .map_err(|why| match why {
        state::Refusal::Invalid => Page::new(
            400,
            "state_invalid",
            "Invalid or used sign-in link",
            format!("This sign-in link is not one this service made. {again}"),
        ),
        state::Refusal::Expired => Page::new(
            400,
            "state_expired",
            "Sign-in link expired",
            format!(
                "The sign-in took longer than {} seconds. {again}",
                cfg.state_ttl_secs
            ),
        ),
        state::Refusal::OtherBrowser => Page::new(
            400,
            "state_other_browser",
            "Finish in the browser you started in",
            format!(
                "This sign-in was started in another browser (or its cookies were cleared). {again}"
            ),
        ),
    })?;
    if let Some(err) = req.query("error") {
        let desc = req.query("error_description").unwrap_or_default();
        return Err(Page::new(
            400,
            "consent_denied",
            "Access was not granted",
            format!(
                "TikTok reported `{err}`{}{desc}. Nothing was connected.",
                if desc.is_empty() { "" } else { ": " }
            ),
        ));
    }
    let code = req.query("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        Page::new(
            400,
            "code_missing",
            "Invalid sign-in response",
            "TikTok sent no authorization code.",
        )
    })?;
    // Single use: claimed in a Durable Object (strongly consistent) before the code is used; a denial or a call
    // without a code claims nothing, so such calls cost no storage.
    if !ctx
        .p
        .claim_once(&state::claim_key(&claims.n))
        .await
        .map_err(internal)?
    {
        return Err(Page::new(
            400,
            "state_invalid",
            "Invalid or used sign-in link",
            format!("This sign-in link was already used. {again}"),
        ));
    }
    let client = Client::for_config(ctx.p, cfg);
    let app = AppCredentials {
        client_key: &cfg.client_key,
        client_secret: &cfg.client_secret,
    };
    let grant = client
        .exchange_code(app, &code, &redirect_uri(ctx, req).map_err(internal)?)
        .await
        .map_err(exchange_page)?;
    let account_id = grant
        .open_id
        .clone()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| {
            Page::new(
                502,
                "tiktok_error",
                "TikTok answered unexpectedly",
                "The token response names no account.",
            )
        })?;
    let vault = Vault::new(ctx.p, &cfg.keyring);
    let previous = vault.meta(&account_id).await.ok().flatten();
    let mut account =
        Account::from_grant(&account_id, &grant, ctx.p.now_secs(), &cfg.keyring, ctx.p);
    if let Some(prev) = previous {
        account.meta.created_at = prev.created_at;
        account.meta.display_name = prev.display_name;
    }
    // The business's own name and avatar, for the accounts listing; best effort.
    match client
        .business_profile(grant.access_token.expose(), &account_id)
        .await
    {
        Ok(profile) => {
            account.meta.display_name = profile.display_name.or(account.meta.display_name);
            account.meta.username = profile.username;
            account.meta.profile_image = profile.profile_image;
        }
        Err(e) => ctx.log(
            Level::Warn,
            "business profile not read; account connected without it",
            crate::json::object!({"account_id": account_id, "code": e.code()}),
        ),
    }
    vault.put(&account).await.map_err(internal)?;
    // The coordinator's copy (maybe `needs_reauth`) is superseded by the new grant.
    ctx.p.forget(&account_id).await.map_err(internal)?;
    Ok((account_id, claims.r))
}

fn exchange_page(e: Error) -> Page {
    match &e {
        Error::Upstream {
            failure:
                UpstreamFailure::Api {
                    code: 40110 | 40131,
                    ..
                },
            ..
        } => Page::new(
            400,
            "code_expired",
            "Sign-in link expired or used",
            "TikTok's authorization code was expired, cancelled or already used. Start again.",
        ),
        Error::Upstream {
            failure: UpstreamFailure::Api { code, message },
            ..
        } => Page::new(
            502,
            "tiktok_error",
            "TikTok refused the sign-in",
            format!("TikTok answered code {code}: {message}. Nothing was connected."),
        ),
        _ => Page::new(
            502,
            "tiktok_unavailable",
            "TikTok could not be reached",
            format!("{e}. Nothing was connected; try again in a moment."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_every_parameter_encoded() {
        let u = crate::weburl::Url::parse("https://www.tiktok.com/v2/auth/authorize/").unwrap();
        let s = authorize_url(
            &u,
            "ck",
            &["a.b".into(), "c.d".into()],
            "https://w.example/oauth/callback",
            "st",
        );
        let parsed = crate::weburl::Url::parse(&s).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().collect();
        assert_eq!(q["client_key"], "ck");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "a.b,c.d");
        assert_eq!(q["redirect_uri"], "https://w.example/oauth/callback");
        assert_eq!(q["state"], "st");
        assert!(s.starts_with("https://www.tiktok.com/v2/auth/authorize/?"));
    }

    #[test]
    fn return_to_must_match_an_allowed_origin() {
        let allowed = vec!["https://app.example".to_string()];
        let own = "https://worker.example";
        let check = |r: &str| check_return_to(r, &allowed, own);
        assert!(check("https://app.example/done?x=1").is_ok());
        assert!(check("https://app.example.evil.com/").is_err());
        assert!(check("http://app.example/").is_err());
        assert!(check("/relative").is_err());
        // The Worker's own console may always be returned to; its look-alikes may not.
        assert!(check("https://worker.example/admin#accounts").is_ok());
        assert!(check("https://worker.example.evil.com/admin").is_err());
        assert!(check("http://worker.example/admin").is_err());
        // Only an http(s) URL: a blob URL nesting another has no origin to compare.
        for r in [
            "blob:https://app.example/u",
            "blob:blob:https://app.example/",
        ] {
            assert_eq!(
                check(r).unwrap_err().body("r")["error"]["message"],
                "invalid `return_to`: must be an http(s) URL",
                "{r}"
            );
        }
    }

    #[test]
    fn unicode_host_names_are_compared_punycoded() {
        // The parser turns Unicode host names into punycode, so the allow-list compares ASCII.
        let allowed = vec!["https://xn--bcher-kva.example".to_string()];
        assert!(check_return_to("https://xn--bcher-kva.example/ok", &allowed, "").is_ok());
        assert_eq!(
            check_return_to("https://bücher.example/ok", &allowed, "").unwrap(),
            "https://xn--bcher-kva.example/ok"
        );
        // A look-alike (Cyrillic "а") is another host.
        let allowed = vec!["https://app.example".to_string()];
        assert!(check_return_to("https://\u{430}pp.example/", &allowed, "").is_err());
    }

    #[test]
    fn pages_escape_what_tiktok_sent() {
        let r = page(
            400,
            "consent_denied",
            "t",
            &format!("<p>{}</p>", html_escape("<script>x</script>")),
        );
        let s = String::from_utf8(r.body).unwrap();
        assert!(!s.contains("<script>") && s.contains("data-code=\"consent_denied\""));
    }
}
