//! API keys for the Worker's own HTTP API.
//!
//! Key model: `API_KEYS` is a comma-separated list. An entry `admin:<key>` grants every route;
//! a bare `<key>` grants the messaging routes (send, list conversations and messages) but not
//! the admin routes (accounts, rules, webhook subscription, failed events), which answer 403.
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
        for (i, item) in raw.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let (role, key) = match item.strip_prefix("admin:") {
                Some(k) => (Role::Admin, k.trim()),
                None => (Role::Sender, item),
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
            });
        }
        if entries.is_empty() {
            return Err("no keys listed".into());
        }
        Ok(ApiKeys(entries))
    }

    /// The role of a presented key, checking every entry without early exit.
    fn role_of(&self, presented: &str) -> Option<Role> {
        let d = digest(presented);
        let mut found: Option<Role> = None;
        for e in &self.0 {
            if bool::from(e.digest.ct_eq(&d)) {
                // Admin wins if the same key is listed twice with different roles.
                found = match (found, e.role) {
                    (Some(Role::Admin), _) | (_, Role::Admin) => Some(Role::Admin),
                    _ => Some(Role::Sender),
                };
            }
        }
        found
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
}
