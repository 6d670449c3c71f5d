//! Issue 2: health, errors, config problems, outbound fetch, logs.

use crate::harness::{Server, Worker, ADMIN_KEY, CLIENT_SECRET, ENC_KEY, SENDER_KEY};
use crate::Env;
use std::sync::Arc;

pub async fn health_reports_configuration_by_name(env: Arc<Env>) {
    let r = env.call("GET", "/health", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(b["status"], "ok");
    assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
    for name in [
        "TIKTOK_CLIENT_KEY",
        "TIKTOK_CLIENT_SECRET",
        "API_KEYS",
        "TOKEN_ENCRYPTION_KEY",
    ] {
        assert_eq!(b["config"][name], true, "{name} in {b}");
    }
    assert_eq!(
        b["config"]["OAUTH_SCOPES"], false,
        "unset var reported as such: {b}"
    );
    assert_eq!(b["bindings"]["TOKENS"], true);
    assert_eq!(b["bindings"]["STATE"], true);
    for secret in [CLIENT_SECRET, ADMIN_KEY, ENC_KEY] {
        assert!(!r.text.contains(secret), "health leaks a secret value");
    }
    assert!(r.header("x-request-id").is_some_and(|v| v.len() == 16));
}

pub async fn request_id_comes_from_cf_ray(env: Arc<Env>) {
    let r = crate::send(
        env.http
            .get(env.url("/nope"))
            .header("cf-ray", "8f1e2d3c4b5a6978-AMS"),
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("8f1e2d3c4b5a6978-AMS"));
    assert_eq!(r.json()["error"]["request_id"], "8f1e2d3c4b5a6978-AMS");
}

pub async fn unknown_route_is_json_404(env: Arc<Env>) {
    for path in ["/nope", "/v1", "/health/extra", "/%2e%2e/etc/passwd"] {
        let r = env.call("GET", path, None, None).await;
        r.expect_error(404, "not_found");
        assert!(r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
    }
}

pub async fn wrong_method_is_json_405_with_allow(env: Arc<Env>) {
    for m in ["POST", "DELETE", "PUT", "PATCH"] {
        let r = env.call(m, "/health", None, None).await;
        let b = r.expect_error(405, "method_not_allowed");
        assert_eq!(b["error"]["details"]["allowed"][0], "GET");
        assert_eq!(r.header("allow"), Some("GET"));
    }
}

pub async fn outbound_fetch_reaches_simulator(env: Arc<Env>) {
    let before = env.sim.requests_to("/business/webhook/list/").len();
    let r = env
        .call("GET", "/health?probe=tiktok", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(b["tiktok"]["reachable"], true, "{b}");
    assert_eq!(b["tiktok"]["credentials_accepted"], true, "{b}");
    let calls = env.sim.requests_to("/business/webhook/list/");
    assert_eq!(calls.len(), before + 1);
    let last = calls.last().unwrap();
    assert_eq!(
        last.query_value("app_id").as_deref(),
        Some(crate::harness::CLIENT_KEY)
    );
    assert!(!r.text.contains(CLIENT_SECRET));
}

pub async fn probe_requires_admin_key(env: Arc<Env>) {
    env.call("GET", "/health?probe=tiktok", None, None)
        .await
        .expect_error(401, "unauthorized");
    env.call(
        "GET",
        "/health?probe=tiktok",
        Some("wrong-key-0123456789abcdef"),
        None,
    )
    .await
    .expect_error(401, "unauthorized");
    env.call("GET", "/health?probe=tiktok", Some(SENDER_KEY), None)
        .await
        .expect_error(403, "forbidden");
}

pub async fn missing_secret_is_named_in_json_500(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "nosecret", |vars| {
        vars.retain(|(k, _)| *k != "TIKTOK_CLIENT_SECRET");
        for (k, v) in vars.iter_mut() {
            if *k == "TOKEN_ENCRYPTION_KEY" {
                *v = Some("short-not-base64-value!".into());
            }
        }
    });
    let h = env.call_at(&w.url, "GET", "/health", None, None).await;
    assert_eq!(h.status, 200);
    let b = h.json();
    assert_eq!(b["status"], "degraded");
    assert_eq!(b["config"]["TIKTOK_CLIENT_SECRET"], false);
    let r = env
        .call_at(&w.url, "GET", "/health?probe=tiktok", Some(ADMIN_KEY), None)
        .await;
    let e = r.expect_error(500, "config_error");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("missing secret TIKTOK_CLIENT_SECRET"), "{msg}");
    assert!(
        msg.contains("malformed secret TOKEN_ENCRYPTION_KEY"),
        "{msg}"
    );
    assert!(
        !r.text.contains("short-not-base64-value!"),
        "value leaked: {}",
        r.text
    );
    assert!(
        w.wait_for_log("missing secret TIKTOK_CLIENT_SECRET"),
        "no log line:\n{}",
        w.logs()
    );
    assert!(!w.logs().contains("short-not-base64-value!"));
}

pub async fn logs_are_json_with_request_id(env: Arc<Env>) {
    let r = env
        .call("GET", "/nope?code=SHOULD-NOT-BE-LOGGED", None, None)
        .await;
    let rid = r.header("x-request-id").unwrap().to_string();
    assert!(env.worker.wait_for_log(&rid));
    let lines = env.worker.log_lines();
    let line = lines
        .iter()
        .find(|l| l["request_id"] == rid.as_str())
        .unwrap_or_else(|| panic!("no log line for {rid}"));
    assert_eq!(line["msg"], "request");
    assert_eq!(line["status"], 404);
    assert_eq!(line["path"], "/nope");
    assert!(!env.worker.logs().contains("SHOULD-NOT-BE-LOGGED"));
}

pub async fn openapi_is_served(env: Arc<Env>) {
    let r = env.call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["openapi"], "3.1.0");
}

