//! The per-request context handed to handlers.

use crate::auth::Role;
use crate::config::Config;
use crate::config::Presence;
use crate::error::{Error, Result};
use crate::http::Request;
use crate::ports::{Level, Platform};
use serde_json::{json, Value};

/// Per-request context handed to handlers.
pub struct Ctx<'a, P: Platform> {
    pub p: &'a P,
    pub(crate) cfg: &'a Result<Config>,
    pub presence: &'a Presence,
    pub request_id: String,
    /// Fields the handler adds to the request's one log line.
    pub(crate) notes: std::cell::RefCell<serde_json::Map<String, Value>>,
}

impl<P: Platform> Ctx<'_, P> {
    /// The validated config, or the error naming what is missing.
    pub fn config(&self) -> Result<&Config> {
        self.cfg.as_ref().map_err(|e| match e {
            Error::Config { problems } => Error::Config {
                problems: problems.clone(),
            },
            other => Error::Internal(other.to_string()),
        })
    }

    /// Checks the Bearer key for `role`; 401/403 otherwise.
    pub fn authorize(&self, req: &Request, role: Role) -> Result<Role> {
        self.config()?
            .api_keys
            .authorize(req.headers.get("authorization"), role)
    }

    /// A sender route acting for `account`: the key must be allowed to.
    pub fn authorize_account(&self, req: &Request, account: &str) -> Result<Role> {
        self.config()?
            .api_keys
            .authorize_account(req.headers.get("authorization"), account)
    }

    /// Adds `fields` (an object) to the request's log line: what a handler learnt (an event's
    /// account and key), without a line of its own.
    pub fn note(&self, fields: Value) {
        if let Value::Object(f) = fields {
            self.notes.borrow_mut().extend(f);
        }
    }

    pub fn log(&self, level: Level, msg: &str, mut fields: Value) {
        if let Some(m) = fields.as_object_mut() {
            m.insert("request_id".into(), json!(self.request_id));
        }
        self.p.log(level, msg, fields);
    }
}
