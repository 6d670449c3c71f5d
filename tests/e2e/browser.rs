//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, which
//! `scripts/bootstrap.sh` installs): just the W3C commands the console tests use, over reqwest.
//! The driver and its browser run in their own process group, killed on drop.

use crate::harness::{free_port, root};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// W3C's key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    child: Child,
    base: String,
    http: reqwest::Client,
    log: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals only that process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Browser {
    /// A new headless browser `width`×`height`, with a fresh profile.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let dir = root().join("target/e2e-browser");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("chromedriver-{port}.log"));
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("chromedriver (scripts/bootstrap.sh installs chromium-driver)");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let status = format!("http://127.0.0.1:{port}/status");
        let deadline = Instant::now() + Duration::from_secs(10);
        while http.get(&status).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=1",
                format!("--window-size={width},{height}"),
            ]},
        }}});
        let mut b = Browser {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
            log,
        };
        let session = b.post("/session", caps).await;
        let id = session["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    async fn send(&self, rb: reqwest::RequestBuilder, what: &str) -> Value {
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("webdriver {what}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {what}: {status} {v}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(&url).json(&body), path).await
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), path).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn size(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Runs `script` (a function body; `arguments` as in WebDriver) and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Waits (10 s at most) until `condition` (a JS expression) is true; panics with `what`
    /// and the page's visible text otherwise.
    pub async fn wait_for(&self, condition: &str, what: &str) {
        let script = format!("return !!({condition});");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.js(&script, json!([])).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.js("return document.body.innerText;", json!([])).await;
                panic!("the console never showed {what}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` matches a displayed element and returns its reference.
    pub async fn find(&self, css: &str) -> String {
        let q = serde_json::to_string(css).unwrap();
        self.wait_for(
            &format!("(e => e && e.offsetParent !== null)(document.querySelector({q}))"),
            css,
        )
        .await;
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().expect("an element").to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Replaces the text of the input `css` by `text`, typed as a person would.
    pub async fn type_in(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        self.get(&format!("/element/{id}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn accept_dialog(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let url = format!("{}/alert/accept", self.base);
            if self
                .http
                .post(&url)
                .json(&json!({}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(Instant::now() < deadline, "no dialog to accept");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a PNG");
        let dir = root().join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}
