//! `[[attack]]` entries of a scenario: what each attacker does, and what
//! can be wrong with one.
//!
//! An attacker is an open arrival process (the same [`Shape`]s as legit
//! traffic) between `start` and `end`, sending from a pool of source IPs
//! against the routes and accounts of one `[[traffic]]` source (its
//! `target`). Only what its requests *carry* differs from legit ones (a
//! leaked credential, a forged token, an injection payload, a held
//! connection); a driver sends them through the same fleet, so the real
//! cores decide about them.

use rampart_time::Duration;
use rampart_traffic::{Process, Shape};
use serde::{Deserialize, Serialize};

use crate::config::{Errors, WorldConfig};

/// One `[[attack]]` entry.
///
/// ```toml
/// [[attack]]
/// name = "stuffing"
/// kind = "credential_stuffing"
/// start = "10s"
/// end = "70s"
/// shape = { kind = "constant", rate = "200/s" }
/// ips = 5000
/// rotation = { kind = "low_and_slow" }
/// valid_ratio = 0.02
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct AttackConfig {
    /// Unique name; the metrics class is `attack.<name>` and outcome
    /// counters are `attack.<name>.<outcome>`.
    pub name: String,
    /// When the attack begins, from the start of the run.
    pub start: Duration,
    /// When it stops (exclusive).
    pub end: Duration,
    /// Offered attempts per second over time, from `start` (the same shapes
    /// as `[[traffic]]`).
    pub shape: Shape,
    /// Gaps between attempts: `poisson` (a crowd of bots) or `uniform` (one
    /// scripted cadence).
    #[serde(default)]
    pub process: Process,
    /// The `[[traffic]]` source whose routes and accounts are attacked;
    /// the first source when absent.
    #[serde(default)]
    pub target: Option<String>,
    /// Names of the target's routes to send to; every non-login route when
    /// empty (credential stuffing always uses the login route).
    #[serde(default)]
    pub routes: Vec<String>,
    /// Source IPs in the botnet's pool.
    #[serde(default = "one")]
    pub ips: u32,
    /// How many /24 prefixes the pool spreads over: 0 packs it into as few
    /// as hold it (254 hosts each, a datacenter range); `ips` puts every
    /// address in its own /24 (a residential botnet that defeats prefix
    /// rules).
    #[serde(default)]
    pub subnets: u32,
    /// Which pool address each attempt uses.
    #[serde(default)]
    pub rotation: Rotation,
    /// Probability that an attempt rides an open connection (no TLS
    /// handshake). Bots rotating addresses rarely can.
    #[serde(default)]
    pub connection_reuse: f64,
    /// The attacker's client timeout per attempt (slowloris holds its
    /// connections for `hold` instead).
    #[serde(default = "ten_s")]
    pub timeout: Duration,
    /// What the attacker does.
    #[serde(flatten)]
    pub kind: AttackKind,
}

fn one() -> u32 {
    1
}
fn ten_s() -> Duration {
    Duration::from_secs(10)
}

/// How attempts rotate over the IP pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rotation {
    /// Each address in turn: every IP sends `rate / ips`, under any per-IP
    /// threshold when the pool is large.
    #[default]
    LowAndSlow,
    /// A uniformly random address per attempt.
    Random,
    /// One address sends `burst` attempts in a row, then the next takes over.
    Bursty {
        /// Attempts per address before rotating.
        burst: u32,
    },
}

