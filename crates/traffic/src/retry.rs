//! What a client does after a failed request: give up, retry at once, or
//! back off exponentially with jitter; and how long it waits for an answer.
//!
//! Retries are how a short overload becomes a long one: clients that retry
//! immediately multiply the offered load exactly when capacity is short (a
//! retry storm). Backoff with jitter spreads the retries out, and honouring
//! `Retry-After` (RFC 9110 §10.2.3) lets the server say when to come back.
//! The simulator feeds these policies real 429s, 503s and timeouts so storms
//! can emerge, or be damped, on their own.
//!
//! The backoff formulas are exactly those of Marc Brooker, "Exponential
//! Backoff And Jitter", AWS Architecture Blog, 2015
//! (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>),
//! with `attempt` counting retries from 0:
//!
//! ```text
//! none:         sleep = min(cap, base * 2^attempt)
//! full:         sleep = random_between(0, min(cap, base * 2^attempt))
//! equal:        temp  = min(cap, base * 2^attempt)
//!               sleep = temp / 2 + random_between(0, temp / 2)
//! decorrelated: sleep = min(cap, random_between(base, previous_sleep * 3)),
//!               with previous_sleep = base before the first retry
//! ```
//!
//! `random_between` is inclusive of both ends here ([`rng::uniform_duration`]).

use rampart_rng::{self as rng, ActorRng};
use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Errors, FieldError};

/// How long to wait between attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Backoff {
    /// Never retry: a failure is final.
    #[default]
    None,
    /// Retry at once: the behaviour that turns overload into a storm.
    Immediate,
    /// Exponential backoff, `base * 2^retry` capped at `cap`, with jitter.
    Exponential {
        /// The first retry's delay (before jitter).
        base: Duration,
        /// The longest delay.
        cap: Duration,
        /// How the delay is randomised.
        #[serde(default)]
        jitter: Jitter,
    },
}

/// The jitter variants of the AWS article.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: clients that failed together retry together.
    None,
    /// Uniform in `[0, delay]`: the article's recommendation, least work.
    #[default]
    Full,
    /// Half fixed, half uniform: never retries sooner than half the delay.
    Equal,
    /// Each delay uniform in `[base, 3 * previous]`, capped.
    Decorrelated,
}

/// A client's retry behaviour. In TOML:
///
/// ```toml
/// [traffic.retry]
/// max_attempts = 4
/// honour_retry_after = true
/// backoff = { kind = "exponential", base = "100ms", cap = "10s", jitter = "full" }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// The delay rule; no retries unless set.
    #[serde(default)]
    pub backoff: Backoff,
    /// Attempts in total, the first included: 1 means never retry.
    #[serde(default = "one")]
    pub max_attempts: u32,
    /// Wait at least the server's `Retry-After` before retrying.
    #[serde(default)]
    pub honour_retry_after: bool,
}

fn one() -> u32 {
    1
}

