//! End-to-end tests: the built `.wasm` in local workerd (`wrangler dev`), driven over HTTP,
//! with the TikTok simulator in-process. Run with `cargo test --test e2e`.
//!
//! One shared Worker and simulator serve most tests (each test uses its own account and
//! conversation ids); tests that need special settings start their own instance.

mod badinput;
mod browser;
mod console;
mod contract;
mod faults;
mod foundation;
mod handoff;
mod harness;
mod hygiene;
mod inbox;
mod messages;
mod oauth;
mod openapi;
mod walkthrough;
mod webhooks;

use harness::Worker;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tiktok_sim::Sim;

/// What every test gets.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub sim: Sim,
    pub worker: Worker,
    pub http: reqwest::Client,
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts this status and a JSON body, returns the body.
    pub fn expect_error_status(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "status; body: {}", self.text);
        self.json()
    }

    /// Asserts a JSON error body with this status and code, returns the body.
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status; body: {}", self.text);
        let b = self.json();
        assert_eq!(b["error"]["code"], code, "code; body: {}", self.text);
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        b
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.worker.url, path)
    }

    /// Sends a request to the shared Worker; `key` becomes a Bearer token.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.call_at(&self.worker.url, method, path, key, body)
            .await
    }

    pub async fn call_at(
        &self,
        base: &str,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(m, format!("{base}{path}"));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        send(rb).await
    }
}

