//! Rules, requests and decisions: what a policy file describes and what a
//! gateway (or the simulator) calls per request.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::algo::{
    Algorithm, FixedWindow, Gcra, LimitConfig, Outcome, Policy, SlidingWindow, TokenBucket,
};
use crate::error::{CheckError, ConfigError};
use crate::global::{CounterStore, GlobalLimiter, GlobalState, SyncReport};
use crate::key::{Fingerprinter, Key};
use crate::store::{KeyedLimiter, LocalStore, ShardedStore, Store, StoreConfig};
use crate::table::TableStats;

/// Rules whose per-request keys are cached on the stack during a check.
const KEYS_CACHED: usize = 16;

/// One part of a rule's key (Envoy's descriptor entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum KeyPart {
    /// The client address.
    Ip,
    /// The client's network: the first `v4` bits of an IPv4 address or `v6`
    /// bits of an IPv6 one (/24 and /64 are the usual choices).
    IpPrefix {
        /// IPv4 prefix length.
        v4: u8,
        /// IPv6 prefix length.
        v6: u8,
    },
    /// The authenticated account or API key. A rule with this part only
    /// applies to requests that carry one.
    Account,
    /// The route.
    Route,
}

/// Whether a rule's denials are enforced or only counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denials deny.
    #[default]
    Enforce,
    /// Dry run: evaluated and counted exactly as if enforced, but the request
    /// is always let through (Envoy's `filter_enforced = 0%`; Stripe's dark launch).
    Shadow,
}

/// One rule of a policy file.
///
/// ```toml
/// name = "login-per-ip"
/// key = ["ip"]
/// routes = ["/login"]
/// limit = { algorithm = "gcra", period = "6s", burst = 5 }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name; a denial names it, and the `RateLimit` headers carry it.
    pub name: String,
    /// What is counted: the parts together form the key. Empty means one
    /// counter shared by every matching request.
    #[serde(default)]
    pub key: Vec<KeyPart>,
    /// Only requests to these routes match; empty means every route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// The limit.
    pub limit: LimitConfig,
    /// Enforce or shadow.
    #[serde(default)]
    pub mode: Mode,
    /// Key-store sizing (cap on tracked keys, hash seed).
    #[serde(default)]
    pub store: StoreConfig,
}

/// A request as the limiter sees it. Borrowed: building one allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Client address.
    pub ip: IpAddr,
    /// Account or API key, when authenticated.
    pub account: Option<&'a str>,
    /// Route (e.g. the matched path template).
    pub route: &'a str,
    /// Units this request costs (usually 1).
    pub cost: u32,
}

impl<'a> Request<'a> {
    /// An anonymous request costing one unit.
    pub fn new(ip: IpAddr, route: &'a str) -> Request<'a> {
        Request {
            ip,
            account: None,
            route,
            cost: 1,
        }
    }
    /// The same request, authenticated as `account`.
    pub fn with_account(self, account: &'a str) -> Request<'a> {
        Request {
            account: Some(account),
            ..self
        }
    }
}

/// A rule's index in its [`RuleSet`]; [`RuleSet::rule_name`] gives its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u16);

/// The IETF `RateLimit` fields of the most restrictive matching rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The rule.
    pub rule: RuleId,
    /// Its advertised policy.
    pub policy: Policy,
    /// Units left.
    pub remaining: u64,
    /// When its quota is fully back.
    pub reset_at: Instant,
}

/// The answer for one request.
#[must_use = "a decision that is not acted on admits a request the limit refused"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether to serve the request.
    pub allowed: bool,
    /// The first enforced rule that denied it.
    pub denied_by: Option<RuleId>,
    /// The first shadow rule that would have denied it.
    pub shadow_denied_by: Option<RuleId>,
    /// On a denial, when the same request can first succeed (`None`: never,
    /// because it costs more than the rule can ever grant).
    pub retry_at: Option<Instant>,
    /// The enforced rule with the least remaining quota, for headers.
    pub quota: Option<Quota>,
    /// The instant decided at.
    pub now: Instant,
}