impl Default for RetryPolicy {
    /// No retries.
    fn default() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff::None,
            max_attempts: 1,
            honour_retry_after: false,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, or `None` to give up.
    ///
    /// * `attempts_made`: attempts already sent for this request, the first
    ///   included (so 1 after the first failure).
    /// * `previous_delay`: the delay this function returned last time for
    ///   this request (`None` before the first retry). Only decorrelated
    ///   jitter uses it; the simulator keeps it per request.
    /// * `retry_after`: the server's `Retry-After`, if it sent one. When
    ///   honoured, the delay is never shorter, even if that exceeds `cap`.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        previous_delay: Option<Duration>,
        retry_after: Option<Duration>,
        rng: &mut ActorRng,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let delay = match self.backoff {
            Backoff::None => return None,
            Backoff::Immediate => Duration::ZERO,
            Backoff::Exponential { base, cap, jitter } => {
                // The article's `attempt` counts retries from zero.
                let retry = attempts_made.saturating_sub(1);
                let ceiling = exponential_ceiling(base, cap, retry);
                match jitter {
                    Jitter::None => ceiling,
                    Jitter::Full => rng::uniform_duration(rng, Duration::ZERO, ceiling),
                    Jitter::Equal => {
                        let half = ceiling / 2;
                        half + rng::uniform_duration(rng, Duration::ZERO, half)
                    }
                    Jitter::Decorrelated => {
                        let previous = previous_delay.unwrap_or(base);
                        rng::uniform_duration(rng, base, previous.saturating_mul(3)).min(cap)
                    }
                }
            }
        };
        Some(match retry_after {
            Some(after) if self.honour_retry_after => delay.max(after),
            _ => delay,
        })
    }

    /// Every problem, with paths relative to the policy.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        if self.max_attempts == 0 {
            errors.push(
                "max_attempts",
                "must be at least 1 (it counts the first attempt)",
            );
        }
        if let Backoff::Exponential { base, cap, .. } = self.backoff {
            if base.is_zero() {
                errors.push(
                    "backoff.base",
                    "must be greater than zero; use kind = \"immediate\" for no delay",
                );
            }
            if cap < base {
                errors.push(
                    "backoff.cap",
                    format!("{cap} is shorter than base ({base})"),
                );
            }
        }
        if matches!(self.backoff, Backoff::None) && self.max_attempts > 1 {
            errors.push(
                "backoff",
                "max_attempts > 1 but no backoff is set, so nothing would retry; set backoff.kind",
            );
        }
        errors.finish()
    }
}

/// `min(cap, base * 2^retry)`, saturating rather than overflowing.
fn exponential_ceiling(base: Duration, cap: Duration, retry: u32) -> Duration {
    let factor = 1u64.checked_shl(retry).unwrap_or(u64::MAX);
    base.saturating_mul(factor).min(cap)
}

/// How long a client waits for a response before giving up on an attempt
/// (and counting it as a timeout, which the retry policy may retry). Plain
/// data: the simulator arms a timer with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct ClientTimeout(pub Duration);

impl Default for ClientTimeout {
    /// 60 s, k6's default request timeout.
    fn default() -> ClientTimeout {
        ClientTimeout(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rampart_rng::actor_rng;

    fn exponential(jitter: Jitter, max_attempts: u32, honour: bool) -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff::Exponential {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(10),
                jitter,
            },
            max_attempts,
            honour_retry_after: honour,
        }
    }

    #[test]
    fn without_jitter_the_delay_doubles_from_base_until_the_cap() {
        let p = exponential(Jitter::None, 100, false);
        let mut rng = actor_rng(1, "retry");
        let delays: Vec<u64> = (1..=9)
            .map(|n| p.next_delay(n, None, None, &mut rng).unwrap().as_millis())
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(
            p.next_delay(99, None, None, &mut rng),
            Some(Duration::from_secs(10)),
            "a huge exponent saturates instead of overflowing"
        );
    }

    #[test]
    fn immediate_retries_have_zero_delay_and_none_never_retries() {
        let mut rng = actor_rng(2, "retry");
        let p = RetryPolicy {
            backoff: Backoff::Immediate,
            max_attempts: 3,
            honour_retry_after: false,
        };
        assert_eq!(p.next_delay(1, None, None, &mut rng), Some(Duration::ZERO));
        assert_eq!(
            p.next_delay(2, None, Some(Duration::from_secs(5)), &mut rng),
            Some(Duration::ZERO),
            "Retry-After ignored unless honoured"
        );
        assert_eq!(p.next_delay(3, None, None, &mut rng), None);
        assert_eq!(
            RetryPolicy::default().next_delay(1, None, None, &mut rng),
            None
        );
    }

