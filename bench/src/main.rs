//! `make bench`: builds the release `.wasm`, serves it with Miniflare's API (workerd without
//! wrangler dev's proxy), uses the in-process TikTok simulator as TikTok, drives bounded
//! loopback load and prints a table of figures (also written to `bench/results/latest.md`).
//!
//! Env: BENCH_SECS (per path, default 10), BENCH_CONCURRENCY (default 16).

use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_sim::Sim;

const KEY: &str = "bench-client-key";
const SECRET: &str = "bench-client-secret";
const ADMIN: &str = "bench-admin-key-0123456789abcdef";
const ENC: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ACCOUNT: &str = "bench-biz";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Node.js that runs `scripts/serve.mjs`: the pinned Node 22 that `scripts/bootstrap.sh`
/// installs under `.tools/node` when the machine's node is too old, else `node` on PATH.
fn node(root: &std::path::Path) -> PathBuf {
    let local = root.join(".tools/node/bin/node");
    if local.exists() {
        local
    } else {
        PathBuf::from("node")
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) used so far by every workerd process below `ancestor`.
fn workerd_cpu_secs(ancestor: u32) -> f64 {
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if !stat.contains("(workerd)") || !descends_from(pid, ancestor) {
            continue;
        }
        let after = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / 100.0
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..16 {
        if pid == ancestor {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let after = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        match after.split(' ').nth(1).and_then(|v| v.parse().ok()) {
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

struct Phase {
    name: &'static str,
    requests: u64,
    errors: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_per_1000: f64,
}

impl Phase {
    /// Figures of one phase from its sorted latencies (µs) and the workerd CPU it used.
    fn measured(name: &'static str, lat: &[u64], errors: u64, secs: f64, cpu_secs: f64) -> Phase {
        Phase {
            name,
            requests: lat.len() as u64,
            errors,
            secs,
            p50_ms: percentile(lat, 0.5),
            p99_ms: percentile(lat, 0.99),
            cpu_per_1000: cpu_secs / lat.len().max(1) as f64 * 1000.0,
        }
    }
}

/// Where `resolve_options` writes the Miniflare options wrangler derives from wrangler.toml.
fn options_file(root: &std::path::Path) -> std::path::PathBuf {
    root.join("target/bench-worker-options.json")
}

/// Has wrangler read wrangler.toml once, so no measured start-up pays for loading wrangler.
fn resolve_options(root: &std::path::Path) {
    let status = Command::new(node(root))
        .arg("scripts/serve.mjs")
        .current_dir(root)
        .env("RESOLVE_ONLY", options_file(root))
        .status()
        .expect("node scripts/serve.mjs");
    assert!(status.success(), "resolving the Worker's options failed");
}

/// Starts `scripts/serve.mjs` (this Worker, or the one-line JS baseline) in its own process group.
fn serve(
    root: &std::path::Path,
    port: u16,
    vars: &str,
    baseline: bool,
    out: std::process::Stdio,
    err: std::process::Stdio,
) -> std::process::Child {
    let mut cmd = Command::new(node(root));
    cmd.arg("scripts/serve.mjs")
        .current_dir(root)
        .env("PORT", port.to_string())
        .env("OPTIONS", options_file(root))
        .env("WORKER_VARS", vars);
    if baseline {
        cmd.env("BASELINE", "1");
    }
    cmd.stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .expect("node scripts/serve.mjs")
}

/// Stops a `serve` process group.
fn stop(mut child: std::process::Child) {
    // SAFETY: kill(2) with a negative pid signals only the child's own process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    let _ = child.wait();
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs `make` for `secs` with `conc` tasks; returns latencies (µs) and error count.
async fn load<F, Fut>(secs: u64, conc: u64, make: F) -> (Vec<u64>, u64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (make, counter, errors) = (make.clone(), counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                if !make(n).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all, errors.load(Ordering::Relaxed), elapsed)
}

/// Spawn → first 200 of `GET /health` for serve.mjs (our Worker, or the JS baseline), in ms.
async fn cold_start(root: &std::path::Path, baseline: bool, vars: &str) -> f64 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = serve(
        root,
        port,
        vars,
        baseline,
        std::process::Stdio::null(),
        std::process::Stdio::null(),
    );
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health");
    let ms = loop {
        if let Ok(r) = http.get(&url).send().await {
            if r.status().is_success() {
                break started.elapsed().as_secs_f64() * 1000.0;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no first response"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    stop(child);
    ms
}

/// The rules engine's worst case: the largest rule set the API accepts (2,000 keywords,
/// 50,000 keyword characters), every mode, against a 6,000-character message that matches
/// nothing. Native time per message (the Worker's wasm is typically 1.5-3x slower).
fn rules_worst_case() -> String {
    use tiktok_messaging_worker::rules::engine::{decide, parse_rules, ConversationState};
    use tiktok_messaging_worker::time::LocalTime;
    let modes = ["exact", "contains", "any_of"];
    let rules: Vec<serde_json::Value> = (0..20)
        .map(|r| {
            let kws: Vec<String> = (0..100)
                .map(|k| format!("w{r}x{k} abcdefghij klmno"))
                .collect();
            json!({"id": format!("r{r}"), "match": modes[r % 3], "keywords": kws, "text": "t"})
        })
        .collect();
    let set = parse_rules(json!({ "rules": rules }).to_string().as_bytes(), |_| true)
        .expect("the worst-case set is accepted");
    let conv = ConversationState {
        inbound_count: 2,
        last_inbound_at: Some(0),
        ..ConversationState::default()
    };
    let message = "lorem ipsum dolor sit amet abcdefghij klmnopqr ".repeat(130);
    let message = &message[..6000];
    let t = Instant::now();
    let n = 50;
    for _ in 0..n {
        let plan = decide(
            &set,
            &conv,
            Some(message),
            None,
            LocalTime {
                weekday: 0,
                minute: 600,
            },
            0,
        );
        assert!(plan.messages.is_empty());
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    format!(
        "| rules engine worst case per message (2,000 keywords, 6,000-character message, native) | {per:.2} ms |\n"
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = env_num("BENCH_SECS", 10);
    let conc = env_num("BENCH_CONCURRENCY", 16);
    let root = root();
    let status = Command::new("bash")
        .arg("scripts/build.sh")
        .current_dir(&root)
        .status()
        .expect("build");
    assert!(status.success(), "build failed");
    resolve_options(&root);

    let sim = Sim::start(KEY, SECRET, 0).await.expect("simulator");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = json!({
        "TIKTOK_CLIENT_KEY": KEY, "TIKTOK_CLIENT_SECRET": SECRET, "API_KEYS": format!("admin:{ADMIN}"),
        "TOKEN_ENCRYPTION_KEY": ENC, "TIKTOK_API_BASE": sim.api_base(), "TIKTOK_AUTH_URL": sim.auth_url(),
        "OAUTH_REDIRECT_URI": format!("http://127.0.0.1:{port}/oauth/callback/"),
    });
    sim.register_redirect_uri(&format!("http://127.0.0.1:{port}/oauth/callback/"));
    let log_path = std::env::temp_dir().join(format!("tmw-bench-{}.log", std::process::id()));
    let spawned = Instant::now();
    let log = std::fs::File::create(&log_path).expect("log file");
    let log_err = std::fs::File::create(log_path.with_extension("err")).expect("log file");
    let child = serve(
        &root,
        port,
        &vars.to_string(),
        false,
        log.into(),
        log_err.into(),
    );
    let pid = child.id();
    // The Worker's logs go to a file: a pipe nobody drains would break node (EPIPE).
    let wait = Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.starts_with("ready ")) {
            break l.to_string();
        }
        assert!(
            wait.elapsed() < Duration::from_secs(60),
            "serve.mjs not ready:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"ready"), "serve.mjs: {line}");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        // The OAuth state is bound to the browser by a cookie.
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let first = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("first response");
    assert!(first.status().is_success());
    let cold_ms = spawned.elapsed().as_secs_f64() * 1000.0;
    let mf_ready_ms: f64 = parts.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let t = Instant::now();
    http.get(format!("{base}/health")).send().await.unwrap();
    let warm_health_ms = t.elapsed().as_secs_f64() * 1000.0;

    // Connect the account and store rules that answer every message.
    let start = http
        .get(format!("{base}/oauth/start"))
        .send()
        .await
        .unwrap();
    let loc = start.headers()["location"].to_str().unwrap().to_string();
    let auth = http
        .get(format!("{loc}&sim_open_id={ACCOUNT}"))
        .send()
        .await
        .unwrap();
    let cb = auth.headers()["location"].to_str().unwrap().to_string();
    assert!(
        http.get(cb).send().await.unwrap().status().is_success(),
        "account connected"
    );
    let rules = json!({"rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "Prices are on the site."}]});
    let r = http
        .put(format!("{base}/v1/rules"))
        .bearer_auth(ADMIN)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let mut phases = Vec::new();

    // Webhook path: valid signature, new message, auto-reply in wait_until.
    let sent_before = sim.sent().len();
    let cpu0 = workerd_cpu_secs(pid);
    let (h, s, hook) = (http.clone(), sim.clone(), format!("{base}/webhooks/tiktok"));
    let (lat, errors, elapsed) = load(secs, conc, move |n| {
        let (h, s, hook) = (h.clone(), s.clone(), hook.clone());
        async move {
            let content = json!({"conversation_id": format!("bench-c{}", n % 997), "message_id": format!("bench-m{n}"),
                "type": "text", "text": {"body": "what is the price?"}, "from_user": {"id": "u", "role": "personal_account"}});
            let body = s.event("im_receive_msg", ACCOUNT, &content);
            let sig = Sim::signature(SECRET, tiktok_sim::now(), &body);
            matches!(h.post(&hook).header("TikTok-Signature", sig).body(body).send().await, Ok(r) if r.status().is_success())
        }
    })
    .await;
    let accepted = lat.len() as u64 - errors;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while ((sim.sent().len() - sent_before) as u64) < accepted && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replies = (sim.sent().len() - sent_before) as u64;
    let cpu = workerd_cpu_secs(pid) - cpu0;
    phases.push(Phase::measured(
        "webhook (verify + accept; reply after response)",
        &lat,
        errors,
        elapsed,
        cpu,
    ));

    // Send path: POST /v1/messages text.
    let cpu0 = workerd_cpu_secs(pid);
    let (h, url) = (http.clone(), format!("{base}/v1/messages"));
    let (lat, errors, elapsed) = load(secs, conc, move |n| {
        let (h, url) = (h.clone(), url.clone());
        async move {
            let body = json!({"account_id": ACCOUNT, "conversation_id": format!("bench-s{}", n % 997), "type": "text", "text": "Your order shipped"});
            matches!(h.post(&url).bearer_auth(ADMIN).json(&body).send().await, Ok(r) if r.status().is_success())
        }
    })
    .await;
    let cpu = workerd_cpu_secs(pid) - cpu0;
    phases.push(Phase::measured(
        "send (POST /v1/messages text)",
        &lat,
        errors,
        elapsed,
        cpu,
    ));

    stop(child);

    let wasm = root.join("build/index_bg.wasm");
    let raw = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    let gz = Command::new("bash")
        .arg("-c")
        .arg("gzip -9 -c build/index_bg.wasm | wc -c")
        .current_dir(&root)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let mut ours = Vec::new();
    let mut base_line = Vec::new();
    for _ in 0..3 {
        ours.push(cold_start(&root, false, &vars.to_string()).await);
        base_line.push(cold_start(&root, true, "{}").await);
    }
    let (ours, base_line) = (median(ours), median(base_line));
    let machine = Command::new("bash")
        .arg("-c")
        .arg(
            "echo \"$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"",
        )
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let mut out = String::new();
    out.push_str(&format!("Machine: {machine}; load: {conc} concurrent connections, {secs} s per path, loopback; the simulator runs in the load generator's process.\n\n"));
    out.push_str("| path | requests | errors | req/s | p50 ms | p99 ms | workerd CPU s / 1000 req |\n|---|---|---|---|---|---|---|\n");
    for p in &phases {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.3} |\n",
            p.name,
            p.requests,
            p.errors,
            p.requests as f64 / p.secs,
            p.p50_ms,
            p.p99_ms,
            p.cpu_per_1000
        ));
    }
    out.push_str(&format!("\nAuto-replies delivered for the webhook path: {replies} of {accepted} accepted (CPU figure includes them).\n\n"));
    out.push_str("| figure | value |\n|---|---|\n");
    out.push_str(&format!(
        "| .wasm raw | {:.0} KiB |\n| .wasm gzip -9 | {:.0} KiB |\n",
        raw as f64 / 1024.0,
        gz as f64 / 1024.0
    ));
    out.push_str(&format!(
        "| cold start: spawn → first response (Miniflare + workerd + module) | {cold_ms:.0} ms |\n"
    ));
    out.push_str(&format!("| of which Miniflare ready | {mf_ready_ms:.0} ms |\n| warm /health round trip | {warm_health_ms:.2} ms |\n"));
    out.push_str(&format!(
        "| cold start, median of 3: spawn → first response, this Worker | {ours:.0} ms |\n| same for a one-line JS Worker (baseline) | {base_line:.0} ms |\n| what this module adds to a cold start (compile + instantiate + first request) | {:.0} ms |\n",
        ours - base_line
    ));
    out.push_str(&rules_worst_case());
    println!("\n{out}");
    let dir = root.join("bench/results");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("latest.md");
    std::fs::write(&path, &out).expect("write results");
    println!("results written to {}", path.display());
}
