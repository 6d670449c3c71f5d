//! Test helpers shared by the unit tests of several modules: the in-memory [`Fake`]
//! platform, [`block_on`] and the [`fixtures`].

pub mod fixtures;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future whose effects are in-memory fakes, so it never truly waits.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

use crate::error::Result;
use crate::http::{Outbound, Response};
use crate::ports::{Bucket, Clock, KeyPage, Level, Log, Rng, Store, Transport, TransportError};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};

/// In-memory platform: a sorted map for KV, a queue of canned HTTP answers (recording what was
/// sent), a settable clock, counting randomness and captured logs.
#[derive(Default)]
pub struct Fake {
    /// Set for tests that use the [`crate::ports::Accounts`] port (it needs the app's config).
    pub cfg: Option<crate::config::Config>,
    kv: RefCell<BTreeMap<(u8, String), String>>,
    meta: RefCell<BTreeMap<(u8, String), String>>,
    running: RefCell<std::collections::HashSet<String>>,
    /// Follow-up calls the actor runs after replying ([`crate::coordinator::Served::then`]).
    later: RefCell<Vec<crate::coordinator::protocol::Call>>,
    answers: RefCell<VecDeque<std::result::Result<Response, TransportError>>>,
    sent: RefCell<Vec<Outbound>>,
    now_ms: Cell<u64>,
    rng: Cell<u8>,
    pub logs: RefCell<Vec<(Level, String, Value)>>,
    /// The actor's SQL database: a real in-memory SQLite, opened on first use.
    db: RefCell<Option<rusqlite::Connection>>,
    schema_checked: Cell<bool>,
}

fn b(bucket: Bucket) -> u8 {
    match bucket {
        Bucket::Tokens => 0,
        Bucket::State => 1,
    }
}

impl Fake {
    pub fn new(now_secs: u64) -> Self {
        let f = Fake::default();
        f.now_ms.set(now_secs * 1000);
        f
    }

    pub fn raw(&self, bucket: Bucket, key: &str) -> Option<String> {
        self.kv.borrow().get(&(b(bucket), key.to_string())).cloned()
    }

    pub fn answer(&self, r: Response) {
        self.answers.borrow_mut().push_back(Ok(r));
    }

    pub fn sent(&self) -> Vec<Outbound> {
        self.sent.borrow().clone()
    }

    pub fn advance(&self, secs: u64) {
        self.now_ms.set(self.now_ms.get() + secs * 1000);
    }
}