/// The attack itself; `kind = "..."` in the `[[attack]]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttackKind {
    /// Logins with leaked username/password pairs at the target's login
    /// route. Each attempt costs the token service a password check.
    CredentialStuffing {
        /// Share of the leaked pairs that are a real account's current
        /// password: a successful login with one is an account takeover.
        #[serde(default = "one_percent")]
        valid_ratio: f64,
        /// Size of the leaked list; attempts walk it in order and wrap.
        #[serde(default = "combos")]
        combos: u32,
    },
    /// API calls carrying tokens the token service never issued to them.
    ForgedTokens {
        /// The forgeries to cycle through; all four when empty.
        #[serde(default)]
        forgery: Vec<Forgery>,
    },
    /// API calls carrying injection and malformed payloads, from accounts
    /// the attacker signed up for.
    Injection {
        /// The payload classes to mix; all when empty.
        #[serde(default)]
        classes: Vec<PayloadClass>,
        /// Accounts the attacker created (it signs in like a user).
        #[serde(default = "one")]
        accounts: u32,
    },
    /// High-rate reads of the target's routes from accounts the attacker
    /// created or stole, each signing in through the token service.
    Scraping {
        /// Accounts the attacker created.
        #[serde(default = "ten")]
        accounts: u32,
        /// Accounts it stole: the target's first `stolen` users, with their
        /// real passwords. Their owners share any per-account limit with it.
        #[serde(default)]
        stolen: u32,
    },
    /// Unauthenticated requests to random routes from many IPs, each on a
    /// new connection unless `connection_reuse` says otherwise: load that
    /// makes the fleet scale out and costs money.
    L7Flood,
    /// Connections that send their headers too slowly to finish, each
    /// holding one of the instance's in-flight slots (the LB's
    /// `max_in_flight_per_instance`) until the gateway's `header_timeout`
    /// or the attacker's `hold`, whichever comes first.
    Slowloris {
        /// How long the attacker keeps each connection open.
        #[serde(default = "five_min")]
        hold: Duration,
    },
}

fn one_percent() -> f64 {
    0.01
}
fn combos() -> u32 {
    100_000
}
fn ten() -> u32 {
    10
}
fn five_min() -> Duration {
    Duration::from_mins(5)
}

impl AttackKind {
    /// The snake_case name of the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            AttackKind::CredentialStuffing { .. } => "credential_stuffing",
            AttackKind::ForgedTokens { .. } => "forged_tokens",
            AttackKind::Injection { .. } => "injection",
            AttackKind::Scraping { .. } => "scraping",
            AttackKind::L7Flood => "l7_flood",
            AttackKind::Slowloris { .. } => "slowloris",
        }
    }
}

/// A way to forge an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Forgery {
    /// A real token's header rewritten to `alg: none`, signature dropped.
    AlgNone,
    /// Signed by the attacker's own key under the service's `kid`.
    WrongKey,
    /// A real token that expired before the run began.
    Expired,
    /// A real token whose claims were edited (`sub`, `scope`), signature kept.
    Tampered,
}

impl Forgery {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Forgery::AlgNone => "alg_none",
            Forgery::WrongKey => "wrong_key",
            Forgery::Expired => "expired",
            Forgery::Tampered => "tampered",
        }
    }
}

/// A class of malicious payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayloadClass {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal and local file access.
    PathTraversal,
    /// OS command injection.
    CommandInjection,
    /// Server-side request forgery.
    Ssrf,
    /// Malformed encodings and bodies (truncated JSON, NUL bytes, overlong
    /// UTF-8).
    Malformed,
}

