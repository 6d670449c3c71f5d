//! Token encryption at rest: AES-256-GCM with a random 96-bit nonce per write.
//!
//! `TOKEN_ENCRYPTION_KEY` holds one or more base64 keys separated by commas; the first one
//! encrypts, all of them decrypt. Each sealed value names its key by a short fingerprint
//! (`kid`), so adding a new key in front keeps older records readable (rotation), and a record
//! whose key is gone is reported as such instead of decrypting to garbage.

use crate::b64::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use crate::ports::Rng;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An encrypted value as stored in KV.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    pub kid: String,
    /// base64 of the 12-byte nonce.
    pub nonce: String,
    /// base64 of ciphertext plus tag.
    pub ct: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed with key `{0}`, which is not in TOKEN_ENCRYPTION_KEY")]
    UnknownKey(String),
    #[error("ciphertext does not authenticate with key `{0}` (wrong key or tampered record)")]
    Tampered(String),
}

#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "Keyring({kids:?})")
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// A short public name for a key, derived one-way from it.
fn fingerprint(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"tiktok-messaging-worker/kid/");
    h.update(key);
    hex::encode(&h.finalize()[..4])
}

impl Keyring {
    /// Parses the secret; the error names the faulty entry by position only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, item) in raw.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let bytes = decode_b64(item)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| format!("entry {} is not base64 of 32 bytes", i + 1))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| "bad key length")?;
            keys.push((fingerprint(&bytes), cipher));
        }
        if keys.is_empty() {
            return Err("no key listed".into());
        }
        Ok(Keyring { keys })
    }

    /// The fingerprint of the key new writes use.
    pub fn active_kid(&self) -> &str {
        &self.keys[0].0
    }

    /// Encrypts with the active key. `aad` binds the value to its owner (e.g. the account id),
    /// so a record copied under another account fails to open.
    pub fn seal(&self, rng: &impl Rng, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let (kid, cipher) = &self.keys[0];
        let mut nonce = [0u8; 12];
        rng.fill(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed {
            kid: kid.clone(),
            nonce: STANDARD.encode(nonce),
            ct: STANDARD.encode(ct),
        }
    }

    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| *k == sealed.kid)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.kid.clone()))?;
        let tampered = || CryptoError::Tampered(sealed.kid.clone());
        let nonce = decode_b64(&sealed.nonce)
            .filter(|n| n.len() == 12)
            .ok_or_else(tampered)?;
        let ct = decode_b64(&sealed.ct).ok_or_else(tampered)?;
        cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
            .map_err(|_| tampered())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil::fixtures::CountingRng;
    use std::cell::Cell;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn round_trip_and_fresh_nonce_per_write() {
        let ring = Keyring::parse(&key(1)).unwrap();
        let rng = CountingRng(Cell::new(0));
        let a = ring.seal(&rng, b"token", b"acct");
        let b = ring.seal(&rng, b"token", b"acct");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ct, b.ct);
        assert_eq!(ring.open(&a, b"acct").unwrap(), b"token");
        assert!(!a.ct.contains("token"));
    }

    #[test]
    fn rotation_keeps_old_records_readable() {
        let rng = CountingRng(Cell::new(0));
        let old = Keyring::parse(&key(1)).unwrap();
        let sealed_old = old.seal(&rng, b"v1", b"a");
        let rotated = Keyring::parse(&format!("{},{}", key(2), key(1))).unwrap();
        assert_ne!(rotated.active_kid(), old.active_kid());
        assert_eq!(rotated.open(&sealed_old, b"a").unwrap(), b"v1");
        let sealed_new = rotated.seal(&rng, b"v2", b"a");
        assert_eq!(sealed_new.kid, rotated.active_kid());
        // Dropping the new key makes new records unreadable, with a clear error.
        assert_eq!(
            old.open(&sealed_new, b"a"),
            Err(CryptoError::UnknownKey(sealed_new.kid.clone()))
        );
    }

    #[test]
    fn wrong_key_with_same_kid_or_wrong_aad_is_tampered() {
        let rng = CountingRng(Cell::new(0));
        let ring = Keyring::parse(&key(3)).unwrap();
        let mut s = ring.seal(&rng, b"v", b"a");
        assert!(matches!(ring.open(&s, b"b"), Err(CryptoError::Tampered(_))));
        s.ct = STANDARD.encode([0u8; 20]);
        assert!(matches!(ring.open(&s, b"a"), Err(CryptoError::Tampered(_))));
    }

    #[test]
    fn parse_errors_name_position_not_value() {
        let e = Keyring::parse("c2hvcnQ=").unwrap_err();
        assert_eq!(e, "entry 1 is not base64 of 32 bytes");
        assert!(Keyring::parse("").is_err());
        assert!(Keyring::parse(&URL_SAFE_NO_PAD.encode([9u8; 32])).is_ok());
    }
}
