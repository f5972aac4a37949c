//! Policy bundles and their hashes.
//!
//! A bundle is the policy's text as the operator wrote it; its identity is
//! the SHA-256 of that text. An instance attests the hash of the bundle it
//! actually serves under, computed from the text it loaded, so a bundle that
//! failed to load or a stale one from the launch template is never attested
//! as the desired one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 of a bundle's text; lowercase hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyHash(pub [u8; 32]);

impl PolicyHash {
    /// The hash of `text`.
    pub fn of(text: &str) -> PolicyHash {
        PolicyHash(Sha256::digest(text.as_bytes()).into())
    }

    /// The first 12 hex digits, for logs and reports.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }
}

impl fmt::Display for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyHash({})", self.short())
    }
}

impl Serialize for PolicyHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PolicyHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(serde::de::Error::custom("a policy hash is 64 hex digits"));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(serde::de::Error::custom)?;
            out[i] = u8::from_str_radix(hex, 16)
                .map_err(|_| serde::de::Error::custom("a policy hash is 64 hex digits"))?;
        }
        Ok(PolicyHash(out))
    }
}

/// A versioned policy bundle.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBundle {
    /// Set by the publisher; increases with each rollout.
    pub version: u64,
    /// The policy, as text the instance parses and validates.
    pub text: String,
    /// SHA-256 of `text`, as the publisher computed it.
    pub hash: PolicyHash,
}

impl PolicyBundle {
    /// A bundle of `text` at `version`.
    pub fn new(version: u64, text: impl Into<String>) -> PolicyBundle {
        let text = text.into();
        PolicyBundle {
            version,
            hash: PolicyHash::of(&text),
            text,
        }
    }

    /// Whether the text still hashes to the stated hash (a bundle damaged
    /// or altered on the way is refused, never loaded).
    pub fn is_intact(&self) -> bool {
        PolicyHash::of(&self.text) == self.hash
    }
}

impl fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("version", &self.version)
            .field("hash", &self.hash)
            .field("text_bytes", &self.text.len())
            .finish()
    }
}