/// Formatted response headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// `RateLimit-Policy`, e.g. `"per-ip";q=100;w=60`.
    pub ratelimit_policy: Option<String>,
    /// `RateLimit`, e.g. `"per-ip";r=42;t=17`.
    pub ratelimit: Option<String>,
    /// `Retry-After` in whole seconds (rounded up), on a denial.
    pub retry_after: Option<String>,
}

fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            // sf-string allows printable ASCII only; drop anything else.
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000)
}

impl Decision {
    /// The IETF `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers)
    /// and RFC 9110 `Retry-After` headers for this decision.
    pub fn headers<F: StoreFamily>(&self, rules: &RuleSet<F>) -> Headers {
        let mut h = Headers::default();
        if let Some(q) = self.quota {
            let name = rules.rule_name(q.rule);
            let mut p = String::new();
            push_sf_string(&mut p, name);
            let _ = write!(p, ";q={};w={}", q.policy.quota, secs_ceil(q.policy.window));
            h.ratelimit_policy = Some(p);
            let mut r = String::new();
            push_sf_string(&mut r, name);
            let _ = write!(
                r,
                ";r={};t={}",
                q.remaining,
                secs_ceil(q.reset_at.saturating_since(self.now))
            );
            h.ratelimit = Some(r);
        }
        if !self.allowed {
            h.retry_after = self
                .retry_at
                .map(|t| secs_ceil(t.saturating_since(self.now)).to_string());
        }
        h
    }
}

/// A counter cell: `Cell<u64>` single-threaded, `AtomicU64` for threads.
pub trait Counter: Default + fmt::Debug {
    /// Adds one.
    fn incr(&self);
    /// The value.
    fn get(&self) -> u64;
}
impl Counter for Cell<u64> {
    #[inline]
    fn incr(&self) {
        self.set(self.get() + 1);
    }
    fn get(&self) -> u64 {
        Cell::get(self)
    }
}
impl Counter for AtomicU64 {
    #[inline]
    fn incr(&self) {
        self.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
}

/// Chooses the store and counter types of a [`RuleSet`].
pub trait StoreFamily: fmt::Debug {
    /// The store of per-key state `S`.
    type Store<S: Copy + Default + fmt::Debug + Send>: Store<S>;
    /// The counter cell.
    type Counter: Counter;
}

/// Single-threaded: `RefCell` tables and `Cell` counters (the simulator).
#[derive(Debug)]
pub struct Local;
impl StoreFamily for Local {
    type Store<S: Copy + Default + fmt::Debug + Send> = LocalStore<S>;
    type Counter = Cell<u64>;
}

/// Multi-threaded: sharded mutex tables and atomic counters (the gateway).
#[derive(Debug)]
pub struct Threaded;
impl StoreFamily for Threaded {
    type Store<S: Copy + Default + fmt::Debug + Send> = ShardedStore<S>;
    type Counter = AtomicU64;
}

#[derive(Debug)]
enum AnyLimiter<F: StoreFamily> {
    Gcra(KeyedLimiter<Gcra, F::Store<u64>>),
    TokenBucket(KeyedLimiter<TokenBucket, F::Store<crate::algo::TokenBucketState>>),
    FixedWindow(KeyedLimiter<FixedWindow, F::Store<crate::algo::WindowState>>),
    SlidingWindow(KeyedLimiter<SlidingWindow, F::Store<crate::algo::SlidingState>>),
    Global(GlobalLimiter<F::Store<GlobalState>>),
}

impl<F: StoreFamily> AnyLimiter<F> {
    fn run(&self, now: Instant, key: Key, n: u32, commit: bool) -> Result<Outcome, CheckError> {
        macro_rules! go {
            ($l:expr) => {
                if commit {
                    $l.check_n(now, key, n)
                } else {
                    $l.peek_n(now, key, n)
                }
            };
        }
        match self {
            AnyLimiter::Gcra(l) => go!(l),
            AnyLimiter::TokenBucket(l) => go!(l),
            AnyLimiter::FixedWindow(l) => go!(l),
            AnyLimiter::SlidingWindow(l) => go!(l),
            AnyLimiter::Global(l) => go!(l),
        }
    }
    fn policy(&self) -> Policy {
        match self {
            AnyLimiter::Gcra(l) => l.algorithm().policy(),
            AnyLimiter::TokenBucket(l) => l.algorithm().policy(),
            AnyLimiter::FixedWindow(l) => l.algorithm().policy(),
            AnyLimiter::SlidingWindow(l) => l.algorithm().policy(),
            AnyLimiter::Global(l) => l.policy(),
        }
    }
    fn stats(&self) -> TableStats {
        match self {
            AnyLimiter::Gcra(l) => l.stats(),
            AnyLimiter::TokenBucket(l) => l.stats(),
            AnyLimiter::FixedWindow(l) => l.stats(),
            AnyLimiter::SlidingWindow(l) => l.stats(),
            AnyLimiter::Global(l) => l.stats(),
        }
    }
}

/// Counters of one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// Requests this rule allowed and charged.
    pub allowed: u64,
    /// Requests this rule denied (or would have, in shadow mode).
    pub denied: u64,
    /// Key-store counters: keys tracked, evictions at the cap, expirations.
    pub table: TableStats,
}

