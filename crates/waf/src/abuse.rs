//! Sans-IO abuse detection for login endpoints: bucketed failure windows
//! per IP, per IP prefix, per account and globally; credential-stuffing
//! heuristics; escalating blocks; bounded state.
//!
//! Drive it with [`AbuseDetector::observe`] after every authentication
//! attempt and ask [`AbuseDetector::check`] before the next one.
//!
//! # Signals
//! | signal | window | response |
//! |---|---|---|
//! | failures from one IP >= `ip_failures_max` | short | block, escalating 1 m, 10 m, 1 h |
//! | distinct accounts from one IP >= `ip_accounts_max` | short | block, escalating |
//! | failures from one prefix (/24, /64) >= `prefix_failures_max` | short | challenge the prefix |
//! | failures on one account >= `account_failures_max` (short) or `account_failures_long_max` (long) | both | challenge logins to the account |
//! | global failures >= `global_failures_min` and failure ratio >= `global_failure_ratio_pct` | short | challenge IPs with no recent success |
//! | inter-arrival times of one IP with coefficient of variation < `cadence_cv_max_pct` | last 8 attempts | challenge the IP |
//!
//! Accounts get challenges, never blocks, so an attacker cannot lock a
//! victim out by failing on purpose.
//!
//! # Bounded state
//! Each table has a cap. When a table is full, expired entries are swept
//! (at most once per bucket width, so a flood cannot make every insert
//! O(n)); if it is still full the newcomer is not tracked individually and
//! the table's `*_cap_rejections` counter rises. An untracked IP is still
//! counted in its prefix, its account and the global windows, which is what
//! catches botnets wide enough to fill the IP table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

/// Slots per window: the current bucket plus [`BUCKETS`] full ones, so a
/// window always covers at least its configured length (over-counting by
/// at most one bucket width, which errs towards protection).
const BUCKETS: u64 = 6;
const SLOTS: usize = BUCKETS as usize + 1;
/// Distinct-account fingerprints one IP entry remembers; the count
/// saturates here, so `ip_accounts_max` may not exceed it.
pub const IP_ACCOUNTS_TRACKED: usize = 8;
/// Inter-arrival samples kept for the cadence test.
const CADENCE_SAMPLES: usize = 8;

/// Abuse-detector configuration (plain data for the policy file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AbuseConfig {
    /// Short window for per-IP, per-prefix, per-account and global counts.
    pub window: Duration,
    /// Long window for per-account counts (low-and-slow attacks).
    pub long_window: Duration,
    /// Failed logins from one IP within `window` that trigger a block.
    pub ip_failures_max: u32,
    /// Distinct accounts tried from one IP within `window` that trigger a block (<= 8).
    pub ip_accounts_max: u32,
    /// Failed logins from one prefix within `window` that trigger a challenge.
    pub prefix_failures_max: u32,
    /// IPv4 prefix length for grouping.
    pub ipv4_prefix_len: u8,
    /// IPv6 prefix length for grouping.
    pub ipv6_prefix_len: u8,
    /// Failures on one account within `window` that trigger a challenge.
    pub account_failures_max: u32,
    /// Failures on one account within `long_window` that trigger a challenge.
    pub account_failures_long_max: u32,
    /// Minimum global failures within `window` before the ratio counts.
    pub global_failures_min: u32,
    /// Global failure share (percent) at which unknown IPs are challenged.
    pub global_failure_ratio_pct: u8,
    /// Coefficient of variation (percent) below which a cadence is scripted.
    pub cadence_cv_max_pct: u32,
    /// Block lengths for the first, second, third and later offences.
    pub block_durations: Vec<Duration>,
    /// Offences older than this are forgotten.
    pub strike_memory: Duration,
    /// How long a challenge decision lasts.
    pub challenge_ttl: Duration,
    /// CIDRs (`10.0.0.0/8`, `2001:db8::/32`) never challenged or blocked.
    pub allow_list: Vec<String>,
    /// Cap on tracked IPs.
    pub ips_max: u32,
    /// Cap on tracked prefixes.
    pub prefixes_max: u32,
    /// Cap on tracked accounts.
    pub accounts_max: u32,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        AbuseConfig {
            window: Duration::from_mins(1),
            long_window: Duration::from_hours(1),
            ip_failures_max: 10,
            ip_accounts_max: 5,
            prefix_failures_max: 50,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 64,
            account_failures_max: 5,
            account_failures_long_max: 20,
            global_failures_min: 100,
            global_failure_ratio_pct: 50,
            cadence_cv_max_pct: 10,
            block_durations: vec![
                Duration::from_mins(1),
                Duration::from_mins(10),
                Duration::from_hours(1),
            ],
            strike_memory: Duration::from_hours(24),
            challenge_ttl: Duration::from_mins(5),
            allow_list: Vec::new(),
            ips_max: 100_000,
            prefixes_max: 50_000,
            accounts_max: 100_000,
        }
    }
}

