//! Typed configuration, read once per request from the Worker's `Env` through a lookup
//! function, so the parsing and its error messages are unit-tested natively.
//!
//! Problems are collected, not short-circuited: one error names every missing or malformed
//! item (never its value).

use crate::auth::ApiKeys;
use crate::crypto::Keyring;
use crate::error::Error;
use crate::rules::engine::RuleSet;
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Secret,
    Var,
}

/// One configuration item, documented once here and listed by `/health`.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))] // the documentation of a setting, checked by tests
pub struct Setting {
    pub name: &'static str,
    pub kind: SettingKind,
    pub required: bool,
    pub doc: &'static str,
}

/// The longest an OAuth state may live (`OAUTH_STATE_TTL_SECS`); single-use claims outlive it.
pub const MAX_STATE_TTL_SECS: u64 = 3_600;
pub const DEFAULT_API_BASE: &str = "https://business-api.tiktok.com/open_api/v1.3";
pub const DEFAULT_AUTH_URL: &str = "https://www.tiktok.com/v2/auth/authorize/";
pub const DEFAULT_SCOPES: &str =
    "user.info.basic,message.list.read,message.list.send,message.list.manage";

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "TIKTOK_CLIENT_KEY",
        kind: SettingKind::Secret,
        required: true,
        doc: "TikTok app client key (also the app id for webhook subscription calls)",
    },
    Setting {
        name: "TIKTOK_CLIENT_SECRET",
        kind: SettingKind::Secret,
        required: true,
        doc: "TikTok app client secret: token calls and webhook signature key",
    },
    Setting {
        name: "API_KEYS",
        kind: SettingKind::Secret,
        required: true,
        doc: "comma-separated API keys for /v1; prefix `admin:` for admin rights; >= 16 chars each",
    },
    Setting {
        name: "TOKEN_ENCRYPTION_KEY",
        kind: SettingKind::Secret,
        required: true,
        doc: "comma-separated base64 32-byte AES keys; the first encrypts, all decrypt",
    },
    Setting {
        name: "TIKTOK_API_BASE",
        kind: SettingKind::Var,
        required: false,
        doc: "TikTok Business API base URL (default: production)",
    },
    Setting {
        name: "TIKTOK_AUTH_URL",
        kind: SettingKind::Var,
        required: false,
        doc: "TikTok OAuth authorize page (default: production)",
    },
    Setting {
        name: "OAUTH_REDIRECT_URI",
        kind: SettingKind::Var,
        required: false,
        doc: "redirect URI registered in the TikTok app (default: this Worker's /oauth/callback/)",
    },
    Setting {
        name: "OAUTH_SCOPES",
        kind: SettingKind::Var,
        required: false,
        doc: "comma-separated scopes requested at consent",
    },
    Setting {
        name: "OAUTH_START_PROTECTED",
        kind: SettingKind::Var,
        required: false,
        doc: "`true`: /oauth/start needs an admin key (Bearer), so strangers cannot start flows",
    },
    Setting {
        name: "OAUTH_RETURN_TO_ALLOWED",
        kind: SettingKind::Var,
        required: false,
        doc: "comma-separated origins /oauth/start?return_to= may point at after consent",
    },
    Setting {
        name: "TOKEN_REFRESH_MARGIN_SECS",
        kind: SettingKind::Var,
        required: false,
        doc: "refresh an access token when it has less than this left (default 600)",
    },
    Setting {
        name: "OAUTH_STATE_TTL_SECS",
        kind: SettingKind::Var,
        required: false,
        doc: "how long a consent flow may take, in seconds (1..3600, default 600)",
    },
    Setting {
        name: "WEBHOOK_TOLERANCE_SECS",
        kind: SettingKind::Var,
        required: false,
        doc: "accepted age of a webhook signature timestamp, either way (1..3600, default 300)",
    },
    Setting {
        name: "EVENT_RETENTION_DAYS",
        kind: SettingKind::Var,
        required: false,
        doc: "how long delivered message ids are remembered for de-duplication (1..90, default 7)",
    },
    Setting {
        name: "DEFAULT_RULES",
        kind: SettingKind::Var,
        required: false,
        doc: "auto-reply rule set (JSON) used until one is stored with PUT /v1/rules",
    },
    Setting {
        name: "FORWARD_URLS",
        kind: SettingKind::Var,
        required: false,
        doc:
            "comma-separated URLs every verified event is forwarded to (signed with FORWARD_SECRET)",
    },
    Setting {
        name: "FORWARD_SECRET",
        kind: SettingKind::Secret,
        required: false,
        doc: "key for the webhook-signature header of forwarded events (needed with FORWARD_URLS)",
    },
    Setting {
        name: "NOTIFY_URLS",
        kind: SettingKind::Secret,
        required: false,
        doc: "comma-separated Slack incoming webhook, Discord webhook and Telegram bot sendMessage?chat_id= URLs that get a readable message on a new conversation, a customer message while the bot is paused or asking for a person, an account needing re-authorisation and a reply failed after retries",
    },
    Setting {
        name: "IMAGE_FETCH_ALLOWED_HOSTS",
        kind: SettingKind::Var,
        required: false,
        doc: "hosts (host or host:port) image URLs may use although they are IP literals or use another port: local testing only",
    },
    Setting {
        name: "FAULT_FAIL_KV_PUTS",
        kind: SettingKind::Var,
        required: false,
        doc: "fault tests only, never in production: `<key prefix>*<n>` makes the first n writes of such keys fail (Workers KV, and an actor's writes of several records together)",
    },
    Setting {
        name: "FAULT_ACTOR_CALLS_OVER_FETCH",
        kind: SettingKind::Var,
        required: false,
        doc: "fault tests only, never in production: when set, the Worker calls the account actors over fetch, as a Worker of the version before Durable Object RPC did",
    },
    Setting {
        name: "FAULT_PANIC_PATH",
        kind: SettingKind::Var,
        required: false,
        doc: "fault tests only, never in production: a request to exactly this path panics (the e2e suite checks that the runtime starts a fresh instance after a panic)",
    },
    Setting {
        name: "HANDOFF_PAUSE_SECS",
        kind: SettingKind::Var,
        required: false,
        doc: "how long auto-replies pause in a conversation after a staff reply or a handoff request, in seconds (1..2592000, default 3600)",
    },
    Setting {
        name: "HISTORY_RETENTION_DAYS",
        kind: SettingKind::Var,
        required: false,
        doc: "days conversation history is kept in the account actors' SQLite storage (1..3650, default 365)",
    },
    Setting {
        name: "LOG_LEVEL",
        kind: SettingKind::Var,
        required: false,
        doc: "least severe log lines written: debug, info, warn or error (default info)",
    },
    Setting {
        name: "TIKTOK_TIMEOUT_MS",
        kind: SettingKind::Var,
        required: false,
        doc: "deadline of one call to TikTok in milliseconds (200..30000, default 10000)",
    },
];

