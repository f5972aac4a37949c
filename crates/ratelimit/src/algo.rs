//! The rate-limiting algorithms, written once.
//!
//! Each algorithm is a pure function of `(state, now, n)`: it never stores
//! anything itself. The stores ([`crate::store`]) own the per-key state and
//! call [`Algorithm::decide`]; a denial returns no new state, so a store has
//! nothing to write. This is the one implementation that the single-threaded
//! store, the sharded store and the direct (un-keyed) limiter all share.

use std::fmt;

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::{CheckError, ConfigError};

/// The answer of one algorithm for one key.
#[must_use = "an outcome that is not acted on admits a request the limit refused"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the units were granted.
    pub allowed: bool,
    /// Units still available after this decision (0 on a denial).
    pub remaining: u64,
    /// On a denial, the earliest instant at which the same request can succeed
    /// (if nothing else arrives first). On an allow, `now`.
    pub retry_at: Instant,
    /// When the key's full quota is back (the IETF `RateLimit` `t` parameter).
    pub reset_at: Instant,
}

/// The quota a limit advertises, for the IETF `RateLimit-Policy` header:
/// `quota` units per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Units per window (`q`).
    pub quota: u64,
    /// The window (`w`).
    pub window: Duration,
}

/// A rate-limiting algorithm over a small `Copy` state per key.
///
/// Contract, relied on by the stores and checked by the property tests:
/// * `decide` on a denial returns `None` as the new state (a rejection
///   writes nothing);
/// * from `idle_at(s)` on, `s` behaves exactly like `fresh(now)`, so a store
///   may drop it without changing any future decision (exact idle expiry);
/// * `decide` for a time earlier than the state's own times treats it as "no
///   time has passed" and never grants extra capacity (stores also clamp
///   time to a high-water mark, so this is belt and braces).
pub trait Algorithm: fmt::Debug {
    /// Per-key state; small and `Copy` so the store can keep it inline.
    type State: Copy + fmt::Debug + Send;
    /// The state of a key never seen before, at `now`.
    fn fresh(&self, now: Instant) -> Self::State;
    /// Decide `n` units at `now`. Returns the outcome and, when allowed, the
    /// state to store.
    fn decide(
        &self,
        state: &Self::State,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<Self::State>), CheckError>;
    /// The instant from which `state` is indistinguishable from a fresh key.
    /// Stores drop keys past this instant, and at the cap evict the key with
    /// the smallest value first (it carries the least information).
    fn idle_at(&self, state: &Self::State) -> Instant;
    /// The advertised policy.
    fn policy(&self) -> Policy;
}

fn check_units(n: u32, capacity: u64) -> Result<(), CheckError> {
    if n == 0 {
        return Err(CheckError::ZeroUnits);
    }
    if u64::from(n) > capacity {
        return Err(CheckError::InsufficientCapacity {
            asked: n,
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        });
    }
    Ok(())
}

/// Division by a divisor fixed at construction, without a `div` instruction
/// on the hot path: a 64-bit `div` was measured at over half of a GCRA
/// decision's time. Multiply by `floor((2^64 - 1) / d)`, then correct the
/// (at most two short) quotient upwards; exact for every `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Divisor {
    d: u64,
    m: u64,
}

impl Divisor {
    fn new(d: u64) -> Divisor {
        let d = d.max(1);
        Divisor { d, m: u64::MAX / d }
    }
    #[inline]
    fn div(self, x: u64) -> u64 {
        let mut q = ((u128::from(x) * u128::from(self.m)) >> 64) as u64;
        // q is at most two below the true quotient.
        while let Some(next) = q.checked_add(1).and_then(|n| n.checked_mul(self.d))
            && next <= x
        {
            q += 1;
        }
        q
    }
}

#[cfg(test)]
pub(crate) fn divisor_for_tests(d: u64, x: u64) -> u64 {
    Divisor::new(d).div(x)
}

// ---------------------------------------------------------------- GCRA

/// Configuration of a GCRA limit: one unit per `period`, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GcraConfig {
    /// Emission interval: one unit is replenished every `period`.
    pub period: Duration,
    /// Most units granted back to back.
    pub burst: u32,
}

