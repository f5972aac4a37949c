//! Configuration of the control plane and the token-side security events:
//! policy rollouts and drift remediation, zero-trust admission, admin
//! revocations, token replay, signing-key leaks, and token-side faults.
//!
//! ```toml
//! [[control.rollouts]]
//! at = "20s"
//! version = "v2"
//! launch_template_lag = "30s"
//! overrides = { auth = { leeway = "5s" } }
//!
//! [control.drift_detector]
//! interval = "10s"
//! remediation = "hot_reload"
//! reload_delay = "2s"
//!
//! [control.admission]
//! zero_trust = true
//!
//! [[control.revocations]]
//! at = "30s"
//! target = { kind = "user", traffic = "shoppers", account = 3 }
//!
//! [[control.token_replays]]
//! name = "replay"
//! at = "10s"
//! victim = { traffic = "shoppers", account = 0 }
//! revoke_after = "5s"
//! shape = { kind = "constant", rate = "20/s" }
//!
//! [[control.key_leaks]]
//! name = "leak"
//! at = "10s"
//! rotate_at = "40s"
//! traffic = "shoppers"
//! shape = { kind = "constant", rate = "20/s" }
//!
//! [[fault]]
//! kind = "revocation_partition"
//! start = "10s"
//! end = "40s"
//! percent = 50.0
//! ```

use rampart_auth::VerifierConfig;
use rampart_ratelimit::RuleConfig;
use rampart_time::Duration;
use rampart_traffic::Shape;
use rampart_waf::abuse::AbuseConfig;
use serde::{Deserialize, Serialize};

use crate::config::Errors;
use crate::policy::PolicyBundle;

/// The control plane and token-side security events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Policy rollouts, in time order: each publishes a new bundle version.
    pub rollouts: Vec<RolloutConfig>,
    /// The drift detector; none means stale instances stay stale until they
    /// are scaled in.
    pub drift_detector: Option<DriftDetectorConfig>,
    /// Zero-trust admission at the load balancer.
    pub admission: AdmissionConfig,
    /// Administrative revocations.
    pub revocations: Vec<AdminRevocation>,
    /// Signing-key leaks and the forgers that exploit them.
    pub key_leaks: Vec<KeyLeakConfig>,
    /// Stolen-token replay attackers.
    pub token_replays: Vec<TokenReplayConfig>,
}

/// Per-component replacements of the previous bundle. A field left out
/// keeps the previous version's value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PolicyOverrides {
    /// New rate-limit rules.
    pub ratelimit: Option<Vec<RuleConfig>>,
    /// New verifier configuration.
    pub auth: Option<VerifierConfig>,
    /// New inspection policy.
    pub waf: Option<rampart_waf::Policy>,
    /// New abuse-detection configuration.
    pub abuse: Option<AbuseConfig>,
}

impl PolicyOverrides {
    fn is_empty(&self) -> bool {
        self.ratelimit.is_none()
            && self.auth.is_none()
            && self.waf.is_none()
            && self.abuse.is_none()
    }
}

/// A policy rollout: at `at` the control plane's current bundle becomes
/// `version`. Running instances keep what they booted with until the drift
/// detector remediates them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// When the control plane publishes the new version.
    pub at: Duration,
    /// The new version label (it replaces the bundle's own `version`).
    pub version: String,
    /// The whole new bundle; when absent, the previous bundle with
    /// `overrides` applied.
    #[serde(default)]
    pub policy: Option<PolicyBundle>,
    /// Changes to the previous bundle (only without `policy`).
    #[serde(default)]
    pub overrides: PolicyOverrides,
    /// How long after `at` the launch template carries the new version;
    /// instances launched before then boot with the old one.
    #[serde(default)]
    pub launch_template_lag: Duration,
    /// A drift fault: probability that an instance launched after the
    /// template update still boots with the previous version (a stale image
    /// cache, a config agent that failed to fetch).
    #[serde(default)]
    pub stale_boot_probability: f64,
}