/// TikTok's rules for a redirect URI: absolute https (plain http only for a local host), no
/// query string, no fragment, shorter than 512 characters.
pub fn check_redirect_uri(u: &crate::weburl::Url) -> std::result::Result<(), &'static str> {
    let local = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if u.scheme() != "https" && !(u.scheme() == "http" && local) {
        return Err("TikTok accepts only https redirect URIs");
    }
    if u.query().is_some() {
        return Err("TikTok accepts no query string in a redirect URI");
    }
    if u.fragment().is_some() {
        return Err("TikTok accepts no #fragment in a redirect URI");
    }
    if u.as_str().len() >= 512 {
        return Err("TikTok accepts redirect URIs shorter than 512 characters");
    }
    Ok(())
}

/// The Worker's configuration, fully validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub client_key: String,
    pub client_secret: Secret,
    pub api_keys: ApiKeys,
    pub keyring: Keyring,
    /// Without trailing slash; endpoint paths are appended.
    pub api_base: String,
    pub auth_url: crate::weburl::Url,
    pub redirect_uri: Option<crate::weburl::Url>,
    pub scopes: Vec<String>,
    pub oauth_start_protected: bool,
    /// Origins (`scheme://host[:port]`) `return_to` may use.
    pub return_to_allowed: Vec<String>,
    pub refresh_margin_secs: u64,
    pub state_ttl_secs: u64,
    pub webhook_tolerance_secs: u64,
    pub event_retention_secs: u64,
    pub default_rules: RuleSet,
    pub forward_urls: Vec<crate::weburl::Url>,
    /// `host` or `host:port` entries exempt from the image URL host rules (local testing).
    pub image_fetch_allowed_hosts: Vec<String>,
    pub forward_secret: Option<Secret>,
    pub tiktok_timeout_ms: u64,
    /// Lines less severe than this are not written.
    pub log_level: crate::ports::Level,
    /// How long a staff reply or a customer's handoff request pauses auto-replies.
    pub handoff_pause_secs: u64,
    /// How long stored conversation history is kept.
    pub history_retention_days: u64,
    /// Where people get notifications (`NOTIFY_URLS`).
    pub notify_targets: Vec<crate::inbox::notify::Target>,
}