/// The generic cell rate algorithm, with governor's semantics exactly.
///
/// State is the theoretical arrival time `tat` (one `u64`). With emission
/// interval `t` and tolerance `tau = t * (burst - 1)`: allow `n` units when
/// `now >= tat + t*(n-1) - tau`, then `tat = max(tat, now) + t*n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    t_ns: u64,
    tau_ns: u64,
    burst: u32,
    per_t: Divisor,
}

impl Gcra {
    /// Builds the algorithm; a zero period or burst is an error.
    pub fn new(config: GcraConfig) -> Result<Gcra, ConfigError> {
        if config.burst == 0 {
            return Err(ConfigError::ZeroCount { field: "burst" });
        }
        if config.period.is_zero() {
            return Err(ConfigError::ZeroDuration { field: "period" });
        }
        let t_ns = config.period.as_nanos();
        Ok(Gcra {
            t_ns,
            tau_ns: t_ns.saturating_mul(u64::from(config.burst - 1)),
            burst: config.burst,
            per_t: Divisor::new(t_ns),
        })
    }
}

impl Gcra {
    /// The configuration this was built from.
    pub fn config(&self) -> GcraConfig {
        GcraConfig {
            period: Duration::from_nanos(self.t_ns),
            burst: self.burst,
        }
    }
}

impl Algorithm for Gcra {
    /// The theoretical arrival time, in nanoseconds since the epoch.
    type State = u64;

    #[inline]
    fn fresh(&self, now: Instant) -> u64 {
        now.as_nanos()
    }

    #[inline]
    fn decide(
        &self,
        tat: &u64,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<u64>), CheckError> {
        check_units(n, u64::from(self.burst))?;
        let now_ns = now.as_nanos();
        let weight_ns = self.t_ns.saturating_mul(u64::from(n - 1));
        let earliest_ns = tat.saturating_add(weight_ns).saturating_sub(self.tau_ns);
        if now_ns < earliest_ns {
            let outcome = Outcome {
                allowed: false,
                remaining: 0,
                retry_at: Instant::from_nanos(earliest_ns),
                reset_at: Instant::from_nanos(*tat),
            };
            return Ok((outcome, None));
        }
        let next_ns = (*tat)
            .max(now_ns)
            .saturating_add(self.t_ns)
            .saturating_add(weight_ns);
        // governor's `remaining_burst_capacity`.
        let horizon_ns = now_ns.saturating_add(self.tau_ns).saturating_add(self.t_ns);
        let remaining = self.per_t.div(
            horizon_ns
                .saturating_sub(next_ns)
                .min(self.tau_ns.saturating_add(self.t_ns)),
        );
        let outcome = Outcome {
            allowed: true,
            remaining,
            retry_at: now,
            reset_at: Instant::from_nanos(next_ns),
        };
        Ok((outcome, Some(next_ns)))
    }

    #[inline]
    fn idle_at(&self, tat: &u64) -> Instant {
        Instant::from_nanos(*tat)
    }

    fn policy(&self) -> Policy {
        Policy {
            quota: u64::from(self.burst),
            window: Duration::from_nanos(self.t_ns) * u64::from(self.burst),
        }
    }
}

// ---------------------------------------------------------- token bucket

/// Configuration of an Envoy-style token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Bucket size, which is also the initial fill.
    pub max_tokens: u32,
    /// Tokens added at each fill.
    pub tokens_per_fill: u32,
    /// Time between fills.
    pub fill_interval: Duration,
}

/// Envoy's local-rate-limit token bucket: tokens arrive in discrete fills at
/// multiples of `fill_interval` since the epoch (Envoy refills every bucket
/// on one timer, so fills are aligned across keys, not per key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    max_tokens: u32,
    tokens_per_fill: u32,
    fill_ns: u64,
}

/// Token-bucket state: tokens left as of fill number `fill`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucketState {
    /// The index of the last fill applied (`now / fill_interval`).
    pub fill: u64,
    /// Tokens in the bucket.
    pub tokens: u32,
}

