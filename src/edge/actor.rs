//! `AccountActor`: one Durable Object per connected account. Workers KV cannot serialise
//! anything; this object can. Token calls for one account run one at a time behind an async
//! lock, so concurrent requests (from any isolate) needing a refresh cause exactly one call to
//! TikTok, and the others then read the refreshed record.
//!
//! The object keeps a copy of the token record in its own strongly consistent storage and
//! writes through to KV (the vault everyone else reads): whichever copy is newer wins, so a
//! stale KV read right after a refresh can never resurrect a rotated refresh token.

use super::platform::{runtime_ports, Kv};
use super::{error_json, lookup};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::ports::{Bucket, KeyPage, Store};
use crate::secret::Secret;
use crate::tokens;
use futures_util::lock::Mutex;
use serde::Deserialize;
use serde_json::json;
use worker::{durable_object, Env, Request, Response, State, Storage};

/// Internal protocol between the Worker and its actors.
#[derive(Debug, Deserialize)]
pub struct TokenCall {
    pub account: String,
    #[serde(default)]
    pub rejected: Option<String>,
    /// Overrides the configured margin (the cron's look-ahead window).
    #[serde(default)]
    pub margin: Option<u64>,
}

#[durable_object]
pub struct AccountActor {
    state: State,
    env: Env,
    /// Held for the whole of a token call, TikTok round trip included.
    token_lock: Mutex<()>,
}

/// The ports inside the actor: KV plus this object's storage for token records.
struct ActorPlatform {
    kv: Kv,
    storage: Storage,
    cfg: Config,
}

runtime_ports!(ActorPlatform);

fn updated_at(raw: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v["updated_at"].as_u64())
        .unwrap_or(0)
}

fn storage_err(op: &str) -> impl Fn(worker::Error) -> Error + '_ {
    move |_| Error::Storage(format!("Durable Object {op}"))
}

impl Store for ActorPlatform {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<String>> {
        let shared = self.kv.get(bucket, key).await?;
        if bucket != Bucket::Tokens {
            return Ok(shared);
        }
        let own: Option<String> = self.storage.get(key).await.map_err(storage_err("get"))?;
        Ok(match (own, shared) {
            (Some(o), Some(s)) => Some(if updated_at(&s) > updated_at(&o) {
                s
            } else {
                o
            }),
            (o, s) => o.or(s),
        })
    }

    async fn put(&self, bucket: Bucket, key: &str, value: &str, ttl: Option<u64>) -> Result<()> {
        if bucket == Bucket::Tokens {
            self.storage
                .put(key, value)
                .await
                .map_err(storage_err("put"))?;
        }
        self.kv.put(bucket, key, value, ttl).await
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<()> {
        if bucket == Bucket::Tokens {
            self.storage
                .delete(key)
                .await
                .map_err(storage_err("delete"))?;
        }
        self.kv.delete(bucket, key).await
    }

    async fn list(&self, bucket: Bucket, prefix: &str, cursor: Option<String>) -> Result<KeyPage> {
        self.kv.list(bucket, prefix, cursor).await
    }
}

impl crate::ports::Accounts for ActorPlatform {
    async fn access_token(&self, account: &str, rejected: Option<&str>) -> Result<Secret> {
        let margin = self.cfg.refresh_margin_secs;
        let a = tokens::ensure_fresh(self, &self.cfg, account, margin, rejected).await?;
        Ok(a.access_token)
    }

    async fn refresh_within(&self, account: &str, window_secs: u64) -> Result<()> {
        tokens::ensure_fresh(self, &self.cfg, account, window_secs, None)
            .await
            .map(drop)
    }

    async fn forget(&self, account: &str) -> Result<()> {
        self.storage
            .delete(&format!("acct:{account}"))
            .await
            .map(drop)
            .map_err(storage_err("delete"))
    }
}

impl worker::DurableObject for AccountActor {
    fn new(state: State, env: Env) -> Self {
        AccountActor {
            state,
            env,
            token_lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let result = self.route(req).await;
        let resp = match result {
            Ok(v) => Response::from_json(&v)?,
            Err(e) => error_json(&e, "actor")?,
        };
        Ok(resp)
    }
}

impl AccountActor {
    fn platform(&self) -> Result<ActorPlatform> {
        let cfg = config::load(|k| lookup(&self.env, k))?;
        Ok(ActorPlatform {
            kv: Kv::new(&self.env),
            storage: self.state.storage(),
            cfg,
        })
    }

    async fn route(&self, mut req: Request) -> Result<serde_json::Value> {
        use crate::ports::Accounts;
        let path = req.path();
        let call: TokenCall = req
            .json()
            .await
            .map_err(|e| Error::Internal(format!("actor request: {e}")))?;
        let p = self.platform()?;
        match path.as_str() {
            "/token" => {
                let _guard = self.token_lock.lock().await;
                match call.margin {
                    Some(window) => p
                        .refresh_within(&call.account, window)
                        .await
                        .map(|_| json!({})),
                    None => {
                        let t = p
                            .access_token(&call.account, call.rejected.as_deref())
                            .await?;
                        Ok(json!({ "access_token": t.expose() }))
                    }
                }
            }
            "/forget" => {
                let _guard = self.token_lock.lock().await;
                p.forget(&call.account).await.map(|_| json!({}))
            }
            other => Err(Error::Internal(format!("actor has no route {other}"))),
        }
    }
}