    #[test]
    fn equal_jitter_never_goes_below_half_and_full_jitter_spreads_over_the_whole_range() {
        let mut rng = actor_rng(3, "retry");
        let equal = exponential(Jitter::Equal, 10, false);
        let full = exponential(Jitter::Full, 10, false);
        let (mut full_lo, mut full_hi) = (false, false);
        for _ in 0..2_000 {
            let d = equal.next_delay(3, None, None, &mut rng).unwrap();
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
            let d = full.next_delay(3, None, None, &mut rng).unwrap();
            full_lo |= d < Duration::from_millis(40);
            full_hi |= d > Duration::from_millis(360);
        }
        assert!(full_lo && full_hi, "full jitter covers [0, 400ms]");
    }

    #[test]
    fn policies_read_from_toml_and_validate_their_fields() {
        let p: RetryPolicy = toml::from_str(
            "max_attempts = 4\nhonour_retry_after = true\nbackoff = { kind = \"exponential\", base = \"100ms\", cap = \"10s\", jitter = \"decorrelated\" }",
        )
        .unwrap();
        assert_eq!(p, exponential(Jitter::Decorrelated, 4, true));
        assert!(p.validate().is_ok());
        let p: RetryPolicy = toml::from_str("").unwrap();
        assert_eq!(p, RetryPolicy::default());
        let bad = RetryPolicy {
            backoff: Backoff::Exponential {
                base: Duration::ZERO,
                cap: Duration::ZERO,
                jitter: Jitter::Full,
            },
            max_attempts: 0,
            honour_retry_after: false,
        };
        let paths: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["max_attempts", "backoff.base"]);
        let t: ClientTimeout = serde_json::from_str("\"5s\"").unwrap();
        assert_eq!(t, ClientTimeout(Duration::from_secs(5)));
    }

    fn any_policy() -> impl Strategy<Value = RetryPolicy> {
        let jitter = prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ];
        let backoff = prop_oneof![
            Just(Backoff::None),
            Just(Backoff::Immediate),
            (1u64..10_000, 0u64..100_000, jitter).prop_map(|(base, extra, jitter)| {
                Backoff::Exponential {
                    base: Duration::from_millis(base),
                    cap: Duration::from_millis(base + extra),
                    jitter,
                }
            }),
        ];
        (backoff, 1u32..10, any::<bool>()).prop_map(|(backoff, max_attempts, honour)| {
            RetryPolicy {
                backoff,
                // Validation refuses attempts that no backoff would make.
                max_attempts: if backoff == Backoff::None {
                    1
                } else {
                    max_attempts
                },
                honour_retry_after: honour,
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_request_is_sent_at_most_max_attempts_times_with_delays_within_the_cap(
            policy in any_policy(),
            seed in any::<u64>(),
            retry_after_ms in proptest::option::of(0u64..60_000),
        ) {
            prop_assert!(policy.validate().is_ok());
            let mut rng = actor_rng(seed, "retry");
            let retry_after = retry_after_ms.map(Duration::from_millis);
            let mut attempts = 1u32;
            let mut previous = None;
            while let Some(d) = policy.next_delay(attempts, previous, retry_after, &mut rng) {
                if let Backoff::Exponential { cap, .. } = policy.backoff {
                    let cap = match retry_after {
                        Some(after) if policy.honour_retry_after => cap.max(after),
                        _ => cap,
                    };
                    prop_assert!(d <= cap, "{} above cap {}", d, cap);
                }
                if matches!(policy.backoff, Backoff::Immediate) && !policy.honour_retry_after {
                    prop_assert_eq!(d, Duration::ZERO);
                }
                if let (Some(after), true) = (retry_after, policy.honour_retry_after) {
                    prop_assert!(d >= after, "retried after {} despite Retry-After {}", d, after);
                }
                previous = Some(d);
                attempts += 1;
                prop_assert!(attempts <= policy.max_attempts);
            }
            if !matches!(policy.backoff, Backoff::None) {
                prop_assert_eq!(attempts, policy.max_attempts, "retries until the cap on attempts");
            }
        }
    }
}