impl TokenBucket {
    /// Builds the algorithm; zero sizes or interval are errors.
    pub fn new(config: TokenBucketConfig) -> Result<TokenBucket, ConfigError> {
        if config.max_tokens == 0 {
            return Err(ConfigError::ZeroCount {
                field: "max_tokens",
            });
        }
        if config.tokens_per_fill == 0 {
            return Err(ConfigError::ZeroCount {
                field: "tokens_per_fill",
            });
        }
        if config.fill_interval.is_zero() {
            return Err(ConfigError::ZeroDuration {
                field: "fill_interval",
            });
        }
        Ok(TokenBucket {
            max_tokens: config.max_tokens,
            tokens_per_fill: config.tokens_per_fill,
            fill_ns: config.fill_interval.as_nanos(),
        })
    }

    /// The configuration this was built from.
    pub fn config(&self) -> TokenBucketConfig {
        TokenBucketConfig {
            max_tokens: self.max_tokens,
            tokens_per_fill: self.tokens_per_fill,
            fill_interval: Duration::from_nanos(self.fill_ns),
        }
    }

    fn fill_start(&self, fill: u64) -> Instant {
        Instant::from_nanos(fill.saturating_mul(self.fill_ns))
    }

    /// Fills needed to go from `tokens` to at least `want`.
    fn fills_needed(&self, tokens: u32, want: u32) -> u64 {
        u64::from(want.saturating_sub(tokens)).div_ceil(u64::from(self.tokens_per_fill))
    }
}

impl Algorithm for TokenBucket {
    type State = TokenBucketState;

    #[inline]
    fn fresh(&self, now: Instant) -> TokenBucketState {
        TokenBucketState {
            fill: now.as_nanos() / self.fill_ns,
            tokens: self.max_tokens,
        }
    }

    #[inline]
    fn decide(
        &self,
        state: &TokenBucketState,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<TokenBucketState>), CheckError> {
        check_units(n, u64::from(self.max_tokens))?;
        // A clock behind the state's last fill means no fill has happened.
        let fill = (now.as_nanos() / self.fill_ns).max(state.fill);
        let added = (fill - state.fill).saturating_mul(u64::from(self.tokens_per_fill));
        let tokens = u64::from(state.tokens)
            .saturating_add(added)
            .min(u64::from(self.max_tokens)) as u32;
        if tokens < n {
            let outcome = Outcome {
                allowed: false,
                remaining: 0,
                retry_at: self.fill_start(fill.saturating_add(self.fills_needed(tokens, n))),
                reset_at: self
                    .fill_start(fill.saturating_add(self.fills_needed(tokens, self.max_tokens))),
            };
            return Ok((outcome, None));
        }
        let next = TokenBucketState {
            fill,
            tokens: tokens - n,
        };
        let outcome = Outcome {
            allowed: true,
            remaining: u64::from(next.tokens),
            retry_at: now,
            reset_at: self.idle_at(&next),
        };
        Ok((outcome, Some(next)))
    }

    #[inline]
    fn idle_at(&self, state: &TokenBucketState) -> Instant {
        if state.tokens >= self.max_tokens {
            // Already full: it is fresh from its own fill on.
            return self.fill_start(state.fill);
        }
        self.fill_start(
            state
                .fill
                .saturating_add(self.fills_needed(state.tokens, self.max_tokens)),
        )
    }

    fn policy(&self) -> Policy {
        let fills = u64::from(self.max_tokens).div_ceil(u64::from(self.tokens_per_fill));
        Policy {
            quota: u64::from(self.max_tokens),
            window: Duration::from_nanos(self.fill_ns) * fills,
        }
    }
}

// ---------------------------------------------------------- fixed window

/// Configuration of a fixed-window counter: `limit` units per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Units per window.
    pub limit: u32,
    /// The window length (envoyproxy/ratelimit's `unit`).
    pub window: Duration,
}

