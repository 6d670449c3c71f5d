//! `AccountActor`: one Durable Object per connected account. Workers KV cannot serialise
//! anything; this object can. Token calls for one account run one at a time behind an async
//! lock, so concurrent requests (from any isolate) needing a refresh cause exactly one call to
//! TikTok, and the others then read the refreshed record.
//!
//! The object keeps a copy of the token record in its own strongly consistent storage and
//! writes through to KV (the vault everyone else reads): whichever copy is newer wins, so a
//! stale KV read right after a refresh can never resurrect a rotated refresh token.
//!
//! It also remembers, in memory, what the hot path would otherwise read on every event: the
//! token record (it is the record's only writer besides connect and disconnect, which tell it
//! with [`Call::Forget`]), the rule sets (told by [`Call::RulesChanged`], and read again after
//! [`RULES_MEMORY_MS`] whatever happens) and its own alarm time.

use super::platform::{log_line, runtime_ports, Kv};
use super::{error_json, lookup};
use crate::config::{self, Config};
use crate::coordinator::protocol::{ActorRequest, Call, Reply};
use crate::coordinator::{self, Served, Wake};
use crate::error::{Error, Result};
use crate::messages::idempotency;
use crate::ports::{Bucket, KeyPage, Level, Local, SqlValue, Store};
use crate::rules::store::is_rules_key;
use crate::secret::Secret;
use crate::webhooks::pipeline;
use futures_util::lock::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use worker::{durable_object, Env, Request, Response, State, Storage};

/// How soon the alarm looks at events accepted but not yet processed.
const PENDING_ALARM_MS: u64 = 20_000;
/// How often the alarm forgets old message ids when nothing is pending.
const SWEEP_ALARM_MS: i64 = 6 * 3600 * 1000;
/// Old ids and records are forgotten at most this often (and at the first alarm of an
/// instance), whatever wakes the object up more often.
const HOUSEKEEPING_EVERY_MS: u64 = 3600 * 1000;
/// How long a rule set read from KV is used without reading it again: a change is announced
/// to the actors at once (see `rules::routes`), and this bounds it for those not told (KV
/// itself takes up to 60 s to show a write everywhere).
pub(crate) const RULES_MEMORY_MS: u64 = 60_000;

/// What the object keeps in memory between calls. Lost when the object is evicted; storage
/// and KV stay the truth.
#[derive(Default)]
struct Memory {
    /// Held for the whole of a token call, TikTok round trip included.
    token_lock: Mutex<()>,
    /// Keys of pending records being run by this instance right now.
    running: RefCell<HashSet<String>>,
    /// Token records (raw, encrypted) as last read or written here, and when (ms): read again
    /// after [`RULES_MEMORY_MS`], the newer copy winning, should a `Forget` have been lost.
    tokens: RefCell<HashMap<String, (String, u64)>>,
    /// Access tokens as last handed out, while usable (cleared with any token record change).
    access: super::platform::TokenMemory,
    /// Rule sets as read from KV (`None`: none stored), and when (ms).
    rules: RefCell<HashMap<String, (Option<String>, u64)>>,
    /// The alarm as this instance last set or read it (`None`: unknown; `Some(None)`: none).
    alarm: Cell<Option<Option<u64>>>,
    /// The earliest wake-up asked for since the current alarm run began: the run's own next
    /// alarm must not be later.
    wanted: Cell<Option<u64>>,
    /// Pending events and conversation states as last read or written here (see
    /// [`LocalMemory`]).
    local: LocalMemory,
    /// When this instance last forgot old ids and records (see `alarm`).
    housekept_at: Cell<Option<u64>>,
    /// Follow-up calls waiting for a runner, in arrival order, with the request each serves.
    queue: RefCell<std::collections::VecDeque<(String, Call)>>,
    /// Runners draining `queue` now (at most [`RUNNERS`]).
    runners: Cell<usize>,
    /// The SQL schema was brought up to date by this instance.
    schema_checked: Cell<bool>,
}