/// Reads and validates every setting. `lookup` returns a value if it is set and non-empty.
pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
    load_dyn(&lookup)
}

/// [`load`], compiled once (not once per caller's `lookup`: the Worker and its actors each
/// have one).
fn load_dyn(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, Error> {
    let mut problems = Vec::new();
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut required = |name: &str| {
        let v = get(name);
        if v.is_none() {
            problems.push(format!("missing secret {name}"));
        }
        v
    };
    let client_key = required("TIKTOK_CLIENT_KEY");
    let client_secret = required("TIKTOK_CLIENT_SECRET");
    let api_keys_raw = required("API_KEYS");
    let keyring_raw = required("TOKEN_ENCRYPTION_KEY");

    let api_keys = api_keys_raw.and_then(|raw| {
        ApiKeys::parse(&raw)
            .map_err(|e| problems.push(format!("malformed secret API_KEYS: {e}")))
            .ok()
    });
    let keyring = keyring_raw.and_then(|raw| {
        Keyring::parse(&raw)
            .map_err(|e| problems.push(format!("malformed secret TOKEN_ENCRYPTION_KEY: {e}")))
            .ok()
    });
    let mut url_var = |name: &str, default: Option<&str>| -> Option<crate::weburl::Url> {
        let raw = get(name).or(default.map(str::to_string))?;
        match crate::weburl::Url::parse(&raw) {
            Ok(u) if u.is_http() => Some(u),
            _ => {
                problems.push(format!(
                    "malformed var {name}: must be an absolute http(s) URL"
                ));
                None
            }
        }
    };
    let api_base = url_var("TIKTOK_API_BASE", Some(DEFAULT_API_BASE));
    let auth_url = url_var("TIKTOK_AUTH_URL", Some(DEFAULT_AUTH_URL));
    let redirect_uri = url_var("OAUTH_REDIRECT_URI", None);
    if let Some(u) = &redirect_uri {
        if let Err(why) = check_redirect_uri(u) {
            problems.push(format!("malformed var OAUTH_REDIRECT_URI: {why}"));
        }
    }
    let scopes: Vec<String> = get("OAUTH_SCOPES")
        .unwrap_or_else(|| DEFAULT_SCOPES.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let oauth_start_protected = match get("OAUTH_START_PROTECTED").as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => {
            problems.push("malformed var OAUTH_START_PROTECTED: must be true or false".into());
            false
        }
    };
    let mut return_to_allowed = Vec::new();
    for raw in get("OAUTH_RETURN_TO_ALLOWED")
        .unwrap_or_default()
        .split(',')
    {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match crate::weburl::Url::parse(raw) {
            Ok(u) if u.is_http() => return_to_allowed.push(u.origin().ascii_serialization()),
            _ => problems.push(
                "malformed var OAUTH_RETURN_TO_ALLOWED: must list absolute http(s) origins".into(),
            ),
        }
    }
    let state_ttl_secs = number(
        &get,
        &mut problems,
        "OAUTH_STATE_TTL_SECS",
        600,
        1,
        MAX_STATE_TTL_SECS,
    );
    let webhook_tolerance_secs =
        number(&get, &mut problems, "WEBHOOK_TOLERANCE_SECS", 300, 1, 3_600);
    let event_retention_secs =
        number(&get, &mut problems, "EVENT_RETENTION_DAYS", 7, 1, 90) * 86_400;
    let default_rules = match get("DEFAULT_RULES") {
        None => RuleSet::default(),
        // Named time zones are checked by the runtime when rules are used.
        Some(raw) => {
            crate::rules::engine::parse_rules(raw.as_bytes(), |_| true).unwrap_or_else(|e| {
                problems.push(format!("malformed var DEFAULT_RULES: {e}"));
                RuleSet::default()
            })
        }
    };
    let mut forward_urls = Vec::new();
    for raw in get("FORWARD_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match crate::weburl::Url::parse(raw) {
            Ok(u) if u.is_http() => forward_urls.push(u),
            _ => {
                problems.push("malformed var FORWARD_URLS: must list absolute http(s) URLs".into())
            }
        }
    }
    let notify_targets =
        crate::inbox::notify::parse_targets(&get("NOTIFY_URLS").unwrap_or_default())
            .unwrap_or_else(|e| {
                problems.push(format!("malformed secret NOTIFY_URLS: {e}"));
                Vec::new()
            });
    let image_fetch_allowed_hosts: Vec<String> = get("IMAGE_FETCH_ALLOWED_HOSTS")
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let forward_secret = get("FORWARD_SECRET").map(Secret::new);
    if !forward_urls.is_empty() && forward_secret.is_none() {
        problems.push("missing secret FORWARD_SECRET (needed because FORWARD_URLS is set)".into());
    }
    let tiktok_timeout_ms = number(
        &get,
        &mut problems,
        "TIKTOK_TIMEOUT_MS",
        10_000,
        200,
        30_000,
    );
    let refresh_margin_secs = number(
        &get,
        &mut problems,
        "TOKEN_REFRESH_MARGIN_SECS",
        600,
        60,
        43_200,
    );
    if scopes.is_empty() {
        problems.push("malformed var OAUTH_SCOPES: lists no scope".into());
    }
    let handoff_pause_secs = number(
        &get,
        &mut problems,
        "HANDOFF_PAUSE_SECS",
        3_600,
        1,
        2_592_000,
    );
    let history_retention_days =
        number(&get, &mut problems, "HISTORY_RETENTION_DAYS", 365, 1, 3_650);
    let log_level = match get("LOG_LEVEL").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("info") => crate::ports::Level::Info,
        Some("debug") => crate::ports::Level::Debug,
        Some("warn") => crate::ports::Level::Warn,
        Some("error") => crate::ports::Level::Error,
        Some(_) => {
            problems.push("malformed var LOG_LEVEL: must be debug, info, warn or error".into());
            crate::ports::Level::Info
        }
    };

    match (
        client_key,
        client_secret,
        api_keys,
        keyring,
        api_base,
        auth_url,
    ) {
        (Some(client_key), Some(secret), Some(api_keys), Some(keyring), Some(base), Some(auth))
            if problems.is_empty() =>
        {
            Ok(Config {
                client_key,
                client_secret: Secret::new(secret),
                api_keys,
                keyring,
                api_base: base.as_str().trim_end_matches('/').to_string(),
                auth_url: auth,
                redirect_uri,
                scopes,
                oauth_start_protected,
                return_to_allowed,
                refresh_margin_secs,
                state_ttl_secs,
                webhook_tolerance_secs,
                event_retention_secs,
                default_rules,
                forward_urls,
                forward_secret,
                image_fetch_allowed_hosts,
                tiktok_timeout_ms,
                log_level,
                handoff_pause_secs,
                history_retention_days,
                notify_targets,
            })
        }
        _ => Err(Error::Config { problems }),
    }
}

