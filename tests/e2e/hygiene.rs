//! Issue 6: secret hygiene. A full flow with distinctive secrets and tokens; none of them may
//! appear in any log line of the Worker or in any response it gave.

use crate::harness::{ADMIN_KEY, CLIENT_SECRET, ENC_KEY, SENDER_KEY};
use crate::oauth::{consent, page_code};
use crate::{send, Env};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub async fn no_secret_or_token_in_logs_or_responses(env: Arc<Env>) {
    let mut responses = Vec::new();
    let account = "e2e-hygiene";
    // Connect with a short-lived token so the flow refreshes too.
    env.sim.settings(|s| s.access_ttl = 60);
    let cb = consent(
        &env,
        &env.worker.url,
        None,
        &format!("&sim_open_id={account}"),
    )
    .await;
    let r = send(env.http.get(&cb)).await;
    assert_eq!(page_code(&r), "connected");
    responses.push(r.text);
    env.sim.settings(|s| s.access_ttl = 86_400);
    let rules =
        json!({"rules": [{"id": "p", "match": "contains", "keywords": ["price"], "text": "P"}]});
    responses.push(
        env.call("PUT", "/v1/rules", Some(ADMIN_KEY), Some(&rules))
            .await
            .text,
    );
    let send_body =
        json!({"account_id": account, "conversation_id": "hy-c", "type": "text", "text": "hello"});
    responses.push(
        env.call("POST", "/v1/messages", Some(SENDER_KEY), Some(&send_body))
            .await
            .text,
    );
    responses.push(
        env.call(
            "GET",
            &format!("/v1/conversations?account_id={account}"),
            Some(SENDER_KEY),
            None,
        )
        .await
        .text,
    );
    let body = env.sim.event("im_receive_msg", account, &json!({"conversation_id": "hy-c", "message_id": "hy-m1",
        "type": "text", "text": {"body": "price"}, "from_user": {"id": "u", "role": "personal_account"}}));
    responses.push(
        env.sim
            .deliver(&env.url("/webhooks/tiktok"), &body)
            .await
            .unwrap()
            .1,
    );
    // A rejected token, an error path and the admin views.
    env.sim
        .push_faults("/message/send/", [tiktok_sim::Fault::Code { code: 40105 }]);
    responses.push(
        env.call("POST", "/v1/messages", Some(SENDER_KEY), Some(&send_body))
            .await
            .text,
    );
    for (method, path) in [
        ("GET", "/v1/accounts"),
        ("GET", "/health?probe=tiktok"),
        ("PUT", "/v1/webhook-subscription"),
        ("GET", "/v1/webhook-subscription"),
        ("GET", "/v1/events/failed"),
    ] {
        responses.push(env.call(method, path, Some(ADMIN_KEY), None).await.text);
    }
    responses.push(
        env.call(
            "DELETE",
            &format!("/v1/accounts/{account}"),
            Some(ADMIN_KEY),
            None,
        )
        .await
        .text,
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.into(),
        ADMIN_KEY.into(),
        SENDER_KEY.into(),
        ENC_KEY.into(),
    ];
    let tokens = env.sim.issued_tokens();
    assert!(tokens.len() >= 4, "the flow issued and refreshed tokens");
    secrets.extend(tokens);
    let logs = env.worker.logs();
    assert!(
        logs.contains("\"account_id\":\"e2e-hygiene\""),
        "the flow's own log lines were captured"
    );
    for s in &secrets {
        assert!(
            !logs.contains(s.as_str()),
            "a secret or token appears in the Worker's logs"
        );
        for r in &responses {
            assert!(
                !r.contains(s.as_str()),
                "a secret or token appears in a response: {r}"
            );
        }
    }
    // Every line the Worker and its actors wrote is JSON with a request id (cron and alarms
    // get their own), so a log line can always be joined to what caused it.
    let lines = env.worker.log_lines();
    assert!(lines.len() > 100, "{} JSON log lines", lines.len());
    for l in &lines {
        assert!(
            l["request_id"].as_str().is_some_and(|r| !r.is_empty()),
            "log line without request id: {l}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l["request_id"].as_str().unwrap().starts_with("cron-")));
    eprintln!(
        "secret hygiene: {} secrets/tokens checked against {} bytes of logs and {} responses",
        secrets.len(),
        logs.len(),
        responses.len()
    );
}