impl RolloutConfig {
    /// The bundle this step publishes after `previous`: its whole `policy`,
    /// or `previous` with its overrides applied, labelled `version`.
    pub fn bundle_after(&self, previous: &PolicyBundle) -> PolicyBundle {
        let mut b = self.policy.clone().unwrap_or_else(|| previous.clone());
        let o = &self.overrides;
        if let Some(x) = &o.ratelimit {
            b.ratelimit = x.clone();
        }
        if let Some(x) = &o.auth {
            b.auth = x.clone();
        }
        if let Some(x) = &o.waf {
            b.waf = x.clone();
        }
        if let Some(x) = &o.abuse {
            b.abuse = x.clone();
        }
        b.version = self.version.clone();
        b
    }
}

/// Every bundle a run publishes, in order: `initial`, then each rollout's.
/// Both drivers publish these, so a rollout means the same bundle in each.
pub fn rollout_bundles(initial: &PolicyBundle, rollouts: &[RolloutConfig]) -> Vec<PolicyBundle> {
    let mut out = vec![initial.clone()];
    for r in rollouts {
        let next = r.bundle_after(&out[out.len() - 1]);
        out.push(next);
    }
    out
}

/// How the drift detector brings a stale instance to the current version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Remediation {
    /// Load the current bundle in place after `reload_delay`.
    #[default]
    HotReload,
    /// Launch a replacement (from the launch template) and drain the stale
    /// instance once the replacement is in service.
    Replace,
}

/// The drift detector: compares every instance's policy hash with the
/// control plane's each `interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DriftDetectorConfig {
    /// How often it runs.
    pub interval: Duration,
    /// What it does about a stale instance.
    #[serde(default)]
    pub remediation: Remediation,
    /// Time from detection to the reloaded bundle being in force.
    #[serde(default = "two_s")]
    pub reload_delay: Duration,
}

fn two_s() -> Duration {
    Duration::from_secs(2)
}

/// Zero-trust admission at the load balancer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Route only to instances that have attested the control plane's
    /// current policy version. Strict: with no attested instance, requests
    /// get `no_instance`.
    pub zero_trust: bool,
}

/// An account of a `[[traffic]]` source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    /// The traffic source's name.
    pub traffic: String,
    /// The account's index in that source.
    pub account: u32,
}

/// What an admin revocation names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RevocationTargetConfig {
    /// Every session of an account (the token service's "log out
    /// everywhere" for that account's subject).
    User {
        /// The traffic source.
        traffic: String,
        /// The account index.
        account: u32,
    },
    /// The account's current session only.
    Session {
        /// The traffic source.
        traffic: String,
        /// The account index.
        account: u32,
    },
    /// A subject by name, everywhere (any subject, such as one a forger
    /// impersonates).
    Subject {
        /// The subject.
        subject: String,
    },
}

/// An administrative revocation at `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminRevocation {
    /// When the admin revokes.
    pub at: Duration,
    /// What.
    pub target: RevocationTargetConfig,
}

/// A stolen-token replay: at `at` the attacker copies the victim's live
/// access token; the victim's sessions are revoked `revoke_after` later;
/// the attacker keeps replaying the token from `ips` addresses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenReplayConfig {
    /// Name: metrics class `attack.<name>`.
    pub name: String,
    /// When the token is stolen (the attack starts).
    pub at: Duration,
    /// Whose token.
    pub victim: AccountRef,
    /// Delay from theft to the revocation of the victim's sessions; none
    /// means nobody notices.
    #[serde(default)]
    pub revoke_after: Option<Duration>,
    /// Replay rate over time, from `at`.
    pub shape: Shape,
    /// When it stops (default: the end of the run).
    #[serde(default)]
    pub end: Option<Duration>,
    /// Source addresses it rotates through.
    #[serde(default = "eight")]
    pub ips: u32,
    /// The victim source's authenticated route it calls (default: the first).
    #[serde(default)]
    pub route: Option<String>,
}

/// Addresses a token attacker may rotate through. Each holds a copy of its
/// token (a few hundred bytes), so the pool is capped.
pub const IPS_MAX: u32 = 65_536;

fn eight() -> u32 {
    8
}

