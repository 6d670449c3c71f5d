//! `AccountActor`: one Durable Object per connected account. Workers KV cannot serialise
//! anything; this object can. Token calls for one account run one at a time behind an async
//! lock, so concurrent requests (from any isolate) needing a refresh cause exactly one call to
//! TikTok, and the others then read the refreshed record.
//!
//! The object keeps a copy of the token record in its own strongly consistent storage and
//! writes through to KV (the vault everyone else reads): whichever copy is newer wins, so a
//! stale KV read right after a refresh can never resurrect a rotated refresh token.

use super::platform::{log_line, runtime_ports, Kv};
use super::{error_json, lookup};
use crate::config::{self, Config};
use crate::coordinator::protocol::{ActorRequest, Call, Reply};
use crate::coordinator::{self, Served, Wake};
use crate::error::{Error, Result};
use crate::messages::idempotency;
use crate::ports::{Bucket, KeyPage, Level, Local, Store};
use crate::webhooks::pipeline;
use futures_util::lock::Mutex;
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use worker::{durable_object, Env, ListOptions, Request, Response, State, Storage};

/// How soon the alarm looks at events accepted but not yet processed.
const PENDING_ALARM_MS: u64 = 20_000;
/// How often the alarm forgets old message ids when nothing is pending.
const SWEEP_ALARM_MS: i64 = 6 * 3600 * 1000;

#[durable_object]
pub struct AccountActor {
    state: State,
    env: Env,
    /// Held for the whole of a token call, TikTok round trip included.
    token_lock: Mutex<()>,
    /// Keys of pending records being run by this instance right now.
    running: std::cell::RefCell<std::collections::HashSet<String>>,
}

/// The ports inside the actor: KV plus this object's storage for token records.
struct ActorPlatform<'a> {
    kv: Kv,
    storage: Storage,
    cfg: Config,
    token_lock: &'a Mutex<()>,
    running: &'a std::cell::RefCell<std::collections::HashSet<String>>,
    request_id: std::cell::RefCell<String>,
}

runtime_ports!(ActorPlatform<'_>);

fn updated_at(raw: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v["updated_at"].as_u64())
        .unwrap_or(0)
}

fn storage_err(op: &str) -> impl Fn(worker::Error) -> Error + '_ {
    move |_| Error::Storage(format!("Durable Object {op}"))
}

impl Store for ActorPlatform<'_> {
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

    async fn put_listed(&self, bucket: Bucket, key: &str, value: &str, meta: &str) -> Result<()> {
        if bucket == Bucket::Tokens {
            self.storage
                .put(key, value)
                .await
                .map_err(storage_err("put"))?;
        }
        self.kv.put_listed(bucket, key, value, meta).await
    }

    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<KeyPage> {
        self.kv.list(bucket, prefix, cursor, limit).await
    }
}

impl Local for ActorPlatform<'_> {
    async fn local_get(&self, key: &str) -> Result<Option<String>> {
        self.storage.get(key).await.map_err(storage_err("get"))
    }

    async fn local_put(&self, key: &str, value: &str) -> Result<()> {
        self.storage
            .put(key, value)
            .await
            .map_err(storage_err("put"))
    }

    async fn local_delete(&self, key: &str) -> Result<()> {
        self.storage
            .delete(key)
            .await
            .map(drop)
            .map_err(storage_err("delete"))
    }

    async fn local_list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>> {
        let opts = ListOptions::new().prefix(prefix).limit(limit);
        let map = self
            .storage
            .list_with_options(opts)
            .await
            .map_err(storage_err("list"))?;
        let mut out = Vec::new();
        map.for_each(&mut |v, k| {
            if let (Some(k), Some(v)) = (k.as_string(), v.as_string()) {
                out.push((k, v));
            }
        });
        out.sort();
        Ok(out)
    }

    async fn local_put_all(&self, entries: Vec<(String, String)>) -> Result<()> {
        // A plain object (serde would make a JS Map, which storage refuses).
        let obj = worker::js_sys::Object::new();
        for (k, v) in &entries {
            worker::js_sys::Reflect::set(&obj, &k.into(), &v.into())
                .map_err(|_| Error::Storage("Durable Object put (entries)".into()))?;
        }
        self.storage
            .put_multiple_raw(obj)
            .await
            .map_err(storage_err("put"))
    }

    fn claim_run(&self, key: &str) -> bool {
        self.running.borrow_mut().insert(key.to_string())
    }

    fn release_run(&self, key: &str) {
        self.running.borrow_mut().remove(key);
    }
}