/// Values of the object's own storage that processing reads again and again (its pending
/// events and conversation states), kept as stored: the object is their only writer, and its
/// storage calls are synchronous, so nothing can change a value between its read or write and
/// this copy. Bounded: past [`LOCAL_MEMORY_ENTRIES`] it starts again empty.
#[derive(Default)]
struct LocalMemory {
    entries: RefCell<HashMap<String, Option<String>>>,
}

const LOCAL_MEMORY_ENTRIES: usize = 1_000;
/// Larger values (a pending event can hold a 256 KB delivery) are read from storage.
const LOCAL_MEMORY_VALUE_BYTES: usize = 16 * 1024;

impl LocalMemory {
    fn kept(key: &str) -> bool {
        key.starts_with(pipeline::PENDING) || key.starts_with(pipeline::CONV)
    }

    fn get(&self, key: &str) -> Option<Option<String>> {
        self.entries.borrow().get(key).cloned()
    }

    /// Remembers what storage now holds under `key` (`None`: nothing).
    fn set(&self, key: &str, value: Option<&str>) {
        if !Self::kept(key) {
            return;
        }
        let mut m = self.entries.borrow_mut();
        match value {
            Some(v) if v.len() > LOCAL_MEMORY_VALUE_BYTES => {
                m.remove(key);
            }
            _ => {
                if m.len() >= LOCAL_MEMORY_ENTRIES && !m.contains_key(key) {
                    m.clear();
                }
                m.insert(key.to_string(), value.map(str::to_string));
            }
        }
    }

    /// Forgets `key`: its stored state is unknown (a write failed).
    fn drop_key(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }
}

/// Follow-ups run by at most this many tasks at once per object: accepting a delivery (the
/// acknowledgement) then waits behind at most this many processing steps, not behind every
/// event in flight, while a send waiting on TikTok does not hold up the next event.
const RUNNERS: usize = 2;
/// Most follow-ups waiting in memory per object.
const QUEUE_MAX: usize = 10_000;

#[durable_object]
pub struct AccountActor {
    state: Rc<State>,
    env: Env,
    mem: Rc<Memory>,
}

/// The ports inside the actor: KV plus this object's storage for token records.
struct ActorPlatform {
    kv: Kv,
    state: Rc<State>,
    storage: Storage,
    /// The same storage through its synchronous API (see [`own`]).
    own: own::Own,
    env: Env,
    cfg: Rc<Config>,
    mem: Rc<Memory>,
    request_id: RefCell<String>,
}

runtime_ports!(ActorPlatform);

thread_local! {
    /// The settings, read once per isolate (see `edge::settings`).
    static ACTOR_CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

fn actor_config(env: &Env) -> Result<Rc<Config>> {
    if let Some(c) = ACTOR_CONFIG.with(|c| c.get().cloned()) {
        return Ok(c);
    }
    let cfg = Rc::new(config::load(|k| lookup(env, k))?);
    super::platform::set_log_level(cfg.log_level);
    ACTOR_CONFIG.with(|c| c.get_or_init(|| cfg.clone()).clone());
    Ok(cfg)
}

fn updated_at(raw: &str) -> u64 {
    crate::json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v["updated_at"].as_u64())
        .unwrap_or(0)
}

fn storage_err(op: &str) -> impl Fn(worker::Error) -> Error + '_ {
    move |_| Error::Storage(format!("Durable Object {op}"))
}

/// The object's own key-value storage through its synchronous API (`ctx.storage.kv`, SQLite-
/// backed objects): the same records as the promise-based `ctx.storage.get/put`, without a
/// promise, a microtask and a re-poll of the task around every read and write of the hot path.
/// The output gate still holds every answer and request until the writes are durable.
mod own {
    use crate::error::{Error, Result};
    use wasm_bindgen::prelude::{wasm_bindgen, Closure};
    use worker::js_sys::{Array, Function, Object, Reflect};
    use worker::wasm_bindgen::{JsCast, JsValue};
    use worker::worker_sys::DurableObjectStorage;