#[derive(Debug)]
struct Rule<F: StoreFamily> {
    name: String,
    key: Vec<KeyPart>,
    routes: Vec<String>,
    mode: Mode,
    limiter: AnyLimiter<F>,
    allowed: F::Counter,
    denied: F::Counter,
}

/// Instance-level options of a rule set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RuleSetConfig {
    /// This instance's id in the fleet (global rules report it to the store).
    pub instance: u32,
    /// Seed of the fingerprints of accounts, routes and composite keys.
    /// Deterministic in the simulator; secret in a live gateway.
    pub fingerprint_seed: u64,
}

/// The limiters of one instance, built from a list of rules.
///
/// [`RuleSet::check`] evaluates every rule that matches a request in two
/// phases: first it asks each rule without writing, then, only if no enforced
/// rule denied, it charges the enforced rules. So a denied request consumes
/// nothing anywhere. Shadow rules are charged exactly when they would have
/// been had they been enforced (no rule at all denied), so flipping a rule
/// from shadow to enforce changes only what is let through, not its counts.
/// With a single matching rule the first phase is skipped. On the
/// [`Threaded`] family another thread may spend quota between the two
/// phases; the second phase then denies (and may have charged earlier rules
/// for that one request).
#[derive(Debug)]
pub struct RuleSet<F: StoreFamily = Local> {
    rules: Vec<Rule<F>>,
    fingerprints: Fingerprinter,
    instance: u32,
    requests: F::Counter,
    denied: F::Counter,
}

fn validate_key(name: &str, key: &[KeyPart]) -> Result<(), ConfigError> {
    for (i, part) in key.iter().enumerate() {
        if let KeyPart::IpPrefix { v4, v6 } = *part {
            if v4 > 32 {
                return Err(ConfigError::PrefixTooLong { len: v4, max: 32 });
            }
            if v6 > 128 {
                return Err(ConfigError::PrefixTooLong { len: v6, max: 128 });
            }
        }
        if key[..i].contains(part) {
            return Err(ConfigError::BadKey {
                rule: name.to_owned(),
                reason: "a key part is repeated",
            });
        }
    }
    Ok(())
}