/// Why an [`AbuseConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbuseConfigError {
    /// A window shorter than its bucket count in nanoseconds.
    #[error("windows must be at least {BUCKETS}ns")]
    WindowTooShort,
    /// `ip_accounts_max` above what an entry can count.
    #[error("ip_accounts_max must be 1..={IP_ACCOUNTS_TRACKED}")]
    IpAccountsMax,
    /// A threshold or cap of zero.
    #[error("{field} must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// No block durations.
    #[error("block_durations must not be empty")]
    NoBlockDurations,
    /// A prefix length too long for its family.
    #[error("prefix length out of range")]
    PrefixLen,
    /// An allow-list entry that is not `ip` or `ip/len`.
    #[error("allow_list entry {entry:?} is not a CIDR")]
    BadCidr {
        /// The entry.
        entry: String,
    },
}

/// One authentication outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Credentials accepted.
    Success,
    /// Credentials rejected.
    Failure,
}

/// An authentication attempt the gateway saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthEvent<'a> {
    /// Client address.
    pub ip: IpAddr,
    /// Account name tried, if known.
    pub account: Option<&'a str>,
    /// What happened.
    pub outcome: Outcome,
}

/// Which signal produced a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Too many failures from the IP.
    IpFailures,
    /// Too many distinct accounts from the IP.
    IpManyAccounts,
    /// Too many failures from the IP's prefix.
    PrefixFailures,
    /// Too many failures on the account.
    AccountFailures,
    /// A scripted login cadence from the IP.
    Cadence,
    /// A global failure ratio typical of credential stuffing.
    GlobalFailureRatio,
}

/// What to do with the next attempt.
#[must_use = "a decision that is not acted on lets a blocked attempt through"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Require a challenge (CAPTCHA, proof of work, step-up) until `until`.
    Challenge {
        /// When the decision expires.
        until: Instant,
        /// Why.
        reason: Reason,
    },
    /// Refuse until `until`.
    Block {
        /// When the block ends.
        until: Instant,
        /// Why.
        reason: Reason,
    },
}

/// Counters for dashboards and the simulator's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbuseStats {
    /// IPs tracked now.
    pub ips_tracked: u64,
    /// Prefixes tracked now.
    pub prefixes_tracked: u64,
    /// Accounts tracked now.
    pub accounts_tracked: u64,
    /// New IPs not tracked because the table was full.
    pub ip_cap_rejections: u64,
    /// New prefixes not tracked because the table was full.
    pub prefix_cap_rejections: u64,
    /// New accounts not tracked because the table was full.
    pub account_cap_rejections: u64,
    /// Blocks issued.
    pub blocks_issued: u64,
    /// Challenges issued (IP, prefix, account and global).
    pub challenges_issued: u64,
    /// Expiry sweeps run.
    pub sweeps: u64,
    /// Events observed.
    pub events: u64,
}

