//! The revocation log (token service side) and the denylist (verifier side).
//!
//! Every change carries a version from one monotonically increasing counter.
//! A verifier holding version `n` asks for [`RevocationLog::since`]`(n)` and
//! applies the [`RevocationDelta`]. Entries name what they revoke and the
//! instant `until` after which every token they can match has expired (plus
//! the verifiers' leeway); past `until` an entry can be dropped by both sides
//! without changing any decision, which is what keeps both bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rampart_time::Instant;
use serde::{Deserialize, Serialize};

use crate::fxhash::FxBuild;

/// What a revocation names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevocationTarget {
    /// One token, by `jti`.
    Token {
        /// The token id.
        jti: String,
    },
    /// Every token of one session (grant family), by `sid`.
    Session {
        /// The session id.
        sid: String,
    },
    /// Every token of one subject issued at or before a second: "log this
    /// user out everywhere". Tokens issued later are unaffected.
    Subject {
        /// The subject.
        sub: String,
        /// Tokens whose `iat` is at or before this (Unix seconds) are revoked.
        issued_at_or_before_s: u64,
    },
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The log version at which this entry was added.
    pub version: u64,
    /// What is revoked.
    pub target: RevocationTarget,
    /// After this instant every token the entry could match is expired
    /// (including verifier leeway), so the entry may be dropped. Serialized
    /// as integer nanoseconds.
    #[serde(with = "crate::instant_ns")]
    pub until: Instant,
}

/// "Changes since version N": what a verifier applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationDelta {
    /// The version the verifier asked from.
    pub since_version: u64,
    /// The log's version when the delta was cut; the verifier is at this
    /// version after applying it.
    pub version: u64,
    /// The live entries with `version > since_version`, oldest first.
    pub entries: Vec<Revocation>,
}

/// The token service's log. Pruned by `until`, so its size is bounded by the
/// revocations of the last token lifetime, not by history.
#[derive(Debug, Default, Clone)]
pub struct RevocationLog {
    version: u64,
    entries: BTreeMap<u64, Revocation>,
    // (until, version) so pruning pops the oldest deadline first.
    by_until: BTreeSet<(Instant, u64)>,
}

impl RevocationLog {
    /// The current version (0 before any revocation).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of live entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry and returns its version.
    pub(crate) fn push(&mut self, target: RevocationTarget, until: Instant) -> u64 {
        self.version += 1;
        let v = self.version;
        self.entries.insert(
            v,
            Revocation {
                version: v,
                target,
                until,
            },
        );
        self.by_until.insert((until, v));
        v
    }

    /// Drops every entry whose `until` has passed.
    pub fn prune(&mut self, now: Instant) {
        while let Some(&(until, v)) = self.by_until.first() {
            if until > now {
                break;
            }
            self.by_until.pop_first();
            self.entries.remove(&v);
        }
    }

    /// The live entries newer than `since_version`. Entries pruned since
    /// then named only expired tokens, so skipping them changes nothing.
    pub fn since(&self, since_version: u64) -> RevocationDelta {
        let entries = self
            .entries
            .range(since_version.saturating_add(1)..)
            .map(|(_, r)| r.clone())
            .collect();
        RevocationDelta {
            since_version,
            version: self.version,
            entries,
        }
    }

    /// Every live entry (for tests and reports).
    pub fn iter(&self) -> impl Iterator<Item = &Revocation> {
        self.entries.values()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Token,
    Session,
    Subject,
}

/// The verifier's O(1) denylist: three hash maps with a fixed hasher, plus an
/// expiry index so pruning costs O(expired · log n).
#[derive(Debug, Default)]
pub(crate) struct Denylist {
    jti: HashMap<Box<str>, Instant, FxBuild>,
    sid: HashMap<Box<str>, Instant, FxBuild>,
    sub: HashMap<Box<str>, (u64, Instant), FxBuild>,
    by_until: BTreeSet<(Instant, Kind, Box<str>)>,
}

impl Denylist {
    pub(crate) fn len(&self) -> usize {
        self.jti.len() + self.sid.len() + self.sub.len()
    }

    fn would_grow(&self, t: &RevocationTarget) -> bool {
        match t {
            RevocationTarget::Token { jti } => !self.jti.contains_key(jti.as_str()),
            RevocationTarget::Session { sid } => !self.sid.contains_key(sid.as_str()),
            RevocationTarget::Subject { sub, .. } => !self.sub.contains_key(sub.as_str()),
        }
    }

    /// Inserts `r` unless it is already moot at `now`. Returns false only
    /// when the entry was needed but the list is at `cap`.
    pub(crate) fn insert(&mut self, now: Instant, r: &Revocation, cap: usize) -> bool {
        if r.until <= now {
            return true;
        }
        if self.len() >= cap && self.would_grow(&r.target) {
            return false;
        }
        let (kind, key) = match &r.target {
            RevocationTarget::Token { jti } => {
                let e = self.jti.entry(jti.as_str().into()).or_insert(r.until);
                *e = (*e).max(r.until);
                (Kind::Token, jti)
            }
            RevocationTarget::Session { sid } => {
                let e = self.sid.entry(sid.as_str().into()).or_insert(r.until);
                *e = (*e).max(r.until);
                (Kind::Session, sid)
            }
            RevocationTarget::Subject {
                sub,
                issued_at_or_before_s,
            } => {
                let e = self
                    .sub
                    .entry(sub.as_str().into())
                    .or_insert((*issued_at_or_before_s, r.until));
                e.0 = e.0.max(*issued_at_or_before_s);
                e.1 = e.1.max(r.until);
                (Kind::Subject, sub)
            }
        };
        self.by_until.insert((r.until, kind, key.as_str().into()));
        true
    }

    /// Drops entries whose `until` has passed. An index entry made stale by
    /// a later, longer `until` for the same key leaves the map alone.
    pub(crate) fn prune(&mut self, now: Instant) {
        while let Some((until, _, _)) = self.by_until.first() {
            if *until > now {
                break;
            }
            let Some((until, kind, key)) = self.by_until.pop_first() else {
                break;
            };
            match kind {
                Kind::Token => {
                    if self.jti.get(&key) == Some(&until) {
                        self.jti.remove(&key);
                    }
                }
                Kind::Session => {
                    if self.sid.get(&key) == Some(&until) {
                        self.sid.remove(&key);
                    }
                }
                Kind::Subject => {
                    if self.sub.get(&key).map(|e| e.1) == Some(until) {
                        self.sub.remove(&key);
                    }
                }
            }
        }
    }

    /// Whether a token with these claims is revoked. Three hash lookups.
    pub(crate) fn is_revoked(&self, jti: &str, sid: &str, sub: &str, iat_s: u64) -> bool {
        self.jti.contains_key(jti)
            || self.sid.contains_key(sid)
            || self
                .sub
                .get(sub)
                .is_some_and(|&(before, _)| iat_s <= before)
    }

    /// The latest `until` of any entry (for the bounded-denylist property).
    pub(crate) fn untils(&self) -> impl Iterator<Item = Instant> + '_ {
        self.jti
            .values()
            .copied()
            .chain(self.sid.values().copied())
            .chain(self.sub.values().map(|e| e.1))
    }
}