/// A signing-key leak: from `at` the attacker signs its own tokens with the
/// key that signs at `at`, until the token service rotates it at
/// `rotate_at` and the verifiers learn of the rotation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyLeakConfig {
    /// Name: metrics class `attack.<name>`.
    pub name: String,
    /// When the key leaks and forging starts.
    pub at: Duration,
    /// When the token service rotates the leaked key out (none: never).
    #[serde(default)]
    pub rotate_at: Option<Duration>,
    /// The traffic source whose authenticated routes it calls.
    pub traffic: String,
    /// The subject it impersonates (default: the source's account 0).
    #[serde(default)]
    pub subject: Option<String>,
    /// Request rate over time, from `at`.
    pub shape: Shape,
    /// When it stops (default: the end of the run).
    #[serde(default)]
    pub end: Option<Duration>,
    /// Source addresses it rotates through; each holds its own forged token.
    #[serde(default = "eight")]
    pub ips: u32,
    /// The authenticated route it calls (default: the first).
    #[serde(default)]
    pub route: Option<String>,
}

/// Which way a clock is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkewDirection {
    /// The instance's clock reads later than true time: tokens expire early.
    #[default]
    Ahead,
    /// The instance's clock reads earlier: fresh tokens are not yet valid.
    Behind,
}

/// A token-side fault over `[start, end)`: the control plane's view of the
/// token variants of a `[[fault]]` entry ([`crate::FaultConfig`]), from
/// [`crate::FaultConfig::as_token_fault`]. Not read from a scenario itself.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenFault {
    /// The token service is down: logins and refreshes fail with
    /// `token_service_unavailable`, and no verifier can fetch revocations or
    /// the JWKS. Verifiers then go stale and their `stale_policy`
    /// (fail-open or fail-closed) decides.
    TokenServiceOutage {
        /// Start, from the run's start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
    },
    /// The selected instances cannot reach the revocation feed (polls and
    /// pushes, JWKS included) while it lasts.
    RevocationPartition {
        /// Start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
        /// Instance ids; with `percent` empty too, every instance.
        instances: Vec<u32>,
        /// A share of instances, picked by a hash of the instance id.
        percent: Option<f64>,
    },
    /// The selected instances' verifiers read a clock `offset` off.
    ClockSkew {
        /// Start.
        start: Duration,
        /// End (exclusive).
        end: Duration,
        /// How far off.
        offset: Duration,
        /// Which way.
        direction: SkewDirection,
        /// Instance ids; with `percent` empty too, every instance.
        instances: Vec<u32>,
        /// A share of instances, picked by a hash of the instance id.
        percent: Option<f64>,
    },
}

impl TokenFault {
    /// The fault's window.
    pub fn window(&self) -> (Duration, Duration) {
        match self {
            TokenFault::TokenServiceOutage { start, end }
            | TokenFault::RevocationPartition { start, end, .. }
            | TokenFault::ClockSkew { start, end, .. } => (*start, *end),
        }
    }
}