/// `make dev` serves through `wrangler dev`: the same wrangler.toml works there, cron included.
pub async fn wrangler_dev_serves_the_worker(env: Arc<Env>) {
    let w = Worker::start_on(Server::WranglerDev, &env.sim, "wranglerdev", |_| {});
    let h = env.call_at(&w.url, "GET", "/health", None, None).await;
    assert_eq!(h.status, 200, "{}", h.text);
    let b = h.json();
    assert_eq!(b["status"], "ok", "{b}");
    for binding in ["TOKENS", "STATE", "ACCOUNTS"] {
        assert_eq!(b["bindings"][binding], true, "{binding} in {b}");
    }
    let c = env
        .call_at(&w.url, "GET", "/__scheduled?cron=*/10+*+*+*+*", None, None)
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert!(
        w.wait_for_log("\"msg\":\"cron token refresh\""),
        "the cron handler ran under wrangler dev:\n{}",
        w.log_tail(30)
    );
}

/// `make deploy` refuses the placeholder namespace ids (and redirect URIs TikTok refuses) with
/// what to do, and accepts a filled-in wrangler.toml.
pub async fn deploy_check_refuses_placeholders(_env: std::sync::Arc<crate::Env>) {
    let root = crate::harness::root();
    let run = |toml: &std::path::Path| {
        std::process::Command::new("bash")
            .arg(root.join("scripts/deploy.sh"))
            .arg("--check-config")
            .arg(toml)
            .output()
            .expect("bash")
    };
    let shipped = run(&root.join("wrangler.toml"));
    assert!(!shipped.status.success());
    let why = String::from_utf8_lossy(&shipped.stderr);
    assert!(
        why.contains("placeholder") && why.contains("kv namespace create"),
        "{why}"
    );
    let dir = std::env::temp_dir().join(format!("tmw-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let filled = std::fs::read_to_string(root.join("wrangler.toml"))
        .unwrap()
        .replace(
            "REPLACE_ME_TOKENS_NAMESPACE_ID",
            "0123456789abcdef0123456789abcdef",
        )
        .replace(
            "REPLACE_ME_STATE_NAMESPACE_ID",
            "fedcba9876543210fedcba9876543210",
        );
    let ok = dir.join("ok.toml");
    std::fs::write(&ok, &filled).unwrap();
    let r = run(&ok);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        filled.replace(
            "OAUTH_REDIRECT_URI = \"\"",
            "OAUTH_REDIRECT_URI = \"http://shop.example/oauth/callback?x=1\"",
        ),
    )
    .unwrap();
    let r = run(&bad);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("must be https"));
}