impl Store for Fake {
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<String>> {
        Ok(self.raw(bucket, key))
    }
    async fn put(&self, bucket: Bucket, key: &str, value: &str, _ttl: Option<u64>) -> Result<()> {
        self.kv
            .borrow_mut()
            .insert((b(bucket), key.to_string()), value.to_string());
        Ok(())
    }
    async fn put_listed(&self, bucket: Bucket, key: &str, value: &str, meta: &str) -> Result<()> {
        self.meta
            .borrow_mut()
            .insert((b(bucket), key.to_string()), meta.to_string());
        self.put(bucket, key, value, None).await
    }
    async fn delete(&self, bucket: Bucket, key: &str) -> Result<()> {
        self.kv.borrow_mut().remove(&(b(bucket), key.to_string()));
        self.meta.borrow_mut().remove(&(b(bucket), key.to_string()));
        Ok(())
    }
    async fn list(
        &self,
        bucket: Bucket,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<KeyPage> {
        // The cursor is the last key of the previous page.
        let all: Vec<String> = self
            .kv
            .borrow()
            .keys()
            .filter(|(bk, k)| {
                *bk == b(bucket) && k.starts_with(prefix) && cursor.as_ref().is_none_or(|c| k > c)
            })
            .map(|(_, k)| k.clone())
            .collect();
        let keys: Vec<String> = all.iter().take(limit).cloned().collect();
        let metadata = keys
            .iter()
            .map(|k| self.meta.borrow().get(&(b(bucket), k.clone())).cloned())
            .collect();
        let cursor = (all.len() > keys.len())
            .then(|| keys.last().cloned())
            .flatten();
        Ok(KeyPage {
            keys,
            metadata,
            cursor,
        })
    }
}

impl Transport for Fake {
    async fn send(&self, req: Outbound) -> std::result::Result<Response, TransportError> {
        self.sent.borrow_mut().push(req);
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(Err(TransportError::Unreachable("no canned answer".into())))
    }
}

impl Clock for Fake {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    async fn sleep(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }
}

impl Rng for Fake {
    fn fill(&self, buf: &mut [u8]) {
        for x in buf {
            self.rng.set(self.rng.get().wrapping_add(1));
            *x = self.rng.get();
        }
    }
}

impl Log for Fake {
    fn log(&self, level: Level, msg: &str, fields: Value) {
        self.logs
            .borrow_mut()
            .push((level, msg.to_string(), fields));
    }
}

impl crate::ports::Local for Fake {
    async fn local_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.kv.borrow().get(&(9, key.to_string())).cloned())
    }
    async fn local_put(&self, key: &str, value: &str) -> Result<()> {
        self.kv
            .borrow_mut()
            .insert((9, key.to_string()), value.to_string());
        Ok(())
    }
    async fn local_delete(&self, key: &str) -> Result<()> {
        self.kv.borrow_mut().remove(&(9, key.to_string()));
        Ok(())
    }
    async fn local_list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, String)>> {
        Ok(self
            .kv
            .borrow()
            .iter()
            .filter(|((b, k), _)| *b == 9 && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    async fn local_put_all(&self, entries: Vec<(String, String)>) -> Result<()> {
        let mut kv = self.kv.borrow_mut();
        for (k, v) in entries {
            kv.insert((9, k), v);
        }
        Ok(())
    }
    fn sql(
        &self,
        query: &str,
        args: &[crate::ports::SqlValue],
    ) -> Result<Vec<Vec<crate::ports::SqlValue>>> {
        use crate::ports::SqlValue;
        use rusqlite::types::{Value as V, ValueRef};
        let mut db = self.db.borrow_mut();
        let conn = match db.as_mut() {
            Some(c) => c,
            None => db.insert(rusqlite::Connection::open_in_memory().expect("sqlite opens")),
        };
        let fail = |e: rusqlite::Error| crate::error::Error::Storage(format!("sql: {e}"));
        let mut stmt = conn.prepare(query).map_err(fail)?;
        let bound: Vec<V> = args
            .iter()
            .map(|a| match a {
                SqlValue::Null => V::Null,
                SqlValue::Int(i) => V::Integer(*i),
                SqlValue::Real(f) => V::Real(*f),
                SqlValue::Text(t) => V::Text(t.clone()),
            })
            .collect();
        let cols = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bound))
            .map_err(fail)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let mut r = Vec::with_capacity(cols);
            for i in 0..cols {
                r.push(match row.get_ref(i).map_err(fail)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Int(i),
                    ValueRef::Real(f) => SqlValue::Real(f),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into()),
                    ValueRef::Blob(_) => SqlValue::Null,
                });
            }
            out.push(r);
        }
        Ok(out)
    }
    fn schema_checked(&self) -> bool {
        self.schema_checked.get()
    }
    fn set_schema_checked(&self) {
        self.schema_checked.set(true);
    }
    fn claim_run(&self, key: &str) -> bool {
        self.running.borrow_mut().insert(key.to_string())
    }
    fn release_run(&self, key: &str) {
        self.running.borrow_mut().remove(key);
    }
}

impl Fake {
    /// The actor storage's raw value at `key`.
    pub fn local_raw(&self, key: &str) -> Option<String> {
        self.kv.borrow().get(&(9, key.to_string())).cloned()
    }

    /// As a new actor instance over the same storage: the schema is checked again.
    pub fn forget_schema_check(&self) {
        self.schema_checked.set(false);
    }

    pub fn local_set(&self, key: &str, value: &str) {
        self.kv
            .borrow_mut()
            .insert((9, key.to_string()), value.to_string());
    }
}

impl Fake {
    /// Runs the follow-ups the actor left for after its replies, as the Durable Object does
    /// once a reply is on its way; how many ran.
    pub async fn run_later(&self) -> usize {
        let calls = self.later.take();
        let n = calls.len();
        for call in calls {
            let _ = crate::ports::Accounts::call(self, call).await;
        }
        n
    }

    fn config(&self) -> Result<&crate::config::Config> {
        self.cfg
            .as_ref()
            .ok_or_else(|| crate::error::Error::Internal("Fake without config".into()))
    }
}

/// The coordinator run in-process, through the actor's own `serve`: calls are sequential in a
/// test, as the actor makes them.
impl crate::ports::Accounts for Fake {
    async fn call(
        &self,
        call: crate::coordinator::protocol::Call,
    ) -> Result<crate::coordinator::protocol::Reply> {
        let cfg = self.config()?;
        // Boxed: `serve` itself calls back into this port (a reply needs a token).
        let served: std::pin::Pin<Box<dyn Future<Output = _> + '_>> =
            Box::pin(crate::coordinator::serve(self, cfg, call));
        let served = served.await?;
        self.later.borrow_mut().extend(served.then);
        Ok(served.reply)
    }
}