/// envoyproxy/ratelimit's fixed window: the counter key is the descriptor plus
/// `floor(now / window)`, so counts reset at window boundaries aligned to the
/// epoch. Up to `2 * limit` can pass around a boundary; that is the known
/// price of the algorithm, which the sliding window reduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedWindow {
    limit: u32,
    window_ns: u64,
}

/// Counter state for one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowState {
    /// The window index (`now / window`).
    pub window: u64,
    /// Units counted in that window.
    pub count: u32,
}

fn window_config(config: WindowConfig) -> Result<(u32, u64), ConfigError> {
    if config.limit == 0 {
        return Err(ConfigError::ZeroCount { field: "limit" });
    }
    if config.window.is_zero() {
        return Err(ConfigError::ZeroDuration { field: "window" });
    }
    Ok((config.limit, config.window.as_nanos()))
}

impl FixedWindow {
    /// Builds the algorithm; a zero limit or window is an error.
    pub fn new(config: WindowConfig) -> Result<FixedWindow, ConfigError> {
        let (limit, window_ns) = window_config(config)?;
        Ok(FixedWindow { limit, window_ns })
    }
}

impl Algorithm for FixedWindow {
    type State = WindowState;

    #[inline]
    fn fresh(&self, now: Instant) -> WindowState {
        WindowState {
            window: now.as_nanos() / self.window_ns,
            count: 0,
        }
    }

    #[inline]
    fn decide(
        &self,
        state: &WindowState,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<WindowState>), CheckError> {
        check_units(n, u64::from(self.limit))?;
        let window = (now.as_nanos() / self.window_ns).max(state.window);
        let count = if window == state.window {
            state.count
        } else {
            0
        };
        let window_end =
            Instant::from_nanos(window.saturating_add(1).saturating_mul(self.window_ns));
        if u64::from(count) + u64::from(n) > u64::from(self.limit) {
            let outcome = Outcome {
                allowed: false,
                remaining: 0,
                retry_at: window_end,
                reset_at: window_end,
            };
            return Ok((outcome, None));
        }
        let next = WindowState {
            window,
            count: count + n,
        };
        let outcome = Outcome {
            allowed: true,
            remaining: u64::from(self.limit - next.count),
            retry_at: now,
            reset_at: window_end,
        };
        Ok((outcome, Some(next)))
    }

    #[inline]
    fn idle_at(&self, state: &WindowState) -> Instant {
        Instant::from_nanos(
            state
                .window
                .saturating_add(1)
                .saturating_mul(self.window_ns),
        )
    }

    fn policy(&self) -> Policy {
        Policy {
            quota: u64::from(self.limit),
            window: Duration::from_nanos(self.window_ns),
        }
    }
}

// -------------------------------------------------------- sliding window

/// Cloudflare's sliding-window counter: the estimate is
/// `prev * (1 - elapsed / window) + curr`, and a request is allowed when the
/// estimate including it stays within `limit`. All arithmetic is integer
/// (scaled by the window length), so decisions never depend on float rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindow {
    limit: u32,
    window_ns: u64,
}

/// Counts for the current and the previous window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlidingState {
    /// The current window index.
    pub window: u64,
    /// Units in the previous window.
    pub prev: u32,
    /// Units in the current window.
    pub curr: u32,
}

impl SlidingWindow {
    /// Builds the algorithm; a zero limit or window is an error.
    pub fn new(config: WindowConfig) -> Result<SlidingWindow, ConfigError> {
        let (limit, window_ns) = window_config(config)?;
        Ok(SlidingWindow { limit, window_ns })
    }

    /// The state rolled forward to window `window` (which is >= state.window).
    fn roll(state: &SlidingState, window: u64) -> SlidingState {
        match window - state.window {
            0 => *state,
            1 => SlidingState {
                window,
                prev: state.curr,
                curr: 0,
            },
            _ => SlidingState {
                window,
                prev: 0,
                curr: 0,
            },
        }
    }

