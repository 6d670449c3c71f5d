//! Issue 3: OAuth redirect URI, token vault, refresh (on demand, single-flight, cron), revoke.

use crate::harness::{Worker, ADMIN_KEY, CLIENT_KEY, SENDER_KEY};
use crate::{send, Env, Reply};
use std::collections::HashMap;
use std::sync::Arc;
use tiktok_sim::Fault;

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// `data-code` of an HTML page.
pub fn page_code(r: &Reply) -> String {
    let i = r
        .text
        .find("data-code=\"")
        .unwrap_or_else(|| panic!("no page code: {}", r.text))
        + 11;
    r.text[i..].split('"').next().unwrap().to_string()
}

/// Runs /oauth/start on `base` and the simulator's consent; returns the callback URL.
pub async fn consent(env: &Env, base: &str, key: Option<&str>, extra: &str) -> String {
    let start = env.call_at(base, "GET", "/oauth/start", key, None).await;
    assert_eq!(start.status, 302, "{}", start.text);
    let authorize = format!("{}{extra}", start.header("location").unwrap());
    let r = send(env.http.get(authorize)).await;
    assert_eq!(r.status, 302, "simulator consent: {}", r.text);
    r.header("location").unwrap().to_string()
}

/// Connects `account` through the whole OAuth flow on the shared Worker.
pub async fn connect(env: &Env, account: &str) {
    let cb = consent(
        env,
        &env.worker.url,
        None,
        &format!("&sim_open_id={account}"),
    )
    .await;
    let r = send(env.http.get(cb)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(page_code(&r), "connected");
}

async fn account(env: &Env, id: &str) -> Option<serde_json::Value> {
    let r = env.call("GET", "/v1/accounts", Some(ADMIN_KEY), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

fn refreshes(env: &Env) -> usize {
    env.sim.requests_to("/oauth2/refresh_token/").len()
}

pub async fn full_flow_connects_and_lists_account(env: Arc<Env>) {
    let start = env.call("GET", "/oauth/start", None, None).await;
    assert_eq!(start.status, 302);
    assert_eq!(start.header("cache-control"), Some("no-store"));
    let loc = start.header("location").unwrap();
    assert!(loc.starts_with(&env.sim.auth_url()), "{loc}");
    let q = query(loc);
    assert_eq!(q["client_key"], CLIENT_KEY);
    assert_eq!(q["response_type"], "code");
    assert_eq!(
        q["scope"],
        "user.info.basic,message.list.read,message.list.send,message.list.manage"
    );
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth/callback/", env.worker.url)
    );
    // Signed, not stored; its nonce is in an HttpOnly cookie for this browser only.
    assert!(
        q["state"].contains('.') && q["state"].len() > 64,
        "{}",
        q["state"]
    );
    let cookie = start.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("tmw_oauth=")
            && cookie.contains("HttpOnly")
            && cookie.contains("Path=/oauth"),
        "{cookie}"
    );

    let cb = send(env.http.get(format!("{loc}&sim_open_id=e2e-biz-flow"))).await;
    let cb_url = cb.header("location").unwrap().to_string();
    assert!(
        cb_url.contains("*3%21"),
        "codes arrive percent-encoded: {cb_url}"
    );
    let done = send(env.http.get(&cb_url)).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(page_code(&done), "connected");
    assert!(done.text.contains("e2e-biz-flow"));
    // The code was decoded exactly once before the exchange.
    let ex = env
        .sim
        .requests_to("/tt_user/oauth2/token/")
        .pop()
        .unwrap()
        .json();
    assert!(ex["auth_code"].as_str().unwrap().contains("*3!"), "{ex}");
    assert_eq!(ex["redirect_uri"], q["redirect_uri"]);

    let a = account(&env, "e2e-biz-flow").await.expect("listed");
    assert_eq!(a["status"], "active");
    assert_eq!(a["scopes"][2], "message.list.send");
    assert!(a["access_token_expires_at"].as_u64().unwrap() > tiktok_sim::now() + 80_000);
    let listing = env
        .call("GET", "/v1/accounts", Some(ADMIN_KEY), None)
        .await
        .text;
    assert!(
        !listing.contains("act.sim") && !listing.contains("rft.sim"),
        "tokens leaked: {listing}"
    );
    assert!(!done.text.contains("act.sim"));
}

pub async fn denied_consent_shows_page_and_stores_nothing(env: Arc<Env>) {
    let before = env.sim.requests_to("/tt_user/oauth2/token/").len();
    let cb = consent(
        &env,
        &env.worker.url,
        None,
        "&sim_open_id=e2e-biz-denied&sim_deny=1",
    )
    .await;
    let r = send(env.http.get(cb)).await;
    assert_eq!(r.status, 400);
    assert_eq!(page_code(&r), "consent_denied");
    assert!(r.text.contains("The user denied the request"));
    assert_eq!(env.sim.requests_to("/tt_user/oauth2/token/").len(), before);
    assert!(account(&env, "e2e-biz-denied").await.is_none());
}

pub async fn replayed_state_is_rejected(env: Arc<Env>) {
    let cb = consent(&env, &env.worker.url, None, "&sim_open_id=e2e-biz-replay").await;
    assert_eq!(page_code(&send(env.http.get(&cb)).await), "connected");
    let before = env.sim.requests_to("/tt_user/oauth2/token/").len();
    let again = send(env.http.get(&cb)).await;
    assert_eq!(again.status, 400);
    assert_eq!(page_code(&again), "state_invalid");
    assert_eq!(
        env.sim.requests_to("/tt_user/oauth2/token/").len(),
        before,
        "no second exchange"
    );
}

pub async fn missing_or_unknown_state_is_rejected(env: Arc<Env>) {
    let r = env
        .call("GET", "/oauth/callback?code=abc", None, None)
        .await;
    assert_eq!((r.status, page_code(&r).as_str()), (400, "state_missing"));
    let r = env
        .call("GET", "/oauth/callback?code=abc&state=feedface", None, None)
        .await;
    assert_eq!((r.status, page_code(&r).as_str()), (400, "state_invalid"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
}

pub async fn expired_state_is_rejected(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "shortstate", |v| {
        v.push(("OAUTH_STATE_TTL_SECS", Some("1".into())))
    });
    let cb = consent(&env, &w.url, None, "&sim_open_id=e2e-biz-late").await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let before = env.sim.requests_to("/tt_user/oauth2/token/").len();
    let r = send(env.http.get(cb)).await;
    assert_eq!(
        (r.status, page_code(&r).as_str()),
        (400, "state_expired"),
        "{}",
        r.text
    );
    assert_eq!(env.sim.requests_to("/tt_user/oauth2/token/").len(), before);
}

/// Issue 10: `/oauth/start` writes nothing (here every KV write of a state would fail), so a
/// flood of anonymous calls costs no storage; the state only works in the browser that
/// started the flow.
pub async fn start_flood_writes_nothing_and_state_is_bound_to_the_browser(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "startflood", |v| {
        v.push(("FAULT_FAIL_KV_PUTS", Some("oauth_state:*1000000".into())))
    });
    let t = std::time::Instant::now();
    let calls = (0..300).map(|_| {
        let (env, url) = (env.clone(), w.url.clone());
        async move {
            env.call_at(&url, "GET", "/oauth/start", None, None)
                .await
                .status
        }
    });
    let statuses = futures_join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 302), "{statuses:?}");
    eprintln!(
        "oauth start flood: 300 anonymous starts in {:.2}s, no storage written",
        t.elapsed().as_secs_f64()
    );
    // Another browser (no cookie) cannot use a state it did not start.
    let cb = consent(&env, &w.url, None, "&sim_open_id=e2e-biz-bound").await;
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let r = send(stranger.get(&cb)).await;
    assert_eq!(
        (r.status, page_code(&r).as_str()),
        (400, "state_other_browser")
    );
    // The browser that started it finishes it.
    let r = send(env.http.get(&cb)).await;
    assert_eq!(page_code(&r), "connected", "{}", r.text);
}

