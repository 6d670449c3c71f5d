//! End-to-end harness: the real `.wasm` (built by `scripts/build.sh`, cached) served in local
//! workerd by Miniflare (`scripts/serve.mjs`, bindings from wrangler.toml) with fresh local KV
//! and Durable Object state, talking to the in-process TikTok
//! simulator. Every process started here is killed on drop, also when a test fails.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tiktok_sim::Sim;

/// Process groups and log files of the instances alive right now, so the run's watchdog can
/// report and stop them if the run hangs.
static LIVE: Mutex<Vec<(i32, PathBuf)>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<(i32, PathBuf)>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Called when the whole run overran: prints what every live instance logged last, stops them
/// all and exits, so a hang fails fast with evidence instead of holding CI until its limit.
pub fn abort_run(why: &str) -> ! {
    eprintln!("e2e: {why}");
    let all = live().clone();
    for (pgid, log) in &all {
        eprintln!("--- last lines of {} ---\n{}", log.display(), tail(log, 60));
        // SAFETY: kill(2) with a negative pid signals only that process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    std::process::exit(2)
}

pub const CLIENT_KEY: &str = "e2e-client-key";
pub const CLIENT_SECRET: &str = "e2e-client-secret-XYZZY-9f3k";
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";
pub const SENDER_KEY: &str = "e2e-sender-key-0123456789abcdef";
pub const ENC_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Node.js that runs `scripts/serve.mjs` and wrangler: the pinned Node 22 that
/// `scripts/bootstrap.sh` installs under `.tools/node` when the machine's node is older than
/// wrangler needs (as `scripts/env.sh` puts it first on PATH for the scripts), else `node`.
pub fn node() -> PathBuf {
    let local = root().join(".tools/node/bin/node");
    if local.exists() {
        local
    } else {
        PathBuf::from("node")
    }
}

/// PATH with the directory of [`node`] first, for anything a child starts by name.
fn path_with_node() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = node().parent().map(Path::to_path_buf).into_iter().collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs.into_iter().filter(|d| !d.as_os_str().is_empty())).unwrap_or_default()
}

/// Builds the release `.wasm` once (the script skips unchanged inputs).
pub fn build_wasm() {
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(root().join("scripts/build.sh"))
        .status()
        .expect("run scripts/build.sh");
    assert!(status.success(), "scripts/build.sh failed");
    eprintln!("e2e: wasm ready in {:.1}s", started.elapsed().as_secs_f64());
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The settings a Worker instance gets: name → value; `None` leaves it unset.
pub fn default_vars(sim: &Sim, port: u16) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("TIKTOK_CLIENT_KEY", Some(CLIENT_KEY.into())),
        ("TIKTOK_CLIENT_SECRET", Some(CLIENT_SECRET.into())),
        ("API_KEYS", Some(format!("admin:{ADMIN_KEY},{SENDER_KEY}"))),
        ("TOKEN_ENCRYPTION_KEY", Some(ENC_KEY.into())),
        ("TIKTOK_API_BASE", Some(sim.api_base())),
        ("TIKTOK_AUTH_URL", Some(sim.auth_url())),
        ("OAUTH_REDIRECT_URI", Some(redirect_uri(sim, port))),
        // The simulator's test images are on 127.0.0.1 with a port of its own.
        ("IMAGE_FETCH_ALLOWED_HOSTS", Some("127.0.0.1".into())),
    ]
}

/// The Worker's redirect URI, registered with the simulator as a TikTok app's would be.
pub fn redirect_uri(sim: &Sim, port: u16) -> String {
    let uri = format!("http://127.0.0.1:{port}/oauth/callback/");
    sim.register_redirect_uri(&uri);
    uri
}

/// One local workerd (Miniflare) serving the built Worker.
pub struct Worker {
    pub url: String,
    pub port: u16,
    dir: PathBuf,
    child: Child,
    server: Server,
}

/// What serves an instance.
#[derive(Clone, Copy, PartialEq)]
pub enum Server {
    /// `scripts/serve.mjs`: Miniflare, requests straight to workerd. Every test but one.
    Miniflare,
    /// `wrangler dev`, as `make dev` runs it (with a proxy in front of workerd, and slower to
    /// start), so only a short check uses it.
    WranglerDev,
}