/// Checks the control section and the token-side `[[fault]]` entries
/// (reported under `fault[i]`, `i` the index in the whole list); `attacks` and
/// `traffic` are the `[[attack]]` and `[[traffic]]` entries (names must not
/// clash), `eddsa` whether tokens are Ed25519-signed.
pub(crate) fn validate<'a>(
    control: &'a ControlConfig,
    attacks: &[crate::attack::AttackConfig],
    faults: &[crate::fault::FaultConfig],
    traffic: &[rampart_traffic::TrafficSpec],
    eddsa: bool,
    e: &mut Errors,
) {
    let source = |name: &str| traffic.iter().find(|t| t.name == name);
    let check_account = |e: &mut Errors, path: &str, name: &str, account: u32| match source(name) {
        None => e.push(
            format!("{path}.traffic"),
            format!("no [[traffic]] source named {name:?}"),
        ),
        Some(t) if account >= t.accounts.max(1) => e.push(
            format!("{path}.account"),
            format!(
                "source {name:?} has {} accounts; index {account} is out of range",
                t.accounts.max(1)
            ),
        ),
        Some(_) => {}
    };
    let check_route = |e: &mut Errors, path: &str, name: &str, route: &Option<String>| {
        let Some(t) = source(name) else { return };
        match route {
            Some(r) => match t.routes.iter().find(|x| &x.name == r) {
                None => e.push(
                    format!("{path}.route"),
                    format!("source {name:?} has no route {r:?}"),
                ),
                Some(x) if !x.auth => e.push(
                    format!("{path}.route"),
                    format!("route {r:?} does not take a token (auth = false)"),
                ),
                Some(_) => {}
            },
            None if !t.routes.iter().any(|x| x.auth) => e.push(
                format!("{path}.traffic"),
                format!("source {name:?} has no authenticated route to call"),
            ),
            None => {}
        }
    };
    let mut last_at = None;
    for (i, r) in control.rollouts.iter().enumerate() {
        let p = format!("control.rollouts[{i}]");
        if last_at.is_some_and(|l| r.at <= l) {
            e.push(
                format!("{p}.at"),
                "rollouts must be in strictly increasing time order",
            );
        }
        last_at = Some(r.at);
        e.check(
            !r.version.trim().is_empty(),
            &format!("{p}.version"),
            || "must not be empty".into(),
        );
        if control.rollouts[..i].iter().any(|q| q.version == r.version) {
            e.push(
                format!("{p}.version"),
                format!("duplicate rollout version {:?}", r.version),
            );
        }
        e.check(
            (0.0..=1.0).contains(&r.stale_boot_probability),
            &format!("{p}.stale_boot_probability"),
            || "must be a probability within [0, 1]".into(),
        );
        if r.policy.is_some() && !r.overrides.is_empty() {
            e.push(
                format!("{p}.overrides"),
                "give either a whole `policy` or `overrides`, not both",
            );
        }
        if let Some(b) = &r.policy {
            let mut sub = Errors::default();
            b.validate(&mut sub);
            for fe in sub.0 {
                e.push(format!("{p}.{}", fe.path), fe.message);
            }
        }
        if let Some(rl) = &r.overrides.ratelimit
            && let Err(err) = rampart_ratelimit::RuleSet::<rampart_ratelimit::Local>::new(
                rl,
                rampart_ratelimit::RuleSetConfig::default(),
            )
        {
            e.push(format!("{p}.overrides.ratelimit"), err.to_string());
        }
        if let Some(w) = &r.overrides.waf
            && let Err(err) = rampart_waf::Inspector::new(w.clone())
        {
            e.push(format!("{p}.overrides.waf"), err.to_string());
        }
        if let Some(a) = &r.overrides.abuse
            && let Err(err) = rampart_waf::abuse::AbuseDetector::new(a.clone())
        {
            e.push(format!("{p}.overrides.abuse"), err.to_string());
        }
    }
    if let Some(d) = &control.drift_detector {
        e.check(
            d.interval > Duration::ZERO,
            "control.drift_detector.interval",
            || "must be > 0".into(),
        );
    }
    for (i, r) in control.revocations.iter().enumerate() {
        let p = format!("control.revocations[{i}].target");
        match &r.target {
            RevocationTargetConfig::User { traffic, account }
            | RevocationTargetConfig::Session { traffic, account } => {
                check_account(e, &p, traffic, *account);
            }
            RevocationTargetConfig::Subject { subject } => {
                e.check(!subject.is_empty(), &format!("{p}.subject"), || {
                    "must not be empty".into()
                });
            }
        }
    }
    let mut names: Vec<&str> = Vec::new();
    let mut check_name = |e: &mut Errors, path: String, name: &'a str| {
        if name.is_empty() {
            e.push(path, "must not be empty");
        } else if names.contains(&name)
            || traffic.iter().any(|t| t.name == name)
            || attacks.iter().any(|a| a.name == name)
        {
            e.push(path, format!("duplicate attacker or traffic name {name:?}"));
        } else {
            names.push(name);
        }
    };
    let check_common =
        |e: &mut Errors, p: &str, at: Duration, end: Option<Duration>, ips: u32, shape: &Shape| {
            if end.is_some_and(|end| end <= at) {
                e.push(format!("{p}.end"), "must be after `at`");
            }
            e.check((1..=IPS_MAX).contains(&ips), &format!("{p}.ips"), || {
                format!("must be within 1..={IPS_MAX}")
            });
            if let Err(errs) = shape.validate() {
                for fe in errs {
                    e.push(format!("{p}.shape.{}", fe.path), fe.message);
                }
            }
        };
    for (i, r) in control.token_replays.iter().enumerate() {
        let p = format!("control.token_replays[{i}]");
        check_name(e, format!("{p}.name"), &r.name);
        check_account(
            e,
            &format!("{p}.victim"),
            &r.victim.traffic,
            r.victim.account,
        );
        check_route(e, &p, &r.victim.traffic, &r.route);
        check_common(e, &p, r.at, r.end, r.ips, &r.shape);
    }
    for (i, k) in control.key_leaks.iter().enumerate() {
        let p = format!("control.key_leaks[{i}]");
        check_name(e, format!("{p}.name"), &k.name);
        if source(&k.traffic).is_none() {
            e.push(
                format!("{p}.traffic"),
                format!("no [[traffic]] source named {:?}", k.traffic),
            );
        }
        check_route(e, &p, &k.traffic, &k.route);
        check_common(e, &p, k.at, k.end, k.ips, &k.shape);
        if k.rotate_at.is_some_and(|r| r < k.at) {
            e.push(
                format!("{p}.rotate_at"),
                "must not be before the leak (`at`)",
            );
        }
        if !eddsa {
            e.push(
                p.clone(),
                "key leaks are modelled for token_service.algorithm = \"ed_dsa\" only (rotation travels by JWKS)",
            );
        }
    }
    let token_faults = faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((i, f.as_token_fault()?)));
    for (i, f) in token_faults {
        let p = format!("fault[{i}]");
        let (start, end) = f.window();
        e.check(start < end, &format!("{p}.end"), || {
            format!("must be after start ({start}); is {end}")
        });
        let (instances, percent) = match &f {
            TokenFault::TokenServiceOutage { .. } => continue,
            TokenFault::RevocationPartition {
                instances, percent, ..
            }
            | TokenFault::ClockSkew {
                instances, percent, ..
            } => (instances, percent),
        };
        if let Some(pc) = percent {
            e.check(
                pc.is_finite() && (0.0..=100.0).contains(pc),
                &format!("{p}.percent"),
                || "must be within [0, 100]".into(),
            );
            e.check(instances.is_empty(), &format!("{p}.instances"), || {
                "give either `instances` or `percent`, not both".into()
            });
        }
    }
}

