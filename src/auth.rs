//! API keys for the Worker's own HTTP API.
//!
//! Key model: `API_KEYS` is a comma-separated list. An entry `admin:<key>` grants every route;
//! a bare `<key>` grants the messaging routes (send, list conversations and messages) but not
//! the admin routes (accounts, rules, webhook subscription, failed events), which answer 403.
//! `sender[<account>,<account>]:<key>` is a sender key limited to those accounts.
//! Keys are compared as SHA-256 digests in constant time against every configured key, so
//! neither the position of a match nor the length of a key leaks through timing.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sender,
    Admin,
}

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    role: Role,
    /// Accounts a limited sender key may act for; `None`: every account.
    accounts: Option<Vec<String>>,
}

/// The parsed `API_KEYS`; holds digests only, never the keys.
#[derive(Clone)]
pub struct ApiKeys(Vec<Entry>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

/// Keys shorter than this are refused at config time: they are guessable.
pub const MIN_KEY_LEN: usize = 16;

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl ApiKeys {
    /// Parses `API_KEYS`; the error says what is wrong without echoing any key.
    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        let mut entries = Vec::new();
        for (i, item) in split_entries(raw).into_iter().enumerate() {
            if item.is_empty() {
                continue;
            }
            let (role, accounts, key) = if let Some(k) = item.strip_prefix("admin:") {
                (Role::Admin, None, k.trim())
            } else if let Some(rest) = item.strip_prefix("sender[") {
                let (list, key) = rest
                    .split_once("]:")
                    .ok_or_else(|| format!("entry {} must be sender[<accounts>]:<key>", i + 1))?;
                let accounts: Vec<String> = list
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
                if accounts.is_empty() {
                    return Err(format!("entry {} lists no account", i + 1));
                }
                (Role::Sender, Some(accounts), key.trim())
            } else {
                (Role::Sender, None, item)
            };
            if key.len() < MIN_KEY_LEN {
                return Err(format!(
                    "entry {} is shorter than {MIN_KEY_LEN} characters",
                    i + 1
                ));
            }
            entries.push(Entry {
                digest: digest(key),
                role,
                accounts,
            });
        }
        if entries.is_empty() {
            return Err("no keys listed".into());
        }
        Ok(ApiKeys(entries))
    }

    /// The entry of a presented key, checking every entry without early exit. An admin
    /// entry wins over a sender entry of the same key.
    fn entry_of(&self, presented: &str) -> Option<&Entry> {
        let d = digest(presented);
        let mut found: Option<&Entry> = None;
        for e in &self.0 {
            if bool::from(e.digest.ct_eq(&d)) {
                found = match found {
                    Some(f) if f.role == Role::Admin => Some(f),
                    _ => Some(e),
                };
            }
        }
        found
    }

    fn role_of(&self, presented: &str) -> Option<Role> {
        self.entry_of(presented).map(|e| e.role)
    }

    /// Checks the key like [`ApiKeys::authorize`] for a sender route acting for `account`:
    /// a key limited to some accounts may act for those only.
    pub fn authorize_account(&self, authorization: Option<&str>, account: &str) -> Result<Role> {
        let role = self.authorize(authorization, Role::Sender)?;
        let key = authorization.and_then(bearer).unwrap_or_default();
        let allowed = self
            .entry_of(key)
            .and_then(|e| e.accounts.as_ref())
            .is_none_or(|list| list.iter().any(|a| a == account));
        if !allowed {
            return Err(Error::Forbidden(
                "this API key may not act for this account",
            ));
        }
        Ok(role)
    }

    /// Checks `Authorization: Bearer <key>` and that the key's role covers `needed`.
    pub fn authorize(&self, authorization: Option<&str>, needed: Role) -> Result<Role> {
        let header = authorization.ok_or(Error::Unauthorized(
            "send `Authorization: Bearer <api key>`",
        ))?;
        let key = bearer(header).ok_or(Error::Unauthorized(
            "the Authorization header must be `Bearer <api key>`",
        ))?;
        let role = self
            .role_of(key)
            .ok_or(Error::Unauthorized("unknown API key"))?;
        if needed == Role::Admin && role != Role::Admin {
            return Err(Error::Forbidden("this route needs an admin API key"));
        }
        Ok(role)
    }
}

/// Splits `API_KEYS` on commas outside `[...]` (a limited key lists accounts with commas).
fn split_entries(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(raw[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(raw[start..].trim());
    out
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = "send-key-0123456789";
    const ADMIN: &str = "admin-key-0123456789";

    fn keys() -> ApiKeys {
        ApiKeys::parse(&format!(" {SEND} , admin:{ADMIN} ,")).unwrap()
    }

    #[test]
    fn roles_and_failures() {
        let k = keys();
        let b = |s: &str| format!("Bearer {s}");
        assert_eq!(
            k.authorize(Some(&b(SEND)), Role::Sender).unwrap(),
            Role::Sender
        );
        assert_eq!(
            k.authorize(Some(&b(ADMIN)), Role::Admin).unwrap(),
            Role::Admin
        );
        assert_eq!(
            k.authorize(Some(&b(ADMIN)), Role::Sender).unwrap(),
            Role::Admin
        );
        assert_eq!(
            k.authorize(Some(&b(SEND)), Role::Admin)
                .unwrap_err()
                .status(),
            403
        );
        for bad in [
            None,
            Some("Basic abc"),
            Some("Bearer "),
            Some("Bearer nope-nope-nope-nope"),
        ] {
            assert_eq!(
                k.authorize(bad, Role::Sender).unwrap_err().status(),
                401,
                "{bad:?}"
            );
        }
        assert!(k
            .authorize(Some(&format!("bearer  {SEND} ")), Role::Sender)
            .is_ok());
    }

    #[test]
    fn parse_rejects_short_or_empty_without_echoing() {
        let e = ApiKeys::parse("short1").unwrap_err();
        assert!(!e.contains("short1"), "{e}");
        assert!(ApiKeys::parse(" , ").is_err());
        assert!(!format!("{:?}", keys()).contains(SEND));
    }

    #[test]
    fn sender_keys_can_be_limited_to_accounts() {
        let keys = ApiKeys::parse(
            "admin:aaaaaaaaaaaaaaaa1, sender[shop-1,shop-2]:bbbbbbbbbbbbbbbb2,cccccccccccccccc3",
        )
        .unwrap();
        let h = |k: &str| format!("Bearer {k}");
        let limited = h("bbbbbbbbbbbbbbbb2");
        assert!(keys.authorize_account(Some(&limited), "shop-2").is_ok());
        let e = keys
            .authorize_account(Some(&limited), "shop-3")
            .unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(keys
            .authorize(Some(&limited), Role::Admin)
            .is_err_and(|e| e.status() == 403));
        assert!(keys
            .authorize_account(Some(&h("cccccccccccccccc3")), "any")
            .is_ok());
        assert!(keys
            .authorize_account(Some(&h("aaaaaaaaaaaaaaaa1")), "any")
            .is_ok());
        assert!(ApiKeys::parse("sender[]:bbbbbbbbbbbbbbbb2").is_err());
        assert!(ApiKeys::parse("sender[x:bbbbbbbbbbbbbbbb2").is_err());
    }
}