impl Env {
    /// Polls `GET /v1/events/failed` (optionally for one account) on the Worker at `base` until
    /// at least `n` failures are listed or `wait` has passed.
    pub async fn failures_at(
        &self,
        base: &str,
        account: Option<&str>,
        n: usize,
        wait: std::time::Duration,
    ) -> Vec<Value> {
        let path = match account {
            Some(a) => format!("/v1/events/failed?account_id={a}"),
            None => "/v1/events/failed".to_string(),
        };
        let deadline = std::time::Instant::now() + wait;
        loop {
            let r = self
                .call_at(base, "GET", &path, Some(harness::ADMIN_KEY), None)
                .await;
            let f = r.json()["failures"].as_array().cloned().unwrap_or_default();
            if f.len() >= n || std::time::Instant::now() > deadline {
                return f;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// `POST /v1/events/replay` of one recorded failure on the Worker at `base`.
    pub async fn replay_at(&self, base: &str, account: &str, id: &Value) -> Reply {
        let body = serde_json::json!({"account_id": account, "id": id});
        self.call_at(
            base,
            "POST",
            "/v1/events/replay",
            Some(harness::ADMIN_KEY),
            Some(&body),
        )
        .await
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("request did not get an answer: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        text,
    }
}

type TestFn = fn(Arc<Env>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((concat!(stringify!($module), "::", stringify!($name)),
                (|e| Box::pin($module::$name(e))) as TestFn)),*]
    };
}

fn main() {
    let mut args = Arguments::from_args();
    // Tests share one Worker and inject simulator faults: run them one at a time.
    args.test_threads = Some(1);
    let all = tests![
        foundation::health_reports_configuration_by_name,
        foundation::request_id_comes_from_cf_ray,
        foundation::unknown_route_is_json_404,
        foundation::wrong_method_is_json_405_with_allow,
        foundation::outbound_fetch_reaches_simulator,
        foundation::probe_requires_admin_key,
        foundation::missing_secret_is_named_in_json_500,
        foundation::logs_are_json_with_request_id,
        foundation::openapi_is_served,
        foundation::wrangler_dev_serves_the_worker,
        foundation::deploy_check_refuses_placeholders,
        oauth::full_flow_connects_and_lists_account,
        oauth::denied_consent_shows_page_and_stores_nothing,
        oauth::replayed_state_is_rejected,
        oauth::missing_or_unknown_state_is_rejected,
        oauth::expired_state_is_rejected,
        oauth::start_flood_writes_nothing_and_state_is_bound_to_the_browser,
        oauth::expired_code_shows_clear_page,
        oauth::protected_start_and_return_to,
        oauth::refresh_on_demand_stores_rotated_token,
        oauth::concurrent_requests_refresh_once,
        oauth::cron_refreshes_due_accounts,
        oauth::cron_marks_revoked_refresh_as_needs_reauth,
        oauth::delete_revokes_and_wipes,
        oauth::delete_wipes_even_when_revoke_fails,
        oauth::accounts_api_needs_admin,
        webhooks::keyword_reply_is_sent,
        webhooks::welcome_then_keywords_with_typing_and_mark_read,
        webhooks::away_hours_use_iana_time_zone,
        webhooks::cooldown_limits_replies,
        webhooks::echoes_and_own_messages_are_never_answered,
        webhooks::unknown_events_and_types_get_200,
        webhooks::bad_and_stale_signatures_get_401,
        webhooks::duplicate_storm_replies_once,
        webhooks::transient_faults_are_retried,
        webhooks::persistent_faults_are_recorded_and_replayable,
        webhooks::forwarding_is_signed_retried_and_replayable,
        webhooks::rules_api_validates_and_round_trips,
        webhooks::per_account_rules_override_the_global_set,
        webhooks::rules_changes_apply_to_the_next_message,
        webhooks::rules_dry_run_matches_what_is_sent,
        handoff::a_person_taking_over_pauses_the_bot,
        inbox::history_is_kept_paged_and_survives_a_restart,
        messages::text_is_sent_with_exact_ids,
        messages::sender_actions_are_sent,
        messages::image_by_url_is_uploaded_then_sent,
        messages::idempotency_key_sends_once,
        messages::rejected_token_is_refreshed_once,
        messages::tiktok_errors_map_to_stable_codes,
        messages::transient_errors_are_retried_then_succeed_or_502,
        messages::listings_work_with_plus_in_ids,
        messages::webhook_subscription_put_get_delete,
        messages::auth_failures,
        messages::openapi_documents_every_route,
        openapi::documented_schemas_match_real_answers,
        contract::accounts_show_the_business_profile,
        contract::share_posts_cards_and_quoted_replies_are_sent,
        contract::images_are_refused_where_tiktok_does_not_allow_them,
        contract::customer_media_is_downloadable,
        contract::button_taps_and_display_names_drive_rules,
        contract::staff_replies_and_early_echoes_are_not_answered,
        contract::expired_access_token_is_refreshed_and_dead_grant_needs_reauth,
        // After the contract tests: it expires every token the simulator issued so far.
        inbox::notifications_reach_slack_discord_and_telegram,
        badinput::malformed_requests_get_clean_4xx,
        faults::refresh_faults_are_reported_and_recoverable,
        faults::send_faults_are_reported,
        faults::reply_faults_are_recorded_and_replayable,
        faults::connection_refused_is_reported_and_recorded,
        faults::restart_mid_processing_is_recorded_and_replayable,
        faults::crash_with_a_far_alarm_is_processed_within_seconds,
        faults::storage_error_during_processing_keeps_the_event,
        faults::a_failed_acceptance_leaves_no_seen_mark,
        faults::actor_calls_over_fetch_still_work,
        faults::a_panic_is_followed_by_a_fresh_instance,
        faults::replay_race_sends_once,
        faults::slow_tiktok_sends_exactly_once,
        faults::chunked_oversized_body_is_refused_while_streaming,
        walkthrough::readme_walkthrough_works_as_written,
        console::the_console_works_in_a_real_browser,
        // Last: it scans everything the shared Worker logged during the whole run.
        hygiene::no_secret_or_token_in_logs_or_responses,
    ];
    start_watchdog();
    let env: Arc<OnceLock<Arc<Env>>> = Arc::new(OnceLock::new());
    let trials = all
        .into_iter()
        .map(|(name, f)| {
            let env = env.clone();
            Trial::test(name, move || {
                // Started by the first test that runs, so `--list` and filters stay cheap.
                let env = env.get_or_init(start_env).clone();
                run_one(&env, f)
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop wrangler and the simulator before exit (process::exit skips destructors).
    drop(env);
    conclusion.exit();
}

/// A test that takes longer than this has hung: it fails with the shared Worker's last logs.
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// The whole suite takes about two minutes; past this, the watchdog ends the run.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// Runs one test under `TEST_LIMIT`; a failure carries the tail of the shared Worker's log.
fn run_one(env: &Arc<Env>, f: TestFn) -> Result<(), Failed> {
    let fut = f(env.clone());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.rt
            .block_on(async { tokio::time::timeout(TEST_LIMIT, fut).await })
    }));
    let why = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(_)) => format!("did not finish within {} s", TEST_LIMIT.as_secs()),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into()),
    };
    Err(Failed::from(format!(
        "{why}\n--- shared Worker, last log lines ---\n{}",
        env.worker.log_tail(40)
    )))
}

/// Ends a run that overran `RUN_LIMIT` (E2E_RUN_LIMIT_SECS overrides) with evidence, even when
/// a test is stuck somewhere `TEST_LIMIT` cannot reach.
fn start_watchdog() {
    let limit = std::env::var("E2E_RUN_LIMIT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(RUN_LIMIT);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        harness::abort_run(&format!(
            "the run exceeded {} s; stopping every instance",
            limit.as_secs()
        ));
    });
}

fn start_env() -> Arc<Env> {
    harness::build_wasm();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let sim = rt
        .block_on(Sim::start(harness::CLIENT_KEY, harness::CLIENT_SECRET, 0))
        .expect("simulator");
    let worker = Worker::start(&sim, "shared", |_| {});
    Arc::new(Env {
        rt,
        sim,
        worker,
        // Redirects are part of what the tests check: never followed automatically.
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The OAuth flow is bound to the browser by a cookie, as in a real browser.
            .cookie_store(true)
            // No test waits this long for one answer: a hung request fails instead.
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            // A fresh connection per request: workerd closes idle keep-alive connections after
            // 5 s, and a request written into one as it closes would fail for no fault of ours.
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client"),
    })
}