/// What can be wrong with an `[[attack]]` entry, with paths under
/// `attack[i]`.
pub(crate) fn validate(cfg: &WorldConfig, e: &mut Errors) {
    for (i, a) in cfg.attack.iter().enumerate() {
        let p = format!("attack[{i}]");
        e.check(
            !a.name.trim().is_empty()
                && a.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            &format!("{p}.name"),
            || "must be non-empty ASCII letters, digits, '_' or '-' (it names metrics)".into(),
        );
        if cfg.attack[..i].iter().any(|b| b.name == a.name) {
            e.push(
                format!("{p}.name"),
                format!("duplicate attack name {:?}", a.name),
            );
        }
        e.check(a.end > a.start, &format!("{p}.end"), || {
            format!("must be after start ({})", a.start)
        });
        if let Err(errs) = a.shape.validate() {
            for fe in errs {
                e.push(format!("{p}.shape.{}", fe.path), fe.message);
            }
        }
        e.check((1..=IPS_MAX).contains(&a.ips), &format!("{p}.ips"), || {
            format!("must be within 1..={IPS_MAX}")
        });
        e.check(a.subnets <= a.ips, &format!("{p}.subnets"), || {
            "must be at most ips".into()
        });
        e.check(
            a.subnets == 0 || u64::from(a.ips) <= u64::from(a.subnets) * HOSTS_PER_SUBNET,
            &format!("{p}.subnets"),
            || {
                format!(
                    "{} subnets hold at most {HOSTS_PER_SUBNET} addresses each",
                    a.subnets
                )
            },
        );
        if let Rotation::Bursty { burst } = a.rotation {
            e.check(burst > 0, &format!("{p}.rotation.burst"), || {
                "must be > 0".into()
            });
        }
        e.check(
            (0.0..=1.0).contains(&a.connection_reuse),
            &format!("{p}.connection_reuse"),
            || "must be a probability within [0, 1]".into(),
        );
        e.check(a.timeout > Duration::ZERO, &format!("{p}.timeout"), || {
            "must be > 0".into()
        });
        let target = match &a.target {
            Some(t) => {
                let found = cfg.traffic.iter().find(|s| &s.name == t);
                if found.is_none() {
                    e.push(
                        format!("{p}.target"),
                        format!("no [[traffic]] source is named {t:?}"),
                    );
                }
                found
            }
            None => cfg.traffic.first(),
        };
        let Some(target) = target else { continue };
        for (k, r) in a.routes.iter().enumerate() {
            if !target.routes.iter().any(|x| &x.name == r) {
                e.push(
                    format!("{p}.routes[{k}]"),
                    format!("traffic {:?} has no route named {r:?}", target.name),
                );
            }
        }
        let has_login = target.routes.iter().any(|r| r.login);
        let chosen = |r: &&rampart_traffic::Route| {
            !r.login && (a.routes.is_empty() || a.routes.contains(&r.name))
        };
        let n_chosen = target.routes.iter().filter(chosen).count();
        match &a.kind {
            AttackKind::CredentialStuffing {
                valid_ratio,
                combos,
            } => {
                e.check(
                    (0.0..=1.0).contains(valid_ratio),
                    &format!("{p}.valid_ratio"),
                    || "must be within [0, 1]".into(),
                );
                e.check(*combos > 0, &format!("{p}.combos"), || "must be > 0".into());
                e.check(has_login, &format!("{p}.target"), || {
                    format!("traffic {:?} has no login route to stuff", target.name)
                });
            }
            AttackKind::ForgedTokens { .. } => {
                e.check(
                    target.routes.iter().filter(chosen).any(|r| r.auth),
                    &format!("{p}.routes"),
                    || "forged tokens need a route with auth = true".into(),
                );
            }
            AttackKind::Injection { .. } | AttackKind::Scraping { .. } => {
                let (created, stolen) = match a.kind {
                    AttackKind::Scraping { accounts, stolen } => (accounts, stolen),
                    AttackKind::Injection { accounts, .. } => (accounts, 0),
                    _ => unreachable!("matched above"),
                };
                e.check(
                    created <= ATTACK_ACCOUNTS_MAX,
                    &format!("{p}.accounts"),
                    || format!("must be at most {ATTACK_ACCOUNTS_MAX}"),
                );
                e.check(created > 0 || stolen > 0, &format!("{p}.accounts"), || {
                    "the attacker needs at least one account (created or stolen)".into()
                });
                e.check(
                    stolen <= target.accounts.max(1),
                    &format!("{p}.stolen"),
                    || {
                        format!(
                            "traffic {:?} has only {} accounts",
                            target.name,
                            target.accounts.max(1)
                        )
                    },
                );
                let needs_login = target.routes.iter().filter(chosen).any(|r| r.auth);
                e.check(!needs_login || has_login, &format!("{p}.target"), || {
                    format!(
                        "traffic {:?} has auth routes but no login route to sign in at",
                        target.name
                    )
                });
            }
            AttackKind::L7Flood => {}
            AttackKind::Slowloris { hold } => {
                e.check(*hold > Duration::ZERO, &format!("{p}.hold"), || {
                    "must be > 0".into()
                });
            }
        }
        if !matches!(a.kind, AttackKind::CredentialStuffing { .. }) {
            e.check(n_chosen > 0, &format!("{p}.routes"), || {
                "selects no non-login route to attack".into()
            });
        }
    }
}

/// The largest pool: 2^24 addresses.
const IPS_MAX: u32 = 1 << 24;
/// Usable host addresses per /24 (1..=254): how a driver spreads a pool
/// over its prefixes, and what validation holds `subnets` to.
pub const HOSTS_PER_SUBNET: u64 = 254;
/// Accounts one attacker may create.
const ATTACK_ACCOUNTS_MAX: u32 = 100_000;