/// A fixed-seed FxHash-style hasher: deterministic iteration order, and
/// our keys (IPs, prefixes, account fingerprints) are already integers.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// FNV-1a of an account name. Collisions merge two accounts' counters; an
/// attacker who engineers one can only make a victim see challenges, which
/// failing on the victim's account directly already achieves.
pub(crate) fn account_key(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[derive(Clone, Copy, Debug, Default)]
struct Window {
    slots: [u32; SLOTS],
    head: u64,
}

impl Window {
    fn add(&mut self, idx: u64) {
        if idx > self.head {
            let gap = idx - self.head;
            if gap >= SLOTS as u64 {
                self.slots = [0; SLOTS];
            } else {
                for k in 1..=gap {
                    self.slots[((self.head + k) % SLOTS as u64) as usize] = 0;
                }
            }
            self.head = idx;
        }
        // A clock that went backwards counts into the newest bucket.
        let slot = (self.head % SLOTS as u64) as usize;
        self.slots[slot] = self.slots[slot].saturating_add(1);
    }

    fn count(&self, idx: u64) -> u32 {
        let mut total = 0u32;
        for j in 0..SLOTS as u64 {
            let Some(b) = self.head.checked_sub(j) else {
                break;
            };
            if b + (SLOTS as u64) > idx {
                total = total.saturating_add(self.slots[(b % SLOTS as u64) as usize]);
            }
        }
        total
    }
}

#[derive(Clone, Copy, Debug)]
struct Timed {
    until: Instant,
    reason: Reason,
}

#[derive(Clone, Debug, Default)]
struct IpEntry {
    failures: Window,
    accounts: [u32; IP_ACCOUNTS_TRACKED],
    n_accounts: u8,
    accounts_epoch: u64,
    last_attempt: Option<Instant>,
    intervals_us: [u32; CADENCE_SAMPLES],
    n_intervals: u8,
    strikes: u8,
    last_strike: Instant,
    block: Option<Timed>,
    challenge: Option<Timed>,
    last_success: Option<Instant>,
    last_seen: Instant,
}

#[derive(Clone, Debug, Default)]
struct GroupEntry {
    short: Window,
    long: Window,
    challenge: Option<Timed>,
    last_seen: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Cidr {
    net: u128,
    mask: u128,
    v6: bool,
}

/// The detector. Deterministic: same config and events, same decisions.
#[derive(Debug)]
pub struct AbuseDetector {
    cfg: AbuseConfig,
    bucket_ns: u64,
    long_bucket_ns: u64,
    allow: Vec<Cidr>,
    ips: FxMap<u128, IpEntry>,
    prefixes: FxMap<u128, GroupEntry>,
    accounts: FxMap<u64, GroupEntry>,
    global_failures: Window,
    global_successes: Window,
    global_alert: Option<Timed>,
    next_sweep: Instant,
    stats: AbuseStats,
}

fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // A mapped IPv4 client is the same client as its IPv4 form.
            Some(v4) => (u128::from(u32::from(v4)), false),
            None => (u128::from(v6), true),
        },
    }
}

/// The key of an IP's prefix; the top bit tags the family so v4 and v6
/// prefixes never collide.
pub(crate) fn prefix_key(ip: IpAddr, v4_len: u8, v6_len: u8) -> u128 {
    let (bits, v6) = ip_bits(ip);
    let len = if v6 { v6_len } else { v4_len };
    (bits & mask(len, v6)) | if v6 { 0 } else { 1u128 << 127 }
}

/// The key of an IP, tagged by family as [`prefix_key`] is.
pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    let (bits, v6) = ip_bits(ip);
    bits | if v6 { 0 } else { 1u128 << 127 }
}

fn mask(len: u8, v6: bool) -> u128 {
    let bits = if v6 { 128 } else { 32 };
    let len = u32::from(len).min(bits);
    if len == 0 {
        return 0;
    }
    let full: u128 = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    full & !((1u128 << (bits - len)) - 1).min(full)
}

fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let (bits, v6) = ip_bits(ip);
    let max = if v6 { 128 } else { 32 };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    let m = mask(len, v6);
    Some(Cidr {
        net: bits & m,
        mask: m,
        v6,
    })
}