pub async fn expired_code_shows_clear_page(env: Arc<Env>) {
    let cb = consent(&env, &env.worker.url, None, "&sim_open_id=e2e-biz-slow").await;
    env.sim.expire_codes();
    let r = send(env.http.get(cb)).await;
    assert_eq!(
        (r.status, page_code(&r).as_str()),
        (400, "code_expired"),
        "{}",
        r.text
    );
    assert!(account(&env, "e2e-biz-slow").await.is_none());
}

pub async fn protected_start_and_return_to(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "protected", |v| {
        v.push(("OAUTH_START_PROTECTED", Some("true".into())));
        v.push((
            "OAUTH_RETURN_TO_ALLOWED",
            Some("https://app.example".into()),
        ));
    });
    env.call_at(&w.url, "GET", "/oauth/start", None, None)
        .await
        .expect_error(401, "unauthorized");
    env.call_at(&w.url, "GET", "/oauth/start", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    let bad = env
        .call_at(
            &w.url,
            "GET",
            "/oauth/start?return_to=https://evil.example/x",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(
        bad.expect_error(400, "invalid_request")["error"]["details"]["field"],
        "return_to"
    );
    let path = "/oauth/start?return_to=https%3A%2F%2Fapp.example%2Fdone";
    let start = env
        .call_at(&w.url, "GET", path, Some(ADMIN_KEY), None)
        .await;
    assert_eq!(start.status, 302);
    let auth = format!(
        "{}&sim_open_id=e2e-biz-return",
        start.header("location").unwrap()
    );
    let cb = send(env.http.get(auth))
        .await
        .header("location")
        .unwrap()
        .to_string();
    let done = send(env.http.get(cb)).await;
    assert_eq!(page_code(&done), "connected");
    assert!(
        done.text.contains("href=\"https://app.example/done\""),
        "{}",
        done.text
    );
}

/// Connects `id` with an access token that lives `ttl` seconds.
async fn connect_with_ttl(env: &Env, id: &str, ttl: u64) {
    env.sim.settings(|s| s.access_ttl = ttl);
    connect(env, id).await;
    env.sim.settings(|s| s.access_ttl = 86_400);
}

fn conversations(id: &str) -> String {
    format!("/v1/conversations?account_id={id}&type=SINGLE")
}

pub async fn refresh_on_demand_stores_rotated_token(env: Arc<Env>) {
    connect_with_ttl(&env, "e2e-biz-refresh", 120).await;
    let before = refreshes(&env);
    let r = env
        .call(
            "GET",
            &conversations("e2e-biz-refresh"),
            Some(SENDER_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        refreshes(&env),
        before + 1,
        "token within the margin is refreshed first"
    );
    let used = env.sim.requests_to("/conversation/list/").pop().unwrap();
    assert!(env.sim.access_token_valid(&used.headers["access-token"]));
    let a = account(&env, "e2e-biz-refresh").await.unwrap();
    assert!(a["refreshed_at"].as_u64().is_some());
    assert!(a["access_token_expires_at"].as_u64().unwrap() > tiktok_sim::now() + 80_000);
    // The rotated refresh token was stored: a second refresh (forced by expiry) works.
    env.sim.expire_access_tokens();
    let r = env
        .call(
            "GET",
            &conversations("e2e-biz-refresh"),
            Some(SENDER_KEY),
            None,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "40105 → refresh with the rotated token → retry: {}",
        r.text
    );
    assert_eq!(refreshes(&env), before + 2);
    let r = env
        .call(
            "GET",
            &conversations("e2e-biz-refresh"),
            Some(SENDER_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(refreshes(&env), before + 2, "fresh token is reused");
}

pub async fn concurrent_requests_refresh_once(env: Arc<Env>) {
    connect_with_ttl(&env, "e2e-biz-storm", 60).await;
    let before = refreshes(&env);
    let path = conversations("e2e-biz-storm");
    let calls = (0..20).map(|_| env.call("GET", &path, Some(SENDER_KEY), None));
    let replies = futures_join_all(calls).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let n = refreshes(&env) - before;
    eprintln!("concurrency: 20 concurrent requests caused {n} refresh call(s)");
    assert_eq!(n, 1);
}

/// Polls all futures concurrently on this task.
pub async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

async fn run_cron(env: &Env) {
    let r = env
        .call(
            "GET",
            "/cdn-cgi/local/scheduled?cron=*/10+*+*+*+*",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

pub async fn cron_refreshes_due_accounts(env: Arc<Env>) {
    // 900 s left: beyond the 600 s on-demand margin, inside the cron's look-ahead.
    connect_with_ttl(&env, "e2e-biz-cron", 900).await;
    let before_exp = account(&env, "e2e-biz-cron").await.unwrap()["access_token_expires_at"]
        .as_u64()
        .unwrap();
    run_cron(&env).await;
    let a = account(&env, "e2e-biz-cron").await.unwrap();
    assert!(a["refreshed_at"].as_u64().is_some(), "{a}");
    assert!(a["access_token_expires_at"].as_u64().unwrap() > before_exp + 80_000);
    assert!(env.worker.wait_for_log("cron token refresh"));
}

pub async fn cron_marks_revoked_refresh_as_needs_reauth(env: Arc<Env>) {
    connect_with_ttl(&env, "e2e-biz-gone", 900).await;
    env.sim.expire_refresh_tokens();
    run_cron(&env).await;
    let a = account(&env, "e2e-biz-gone").await.unwrap();
    assert_eq!(a["status"], "needs_reauth", "{a}");
    let r = env
        .call(
            "GET",
            &conversations("e2e-biz-gone"),
            Some(SENDER_KEY),
            None,
        )
        .await;
    r.expect_error(409, "account_needs_reauth");
    // Connecting again heals it.
    connect(&env, "e2e-biz-gone").await;
    assert_eq!(
        account(&env, "e2e-biz-gone").await.unwrap()["status"],
        "active"
    );
    let r = env
        .call(
            "GET",
            &conversations("e2e-biz-gone"),
            Some(SENDER_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

pub async fn delete_revokes_and_wipes(env: Arc<Env>) {
    connect(&env, "e2e-biz-bye").await;
    let r = env
        .call("GET", &conversations("e2e-biz-bye"), Some(SENDER_KEY), None)
        .await;
    let token = env
        .sim
        .requests_to("/conversation/list/")
        .pop()
        .unwrap()
        .headers["access-token"]
        .clone();
    assert_eq!(r.status, 200);
    let d = env
        .call("DELETE", "/v1/accounts/e2e-biz-bye", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.json()["revoked"], true);
    assert!(!env.sim.access_token_valid(&token), "revoked at TikTok");
    assert!(account(&env, "e2e-biz-bye").await.is_none());
    env.call("GET", &conversations("e2e-biz-bye"), Some(SENDER_KEY), None)
        .await
        .expect_error(404, "not_found");
    env.call("DELETE", "/v1/accounts/e2e-biz-bye", Some(ADMIN_KEY), None)
        .await
        .expect_error(404, "not_found");
}

pub async fn delete_wipes_even_when_revoke_fails(env: Arc<Env>) {
    connect(&env, "e2e-biz-stuck").await;
    env.sim
        .push_faults("/oauth2/revoke/", [Fault::Http { status: 503 }]);
    let d = env
        .call(
            "DELETE",
            "/v1/accounts/e2e-biz-stuck",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let b = d.json();
    assert_eq!(
        (b["deleted"].clone(), b["revoked"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(b["revoke_error"]["code"], "tiktok_http_error");
    assert!(account(&env, "e2e-biz-stuck").await.is_none());
}

pub async fn accounts_api_needs_admin(env: Arc<Env>) {
    env.call("GET", "/v1/accounts", None, None)
        .await
        .expect_error(401, "unauthorized");
    env.call("GET", "/v1/accounts", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    env.call("DELETE", "/v1/accounts/x", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
    env.call(
        "GET",
        "/v1/conversations?account_id=nobody",
        Some(SENDER_KEY),
        None,
    )
    .await
    .expect_error(404, "not_found");
    env.call(
        "GET",
        "/v1/conversations?account_id=a&type=GROUP",
        Some(SENDER_KEY),
        None,
    )
    .await
    .expect_error(400, "invalid_request");
}
