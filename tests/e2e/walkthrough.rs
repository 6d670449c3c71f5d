//! Issue 11: the README's local walkthrough, run line for line as it is written (only the
//! Worker's and the simulator's addresses are this run's own).

use crate::harness::Worker;
use crate::Env;
use std::sync::Arc;

/// The shell lines of the README block marked `<!-- walkthrough`.
fn readme_walkthrough() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("<!-- walkthrough")
        .expect("README has the walkthrough");
    let block = &readme[start..];
    let open = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let close = block[open..].find("```").expect("closed block");
    block[open..open + close].to_string()
}

/// The setting's value in `.dev.vars.example` (what `make dev` uses).
fn dev_var(name: &str) -> String {
    include_str!("../../.dev.vars.example")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_default()
        .to_string()
}

pub async fn readme_walkthrough_works_as_written(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "walkthrough", |v| {
        for name in ["API_KEYS", "DEFAULT_RULES"] {
            v.retain(|(k, _)| *k != name);
            v.push((name, Some(dev_var(name))));
        }
    });
    let script = readme_walkthrough()
        .replace("http://127.0.0.1:8787", &w.url)
        .replace("http://127.0.0.1:9797", &env.sim.origin);
    let out = tokio::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("bash");
    // Whatever happened, the simulator stops sending to this instance.
    env.call_at(
        &w.url,
        "DELETE",
        "/v1/webhook-subscription",
        Some(&dev_var("API_KEYS")["admin:".len()..dev_var("API_KEYS").find(',').unwrap()]),
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{stdout}\n{stderr}"
    );
    for expected in [
        "\"status\":\"ok\"",
        "TikTok account connected",
        "\"callback_url\"",
        "\"worker_status\":200",
        "Thanks for your message",
        "It is 49 EUR",
        "Our prices are on acme.example/prices",
        "\"rule\":\"price\"",
        "\"source\":\"api\"",
        "\"unread\":2",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing in:\n{stdout}"
        );
    }
}