/// An optional whole-number var within `min..=max`.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> u64 {
    match get(name).map(|v| v.parse::<u64>()) {
        None => default,
        Some(Ok(n)) if (min..=max).contains(&n) => n,
        Some(_) => {
            problems.push(format!(
                "malformed var {name}: must be a whole number from {min} to {max}"
            ));
            default
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::fixtures::full;
    use std::collections::HashMap;

    fn load_map(m: &HashMap<&'static str, String>) -> Result<Config, Error> {
        load(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_apply() {
        let c = load_map(&full()).unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.scopes.len(), 4);
        assert!(c.redirect_uri.is_none());
    }

    #[test]
    fn log_level_is_info_unless_set_and_a_wrong_one_is_named() {
        use crate::ports::Level;
        let mut m = full();
        assert_eq!(load_map(&m).unwrap().log_level, Level::Info);
        for (v, level) in [
            ("DEBUG", Level::Debug),
            ("warn", Level::Warn),
            ("error", Level::Error),
        ] {
            m.insert("LOG_LEVEL", v.into());
            assert_eq!(load_map(&m).unwrap().log_level, level);
        }
        m.insert("LOG_LEVEL", "verbose".into());
        let e = load_map(&m).unwrap_err().to_string();
        assert!(e.contains("malformed var LOG_LEVEL"), "{e}");
        assert!(Level::Debug < Level::Info && Level::Warn < Level::Error);
    }

    #[test]
    fn every_problem_is_named_and_no_value_leaks() {
        let mut m = full();
        m.remove("TIKTOK_CLIENT_SECRET");
        m.insert("TOKEN_ENCRYPTION_KEY", "not-a-key-value".into());
        m.insert("TIKTOK_API_BASE", "ftp://nope".into());
        let e = load_map(&m).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("missing secret TIKTOK_CLIENT_SECRET"), "{msg}");
        assert!(
            msg.contains("malformed secret TOKEN_ENCRYPTION_KEY"),
            "{msg}"
        );
        assert!(msg.contains("malformed var TIKTOK_API_BASE"), "{msg}");
        assert!(
            !msg.contains("not-a-key-value") && !msg.contains("ftp://nope"),
            "{msg}"
        );
        assert_eq!(e.status(), 500);
        assert_eq!(e.code(), "config_error");
    }

    #[test]
    fn blank_counts_as_missing_and_trailing_slash_is_trimmed() {
        let mut m = full();
        m.insert("API_KEYS", "   ".into());
        m.insert(
            "TIKTOK_API_BASE",
            "http://127.0.0.1:9/open_api/v1.3/".into(),
        );
        let e = load_map(&m).unwrap_err().to_string();
        assert!(e.contains("missing secret API_KEYS"), "{e}");
        m.insert("API_KEYS", "0123456789abcdef0123".into());
        assert_eq!(
            load_map(&m).unwrap().api_base,
            "http://127.0.0.1:9/open_api/v1.3"
        );
    }

    #[test]
    fn wrangler_toml_matches_the_config_and_bindings() {
        let doc: toml::Table = include_str!("../wrangler.toml").parse().unwrap();
        for (k, _) in doc["vars"].as_table().unwrap() {
            let s = SETTINGS
                .iter()
                .find(|s| s.name == k)
                .unwrap_or_else(|| panic!("unknown var {k}"));
            assert_eq!(
                s.kind,
                SettingKind::Var,
                "{k} is a secret: never in wrangler.toml"
            );
        }
        let kv: Vec<&str> = doc["kv_namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["binding"].as_str().unwrap())
            .collect();
        assert_eq!(kv, ["TOKENS", "STATE"]);
        let dobj = &doc["durable_objects"]["bindings"][0];
        assert_eq!(
            (dobj["name"].as_str(), dobj["class_name"].as_str()),
            (Some("ACCOUNTS"), Some("AccountActor"))
        );
        assert!(doc["triggers"]["crons"]
            .as_array()
            .is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn settings_are_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        for s in SETTINGS {
            assert!(
                readme.contains(&format!("| `{}` |", s.name)),
                "{} not in README",
                s.name
            );
        }
    }

    #[test]
    fn settings_are_documented_in_dev_vars_example() {
        let example = include_str!("../.dev.vars.example");
        for s in SETTINGS {
            assert!(
                example.contains(&format!("{}=", s.name)),
                "{} undocumented",
                s.name
            );
        }
    }
}

/// What the edge found in `Env`: presence only, never values.
#[derive(Debug, Clone, Default)]
pub struct Presence {
    /// Binding name and whether it is bound.
    pub bindings: Vec<(&'static str, bool)>,
    /// Setting name and whether it has a non-empty value.
    pub settings: Vec<(&'static str, bool)>,
}

impl Presence {
    /// Presence of every documented setting according to `lookup`.
    pub fn settings_from(lookup: impl Fn(&str) -> bool) -> Vec<(&'static str, bool)> {
        SETTINGS.iter().map(|s| (s.name, lookup(s.name))).collect()
    }
}