    #[wasm_bindgen]
    extern "C" {
        /// `ctx.storage.kv`.
        #[derive(Clone)]
        type SyncKv;
        #[wasm_bindgen(method, catch, js_name = get)]
        fn get_js(this: &SyncKv, key: &str) -> std::result::Result<JsValue, JsValue>;
        #[wasm_bindgen(method, catch, js_name = put)]
        fn put_js(this: &SyncKv, key: &str, value: &str) -> std::result::Result<(), JsValue>;
        #[wasm_bindgen(method, catch, js_name = delete)]
        fn delete_js(this: &SyncKv, key: &str) -> std::result::Result<JsValue, JsValue>;
        #[wasm_bindgen(method, catch, js_name = list)]
        fn list_js(this: &SyncKv, options: &Object) -> std::result::Result<JsValue, JsValue>;

        /// `ctx.storage`, for what worker's binding of it lacks.
        #[derive(Clone)]
        type SyncStorage;
        #[wasm_bindgen(method, getter)]
        fn kv(this: &SyncStorage) -> JsValue;
        #[wasm_bindgen(method, catch, js_name = transactionSync)]
        fn transaction_sync(
            this: &SyncStorage,
            write: &Function,
        ) -> std::result::Result<JsValue, JsValue>;
        #[wasm_bindgen(method, getter)]
        fn sql(this: &SyncStorage) -> JsValue;
    }

    #[wasm_bindgen(inline_js = r#"
export function sqlRows(sql, query, args) {
  const cursor = sql.exec(query, ...JSON.parse(args));
  const rows = cursor.toArray();
  const names = cursor.columnNames;
  if (new Set(names).size !== names.length) {
    throw new Error("two result columns share a name: " + names.join(", "));
  }
  const cell = (v) => (typeof v === "object" ? null : v);
  return JSON.stringify(rows.map((row) => names.map((n) => cell(row[n]))));
}
"#)]
    extern "C" {
        /// `sql.exec(query, ...args)` and its rows, arguments and rows as JSON text
        /// ([`crate::sqljson`]): one crossing a statement. Rows are read as objects keyed by
        /// the statement's column names (`raw()` would add an iterator per statement for the
        /// collector to sweep), so a statement whose columns share a name is refused.
        #[wasm_bindgen(catch, js_name = sqlRows)]
        fn sql_rows(sql: &JsValue, query: &str, args: &str)
            -> std::result::Result<String, JsValue>;
    }

    fn failed(op: &str) -> Error {
        Error::Storage(format!("Durable Object {op}"))
    }

    /// The object's storage: its synchronous key-value API, and `transactionSync` for writes
    /// that must land together.
    #[derive(Clone)]
    pub struct Own {
        kv: SyncKv,
        storage: SyncStorage,
        /// `ctx.storage.sql`, looked up on first use (most calls run no SQL).
        sql: std::cell::OnceCell<JsValue>,
    }

    impl Own {
        pub fn of(storage: DurableObjectStorage) -> Result<Own> {
            let storage: SyncStorage = storage.unchecked_into();
            let kv = storage.kv();
            match kv.is_object() {
                true => Ok(Own {
                    kv: kv.unchecked_into(),
                    sql: Default::default(),
                    storage,
                }),
                false => Err(failed("kv")),
            }
        }

        /// The string stored under `key`; a value of another type is an error.
        pub fn get(&self, key: &str) -> Result<Option<String>> {
            let v = self.kv.get_js(key).map_err(|_| failed("get"))?;
            if v.is_undefined() {
                return Ok(None);
            }
            v.as_string().map(Some).ok_or_else(|| failed("get"))
        }

        pub fn put(&self, key: &str, value: &str) -> Result<()> {
            self.kv.put_js(key, value).map_err(|_| failed("put"))
        }