impl<F: StoreFamily> RuleSet<F> {
    /// Builds the limiters for `rules`.
    pub fn new(rules: &[RuleConfig], config: RuleSetConfig) -> Result<RuleSet<F>, ConfigError> {
        let mut built = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            if rules[..i].iter().any(|o| o.name == r.name) {
                return Err(ConfigError::DuplicateRuleName {
                    name: r.name.clone(),
                });
            }
            validate_key(&r.name, &r.key)?;
            let limiter = match r.limit {
                LimitConfig::Gcra(c) => {
                    AnyLimiter::Gcra(KeyedLimiter::new(Gcra::new(c)?, &r.store)?)
                }
                LimitConfig::TokenBucket(c) => {
                    AnyLimiter::TokenBucket(KeyedLimiter::new(TokenBucket::new(c)?, &r.store)?)
                }
                LimitConfig::FixedWindow(c) => {
                    AnyLimiter::FixedWindow(KeyedLimiter::new(FixedWindow::new(c)?, &r.store)?)
                }
                LimitConfig::SlidingWindow(c) => {
                    AnyLimiter::SlidingWindow(KeyedLimiter::new(SlidingWindow::new(c)?, &r.store)?)
                }
                LimitConfig::Global(c) => {
                    // The rule's identity in the shared store: its name, so
                    // instances agree however their rule lists are ordered.
                    let id = Fingerprinter::new(0)
                        .start(0xff)
                        .bytes(0, r.name.as_bytes())
                        .finish()
                        .as_u128() as u64;
                    AnyLimiter::Global(GlobalLimiter::new(c, id, config.instance, &r.store)?)
                }
            };
            built.push(Rule {
                name: r.name.clone(),
                key: r.key.clone(),
                routes: r.routes.clone(),
                mode: r.mode,
                limiter,
                allowed: F::Counter::default(),
                denied: F::Counter::default(),
            });
        }
        if built.len() > usize::from(u16::MAX) {
            return Err(ConfigError::BadKey {
                rule: String::new(),
                reason: "more than 65535 rules",
            });
        }
        Ok(RuleSet {
            rules: built,
            fingerprints: Fingerprinter::new(config.fingerprint_seed),
            instance: config.instance,
            requests: F::Counter::default(),
            denied: F::Counter::default(),
        })
    }

    /// A rule's name.
    pub fn rule_name(&self, id: RuleId) -> &str {
        self.rules
            .get(usize::from(id.0))
            .map_or("", |r| r.name.as_str())
    }

    /// Every rule's id and name, in policy order (for reports).
    pub fn rules(&self) -> impl Iterator<Item = (RuleId, &str)> + '_ {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (RuleId(i as u16), r.name.as_str()))
    }

    /// The rule called `name`.
    pub fn rule_id(&self, name: &str) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| r.name == name)
            .map(|i| RuleId(i as u16))
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// This instance's id.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The key `rule` counts `req` under, or `None` if the rule does not apply.
    fn key_for(&self, rule: &Rule<F>, req: &Request<'_>) -> Option<Key> {
        if !rule.routes.is_empty() && !rule.routes.iter().any(|r| r == req.route) {
            return None;
        }
        match rule.key.as_slice() {
            [] => Some(Key::from_u128(0)),
            [KeyPart::Ip] => Some(Key::from_ip(req.ip)),
            [KeyPart::IpPrefix { v4, v6 }] => Some(Key::from_ip_prefix(req.ip, *v4, *v6)),
            parts => {
                let mut fp = self.fingerprints.start(1);
                for part in parts {
                    match *part {
                        KeyPart::Ip => fp.u128(1, Key::from_ip(req.ip).as_u128()),
                        KeyPart::IpPrefix { v4, v6 } => {
                            fp.u128(2, Key::from_ip_prefix(req.ip, v4, v6).as_u128())
                        }
                        KeyPart::Account => fp.bytes(3, req.account?.as_bytes()),
                        KeyPart::Route => fp.bytes(4, req.route.as_bytes()),
                    };
                }
                Some(fp.finish())
            }
        }
    }

    #[inline]
    fn cached_key(
        &self,
        cache: &mut [Option<Option<Key>>; KEYS_CACHED],
        i: usize,
        rule: &Rule<F>,
        req: &Request<'_>,
    ) -> Option<Key> {
        match cache.get_mut(i) {
            Some(Some(k)) => *k,
            Some(slot) => *slot.insert(self.key_for(rule, req)),
            None => self.key_for(rule, req),
        }
    }

    /// Decides one request at `now`. Allocates nothing.
    pub fn check(&self, now: Instant, req: &Request<'_>) -> Decision {
        self.requests.incr();
        let mut d = Decision {
            allowed: true,
            denied_by: None,
            shadow_denied_by: None,
            retry_at: None,
            quota: None,
            now,
        };
        // Keys are derived once per request (a composite key costs two SipHash
        // runs), cached on the stack for the first KEYS_CACHED rules.
        let mut cache = [None; KEYS_CACHED];
        let mut matching = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            matching += usize::from(self.cached_key(&mut cache, i, rule, req).is_some());
        }
        // Phase 1: ask without writing (skipped for a single matching rule,
        // where phase 2's own check is the same question).
        if matching > 1 {
            for (i, rule) in self.rules.iter().enumerate() {
                let Some(key) = self.cached_key(&mut cache, i, rule, req) else {
                    continue;
                };
                let outcome = rule.limiter.run(now, key, req.cost, false);
                self.note(&mut d, i, rule, outcome);
            }
        }
        // Phase 2: charge. Enforced rules when no enforced rule denied;
        // shadow rules when no rule at all denied.
        let any_denied = d.denied_by.is_some() || d.shadow_denied_by.is_some();
        for (i, rule) in self.rules.iter().enumerate() {
            let commit = match rule.mode {
                Mode::Enforce => d.denied_by.is_none(),
                Mode::Shadow => !any_denied,
            };
            if !commit {
                continue;
            }
            let Some(key) = self.cached_key(&mut cache, i, rule, req) else {
                continue;
            };
            let outcome = rule.limiter.run(now, key, req.cost, true);
            if matches!(outcome, Ok(o) if o.allowed) {
                rule.allowed.incr();
            }
            if matching > 1 {
                // Only a race (threads) can turn a phase-1 allow into a deny.
                if let Ok(o) = outcome
                    && !o.allowed
                {
                    self.note(&mut d, i, rule, outcome);
                }
                self.note_quota(&mut d, i, rule, outcome);
            } else {
                self.note(&mut d, i, rule, outcome);
            }
        }
        d.allowed = d.denied_by.is_none();
        if !d.allowed {
            self.denied.incr();
        }
        d
    }

    fn note_quota(
        &self,
        d: &mut Decision,
        i: usize,
        rule: &Rule<F>,
        outcome: Result<Outcome, CheckError>,
    ) {
        if rule.mode != Mode::Enforce {
            return;
        }
        if let Ok(o) = outcome
            && d.quota.is_none_or(|q| o.remaining < q.remaining)
        {
            d.quota = Some(Quota {
                rule: RuleId(i as u16),
                policy: rule.limiter.policy(),
                remaining: o.remaining,
                reset_at: o.reset_at,
            });
        }
    }

    fn note(
        &self,
        d: &mut Decision,
        i: usize,
        rule: &Rule<F>,
        outcome: Result<Outcome, CheckError>,
    ) {
        let id = RuleId(i as u16);
        let (allowed, retry_at) = match outcome {
            Ok(o) => (o.allowed, Some(o.retry_at)),
            Err(_) => (false, None),
        };
        if !allowed {
            rule.denied.incr();
            match rule.mode {
                Mode::Enforce if d.denied_by.is_none() => {
                    d.denied_by = Some(id);
                    d.retry_at = retry_at;
                    if let Ok(o) = outcome {
                        d.quota = Some(Quota {
                            rule: id,
                            policy: rule.limiter.policy(),
                            remaining: 0,
                            reset_at: o.reset_at,
                        });
                    }
                }
                Mode::Shadow if d.shadow_denied_by.is_none() => d.shadow_denied_by = Some(id),
                _ => {}
            }
        } else if d.denied_by.is_none() {
            self.note_quota(d, i, rule, outcome);
        }
    }

    /// Syncs every global rule with the shared counter store.
    pub fn sync(&mut self, now: Instant, store: &mut dyn CounterStore) -> SyncReport {
        let mut total = SyncReport::default();
        for rule in &mut self.rules {
            if let AnyLimiter::Global(g) = &mut rule.limiter {
                let r = g.sync(now, store);
                total.keys_pushed += r.keys_pushed;
                total.units_pushed += r.units_pushed;
                total.fleet = r.fleet;
            }
        }
        total
    }

    /// Counters of one rule.
    pub fn rule_stats(&self, id: RuleId) -> Option<RuleStats> {
        let r = self.rules.get(usize::from(id.0))?;
        Some(RuleStats {
            allowed: r.allowed.get(),
            denied: r.denied.get(),
            table: r.limiter.stats(),
        })
    }

    /// Requests checked and requests denied, over all rules.
    pub fn totals(&self) -> (u64, u64) {
        (self.requests.get(), self.denied.get())
    }
}