impl Worker {
    /// Starts an instance; `edit` may change the settings before they are written.
    pub fn start(
        sim: &Sim,
        name: &str,
        edit: impl FnOnce(&mut Vec<(&'static str, Option<String>)>),
    ) -> Worker {
        Self::start_on(Server::Miniflare, sim, name, edit)
    }

    /// Starts an instance served by `server`.
    pub fn start_on(
        server: Server,
        sim: &Sim,
        name: &str,
        edit: impl FnOnce(&mut Vec<(&'static str, Option<String>)>),
    ) -> Worker {
        let port = free_port();
        let mut vars = default_vars(sim, port);
        edit(&mut vars);
        let dir =
            std::env::temp_dir().join(format!("tmw-e2e-{}-{name}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        write_config(&dir, &vars);
        let child = spawn(server, &dir, port);
        live().push((child.id() as i32, dir.join("worker.log")));
        let mut w = Worker {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            child,
            server,
        };
        w.wait_ready();
        w
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the Worker's server exited ({status}) before ready:\n{}",
                    self.logs()
                );
            }
            if http_ok(self.port) {
                eprintln!(
                    "e2e: worker ready on {} in {:.1}s",
                    self.url,
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the Worker not ready within 90 s:\n{}", self.logs());
    }

    /// Everything the Worker and Miniflare printed so far.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("worker.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits up to 5 s for the logs to contain `needle` (output reaches the file asynchronously).
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The Worker's own JSON log lines.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| {
                let (i, j) = (l.find('{')?, l.rfind('}')?);
                serde_json::from_str(l.get(i..=j)?).ok()
            })
            .filter(|v: &serde_json::Value| v.get("msg").is_some() && v.get("level").is_some())
            .collect()
    }

    /// Restarts with changed settings (same port and persisted state).
    pub fn restart_with(
        &mut self,
        sim: &Sim,
        edit: impl FnOnce(&mut Vec<(&'static str, Option<String>)>),
    ) {
        let mut vars = default_vars(sim, self.port);
        edit(&mut vars);
        write_config(&self.dir, &vars);
        self.restart();
    }

    /// Stops the process and starts it again on the same port and state (a restart).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.server, &self.dir, self.port);
        live().push((self.child.id() as i32, self.dir.join("worker.log")));
        self.wait_ready();
    }

    /// Resident memory of this instance's processes (Miniflare's node and its workerd), KiB.
    pub fn memory_kib(&self) -> u64 {
        let pgid = self.child.id() as i64;
        let mut total = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command's closing parenthesis: state, ppid, pgrp, ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.get(2).and_then(|g| g.parse::<i64>().ok()) != Some(pgid) {
                continue;
            }
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            total += status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }

    /// The last `n` lines this instance logged.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.dir.join("worker.log"), n)
    }

    fn kill(&mut self) {
        // The whole group: Miniflare's node process and the workerd it started.
        let pgid = -(self.child.id() as i32);
        live().retain(|(g, _)| *g != -pgid);
        // SAFETY: kill(2) with a negative pid signals only that process group.
        unsafe { libc::kill(pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        // workerd may linger briefly holding the port.
        let deadline = Instant::now() + Duration::from_secs(5);
        while http_ok(self.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts the server for the config in `dir`, with KV and Durable Object state persisted in
/// `dir/state`, appending its output to `dir/worker.log`.
fn spawn(server: Server, dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("worker.log"))
        .expect("log file");
    let mut cmd = match server {
        Server::Miniflare => {
            let mut c = Command::new(node());
            c.arg(root().join("scripts/serve.mjs"))
                .env("CONFIG", dir.join("wrangler.toml"))
                .env("PORT", port.to_string())
                .env("PERSIST", dir.join("state"));
            c
        }
        Server::WranglerDev => {
            let mut c = Command::new(node());
            c.arg(root().join("node_modules/wrangler/bin/wrangler.js"))
                .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
                .args(["--inspector-port", &free_port().to_string()])
                .arg("--persist-to")
                .arg(dir.join("state"))
                .args(["--test-scheduled", "--show-interactive-dev-session=false"])
                // Its own dev registry: instances must not see each other.
                .env("WRANGLER_REGISTRY_PATH", dir.join("registry"));
            c
        }
    };
    cmd.current_dir(dir)
        .env("PATH", path_with_node())
        .env("WRANGLER_SEND_METRICS", "false")
        // No network: wrangler dev's placeholder `request.cf` instead of fetching Cloudflare's.
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start the Worker's server (run scripts/bootstrap.sh first)")
}

/// A blocking readiness probe without an HTTP client: any HTTP answer to /health counts.
fn http_ok(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Writes a wrangler.toml derived from the project's (same bindings, absolute `main` and assets, no
/// build step) and a `.dev.vars` with the instance's settings.
fn write_config(dir: &Path, vars: &[(&'static str, Option<String>)]) {
    let text = std::fs::read_to_string(root().join("wrangler.toml")).expect("wrangler.toml");
    let mut doc: toml::Table = text.parse().expect("wrangler.toml parses");
    doc.insert(
        "main".into(),
        toml::Value::String(root().join("build/index.js").display().to_string()),
    );
    // The console and /openapi.json: the project's static assets, by absolute path.
    if let Some(toml::Value::Table(assets)) = doc.get_mut("assets") {
        assets.insert(
            "directory".into(),
            toml::Value::String(root().join("public").display().to_string()),
        );
    }
    doc.remove("build");
    // Vars come from .dev.vars only, so a test can leave one unset.
    doc.remove("vars");
    std::fs::write(
        dir.join("wrangler.toml"),
        toml::to_string(&doc).expect("toml"),
    )
    .expect("write");
    let dev_vars: String = vars
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}\n")))
        .collect();
    std::fs::write(dir.join(".dev.vars"), dev_vars).expect("write .dev.vars");
}