#[cfg(test)]
mod rollouts {
    use super::*;

    #[test]
    fn each_step_builds_on_the_last_and_a_whole_policy_replaces_it() {
        let steps: ControlConfig = toml::from_str(
            r#"
            [[rollouts]]
            at = "10s"
            version = "v2"
            overrides = { auth = { leeway = "5s" } }

            [[rollouts]]
            at = "20s"
            version = "v3"
            overrides = { ratelimit = [] }

            [[rollouts]]
            at = "30s"
            version = "v4"
            policy = { version = "ignored" }
            "#,
        )
        .unwrap();
        let initial = PolicyBundle {
            version: "v1".into(),
            ..PolicyBundle::default()
        };
        let b = rollout_bundles(&initial, &steps.rollouts);
        let versions: Vec<&str> = b.iter().map(|b| b.version.as_str()).collect();
        assert_eq!(versions, ["v1", "v2", "v3", "v4"]);
        let leeway = |i: usize| b[i].auth.leeway;
        assert_eq!(leeway(0), VerifierConfig::default().leeway);
        assert_eq!(
            [leeway(1), leeway(2)],
            [Duration::from_secs(5); 2],
            "v3 keeps v2's override"
        );
        assert_eq!(
            leeway(3),
            VerifierConfig::default().leeway,
            "a whole policy starts afresh"
        );
        assert_eq!(b[1].waf, initial.waf);
        assert_ne!(b[1].content_hash(), b[0].content_hash());
    }
}