impl AbuseDetector {
    /// Builds a detector; rejects configs that could not work.
    pub fn new(cfg: AbuseConfig) -> Result<AbuseDetector, AbuseConfigError> {
        if cfg.window.as_nanos() < BUCKETS || cfg.long_window.as_nanos() < BUCKETS {
            return Err(AbuseConfigError::WindowTooShort);
        }
        if cfg.ip_accounts_max == 0 || cfg.ip_accounts_max as usize > IP_ACCOUNTS_TRACKED {
            return Err(AbuseConfigError::IpAccountsMax);
        }
        for (field, v) in [
            ("ip_failures_max", cfg.ip_failures_max),
            ("prefix_failures_max", cfg.prefix_failures_max),
            ("account_failures_max", cfg.account_failures_max),
            ("account_failures_long_max", cfg.account_failures_long_max),
            ("global_failures_min", cfg.global_failures_min),
            ("ips_max", cfg.ips_max),
            ("prefixes_max", cfg.prefixes_max),
            ("accounts_max", cfg.accounts_max),
        ] {
            if v == 0 {
                return Err(AbuseConfigError::Zero { field });
            }
        }
        if cfg.block_durations.is_empty() {
            return Err(AbuseConfigError::NoBlockDurations);
        }
        if cfg.ipv4_prefix_len > 32 || cfg.ipv6_prefix_len > 128 {
            return Err(AbuseConfigError::PrefixLen);
        }
        let allow = cfg
            .allow_list
            .iter()
            .map(|e| parse_cidr(e).ok_or_else(|| AbuseConfigError::BadCidr { entry: e.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AbuseDetector {
            bucket_ns: cfg.window.as_nanos() / BUCKETS,
            long_bucket_ns: cfg.long_window.as_nanos() / BUCKETS,
            allow,
            cfg,
            ips: FxMap::default(),
            prefixes: FxMap::default(),
            accounts: FxMap::default(),
            global_failures: Window::default(),
            global_successes: Window::default(),
            global_alert: None,
            next_sweep: Instant::ZERO,
            stats: AbuseStats::default(),
        })
    }

    /// Counters, with the table sizes filled in.
    pub fn stats(&self) -> AbuseStats {
        AbuseStats {
            ips_tracked: self.ips.len() as u64,
            prefixes_tracked: self.prefixes.len() as u64,
            accounts_tracked: self.accounts.len() as u64,
            ..self.stats
        }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        let (bits, v6) = ip_bits(ip);
        self.allow
            .iter()
            .any(|c| c.v6 == v6 && bits & c.mask == c.net)
    }

    fn prefix_key(&self, ip: IpAddr) -> u128 {
        prefix_key(ip, self.cfg.ipv4_prefix_len, self.cfg.ipv6_prefix_len)
    }

    fn ip_key(ip: IpAddr) -> u128 {
        ip_key(ip)
    }

    /// The configuration it runs.
    pub fn config(&self) -> &AbuseConfig {
        &self.cfg
    }

    fn idx(&self, now: Instant) -> u64 {
        now.as_nanos() / self.bucket_ns
    }

    fn long_idx(&self, now: Instant) -> u64 {
        now.as_nanos() / self.long_bucket_ns
    }

    /// Records one authentication attempt.
    pub fn observe(&mut self, now: Instant, ev: AuthEvent<'_>) {
        self.stats.events += 1;
        let idx = self.idx(now);
        let failed = ev.outcome == Outcome::Failure;
        if failed {
            self.global_failures.add(idx);
            let f = u64::from(self.global_failures.count(idx));
            let s = u64::from(self.global_successes.count(idx));
            if f >= u64::from(self.cfg.global_failures_min)
                && f * 100 >= u64::from(self.cfg.global_failure_ratio_pct) * (f + s)
                && !active(self.global_alert, now)
            {
                self.global_alert = Some(Timed {
                    until: now + self.cfg.challenge_ttl,
                    reason: Reason::GlobalFailureRatio,
                });
                self.stats.challenges_issued += 1;
            }
        } else {
            self.global_successes.add(idx);
        }
        self.maybe_sweep(now);
        // Allow-listed IPs are exempt from IP and prefix tracking, but their
        // failures still count against the account: the account is what
        // is being protected.
        let allowed = self.allowed(ev.ip);
        if !allowed {
            self.observe_ip(now, idx, ev);
        }
        if failed {
            if !allowed {
                self.observe_prefix(now, idx, ev.ip);
            }
            if let Some(account) = ev.account {
                self.observe_account(now, idx, account);
            }
        }
    }

    fn observe_ip(&mut self, now: Instant, idx: u64, ev: AuthEvent<'_>) {
        let key = Self::ip_key(ev.ip);
        if !self.ips.contains_key(&key) && self.ips.len() >= self.cfg.ips_max as usize {
            self.stats.ip_cap_rejections += 1;
            return;
        }
        let cfg = &self.cfg;
        let e = self.ips.entry(key).or_default();
        e.last_seen = now;
        // Cadence: inter-arrival times of all attempts from this IP.
        if let Some(prev) = e.last_attempt {
            let gap = now.saturating_since(prev);
            if gap > cfg.window {
                // A human-length pause: start a fresh sample.
                e.n_intervals = 0;
            } else {
                let us = u32::try_from(gap.as_micros()).unwrap_or(u32::MAX);
                e.intervals_us.copy_within(1.., 0);
                e.intervals_us[CADENCE_SAMPLES - 1] = us;
                e.n_intervals = (e.n_intervals + 1).min(CADENCE_SAMPLES as u8);
            }
        }
        e.last_attempt = Some(now);
        let blocked = active(e.block, now);
        if !blocked
            && !active(e.challenge, now)
            && e.n_intervals as usize == CADENCE_SAMPLES
            && scripted(&e.intervals_us, cfg.cadence_cv_max_pct)
        {
            e.challenge = Some(Timed {
                until: now + cfg.challenge_ttl,
                reason: Reason::Cadence,
            });
            self.stats.challenges_issued += 1;
        }
        if ev.outcome == Outcome::Success {
            e.last_success = Some(now);
            return;
        }
        e.failures.add(idx);
        if let Some(account) = ev.account {
            if idx >= e.accounts_epoch + SLOTS as u64 {
                e.n_accounts = 0;
                e.accounts_epoch = idx;
            }
            let fp = account_key(account) as u32;
            let n = usize::from(e.n_accounts);
            if !e.accounts[..n].contains(&fp) && n < IP_ACCOUNTS_TRACKED {
                e.accounts[n] = fp;
                e.n_accounts += 1;
            }
        }
        let reason = if e.failures.count(idx) >= cfg.ip_failures_max {
            Some(Reason::IpFailures)
        } else if u32::from(e.n_accounts) >= cfg.ip_accounts_max {
            Some(Reason::IpManyAccounts)
        } else {
            None
        };
        if let (Some(reason), false) = (reason, blocked) {
            if now.saturating_since(e.last_strike) > cfg.strike_memory {
                e.strikes = 0;
            }
            let step = usize::from(e.strikes).min(cfg.block_durations.len() - 1);
            e.block = Some(Timed {
                until: now + cfg.block_durations[step],
                reason,
            });
            e.strikes = e.strikes.saturating_add(1);
            e.last_strike = now;
            // A served block starts a new count: the next block needs a new burst.
            e.failures = Window::default();
            e.n_accounts = 0;
            self.stats.blocks_issued += 1;
        }
    }

    fn observe_prefix(&mut self, now: Instant, idx: u64, ip: IpAddr) {
        let key = self.prefix_key(ip);
        if !self.prefixes.contains_key(&key)
            && self.prefixes.len() >= self.cfg.prefixes_max as usize
        {
            self.stats.prefix_cap_rejections += 1;
            return;
        }
        let e = self.prefixes.entry(key).or_default();
        e.last_seen = now;
        e.short.add(idx);
        if e.short.count(idx) >= self.cfg.prefix_failures_max && !active(e.challenge, now) {
            e.challenge = Some(Timed {
                until: now + self.cfg.challenge_ttl,
                reason: Reason::PrefixFailures,
            });
            self.stats.challenges_issued += 1;
        }
    }

    fn observe_account(&mut self, now: Instant, idx: u64, account: &str) {
        let key = account_key(account);
        if !self.accounts.contains_key(&key)
            && self.accounts.len() >= self.cfg.accounts_max as usize
        {
            self.stats.account_cap_rejections += 1;
            return;
        }
        let long_idx = self.long_idx(now);
        let e = self.accounts.entry(key).or_default();
        e.last_seen = now;
        e.short.add(idx);
        e.long.add(long_idx);
        let over = e.short.count(idx) >= self.cfg.account_failures_max
            || e.long.count(long_idx) >= self.cfg.account_failures_long_max;
        if over && !active(e.challenge, now) {
            e.challenge = Some(Timed {
                until: now + self.cfg.challenge_ttl,
                reason: Reason::AccountFailures,
            });
            self.stats.challenges_issued += 1;
        }
    }

    /// Drops expired entries when a table is full, at most once per bucket.
    fn maybe_sweep(&mut self, now: Instant) {
        let full = self.ips.len() >= self.cfg.ips_max as usize
            || self.prefixes.len() >= self.cfg.prefixes_max as usize
            || self.accounts.len() >= self.cfg.accounts_max as usize;
        if !full || now < self.next_sweep {
            return;
        }
        self.stats.sweeps += 1;
        self.next_sweep = now + Duration::from_nanos(self.bucket_ns);
        let window = self
            .cfg
            .window
            .saturating_add(Duration::from_nanos(self.bucket_ns));
        let long = self
            .cfg
            .long_window
            .saturating_add(Duration::from_nanos(self.long_bucket_ns));
        let strike_memory = self.cfg.strike_memory;
        self.ips.retain(|_, e| {
            let keep_for = if e.strikes > 0 {
                window.max(strike_memory)
            } else {
                window
            };
            now.saturating_since(e.last_seen) <= keep_for
                || active(e.block, now)
                || active(e.challenge, now)
        });
        self.prefixes
            .retain(|_, e| now.saturating_since(e.last_seen) <= window || active(e.challenge, now));
        self.accounts
            .retain(|_, e| now.saturating_since(e.last_seen) <= long || active(e.challenge, now));
    }

    /// Every live decision that applies to an attempt from `ip` on
    /// `account`, scope by scope (where [`AbuseDetector::check`] answers
    /// with the first): what a central detector pushes to the fleet.
    pub(crate) fn scoped(&self, now: Instant, ip: IpAddr, account: Option<&str>) -> Scoped {
        let mut out = Scoped::default();
        if self.allowed(ip) {
            return out;
        }
        let live = |t: Option<Timed>| t.filter(|t| t.until > now).map(|t| (t.until, t.reason));
        let entry = self.ips.get(&Self::ip_key(ip));
        out.ip_block = live(entry.and_then(|e| e.block));
        out.ip_challenge = live(entry.and_then(|e| e.challenge));
        out.prefix_challenge = live(
            self.prefixes
                .get(&self.prefix_key(ip))
                .and_then(|e| e.challenge),
        );
        out.account_challenge = account
            .and_then(|a| live(self.accounts.get(&account_key(a)).and_then(|e| e.challenge)));
        let known_good = entry
            .and_then(|e| e.last_success)
            .is_some_and(|t| now.saturating_since(t) <= self.cfg.long_window);
        if !known_good {
            out.global_challenge = live(self.global_alert);
        }
        out
    }

    /// The decision for the next attempt from `ip` on `account`.
    pub fn check(&self, now: Instant, ip: IpAddr, account: Option<&str>) -> Decision {
        if self.allowed(ip) {
            return Decision::Allow;
        }
        let entry = self.ips.get(&Self::ip_key(ip));
        if let Some(t) = entry.and_then(|e| e.block).filter(|t| t.until > now) {
            return Decision::Block {
                until: t.until,
                reason: t.reason,
            };
        }
        let mut challenge = entry.and_then(|e| e.challenge).filter(|t| t.until > now);
        challenge = challenge.or_else(|| {
            self.prefixes
                .get(&self.prefix_key(ip))
                .and_then(|e| e.challenge)
                .filter(|t| t.until > now)
        });
        if let Some(a) = account {
            challenge = challenge.or_else(|| {
                self.accounts
                    .get(&account_key(a))
                    .and_then(|e| e.challenge)
                    .filter(|t| t.until > now)
            });
        }
        if challenge.is_none() {
            // Under a global stuffing alert, only IPs that logged in
            // successfully within the long window pass unchallenged.
            let known_good = entry
                .and_then(|e| e.last_success)
                .is_some_and(|t| now.saturating_since(t) <= self.cfg.long_window);
            if !known_good {
                challenge = self.global_alert.filter(|t| t.until > now);
            }
        }
        match challenge {
            Some(t) => Decision::Challenge {
                until: t.until,
                reason: t.reason,
            },
            None => Decision::Allow,
        }
    }
}

/// Live decisions by scope: `(until, reason)` each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scoped {
    pub ip_block: Option<(Instant, Reason)>,
    pub ip_challenge: Option<(Instant, Reason)>,
    pub prefix_challenge: Option<(Instant, Reason)>,
    pub account_challenge: Option<(Instant, Reason)>,
    pub global_challenge: Option<(Instant, Reason)>,
}

fn active(t: Option<Timed>, now: Instant) -> bool {
    t.is_some_and(|t| t.until > now)
}

/// CV = std / mean < pct/100, in integers: 10⁴·(nΣx² − (Σx)²) < pct²·(Σx)².
fn scripted(intervals_us: &[u32; CADENCE_SAMPLES], cv_max_pct: u32) -> bool {
    let n = CADENCE_SAMPLES as u128;
    let sum: u128 = intervals_us.iter().map(|&x| u128::from(x)).sum();
    let sum_sq: u128 = intervals_us
        .iter()
        .map(|&x| u128::from(x) * u128::from(x))
        .sum();
    if sum == 0 {
        return true;
    }
    let n2var = (n * sum_sq).saturating_sub(sum * sum);
    10_000 * n2var < u128::from(cv_max_pct) * u128::from(cv_max_pct) * sum * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_cover_at_least_the_configured_span() {
        let mut w = Window::default();
        w.add(10);
        w.add(12);
        assert_eq!(w.count(12), 2);
        assert_eq!(w.count(16), 2);
        assert_eq!(w.count(17), 1);
        assert_eq!(w.count(19), 0);
        w.add(30);
        assert_eq!(w.count(30), 1);
    }

    #[test]
    fn cadence_test_separates_metronomes_from_humans() {
        assert!(scripted(&[1_000_000; 8], 10));
        assert!(scripted(
            &[
                1_000_000, 1_010_000, 990_000, 1_000_000, 1_005_000, 995_000, 1_000_000, 1_000_000
            ],
            10
        ));
        assert!(!scripted(
            &[
                400_000, 3_000_000, 1_200_000, 9_000_000, 700_000, 2_500_000, 15_000_000, 1_000_000
            ],
            10
        ));
    }

    #[test]
    fn entry_sizes_stay_within_the_documented_budget() {
        let ip = std::mem::size_of::<IpEntry>() + std::mem::size_of::<u128>();
        let group = std::mem::size_of::<GroupEntry>() + std::mem::size_of::<u128>();
        println!("bytes per IP entry (with key) {ip}, per prefix/account entry {group}");
        assert!(ip <= 256, "{ip}");
        assert!(group <= 128, "{group}");
    }

    #[test]
    fn cidr_parsing_masks_host_bits() {
        let c = parse_cidr("10.1.2.3/8").unwrap();
        assert_eq!(c.net, u128::from(0x0A00_0000u32));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("2001:db8::/32").is_some());
        assert!(parse_cidr("nonsense").is_none());
    }
}