        /// All of `entries` or, should one write fail, none of them (`transactionSync` rolls
        /// back when its callback throws): an event is never marked seen without its pending
        /// record, nor a step's two records written half.
        /// `fail` names the writes the fault tests make throw, inside the transaction.
        pub fn put_all(
            &self,
            entries: &[(String, String)],
            fail: impl Fn(&str) -> bool + 'static,
        ) -> Result<()> {
            let kv = self.kv.clone();
            let entries = entries.to_vec();
            let write = Closure::once(move || -> std::result::Result<(), JsValue> {
                for (k, v) in &entries {
                    if fail(k) {
                        return Err(JsValue::from_str("injected by FAULT_FAIL_KV_PUTS"));
                    }
                    kv.put_js(k, v)?;
                }
                Ok(())
            });
            self.storage
                .transaction_sync(write.as_ref().unchecked_ref())
                .map(drop)
                .map_err(|_| failed("put"))
        }

        /// The rows of one statement.
        pub fn sql(
            &self,
            query: &str,
            args: &[crate::ports::SqlValue],
        ) -> Result<Vec<Vec<crate::ports::SqlValue>>> {
            let sql = self.sql.get_or_init(|| self.storage.sql());
            let text = sql_rows(sql, query, &crate::sqljson::args(args)).map_err(|e| {
                Error::Storage(format!("Durable Object sql: {}", worker::Error::from(e)))
            })?;
            crate::sqljson::rows(&text)
                .ok_or_else(|| Error::Storage("Durable Object sql: unreadable rows".into()))
        }

        pub fn delete(&self, key: &str) -> Result<()> {
            self.kv
                .delete_js(key)
                .map(drop)
                .map_err(|_| failed("delete"))
        }

        /// Up to `limit` string entries whose keys start with `prefix` (any key when `None`),
        /// in key order.
        pub fn list(&self, prefix: Option<&str>, limit: usize) -> Result<Vec<(String, String)>> {
            let opts = Object::new();
            if let Some(p) = prefix {
                let _ = Reflect::set(&opts, &"prefix".into(), &p.into());
            }
            let _ = Reflect::set(&opts, &"limit".into(), &JsValue::from_f64(limit as f64));
            let entries = Array::from(&self.kv.list_js(&opts).map_err(|_| failed("list"))?);
            let mut out = Vec::with_capacity(entries.length() as usize);
            for e in entries.iter() {
                let pair: Array = e.unchecked_into();
                if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                    out.push((k, v));
                }
            }
            Ok(out)
        }
    }
}

impl Store for ActorPlatform {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<String>> {
        match bucket {
            Bucket::Tokens => {
                let now = crate::edge::platform::now_ms();
                if let Some((raw, at)) = self.mem.tokens.borrow().get(key) {
                    if now.saturating_sub(*at) < RULES_MEMORY_MS {
                        return Ok(Some(raw.clone()));
                    }
                }
            }
            Bucket::State if is_rules_key(key) => {
                let now = crate::edge::platform::now_ms();
                if let Some((raw, at)) = self.mem.rules.borrow().get(key) {
                    if now.saturating_sub(*at) < RULES_MEMORY_MS {
                        return Ok(raw.clone());
                    }
                }
                let raw = self.kv.get(bucket, key).await?;
                self.mem
                    .rules
                    .borrow_mut()
                    .insert(key.to_string(), (raw.clone(), now));
                return Ok(raw);
            }
            Bucket::State => return self.kv.get(bucket, key).await,
        }
        let shared = self.kv.get(bucket, key).await?;
        let own = self.own.get(key)?;
        let remembered = self.mem.tokens.borrow().get(key).map(|(r, _)| r.clone());
        // The newest of the three copies wins (a stale KV read never brings back a rotated
        // refresh token).
        let newest =
            [own, remembered, shared]
                .into_iter()
                .flatten()
                .fold(None::<String>, |best, r| match best {
                    Some(b) if updated_at(&b) >= updated_at(&r) => Some(b),
                    _ => Some(r),
                });
        if let Some(raw) = &newest {
            let now = crate::edge::platform::now_ms();
            self.mem
                .tokens
                .borrow_mut()
                .insert(key.to_string(), (raw.clone(), now));
        }
        Ok(newest)
    }

