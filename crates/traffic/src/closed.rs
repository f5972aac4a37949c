//! The closed model: a fixed number of users, each sending one request,
//! waiting for its answer, thinking, and sending the next.
//!
//! A closed model slows down when the system does (a user who is waiting
//! sends nothing), so it cannot produce the overload an open model can. It
//! is here because internal tools and batch clients do behave this way, and
//! because comparing the two is instructive. The simulator runs `users`
//! loops; this module only says how long each one thinks.

use rampart_rng::{self as rng, ActorRng};
use rampart_time::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Errors, FieldError};

/// The most users one closed entry may have: each is a live loop in the
/// simulator, so the number is bounded like any other population.
pub const USERS_MAX: u32 = 10_000_000;

/// A closed-model population. In TOML:
/// `model = { kind = "closed", users = 200, think_time = { kind = "exponential", mean = "2s" } }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Closed {
    /// Concurrent users.
    pub users: u32,
    /// The pause between a response and the user's next request.
    pub think_time: ThinkTime,
}

/// How long a user pauses between requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ThinkTime {
    /// Always the same pause: a scripted client.
    Fixed {
        /// The pause.
        time: Duration,
    },
    /// Exponential pauses: the usual model of a person, and the one that
    /// makes a closed system a textbook machine-repairman queue.
    Exponential {
        /// The mean pause.
        mean: Duration,
    },
    /// Uniform in `[min, max]`.
    Uniform {
        /// Shortest pause.
        min: Duration,
        /// Longest pause.
        max: Duration,
    },
}

impl Closed {
    /// One user's next pause.
    pub fn think(&self, rng: &mut ActorRng) -> Duration {
        match self.think_time {
            ThinkTime::Fixed { time } => time,
            ThinkTime::Exponential { mean } => rng::exponential(rng, mean),
            ThinkTime::Uniform { min, max } => rng::uniform_duration(rng, min, max),
        }
    }

    /// The mean pause, for reports and for the interactive response-time law.
    pub fn mean_think(&self) -> Duration {
        match self.think_time {
            ThinkTime::Fixed { time } => time,
            ThinkTime::Exponential { mean } => mean,
            ThinkTime::Uniform { min, max } => min + (max.saturating_sub(min)) / 2,
        }
    }

    /// Every problem, with paths relative to the model.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        if self.users == 0 {
            errors.push("users", "must be at least 1");
        }
        if self.users > USERS_MAX {
            errors.push("users", format!("at most {USERS_MAX} users are supported"));
        }
        if let ThinkTime::Uniform { min, max } = self.think_time
            && min > max
        {
            errors.push(
                "think_time.max",
                format!("{max} is shorter than min ({min})"),
            );
        }
        errors.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_rng::actor_rng;

    #[test]
    fn think_times_follow_their_distribution() {
        let mut rng = actor_rng(1, "think");
        let c = |think_time| Closed {
            users: 1,
            think_time,
        };
        let fixed = c(ThinkTime::Fixed {
            time: Duration::from_secs(1),
        });
        assert_eq!(fixed.think(&mut rng), Duration::from_secs(1));
        let uniform = c(ThinkTime::Uniform {
            min: Duration::from_millis(100),
            max: Duration::from_millis(300),
        });
        let exp = c(ThinkTime::Exponential {
            mean: Duration::from_secs(2),
        });
        let n = 20_000u64;
        let mut sum_ns = 0u64;
        for _ in 0..n {
            let d = uniform.think(&mut rng);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(300));
            sum_ns += exp.think(&mut rng).as_nanos();
        }
        let mean_s = sum_ns as f64 / n as f64 / 1e9;
        // Standard error 2 s / sqrt(20k) = 0.014 s; five of them.
        assert!((mean_s - 2.0).abs() < 0.07, "{mean_s}");
        assert_eq!(uniform.mean_think(), Duration::from_millis(200));
    }

    #[test]
    fn closed_models_read_from_toml_and_reject_empty_or_inverted_settings() {
        let c: Closed =
            toml::from_str("users = 200\nthink_time = { kind = \"exponential\", mean = \"2s\" }")
                .unwrap();
        assert_eq!(c.users, 200);
        assert!(c.validate().is_ok());
        let bad = Closed {
            users: 0,
            think_time: ThinkTime::Uniform {
                min: Duration::from_secs(2),
                max: Duration::from_secs(1),
            },
        };
        let paths: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["users", "think_time.max"]);
    }
}