    /// Earliest offset into a window with counts (prev, curr) at which `n`
    /// more units fit, or `None` if they never fit in that window.
    fn earliest_offset_ns(&self, prev: u32, curr: u32, n: u32) -> Option<u64> {
        let w = u128::from(self.window_ns);
        let room = u64::from(self.limit).checked_sub(u64::from(curr) + u64::from(n))?;
        if prev == 0 {
            return Some(0);
        }
        // Need prev * (W - e) <= room * W, so e >= W - floor(room * W / prev).
        let slack = (u128::from(room) * w) / u128::from(prev);
        let e = w.saturating_sub(slack);
        (e < w).then_some(e as u64)
    }

    fn fits(&self, s: &SlidingState, offset_ns: u64, n: u32) -> bool {
        let w = u128::from(self.window_ns);
        let weighted = u128::from(s.prev) * (w - u128::from(offset_ns));
        weighted + (u128::from(s.curr) + u128::from(n)) * w <= u128::from(self.limit) * w
    }
}

impl Algorithm for SlidingWindow {
    type State = SlidingState;

    #[inline]
    fn fresh(&self, now: Instant) -> SlidingState {
        SlidingState {
            window: now.as_nanos() / self.window_ns,
            prev: 0,
            curr: 0,
        }
    }

    #[inline]
    fn decide(
        &self,
        state: &SlidingState,
        now: Instant,
        n: u32,
    ) -> Result<(Outcome, Option<SlidingState>), CheckError> {
        check_units(n, u64::from(self.limit))?;
        let now_ns = now.as_nanos();
        let window = (now_ns / self.window_ns).max(state.window);
        let start_ns = window.saturating_mul(self.window_ns);
        // A clock behind the window start counts as the start itself.
        let offset_ns = now_ns.saturating_sub(start_ns).min(self.window_ns - 1);
        let s = Self::roll(state, window);
        if !self.fits(&s, offset_ns, n) {
            let retry_ns = match self.earliest_offset_ns(s.prev, s.curr, n) {
                Some(e) => start_ns.saturating_add(e),
                None => {
                    let next = Self::roll(&s, window + 1);
                    let e = self
                        .earliest_offset_ns(next.prev, next.curr, n)
                        .unwrap_or(self.window_ns);
                    start_ns.saturating_add(self.window_ns).saturating_add(e)
                }
            };
            let outcome = Outcome {
                allowed: false,
                remaining: 0,
                retry_at: Instant::from_nanos(retry_ns),
                reset_at: self.idle_at(&s),
            };
            return Ok((outcome, None));
        }
        let next = SlidingState {
            curr: s.curr + n,
            ..s
        };
        // Remaining: the largest m with the estimate still within the limit.
        let w = u128::from(self.window_ns);
        let used = u128::from(next.prev) * (w - u128::from(offset_ns)) + u128::from(next.curr) * w;
        let remaining = ((u128::from(self.limit) * w).saturating_sub(used) / w) as u64;
        let outcome = Outcome {
            allowed: true,
            remaining,
            retry_at: now,
            reset_at: self.idle_at(&next),
        };
        Ok((outcome, Some(next)))
    }

    #[inline]
    fn idle_at(&self, state: &SlidingState) -> Instant {
        // Both counts have aged out two windows after the state's window
        // began; with an empty current window, one window is enough.
        let windows = if state.curr == 0 { 1 } else { 2 };
        Instant::from_nanos(
            state
                .window
                .saturating_add(windows)
                .saturating_mul(self.window_ns),
        )
    }

    fn policy(&self) -> Policy {
        Policy {
            quota: u64::from(self.limit),
            window: Duration::from_nanos(self.window_ns),
        }
    }
}

/// Any one of the keyed algorithms, as written in a policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "algorithm", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LimitConfig {
    /// GCRA (governor semantics).
    Gcra(GcraConfig),
    /// Envoy-style token bucket.
    TokenBucket(TokenBucketConfig),
    /// envoyproxy/ratelimit-style fixed window.
    FixedWindow(WindowConfig),
    /// Cloudflare-style sliding-window counter.
    SlidingWindow(WindowConfig),
    /// A fixed window counted across the whole fleet through a shared
    /// counter store (see [`crate::global`]).
    Global(crate::global::GlobalConfig),
}
