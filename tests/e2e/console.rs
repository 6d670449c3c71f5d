//! Issue 15: the admin console in a real browser (headless Chromium over WebDriver) against the
//! Worker in local workerd and the simulator: sign in, connect an account, see a DM arrive,
//! answer it, pause the bot, fix a rule the API refused, replay a failure, register the
//! webhook, sign out; a sender key sees only the inbox. Each page is saved as a screenshot at
//! desktop and phone width under `target/console-screenshots/`.

use crate::browser::Browser;
use crate::harness::{Worker, ADMIN_KEY, SENDER_KEY};
use crate::{send, Env};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_sim::{Fault, Incoming};

/// A JS string literal of `s`.
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Waits until the simulator got `text` in `conv` (8 s at most).
async fn arrived(env: &Env, conv: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let sent = env.sim.sent_to(conv);
        if sent.iter().any(|m| m.body["text"]["body"] == text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never reached TikTok: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn the_console_works_in_a_real_browser(env: Arc<Env>) {
    let w = Worker::start(&env.sim, "console", |_| {});
    let page = send(env.http.get(format!("{}/admin", w.url))).await;
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    // Scripts come from the Worker's own file only: nothing inline that the policy would block.
    assert!(page
        .text
        .contains("<script src=\"/admin/app.js\" defer></script>"));
    assert!(!page.text.contains("<script>") && !page.text.contains("<style"));
    // The console's files are static assets with the same headers (public/_headers); the
    // asset server's own configuration is never served.
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let r = send(env.http.get(format!("{}/admin/{file}", w.url))).await;
        assert_eq!(r.status, 200, "{file}");
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with(kind),
            "{file}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{file}"
        );
        assert_eq!(r.header("content-security-policy"), Some(csp), "{file}");
    }
    let slash = send(env.http.get(format!("{}/admin/", w.url))).await;
    assert_eq!(
        (slash.status, slash.header("location")),
        (307, Some("/admin"))
    );
    let config = send(env.http.get(format!("{}/_headers", w.url))).await;
    assert_eq!(config.status, 404);

    // TikTok echoes the console's sends to this Worker (the inbox keeps them from the echo).
    crate::inbox::subscribe_at(&env, &w.url).await;
    let b = Browser::start(1280, 900).await;
    let admin = format!("{}/admin", w.url);
    b.goto(&admin).await;
    b.find("#key").await;
    b.screenshot("signin-desktop").await;
    b.type_in("#key", "not-a-key-of-this-worker").await;
    b.click("#signin-form button").await;
    b.wait_for(
        "document.querySelector('#signin-error').textContent.includes('not valid')",
        "a refused key",
    )
    .await;
    b.type_in("#key", ADMIN_KEY).await;
    b.click("#signin-form button").await;
    b.find("#connect").await;
    let kept = b
        .js(
            "return [location.href, document.cookie, sessionStorage.length, localStorage.length];",
            json!([]),
        )
        .await;
    assert!(
        !kept.to_string().contains(ADMIN_KEY),
        "the key is not in the URL or a cookie: {kept}"
    );
    assert_eq!(
        (kept[2].clone(), kept[3].clone()),
        (json!(1), json!(0)),
        "sessionStorage only"
    );

    // Connect: the console starts the OAuth flow, TikTok (the simulator) consents, and the
    // callback page leads back to the console, still signed in.
    b.click("#connect").await;
    b.wait_for(
        "document.querySelector('main[data-code=connected]')",
        "the connected page",
    )
    .await;
    let account = b
        .js(
            "return document.querySelector('[data-account]').dataset.account;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    b.click("main a").await;
    let card = format!("#accounts li[data-account={}]", lit(&account));
    b.find(&card).await;
    assert!(b.text(&card).await.contains("Active"));
    b.screenshot("accounts-desktop").await;

    // A customer writes: the DM shows in the inbox, unread.
    let conv = env.sim.new_conversation_id();
    env.sim
        .set_customer("cust-console", "lea.martin", "Léa Martin");
    let dm = env.sim.customer_message(
        Incoming::text(&account, &conv, "Do you ship to Lyon?").from_customer("cust-console"),
    );
    let (status, text) = env
        .sim
        .deliver(&format!("{}/webhooks/tiktok", w.url), &dm.body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    b.click("a[href='#inbox']").await;
    let item = format!("#conversations li[data-conversation={}]", lit(&conv));
    b.find(&item).await;
    assert!(b.text(&item).await.contains("Do you ship to Lyon?"));
    // Unread until a person opens it; opening it marks it read.
    b.find(&format!("{item} .badge.count")).await;
    b.click(&item).await;
    b.wait_for(
        &format!(
            "!document.querySelector({})",
            lit(&format!("{item} .badge.count"))
        ),
        "the unread badge cleared",
    )
    .await;
    b.wait_for(
        "document.querySelector('#messages').innerText.includes('Do you ship to Lyon?')",
        "the DM",
    )
    .await;
    b.wait_for(
        "document.querySelector('#thread-title').textContent === 'Léa Martin'",
        "the customer's name",
    )
    .await;

    // Answer it: the reply reaches TikTok and shows in the thread.
    b.type_in("#reply-text", "Yes, in two days.").await;
    b.click("#reply button[type=submit]").await;
    arrived(&env, &conv, "Yes, in two days.").await;
    b.wait_for(
        "document.querySelector('#messages').innerText.includes('Yes, in two days.')",
        "the reply",
    )
    .await;
    // Stored (from TikTok's echo): still there when the page is loaded again.
    b.goto(&format!("{admin}#inbox")).await;
    b.click(&item).await;
    b.wait_for(
        "[...document.querySelectorAll('#messages li[data-source=api]')].some(li => li.innerText.includes('Yes, in two days.'))",
        "the reply kept in the history",
    )
    .await;
    // TikTok's refusal in plain words.
    env.sim
        .push_faults("/business/message/send/", [Fault::Code { code: 40064 }]);
    b.type_in("#reply-text", "One more thing").await;
    b.click("#reply button[type=submit]").await;
    b.wait_for(
        "document.querySelector('#reply-error').textContent.includes('48 hours')",
        "the refusal explained",
    )
    .await;

    // Pause the bot.
    b.click("#thread-pause").await;
    b.wait_for(
        "document.querySelector('#thread-pause').textContent === 'Resume the bot'",
        "the pause",
    )
    .await;
    let path = format!(
        "/v1/conversations/{}/handoff?account_id={account}",
        crate::contract::enc(&conv)
    );
    let h = env
        .call_at(&w.url, "GET", &path, Some(SENDER_KEY), None)
        .await
        .json();
    assert_eq!(
        (h["paused"].clone(), h["paused_by"].clone()),
        (json!(true), json!("manual"))
    );
    b.find(&format!("{item} .badge.warn")).await;
    b.screenshot("inbox-desktop").await;

    // Rules: a rule without keywords is refused at its field; fixed, it is saved; a dry run.
    b.click("a[href='#rules']").await;
    b.find("#rules-form").await;
    b.click("#rules-add").await;
    b.type_in(
        "[data-field='rules[0].text']",
        "We ship everywhere in France.",
    )
    .await;
    b.click("#rules-form button[type=submit]").await;
    b.wait_for(
        "document.querySelector('[data-error-for=\"rules[0].keywords\"]').textContent.length > 0",
        "the error at the rule's keywords",
    )
    .await;
    b.screenshot("rules-error-desktop").await;
    b.type_in("[data-field='rules[0].keywords']", "ship, delivery")
        .await;
    b.click("#rules-form button[type=submit]").await;
    b.wait_for(
        "document.querySelector('#rules-saved').textContent.startsWith('Saved')",
        "the save",
    )
    .await;
    let stored = env
        .call_at(&w.url, "GET", "/v1/rules", Some(ADMIN_KEY), None)
        .await
        .json();
    assert_eq!(
        stored["rules"]["rules"][0]["keywords"],
        json!(["ship", "delivery"]),
        "{stored}"
    );
    // An edit in the JSON wins over the form and is saved as written.
    b.click("#rules-form summary").await;
    let edited = json!({"rules": [{"id": "rule-1", "match": "any_of", "keywords": ["ship", "delivery", "1,5 kg"],
                                   "text": "Edited in JSON."}]});
    // Pasted in (as a person would: no change event until the field is left), then Save.
    b.js(
        "const t = document.querySelector('#rules-json'); t.value = arguments[0]; \
         t.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([edited.to_string()]),
    )
    .await;
    b.js(
        "document.querySelector('#rules-saved').textContent = '';",
        json!([]),
    )
    .await;
    b.click("#rules-form button[type=submit]").await;
    b.wait_for(
        "document.querySelector('#rules-saved').textContent.startsWith('Saved')",
        "the JSON save",
    )
    .await;
    assert_eq!(
        b.js(
            "return document.querySelector('[data-field=\"rules[0].text\"]').value;",
            json!([])
        )
        .await,
        json!("Edited in JSON."),
        "the form follows the JSON"
    );
    let stored = env
        .call_at(&w.url, "GET", "/v1/rules", Some(ADMIN_KEY), None)
        .await
        .json();
    assert_eq!(
        stored["rules"]["rules"][0]["text"], "Edited in JSON.",
        "{stored}"
    );
    assert_eq!(
        stored["rules"]["rules"][0]["keywords"],
        json!(["ship", "delivery", "1,5 kg"]),
        "a comma kept"
    );
    b.type_in(
        "[data-field='rules[0].text']",
        "We ship everywhere in France.",
    )
    .await;
    b.click("#rules-form button[type=submit]").await;
    b.wait_for(
        "document.querySelector('#rules-json').value.includes('We ship everywhere in France.')",
        "the form's edit in the JSON",
    )
    .await;
    b.type_in("#try-text", "do you ship?").await;
    b.click("#try button").await;
    b.wait_for(
        "document.querySelector('#try-result').innerText.includes('Would fire: rule-1')",
        "the dry run",
    )
    .await;
    b.screenshot("rules-desktop").await;

    // A reply that fails after its retries shows under Failures; Replay sends it.
    env.sim.push_faults(
        "/business/message/send/",
        std::iter::repeat_n(Fault::Code { code: 51065 }, 4),
    );
    let conv2 = env.sim.new_conversation_id();
    let dm2 = env
        .sim
        .customer_message(Incoming::text(&account, &conv2, "delivery to Nantes?"));
    env.sim
        .deliver(&format!("{}/webhooks/tiktok", w.url), &dm2.body)
        .await
        .unwrap();
    let failures = env
        .failures_at(&w.url, Some(&account), 1, Duration::from_secs(15))
        .await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    b.click("a[href='#failures']").await;
    let row = format!(
        "#failures li[data-failure={}]",
        lit(failures[0]["id"].as_str().unwrap())
    );
    b.find(&row).await;
    assert!(b.text(&row).await.contains("tiktok_system_error"));
    b.screenshot("failures-desktop").await;
    b.click(&format!("{row} button")).await;
    b.wait_for(
        "document.querySelector('#flash').textContent.includes('Replayed')",
        "the replay",
    )
    .await;
    arrived(&env, &conv2, "We ship everywhere in France.").await;

    // Settings: health, and registering the webhook.
    b.click("a[href='#settings']").await;
    b.wait_for(
        "document.querySelector('#health').innerText.includes('ok')",
        "the health",
    )
    .await;
    b.click("#subscribe").await;
    b.wait_for(
        "document.querySelector('#subscription').textContent.includes('/webhooks/tiktok')",
        "the subscription",
    )
    .await;
    assert_eq!(
        env.sim.webhook_url(),
        Some(format!("{}/webhooks/tiktok", w.url))
    );
    b.screenshot("settings-desktop").await;
    env.call_at(
        &w.url,
        "DELETE",
        "/v1/webhook-subscription",
        Some(ADMIN_KEY),
        None,
    )
    .await;

    // Every page at phone width.
    b.size(390, 844).await;
    for tab in ["accounts", "inbox", "rules", "failures", "settings"] {
        b.js(&format!("location.hash = '#{tab}';"), json!([])).await;
        b.find(&format!("#tab-{tab}")).await;
        if tab == "inbox" {
            b.click(&item).await;
            b.find("#reply-text").await;
        }
        b.js("window.scrollTo(0, 0);", json!([])).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.screenshot(&format!("{tab}-phone")).await;
        let wide = b
            .js(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                json!([]),
            )
            .await;
        assert_eq!(wide, json!(true), "{tab}: nothing wider than a phone");
    }

    // Disconnect asks first, then the account is gone.
    b.size(1280, 900).await;
    b.click("a[href='#accounts']").await;
    b.click(&format!("{card} button.danger-text")).await;
    b.accept_dialog().await;
    b.wait_for(
        &format!("!document.querySelector({})", lit(&card)),
        "the account gone",
    )
    .await;

    // Sign out: the key is forgotten. A sender key sees the inbox only.
    b.click("#signout").await;
    b.find("#key").await;
    assert_eq!(
        b.js("return sessionStorage.length;", json!([])).await,
        json!(0)
    );
    b.size(390, 844).await;
    b.screenshot("signin-phone").await;
    b.size(1280, 900).await;
    b.type_in("#key", SENDER_KEY).await;
    b.click("#signin-form button").await;
    b.find("#inbox-account-id").await;
    let hidden: Value = b
        .js("return ['accounts','rules','failures','settings'].map(t => document.querySelector(`#tabs a[href='#${t}']`).hidden);", json!([]))
        .await;
    assert_eq!(
        hidden,
        json!([true, true, true, true]),
        "admin pages hidden from a sender key"
    );
}