    async fn put(&self, bucket: Bucket, key: &str, value: &str, ttl: Option<u64>) -> Result<()> {
        self.forget_cached(bucket, key);
        if bucket == Bucket::Tokens {
            self.own_token_put(key, value).await?;
        }
        self.kv.put(bucket, key, value, ttl).await
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<()> {
        self.forget_cached(bucket, key);
        if bucket == Bucket::Tokens {
            self.own.delete(key)?;
        }
        self.kv.delete(bucket, key).await
    }

    async fn put_listed(&self, bucket: Bucket, key: &str, value: &str, meta: &str) -> Result<()> {
        self.forget_cached(bucket, key);
        if bucket == Bucket::Tokens {
            self.own_token_put(key, value).await?;
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

impl Local for ActorPlatform {
    fn sql(&self, query: &str, args: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>> {
        self.own.sql(query, args)
    }

    fn schema_checked(&self) -> bool {
        self.mem.schema_checked.get()
    }

    fn set_schema_checked(&self) {
        self.mem.schema_checked.set(true);
    }

    async fn local_get(&self, key: &str) -> Result<Option<String>> {
        if let Some(known) = self.mem.local.get(key) {
            return Ok(known);
        }
        let value = self.own.get(key)?;
        self.mem.local.set(key, value.as_deref());
        Ok(value)
    }

    async fn local_put(&self, key: &str, value: &str) -> Result<()> {
        let put = self.own.put(key, value);
        match &put {
            Ok(()) => self.mem.local.set(key, Some(value)),
            Err(_) => self.mem.local.drop_key(key),
        }
        put
    }

    async fn local_delete(&self, key: &str) -> Result<()> {
        // The token record's own copy goes (a disconnect, a new grant): so does the memory.
        self.forget_cached(Bucket::Tokens, key);
        let deleted = self.own.delete(key);
        match &deleted {
            Ok(()) => self.mem.local.set(key, None),
            Err(_) => self.mem.local.drop_key(key),
        }
        deleted
    }

    async fn local_list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>> {
        self.own.list(Some(prefix), limit)
    }

    async fn local_put_all(&self, entries: Vec<(String, String)>) -> Result<()> {
        let put = self.own.put_all(&entries, self.kv.injected_failures());
        for (k, v) in &entries {
            match &put {
                Ok(()) => self.mem.local.set(k, Some(v)),
                Err(_) => self.mem.local.drop_key(k),
            }
        }
        put
    }

    fn claim_run(&self, key: &str) -> bool {
        self.mem.running.borrow_mut().insert(key.to_string())
    }

    fn release_run(&self, key: &str) {
        self.mem.running.borrow_mut().remove(key);
    }

    fn forget_cached(&self, bucket: Bucket, key: &str) {
        match bucket {
            Bucket::Tokens => {
                if key.starts_with(crate::accounts::vault::PREFIX) {
                    self.mem.access.clear();
                    self.mem.tokens.borrow_mut().remove(key);
                }
            }
            Bucket::State => {
                self.mem.rules.borrow_mut().remove(key);
            }
        }
    }

    fn remember_shared(&self, key: &str, value: Option<&str>) {
        if is_rules_key(key) {
            let now = crate::edge::platform::now_ms();
            self.mem
                .rules
                .borrow_mut()
                .insert(key.to_string(), (value.map(str::to_string), now));
        }
    }
}

impl crate::ports::Accounts for ActorPlatform {
    /// Runs the call here, under the token lock when it needs it (at most one refresh in
    /// flight per account), schedules the alarm as the call asks, and starts the follow-up
    /// the call leaves (it runs once this reply is on its way).
    async fn call(&self, call: Call) -> Result<Reply> {
        let mem = self.mem.clone();
        let _guard = match call.takes_token_lock() {
            true => Some(mem.token_lock.lock().await),
            false => None,
        };
        // Boxed: `serve` itself calls back into this port (a reply needs a token).
        let served: Pin<Box<dyn Future<Output = Result<Served>> + '_>> =
            Box::pin(coordinator::serve(self, &self.cfg, call));
        let served = served.await?;
        match served.wake {
            Wake::Unchanged => {}
            Wake::Soon => {
                self.alarm_by(crate::edge::platform::now_ms() + PENDING_ALARM_MS)
                    .await?
            }
            Wake::By(at) => self.alarm_by(at).await?,
            Wake::Housekeeping => self.ensure_housekeeping().await?,
        }
        // Past QUEUE_MAX waiting, an event is left to the alarm (its record is pending).
        if let Some(next) = served
            .then
            .filter(|_| self.mem.queue.borrow().len() < QUEUE_MAX)
        {
            let request_id = self.request_id.borrow().clone();
            self.mem.queue.borrow_mut().push_back((request_id, next));
            if self.mem.runners.get() < RUNNERS {
                self.mem.runners.set(self.mem.runners.get() + 1);
                let p = self.sibling();
                // A Durable Object stays alive while work is pending; should a run be cut
                // off, the alarm set above resumes it.
                worker::wasm_bindgen_futures::spawn_local(async move { p.drain().await });
            }
        }
        Ok(served.reply)
    }

    /// From memory while usable: a reply needs no lock, record read or decryption.
    async fn access_token(&self, account: &str, rejected: Option<&str>) -> Result<Secret> {
        let mem = self.mem.clone();
        // The actor hears of every change to the record: the actor's own limit is enough.
        super::platform::remembered_token(&mem.access, account, rejected, u64::MAX, |c| {
            self.call(c)
        })
        .await
    }
}

impl ActorPlatform {
    /// Runs queued follow-ups until none is left.
    async fn drain(&self) {
        loop {
            let next = self.mem.queue.borrow_mut().pop_front();
            let Some((request_id, next)) = next else {
                break;
            };
            self.request_id.replace(request_id);
            let object = next.object().to_string();
            if let Err(e) = crate::ports::Accounts::call(self, next).await {
                crate::ports::Log::log(
                    self,
                    Level::Warn,
                    "processing after the reply failed; the alarm retries it",
                    crate::json::object!({"account_id": object, "code": e.code()}),
                );
            }
        }
        self.mem.runners.set(self.mem.runners.get() - 1);
    }

    /// A platform of its own for work that outlives the current call.
    fn sibling(&self) -> ActorPlatform {
        ActorPlatform {
            kv: Kv::new(&self.env),
            state: self.state.clone(),
            storage: self.state.storage(),
            own: self.own.clone(),
            env: self.env.clone(),
            cfg: self.cfg.clone(),
            mem: self.mem.clone(),
            request_id: RefCell::new(self.request_id.borrow().clone()),
        }
    }

    /// Writes the token record's own copy, remembered once stored.
    async fn own_token_put(&self, key: &str, value: &str) -> Result<()> {
        self.mem.access.clear();
        self.own.put(key, value)?;
        let now = crate::edge::platform::now_ms();
        self.mem
            .tokens
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), now));
        Ok(())
    }

    /// The alarm time, from memory when this instance knows it.
    async fn current_alarm(&self) -> Result<Option<u64>> {
        let now = crate::edge::platform::now_ms();
        // A time already past says nothing (the alarm ran, or its run failed): ask storage.
        match self.mem.alarm.get() {
            Some(Some(t)) if t > now => return Ok(Some(t)),
            Some(None) => return Ok(None),
            _ => {}
        }
        let at = self
            .storage
            .get_alarm()
            .await
            .map_err(storage_err("alarm"))?
            .map(|t| t.max(0) as u64);
        self.mem.alarm.set(Some(at));
        Ok(at)
    }

    async fn set_alarm_at(&self, at_ms: u64) -> Result<()> {
        let now = crate::edge::platform::now_ms();
        self.storage
            .set_alarm(at_ms.saturating_sub(now).max(1) as i64)
            .await
            .map_err(storage_err("alarm"))?;
        self.mem
            .alarm
            .set(Some(Some(now + at_ms.saturating_sub(now).max(1))));
        Ok(())
    }

    /// Makes sure some alarm is scheduled (housekeeping: old records are swept).
    async fn ensure_housekeeping(&self) -> Result<()> {
        if self.current_alarm().await?.is_none() {
            let at = crate::edge::platform::now_ms() + SWEEP_ALARM_MS as u64;
            self.set_alarm_at(at).await?;
        }
        Ok(())
    }

    /// Makes sure the alarm fires no later than `at_ms`: an earlier alarm is kept, a later
    /// one (the 6-hourly housekeeping) is pulled forward.
    async fn alarm_by(&self, at_ms: u64) -> Result<()> {
        let wanted = self.mem.wanted.get().map_or(at_ms, |w| w.min(at_ms));
        self.mem.wanted.set(Some(wanted));
        if self.current_alarm().await?.is_none_or(|t| t > at_ms) {
            self.set_alarm_at(at_ms).await?;
        }
        Ok(())
    }
}

impl worker::DurableObject for AccountActor {
    fn new(state: State, env: Env) -> Self {
        super::install_url_parser();
        AccountActor {
            state: Rc::new(state),
            env,
            mem: Rc::default(),
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

    /// Processes pending events that are due (a follow-up that never ran, a retry, a
    /// reconciliation, a run cut off by a restart) and sweeps old records.
    async fn alarm(&self) -> worker::Result<Response> {
        // Before any await: wake-ups asked for from now on are this run's to honour.
        let started = crate::edge::platform::now_ms();
        self.mem.wanted.set(None);
        self.mem.alarm.set(Some(Some(started + PENDING_ALARM_MS)));
        // A fallback first: should this run be cut off, the next one is not hours away.
        self.state
            .storage()
            .set_alarm(PENDING_ALARM_MS as i64)
            .await?;
        let mut id = [0u8; 8];
        let _ = getrandom::getrandom(&mut id);
        let alarm_id = format!("alarm-{}", hex::encode(id));
        // Old ids and records are forgotten about hourly; a wake-up for a pending event in
        // between only looks at what is pending (listing thousands of ids on every wake-up
        // would stall the object's acknowledgements).
        let housekeep = self
            .mem
            .housekept_at
            .get()
            .is_none_or(|t| started.saturating_sub(t) >= HOUSEKEEPING_EVERY_MS);
        let outcome = match self.platform(alarm_id.clone()) {
            Ok(p) => {
                let swept = match housekeep {
                    true => idempotency::sweep(&p).await,
                    false => Ok(()),
                };
                match swept {
                    Ok(()) => pipeline::sweep(&p, &p.cfg, housekeep).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if housekeep && outcome.is_ok() {
            self.mem.housekept_at.set(Some(started));
        }
        let now = crate::edge::platform::now_ms();
        let next = match outcome {
            Ok(Some(at)) => (at.saturating_sub(now).max(1) as i64).min(SWEEP_ALARM_MS),
            // Nothing left to sweep (a claim object whose claim expired, a forgotten account):
            // no more alarms until something is stored again.
            Ok(None) if self.mem.wanted.get().is_none() && self.storage_is_empty() => {
                // The fallback set above goes too.
                self.state.storage().delete_alarm().await?;
                self.mem.alarm.set(Some(None));
                return Response::ok("empty");
            }
            Ok(None) => SWEEP_ALARM_MS,
            Err(e) => {
                log_line(
                    Level::Error,
                    "actor alarm failed",
                    crate::json::object!({"code": e.code(), "message": e.to_string(), "request_id": alarm_id}),
                );
                PENDING_ALARM_MS as i64
            }
        };
        // What became pending or waits since the sweep looked (accepted, or put off, while
        // this run went on) must not wait for the next housekeeping.
        let next = match self.platform(format!("{alarm_id}-next")) {
            Ok(p) => match pipeline::next_due(&p).await {
                Ok(Some(at)) => {
                    let now = crate::edge::platform::now_ms();
                    next.min(at.saturating_sub(now).max(1) as i64)
                }
                Ok(None) => next,
                Err(_) => next.min(PENDING_ALARM_MS as i64),
            },
            Err(_) => next,
        };
        let now = crate::edge::platform::now_ms();
        let next = match self.mem.wanted.get() {
            Some(w) => next.min(w.saturating_sub(now).max(1) as i64),
            None => next,
        };
        self.state.storage().set_alarm(next).await?;
        self.mem.alarm.set(Some(Some(now + next as u64)));
        // A wake-up asked for while that was being set (it saw the time being replaced).
        if let Some(w) = self.mem.wanted.get().filter(|w| *w < now + next as u64) {
            let now = crate::edge::platform::now_ms();
            let sooner = w.saturating_sub(now).max(1);
            self.state.storage().set_alarm(sooner as i64).await?;
            self.mem.alarm.set(Some(Some(now + sooner)));
        }
        Response::ok("swept")
    }
}

impl AccountActor {
    /// Nothing stored that an alarm must look after: no record, no conversation history.
    fn storage_is_empty(&self) -> bool {
        let records = match self.state.as_raw().storage() {
            Ok(s) => own::Own::of(s)
                .and_then(|o| o.list(None, 1))
                .is_ok_and(|l| l.is_empty()),
            Err(_) => false,
        };
        records
            && self
                .platform("alarm-empty".into())
                .is_ok_and(|p| crate::inbox::history::is_empty(&p).unwrap_or(false))
    }

    fn platform(&self, request_id: String) -> Result<ActorPlatform> {
        Ok(ActorPlatform {
            kv: Kv::new(&self.env),
            state: self.state.clone(),
            storage: self.state.storage(),
            own: own::Own::of(
                self.state
                    .as_raw()
                    .storage()
                    .map_err(|_| Error::Storage("Durable Object storage".into()))?,
            )?,
            env: self.env.clone(),
            cfg: actor_config(&self.env)?,
            mem: self.mem.clone(),
            request_id: RefCell::new(request_id),
        })
    }

    async fn route(&self, mut req: Request) -> Result<Reply> {
        let bytes = req
            .bytes()
            .await
            .map_err(|e| Error::Internal(format!("actor request: {e}")))?;
        self.serve(&bytes).await
    }

    /// Runs one [`ActorRequest`], given as its JSON text.
    async fn serve(&self, json: &[u8]) -> Result<Reply> {
        use crate::ports::Accounts;
        let call: ActorRequest = crate::json::from_slice(json)
            .map_err(|e| Error::Internal(format!("actor request: {e}")))?;
        let rid = call.request_id.unwrap_or_else(|| "actor".into());
        self.platform(rid)?.call(call.call).await
    }
}

/// The Worker's calls, over Durable Object RPC (`src/edge/entry.js` declares the class a
/// `DurableObject`, which RPC requires): one string each way, where `fetch` built a request,
/// a response, their headers and body streams on both sides of every call.
#[wasm_bindgen::prelude::wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
impl AccountActor {
    /// An [`ActorRequest`]'s JSON in; its answer out as [`crate::coordinator::answer`] writes it.
    #[wasm_bindgen(js_name = call)]
    pub async fn rpc_call(
        &self,
        request: String,
    ) -> std::result::Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
        let answer = match self.serve(request.as_bytes()).await {
            Ok(reply) => crate::coordinator::answer::encode_reply(&reply),
            Err(e) => crate::coordinator::answer::encode_error(&e, "actor"),
        };
        Ok(wasm_bindgen::JsValue::from_str(&answer))
    }
}