impl crate::ports::Accounts for ActorPlatform<'_> {
    /// Runs the call here, under the token lock when it needs it (at most one refresh in
    /// flight per account), then schedules the alarm as the call asks.
    async fn call(&self, call: Call) -> Result<Reply> {
        let _guard = match call.takes_token_lock() {
            true => Some(self.token_lock.lock().await),
            false => None,
        };
        // Boxed: `serve` itself calls back into this port (a reply needs a token).
        let served: Pin<Box<dyn Future<Output = Result<Served>> + '_>> =
            Box::pin(coordinator::serve(self, &self.cfg, call));
        let served = served.await?;
        match served.wake {
            Wake::Unchanged => {}
            Wake::Soon => {
                self.alarm_by(worker::Date::now().as_millis() + PENDING_ALARM_MS)
                    .await?
            }
            Wake::By(at) => self.alarm_by(at).await?,
            Wake::Housekeeping => self.ensure_housekeeping().await?,
        }
        Ok(served.reply)
    }
}

impl ActorPlatform<'_> {
    /// Makes sure some alarm is scheduled (housekeeping: old records are swept).
    async fn ensure_housekeeping(&self) -> Result<()> {
        if self
            .storage
            .get_alarm()
            .await
            .map_err(storage_err("alarm"))?
            .is_none()
        {
            self.storage
                .set_alarm(SWEEP_ALARM_MS)
                .await
                .map_err(storage_err("alarm"))?;
        }
        Ok(())
    }

    /// Makes sure the alarm fires no later than `at_ms`: an earlier alarm is kept, a later
    /// one (the 6-hourly housekeeping) is pulled forward.
    async fn alarm_by(&self, at_ms: u64) -> Result<()> {
        let current = self
            .storage
            .get_alarm()
            .await
            .map_err(storage_err("alarm"))?;
        if current.is_none_or(|t| t as u64 > at_ms) {
            let now = worker::Date::now().as_millis();
            self.storage
                .set_alarm(at_ms.saturating_sub(now).max(1) as i64)
                .await
                .map_err(storage_err("alarm"))?;
        }
        Ok(())
    }
}

impl worker::DurableObject for AccountActor {
    fn new(state: State, env: Env) -> Self {
        AccountActor {
            state,
            env,
            token_lock: Mutex::new(()),
            running: Default::default(),
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

    /// Processes pending events that are due (a job that never ran, a retry, a
    /// reconciliation, a run cut off by a restart) and sweeps old records.
    async fn alarm(&self) -> worker::Result<Response> {
        // A fallback first: should this run be cut off, the next one is not hours away.
        self.state
            .storage()
            .set_alarm(PENDING_ALARM_MS as i64)
            .await?;
        let mut id = [0u8; 8];
        let _ = getrandom::getrandom(&mut id);
        let alarm_id = format!("alarm-{}", hex::encode(id));
        let outcome = match self.platform(alarm_id.clone()) {
            Ok(p) => match idempotency::sweep(&p).await {
                Ok(()) => pipeline::sweep(&p, &p.cfg).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let now = worker::Date::now().as_millis();
        let next = match outcome {
            Ok(Some(at)) => (at.saturating_sub(now).max(1) as i64).min(SWEEP_ALARM_MS),
            // Nothing left to sweep (a claim object whose claim expired, a forgotten account):
            // no more alarms until something is stored again.
            Ok(None) if self.storage_is_empty().await => {
                // The fallback set above goes too.
                self.state.storage().delete_alarm().await?;
                return Response::ok("empty");
            }
            Ok(None) => SWEEP_ALARM_MS,
            Err(e) => {
                log_line(
                    Level::Error,
                    "actor alarm failed",
                    json!({"code": e.code(), "message": e.to_string(), "request_id": alarm_id}),
                );
                PENDING_ALARM_MS as i64
            }
        };
        // What became pending or waits since the sweep looked (accepted, or put off, while
        // this run went on) must not wait for the next housekeeping.
        let next = match self.platform(format!("{alarm_id}-next")) {
            Ok(p) => match pipeline::next_due(&p).await {
                Ok(Some(at)) => {
                    let now = worker::Date::now().as_millis();
                    next.min(at.saturating_sub(now).max(1) as i64)
                }
                Ok(None) => next,
                Err(_) => next.min(PENDING_ALARM_MS as i64),
            },
            Err(_) => next,
        };
        self.state.storage().set_alarm(next).await?;
        Response::ok("swept")
    }
}

impl AccountActor {
    async fn storage_is_empty(&self) -> bool {
        self.state
            .storage()
            .list_with_options(ListOptions::new().limit(1))
            .await
            .is_ok_and(|m| m.size() == 0)
    }

    fn platform(&self, request_id: String) -> Result<ActorPlatform<'_>> {
        let cfg = config::load(|k| lookup(&self.env, k))?;
        Ok(ActorPlatform {
            kv: Kv::new(&self.env),
            storage: self.state.storage(),
            cfg,
            token_lock: &self.token_lock,
            running: &self.running,
            request_id: std::cell::RefCell::new(request_id),
        })
    }

    async fn route(&self, mut req: Request) -> Result<Reply> {
        use crate::ports::Accounts;
        let call: ActorRequest = req
            .json()
            .await
            .map_err(|e| Error::Internal(format!("actor request: {e}")))?;
        let rid = call.request_id.unwrap_or_else(|| "actor".into());
        self.platform(rid)?.call(call.call).await
    }
}
