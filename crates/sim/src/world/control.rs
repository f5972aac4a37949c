//! The control plane and token-side security, inside the world.
//!
//! * **Revocation ground truth.** The token service's revocation log is the
//!   truth. Every change to it is mirrored here with the virtual instant it
//!   happened ([`Truth`]); whenever a gateway's verifier accepts a token the
//!   truth says is revoked, the acceptance is counted (`revoked.accepted`,
//!   `revoked.accepted_after.<D>`, `revoked.exposure_max_ms`) and checked
//!   against the safety invariant: an instance that has applied revocation
//!   version `v` never accepts a token revoked at a version `<= v`.
//! * **Policy drift.** Rollouts publish new bundle versions; the launch
//!   template follows after a lag; a drift detector compares policy hashes
//!   and remediates by hot reload or replacement; zero-trust admission makes
//!   the load balancer route only to instances running the current version.
//! * **Token attackers.** A replay attacker steals a live token and keeps
//!   using it after the victim's sessions are revoked; a key-leak attacker
//!   forges tokens with a leaked signing key until an emergency rotation
//!   reaches the verifiers. Both are traffic sources of their own
//!   ([`Source::token_only`]) with a metrics class `attack.<name>`.
//! * **Token faults.** A token-service outage, a revocation-feed partition,
//!   and clock skew change what each verifier can fetch and what time it
//!   reads; the verifier's own fail-open/fail-closed policy does the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rampart_auth::{
    Claims, KeyMaterial, Principal, Revocation, RevocationTarget, TYP_ACCESS, Verdict, sign_claims,
    unix_secs,
};
use rampart_autoscale::InstanceState;
use rampart_des::Ctx;
use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_metrics::{ClassId, CounterId, GaugeId, Names};
use rampart_time::{Duration, Instant};
use rampart_traffic::{ClientTimeout, Model, Process, RetryPolicy, Route, TrafficSpec};
use rampart_world::{
    Remediation, RevocationSync, RevocationTargetConfig, SigningAlgorithm, TimelineEvent,
    TimelineKind, WorldConfig,
};

use super::{Msg, World};
use crate::error::{BuildError, FleetError, MetricsError};
use crate::meter::reason;
use crate::sources::Source;
use rampart_gateway::CompiledPolicy;

/// Ground-truth revocation entries mirrored at most; past it new entries
/// are counted in `revoked.truth_overflow` and their tokens go unmeasured.
const TRUTH_ENTRIES_MAX: usize = 1_000_000;

/// Attackers refresh a forged token this long before it expires.
const FORGE_MARGIN: Duration = Duration::from_secs(60);

/// A control-plane or token-security event.
#[derive(Debug)]
pub enum ControlEvent {
    /// Rollout `i` publishes its version.
    Rollout(u16),
    /// The launch template takes rollout `i`'s version.
    TemplateUpdate(u16),
    /// The drift detector runs.
    DriftCheck,
    /// A hot reload scheduled by the drift detector takes effect.
    Reload {
        /// The instance.
        instance: u32,
    },
    /// Admin revocation `i`.
    Revoke(u16),
    /// Replay attacker `i` steals its token.
    Steal(u16),
    /// The victim of replay attacker `i` has its sessions revoked.
    ReplayRevoke(u16),
    /// Key leak `i` happens.
    Leak(u16),
    /// Key leak `i`'s key is rotated out.
    Rotate(u16),
    /// A JWKS change pushed to an instance arrives.
    JwksPush {
        /// The instance.
        instance: u32,
    },
}

/// Metric ids of the control plane and the token attackers.
#[derive(Debug)]
pub(crate) struct ControlIds {
    revoked_accepted: CounterId,
    revoked_after: Vec<(Duration, CounterId)>,
    truth_overflow: CounterId,
    accepted_stale: CounterId,
    stale_requests: CounterId,
    reloads: CounterId,
    replacements: CounterId,
    admin_revocations: CounterId,
    exposure_max_ms: GaugeId,
    revoked_instances: GaugeId,
    revoked_instance_max: GaugeId,
    stale_instances: GaugeId,
    stale_instance_seconds: GaugeId,
    stale_converge_ms: GaugeId,
    attackers: Vec<AttackerIds>,
    class_ids: Vec<ClassId>,
    pub(crate) class_base: u16,
}

#[derive(Debug)]
struct AttackerIds {
    /// Replay: accepted after revocation; leak: forged accepted.
    accepted: CounterId,
    /// Leak: forged accepted after the rotation.
    accepted_after_rotation: Option<CounterId>,
    /// Replay: the longest exposure.
    exposure_max_ms: Option<GaugeId>,
    /// Replay: instances that accepted the token after its revocation.
    instances: Option<GaugeId>,
    first_block_ms: GaugeId,
}

/// Registers every name this module records, in a fixed order.
pub(crate) fn register(cfg: &WorldConfig, names: &mut Names) -> Result<ControlIds, MetricsError> {
    let revoked_accepted = names.add_counter("revoked.accepted")?;
    let mut lags = cfg.run.revocation_lag_thresholds.clone();
    lags.sort();
    lags.dedup();
    let mut revoked_after = Vec::new();
    for d in lags {
        let id = names.add_counter(&format!("revoked.accepted_after.{d}"))?;
        revoked_after.push((d, id));
    }
    let truth_overflow = names.add_counter("revoked.truth_overflow")?;
    let accepted_stale = names.add_counter("verifier.accepted_stale")?;
    let stale_requests = names.add_counter("stale_policy.requests")?;
    let reloads = names.add_counter("control.reloads")?;
    let replacements = names.add_counter("control.replacements")?;
    let admin_revocations = names.add_counter("control.revocations")?;
    let exposure_max_ms = names.add_gauge("revoked.exposure_max_ms")?;
    let revoked_instances = names.add_gauge("revoked.accepted.instances")?;
    let revoked_instance_max = names.add_gauge("revoked.accepted.instance_max")?;
    let stale_instances = names.add_gauge("stale_policy.instances")?;
    let stale_instance_seconds = names.add_gauge("stale_policy.instance_seconds")?;
    let stale_converge_ms = names.add_gauge("stale_policy.converge_ms")?;
    let mut attackers = Vec::new();
    let mut class_ids = Vec::new();
    for r in &cfg.control.token_replays {
        let n = &r.name;
        class_ids.push(names.add_class(&format!("attack.{n}"))?);
        attackers.push(AttackerIds {
            accepted: names.add_counter(&format!("attack.{n}.accepted_after_revocation"))?,
            accepted_after_rotation: None,
            exposure_max_ms: Some(names.add_gauge(&format!("attack.{n}.exposure_max_ms"))?),
            instances: Some(
                names.add_gauge(&format!("attack.{n}.accepted_after_revocation.instances"))?,
            ),
            first_block_ms: names.add_gauge(&format!("attack.{n}.first_block_ms"))?,
        });
    }
    for k in &cfg.control.key_leaks {
        let n = &k.name;
        class_ids.push(names.add_class(&format!("attack.{n}"))?);
        attackers.push(AttackerIds {
            accepted: names.add_counter(&format!("attack.{n}.forged_accepted"))?,
            accepted_after_rotation: Some(
                names.add_counter(&format!("attack.{n}.forged_accepted_after_rotation"))?,
            ),
            exposure_max_ms: None,
            instances: None,
            first_block_ms: names.add_gauge(&format!("attack.{n}.first_block_ms"))?,
        });
    }
    Ok(ControlIds {
        revoked_accepted,
        revoked_after,
        truth_overflow,
        accepted_stale,
        stale_requests,
        reloads,
        replacements,
        admin_revocations,
        exposure_max_ms,
        revoked_instances,
        revoked_instance_max,
        stale_instances,
        stale_instance_seconds,
        stale_converge_ms,
        attackers,
        class_ids,
        class_base: 0,
    })
}

impl ControlIds {
    /// Appends the attackers' classes to the meter's class table and
    /// remembers where they start.
    pub(crate) fn assign_classes(mut self, classes: &mut Vec<ClassId>) -> ControlIds {
        self.class_base = classes.len() as u16;
        classes.extend(self.class_ids.iter().copied());
        self
    }
}

/// Compiles the bundle of every rollout after the initial one, in order.
pub(crate) fn compile_policies(
    cfg: &WorldConfig,
    initial: Rc<CompiledPolicy>,
) -> Result<Vec<Rc<CompiledPolicy>>, BuildError> {
    let bundles = rampart_world::rollout_bundles(&initial.bundle, &cfg.control.rollouts);
    let mut out = vec![initial];
    for (i, b) in bundles.into_iter().enumerate().skip(1) {
        out.push(
            CompiledPolicy::compile(i as u32, b)
                .map(Rc::new)
                .map_err(|source| BuildError::Rollout {
                    index: i - 1,
                    source,
                })?,
        );
    }
    Ok(out)
}

/// Builds the token attackers' traffic sources and appends them.
pub(crate) fn add_attack_sources(
    cfg: &WorldConfig,
    sources: &mut Vec<Source>,
) -> Result<Vec<u16>, BuildError> {
    let seed = cfg.run.seed;
    let mut ids = Vec::new();
    // `entry` is the attacker's configuration entry and `traffic_path` the
    // field under it that names the source, for errors.
    let route_of = |entry: &str,
                    traffic_path: &str,
                    traffic: &str,
                    route: &Option<String>|
     -> Result<(Vec<Route>, ClientTimeout), BuildError> {
        let t = cfg
            .traffic
            .iter()
            .find(|t| t.name == traffic)
            .ok_or_else(|| BuildError::UnknownTraffic {
                path: format!("{entry}.{traffic_path}"),
                name: traffic.to_owned(),
            })?;
        let r = match route {
            Some(name) => t.routes.iter().find(|r| &r.name == name).ok_or_else(|| {
                BuildError::UnknownRoute {
                    path: format!("{entry}.route"),
                    traffic: traffic.to_owned(),
                    route: name.clone(),
                }
            })?,
            None => t
                .routes
                .iter()
                .find(|r| r.auth)
                .ok_or_else(|| BuildError::NoAuthRoute {
                    path: format!("{entry}.{traffic_path}"),
                    traffic: traffic.to_owned(),
                })?,
        };
        let mut r = r.clone();
        r.weight = 1.0;
        // The mix wants a way to obtain a token; the attacker never takes it.
        let mut routes = vec![r];
        if let Some(login) = t.routes.iter().find(|r| r.login) {
            let mut login = login.clone();
            login.weight = 0.0;
            routes.push(login);
        }
        Ok((routes, t.timeout))
    };
    let mut specs = Vec::new();
    for (i, r) in cfg.control.token_replays.iter().enumerate() {
        let entry = format!("control.token_replays[{i}]");
        let (route, timeout) = route_of(&entry, "victim.traffic", &r.victim.traffic, &r.route)?;
        specs.push((
            entry,
            r.name.clone(),
            r.shape.clone(),
            r.at,
            r.end,
            r.ips,
            route,
            timeout,
        ));
    }
    for (i, k) in cfg.control.key_leaks.iter().enumerate() {
        let entry = format!("control.key_leaks[{i}]");
        let (route, timeout) = route_of(&entry, "traffic", &k.traffic, &k.route)?;
        specs.push((
            entry,
            k.name.clone(),
            k.shape.clone(),
            k.at,
            k.end,
            k.ips,
            route,
            timeout,
        ));
    }
    for (entry, name, shape, at, end, ips, route, timeout) in specs {
        let index = sources.len() as u16;
        let spec = TrafficSpec {
            name,
            model: Model::Open {
                shape,
                process: Process::Poisson,
            },
            routes: route,
            accounts: ips,
            retry: RetryPolicy::default(),
            timeout,
            // A hair after the theft or leak, so the first request carries
            // the token whatever the arrival process draws.
            start: Some(at + Duration::from_millis(1)),
            end,
        };
        sources.push(Source::attacker(index, &entry, spec, seed)?);
        ids.push(index);
    }
    Ok(ids)
}

/// A revocation the truth holds: its log version, when it happened
/// (virtual time) and when every token it can match has expired (Unix).
#[derive(Clone, Copy, Debug)]
struct Mark {
    version: u64,
    at: Instant,
    until: Instant,
}

/// The token service's revocations, with the virtual time each happened.
#[derive(Debug, Default)]
struct Truth {
    version: u64,
    jti: BTreeMap<Box<str>, Mark>,
    sid: BTreeMap<Box<str>, Mark>,
    sub: BTreeMap<Box<str>, Vec<(u64, Mark)>>,
    len: usize,
}

impl Truth {
    /// Mirrors one log entry that appeared at `at`; false at the cap.
    fn insert(&mut self, r: &Revocation, at: Instant) -> bool {
        if self.len >= TRUTH_ENTRIES_MAX {
            return false;
        }
        let m = Mark {
            version: r.version,
            at,
            until: r.until,
        };
        // The earliest revocation of a key is the one exposure counts from.
        let fresh = match &r.target {
            RevocationTarget::Token { jti } => self.jti.insert_if_absent(jti, m),
            RevocationTarget::Session { sid } => self.sid.insert_if_absent(sid, m),
            RevocationTarget::Subject {
                sub,
                issued_at_or_before_s,
            } => {
                self.sub
                    .entry(sub.as_str().into())
                    .or_default()
                    .push((*issued_at_or_before_s, m));
                true
            }
            _ => false,
        };
        self.len += usize::from(fresh);
        true
    }

    /// The earliest revocation that covers this token, if any.
    fn lookup(&self, p: &Principal) -> Option<Mark> {
        if self.len == 0 {
            return None;
        }
        let mut best: Option<Mark> = None;
        let mut take = |m: Mark| {
            if best.is_none_or(|b| m.at < b.at) {
                best = Some(m);
            }
        };
        if let Some(m) = self.jti.get(p.token_id()) {
            take(*m);
        }
        if let Some(m) = self.sid.get(p.session_id()) {
            take(*m);
        }
        if let Some(v) = self.sub.get(p.subject()) {
            for (before, m) in v {
                if p.issued_at_s <= *before {
                    take(*m);
                }
            }
        }
        best
    }

    /// Drops entries whose tokens have all expired (`unix` is Unix time).
    fn prune(&mut self, unix: Instant) {
        self.jti.retain(|_, m| m.until > unix);
        self.sid.retain(|_, m| m.until > unix);
        self.sub.retain(|_, v| {
            v.retain(|(_, m)| m.until > unix);
            !v.is_empty()
        });
        self.len = self.jti.len() + self.sid.len() + self.sub.values().map(Vec::len).sum::<usize>();
    }
}

trait InsertIfAbsent {
    fn insert_if_absent(&mut self, k: &str, m: Mark) -> bool;
}

impl InsertIfAbsent for BTreeMap<Box<str>, Mark> {
    fn insert_if_absent(&mut self, k: &str, m: Mark) -> bool {
        if self.contains_key(k) {
            return false;
        }
        self.insert(k.into(), m);
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttackKind {
    Replay(u16),
    Leak(u16),
}

#[derive(Debug)]
struct Attacker {
    kind: AttackKind,
    source: u16,
    start: Instant,
    first_block: Option<Duration>,
    exposure_max: Option<Duration>,
    /// Key leaks: the leaked key id once the leak happened.
    kid: Option<String>,
    /// Key leaks: when the leaked key was rotated out.
    rotated_at: Option<Instant>,
    /// Replay: instances that accepted the token after its revocation
    /// (instance ids are bounded by the launch cap).
    instances: BTreeSet<u32>,
}

/// Runtime state of the control plane and the token-side events.
#[derive(Debug)]
pub(crate) struct Control {
    /// The control plane's current policy (index into the world's policies).
    pub(crate) desired: usize,
    /// Its content hash: what attestation and drift detection compare.
    desired_hash: [u8; 32],
    rollout_at: Option<Instant>,
    converge: Option<Duration>,
    stale_ns: u128,
    stale_boot_probability: f64,
    rng: ActorRng,
    pending_reload: BTreeSet<u32>,
    replacing: Vec<(u32, u32)>,
    zero_trust: bool,
    truth: Truth,
    revoked_by_instance: Vec<u64>,
    exposure_max: Option<Duration>,
    attackers: Vec<Attacker>,
    faults: rampart_world::TokenFaults,
    /// Key material the world created, by kid (the sim knows every secret).
    keys: Vec<(String, [u8; 32])>,
    /// Keys leaked so far, with the instant of the leak.
    leaked: Vec<(String, Instant)>,
    rotations: u32,
    forged: u64,
}

impl Control {
    /// The state at time zero. `first_secret` is the token service's first
    /// Ed25519 secret (kid `k1`); `sources` are the attackers' sources, in
    /// replay-then-leak order.
    pub(crate) fn new(
        cfg: &WorldConfig,
        first_secret: [u8; 32],
        first_hash: [u8; 32],
        attack_sources: &[u16],
        class_base: u16,
        sources: &mut [Source],
    ) -> Control {
        let mut attackers = Vec::new();
        let c = &cfg.control;
        let kinds = (0..c.token_replays.len())
            .map(|i| (AttackKind::Replay(i as u16), c.token_replays[i].at))
            .chain((0..c.key_leaks.len()).map(|i| (AttackKind::Leak(i as u16), c.key_leaks[i].at)));
        for (k, ((kind, at), &source)) in kinds.zip(attack_sources).enumerate() {
            sources[source as usize].class = class_base + k as u16;
            attackers.push(Attacker {
                kind,
                source,
                start: Instant::ZERO + at,
                first_block: None,
                exposure_max: None,
                kid: None,
                rotated_at: None,
                instances: BTreeSet::new(),
            });
        }
        let keys = match cfg.token_service.algorithm {
            SigningAlgorithm::EdDsa => vec![("k1".to_owned(), first_secret)],
            SigningAlgorithm::Hs256 => Vec::new(),
        };
        Control {
            desired: 0,
            desired_hash: first_hash,
            rollout_at: None,
            converge: None,
            stale_ns: 0,
            stale_boot_probability: 0.0,
            rng: actor_rng(cfg.run.seed, "control"),
            pending_reload: BTreeSet::new(),
            replacing: Vec::new(),
            zero_trust: c.admission.zero_trust,
            truth: Truth::default(),
            revoked_by_instance: Vec::new(),
            exposure_max: None,
            attackers,
            faults: rampart_world::TokenFaults::new(&cfg.fault, cfg.run.seed),
            keys,
            leaked: Vec::new(),
            rotations: 0,
            forged: 0,
        }
    }

    /// The events to schedule before the run.
    pub(crate) fn initial_events(cfg: &WorldConfig, out: &mut Vec<(Instant, Msg)>) {
        let c = &cfg.control;
        let ev = |at: Duration, e: ControlEvent| (Instant::ZERO + at, Msg::Control(e));
        for (i, r) in c.rollouts.iter().enumerate() {
            out.push(ev(r.at, ControlEvent::Rollout(i as u16)));
            out.push(ev(
                r.at + r.launch_template_lag,
                ControlEvent::TemplateUpdate(i as u16),
            ));
        }
        if let Some(d) = &c.drift_detector {
            out.push(ev(d.interval, ControlEvent::DriftCheck));
        }
        for (i, r) in c.revocations.iter().enumerate() {
            out.push(ev(r.at, ControlEvent::Revoke(i as u16)));
        }
        for (i, r) in c.token_replays.iter().enumerate() {
            out.push(ev(r.at, ControlEvent::Steal(i as u16)));
            if let Some(d) = r.revoke_after {
                out.push(ev(r.at + d, ControlEvent::ReplayRevoke(i as u16)));
            }
        }
        for (i, k) in c.key_leaks.iter().enumerate() {
            out.push(ev(k.at, ControlEvent::Leak(i as u16)));
            if let Some(r) = k.rotate_at {
                out.push(ev(r, ControlEvent::Rotate(i as u16)));
            }
        }
    }

    /// The Unix time instance `inst`'s verifier reads when the truth is
    /// `unix`: skewed while a clock-skew fault holds it.
    #[inline]
    pub(crate) fn verifier_clock(&self, inst: u32, now: Instant, unix: Instant) -> Instant {
        self.faults.verifier_clock(inst, now, unix)
    }

    /// Whether the token service is down at `now`.
    #[inline]
    pub(crate) fn token_service_down(&self, now: Instant) -> bool {
        self.faults.token_service_down(now)
    }

    /// Whether instance `inst` can reach the revocation feed and the JWKS.
    #[inline]
    pub(crate) fn feed_reachable(&self, inst: u32, now: Instant) -> bool {
        !self.token_service_down(now) && !self.faults.partitioned(inst, now)
    }

    /// Whether zero-trust admission lets the LB route to an instance that
    /// attests a policy with this content hash.
    #[inline]
    pub(crate) fn admits(&self, policy_hash: &[u8; 32]) -> bool {
        !self.zero_trust || *policy_hash == self.desired_hash
    }

    fn attacker_of(&self, source: u16) -> Option<usize> {
        self.attackers.iter().position(|a| a.source == source)
    }

    /// Whether any clock-skew fault has held `inst` by `now`: its verifier
    /// may have pruned or skipped revocations on a clock that has since
    /// moved back, so the version invariant cannot be judged for it.
    pub(crate) fn ever_skewed(&self, inst: u32, now: Instant) -> bool {
        self.faults.ever_skewed(inst, now)
    }
}

impl World {
    /// Handles a control-plane or token-security event.
    pub(crate) fn control_event(&mut self, ctx: &mut Ctx<'_, World>, ev: ControlEvent) {
        let now = ctx.now();
        match ev {
            ControlEvent::Rollout(i) => {
                self.control.desired = i as usize + 1;
                self.control.desired_hash = self.policies[i as usize + 1].hash;
                self.control.rollout_at = Some(now);
                self.control.converge = None;
                self.routable_dirty = true;
                self.check_converged(now);
            }
            ControlEvent::TemplateUpdate(i) => {
                let idx = i as usize + 1;
                if self.current_policy < idx {
                    self.current_policy = idx;
                    self.control.stale_boot_probability =
                        self.cfg.control.rollouts[i as usize].stale_boot_probability;
                }
            }
            ControlEvent::DriftCheck => self.drift_check(ctx),
            ControlEvent::Reload { instance } => self.reload(ctx, instance),
            ControlEvent::Revoke(i) => {
                let target = self.cfg.control.revocations[i as usize].target.clone();
                let unix = self.unix(now);
                match target {
                    RevocationTargetConfig::User { traffic, account } => {
                        let subject = self.account_of(&traffic, account).subject.clone();
                        self.tokens.revoke_subject(unix, &subject);
                    }
                    RevocationTargetConfig::Session { traffic, account } => {
                        let sid = self.account_of(&traffic, account).sid.clone();
                        if !sid.is_empty() {
                            self.tokens.revoke_session(unix, &sid);
                        }
                    }
                    RevocationTargetConfig::Subject { subject } => {
                        self.tokens.revoke_subject(unix, &subject);
                    }
                }
                let id = self.meter.control.admin_revocations;
                self.meter.count(now, id, 1);
                self.push_revocations(ctx);
            }
            ControlEvent::Steal(i) => {
                let r = &self.cfg.control.token_replays[i as usize];
                let token = self
                    .account_of(&r.victim.traffic, r.victim.account)
                    .access
                    .clone();
                let a = self
                    .control
                    .attackers
                    .iter()
                    .find(|a| a.kind == AttackKind::Replay(i))
                    .expect("one attacker per replay");
                let src = &mut self.sources[a.source as usize];
                for acc in 0..r.ips {
                    let acc = src.account_mut(acc);
                    acc.access = token.clone();
                    acc.access_exp = Instant::MAX;
                }
            }
            ControlEvent::ReplayRevoke(i) => {
                let r = &self.cfg.control.token_replays[i as usize];
                let subject = self
                    .account_of(&r.victim.traffic, r.victim.account)
                    .subject
                    .clone();
                let unix = self.unix(now);
                self.tokens.revoke_subject(unix, &subject);
                self.push_revocations(ctx);
            }
            ControlEvent::Leak(i) => {
                let unix = self.unix(now);
                let kid = self.tokens.signing_kid(unix).map(str::to_owned);
                if let Some(kid) = kid {
                    self.control.leaked.push((kid.clone(), now));
                    if let Some(a) = self
                        .control
                        .attackers
                        .iter_mut()
                        .find(|a| a.kind == AttackKind::Leak(i))
                    {
                        a.kid = Some(kid);
                    }
                }
            }
            ControlEvent::Rotate(i) => self.rotate(ctx, i),
            ControlEvent::JwksPush { instance } => {
                let unix = self.unix(now);
                let g = &mut self.instances[instance as usize];
                if g.life.state().is_live() && self.control.feed_reachable(instance, now) {
                    let jwks = self.tokens.jwks_json(unix);
                    g.cores
                        .verifier
                        .on_jwks(&jwks)
                        .expect("the service's own JWKS is valid");
                }
            }
        }
    }

    fn account_of(&self, traffic: &str, account: u32) -> &crate::sources::Account {
        let src = self
            .sources
            .iter()
            .find(|s| s.spec.name == traffic && !s.token_only)
            .expect("validation checked the traffic name");
        src.account(account)
    }

    /// Whether the scenario has leaked signing key `kid` by `now`. A forged
    /// token may be accepted only then.
    pub(crate) fn key_leaked(&self, kid: &str, now: Instant) -> bool {
        self.control
            .leaked
            .iter()
            .any(|(k, at)| k == kid && *at <= now)
    }

    /// The emergency rotation of key leak `i`'s key; verifiers learn of it
    /// through the JWKS (pushed in push mode, at their next fetch in poll
    /// mode).
    fn rotate(&mut self, ctx: &mut Ctx<'_, World>, i: u16) {
        let now = ctx.now();
        let unix = self.unix(now);
        let Some(kid) = self
            .control
            .attackers
            .iter()
            .find(|a| a.kind == AttackKind::Leak(i))
            .and_then(|a| a.kid.clone())
        else {
            return;
        };
        self.control.rotations += 1;
        let new_kid = format!("r{}", self.control.rotations);
        let mut krng = actor_rng(self.cfg.run.seed, &format!("token_service/{new_kid}"));
        let mut secret = [0u8; 32];
        rand::RngExt::fill(&mut krng, &mut secret[..]);
        let material = KeyMaterial::Ed25519 {
            kid: new_kid.clone(),
            secret,
        };
        // An earlier rotation may have withdrawn the key already.
        if self
            .tokens
            .rotate_compromised(unix, &kid, &material)
            .is_err()
        {
            return;
        }
        self.control.keys.push((new_kid, secret));
        for a in &mut self.control.attackers {
            if a.kid.as_deref() == Some(&kid) {
                a.rotated_at = Some(now);
            }
        }
        if let RevocationSync::Push { median, sigma } = self.cfg.token_service.revocation_sync {
            for g in &self.instances {
                if g.life.state().is_live() {
                    let d = rng::lognormal(&mut self.control.rng, median, sigma);
                    ctx.send_self(d, Msg::Control(ControlEvent::JwksPush { instance: g.id }));
                }
            }
        }
    }

    /// Before an attacker's request leaves: a key-leak attacker forges a
    /// fresh token for this address when it holds none or it is expiring.
    pub(crate) fn arm_attacker(&mut self, source: u16, account: u32, now: Instant) {
        let Some(k) = self.control.attacker_of(source) else {
            return;
        };
        let a = &self.control.attackers[k];
        let (AttackKind::Leak(i), Some(kid)) = (a.kind, a.kid.as_deref()) else {
            return;
        };
        let unix = self.unix(now);
        let src = &self.sources[source as usize];
        let acc = src.account(account);
        if acc.access.is_some() && unix + FORGE_MARGIN < acc.access_exp {
            return;
        }
        let Some((_, secret)) = self.control.keys.iter().find(|(k, _)| k == kid) else {
            return;
        };
        let leak = &self.cfg.control.key_leaks[i as usize];
        let subject = match &leak.subject {
            Some(s) => s.clone(),
            None => self.account_of(&leak.traffic, 0).subject.clone(),
        };
        self.control.forged += 1;
        let n = self.control.forged;
        let iat = unix_secs(unix);
        let ttl = self.cfg.token_service.access_ttl;
        let claims = Claims {
            iss: self.cfg.policy.auth.issuer.clone(),
            sub: subject,
            aud: vec![self.cfg.policy.auth.audience.clone()],
            iat,
            nbf: iat,
            exp: iat + ttl.as_secs().max(1),
            jti: format!("forged-{}-{n}", leak.name),
            sid: format!("forged-{}-{n}", leak.name),
            scope: "api".into(),
        };
        let material = KeyMaterial::Ed25519 {
            kid: kid.to_owned(),
            secret: *secret,
        };
        let token = sign_claims(&material, TYP_ACCESS, &claims).expect("a kid we issued is valid");
        let acc = self.sources[source as usize].account_mut(account);
        acc.access = Some(token.into());
        acc.access_exp = unix + ttl;
    }

    /// The policy index a newly launched instance boots with: the launch
    /// template's, or under a drift fault sometimes the one before it.
    pub(crate) fn boot_policy_index(&mut self) -> usize {
        let idx = self.current_policy;
        let p = self.control.stale_boot_probability;
        if p > 0.0 && idx > 0 && rng::bernoulli(&mut self.control.rng, p) {
            idx - 1
        } else {
            idx
        }
    }

    /// After a gateway decided on a request: ground truth for accepted
    /// tokens, the safety invariants, stale-policy and attacker metrics.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_verdict(
        &mut self,
        ctx: &mut Ctx<'_, World>,
        inst: u32,
        class: u16,
        source: u16,
        verdict: Option<&Verdict>,
        rejected: Option<u16>,
    ) {
        let now = ctx.now();
        let ids = &self.meter.control;
        let (stale_requests, accepted_stale, revoked_accepted) =
            (ids.stale_requests, ids.accepted_stale, ids.revoked_accepted);
        let g = &self.instances[inst as usize];
        if g.policy.hash != self.policies[self.control.desired].hash {
            self.meter.count(now, stale_requests, 1);
        }
        let attacker = if class == 0 {
            None
        } else {
            self.control.attacker_of(source)
        };
        if let Some(v) = verdict
            && let Ok(p) = &v.outcome
        {
            if v.revocation_feed_stale {
                self.meter.count(now, accepted_stale, 1);
            }
            if let Some(m) = self.control.truth.lookup(p) {
                let lag = now.saturating_since(m.at);
                self.meter.count(now, revoked_accepted, 1);
                for k in 0..self.meter.control.revoked_after.len() {
                    let (d, id) = self.meter.control.revoked_after[k];
                    if lag > d {
                        self.meter.count(now, id, 1);
                    }
                }
                let c = &mut self.control;
                c.exposure_max = Some(c.exposure_max.map_or(lag, |x| x.max(lag)));
                let i = inst as usize;
                if c.revoked_by_instance.len() <= i {
                    c.revoked_by_instance.resize(i + 1, 0);
                }
                c.revoked_by_instance[i] += 1;
                if let Some(k) = attacker
                    && let AttackKind::Replay(_) = c.attackers[k].kind
                {
                    let a = &mut c.attackers[k];
                    a.exposure_max = Some(a.exposure_max.map_or(lag, |x| x.max(lag)));
                    a.instances.insert(inst);
                    let id = self.meter.control.attackers[k].accepted;
                    self.meter.count(now, id, 1);
                }
                let applied = self.instances[inst as usize]
                    .cores
                    .verifier
                    .revocation_version();
                if m.version <= applied && !self.control.ever_skewed(inst, now) {
                    let msg = format!(
                        "instance {inst} has applied revocation version {applied} but accepted a token revoked at version {} (subject {:?}, session {:?})",
                        m.version,
                        p.subject(),
                        p.session_id()
                    );
                    self.violated(ctx, msg);
                    return;
                }
            }
            if let Some(k) = attacker
                && let AttackKind::Leak(_) = self.control.attackers[k].kind
            {
                if !self.key_leaked(p.kid(), now) {
                    let msg = format!(
                        "instance {inst} accepted a forged token signed with key {:?}, which the scenario never leaked",
                        p.kid()
                    );
                    self.violated(ctx, msg);
                    return;
                }
                let ids = &self.meter.control.attackers[k];
                let (acc, late) = (ids.accepted, ids.accepted_after_rotation);
                self.meter.count(now, acc, 1);
                if self.control.attackers[k]
                    .rotated_at
                    .is_some_and(|r| r <= now)
                    && let Some(late) = late
                {
                    self.meter.count(now, late, 1);
                }
            }
        }
        if let (Some(k), Some(why)) = (attacker, rejected) {
            let security = why >= reason::AUTH_BASE
                || matches!(
                    why,
                    reason::RATE_LIMITED | reason::INSPECTION_BLOCKED | reason::ABUSE_BLOCKED
                );
            let a = &mut self.control.attackers[k];
            if security && a.first_block.is_none() {
                a.first_block = Some(now.saturating_since(a.start));
            }
        }
    }

    /// Mirrors new entries of the token service's revocation log into the
    /// ground truth, stamped with the virtual instant they appeared.
    pub(crate) fn sync_truth(&mut self, now: Instant) {
        let v = self.tokens.revocation_log().version();
        if v == self.control.truth.version {
            return;
        }
        let delta = self.tokens.revocations_since(self.control.truth.version);
        let mut overflow = 0;
        for r in &delta.entries {
            if !self.control.truth.insert(r, now) {
                overflow += 1;
            }
        }
        self.control.truth.version = v;
        if overflow > 0 {
            let id = self.meter.control.truth_overflow;
            self.meter.count(now, id, overflow);
        }
    }

    /// The drift detector: every instance that reports a policy hash other
    /// than the control plane's is remediated.
    fn drift_check(&mut self, ctx: &mut Ctx<'_, World>) {
        let now = ctx.now();
        let Some(d) = self.cfg.control.drift_detector.clone() else {
            return;
        };
        let want = self.policies[self.control.desired].hash;
        let lc = self.cfg.scaling.lifecycle.clone();
        let mut out = Vec::new();
        // Replacements that are serving now retire the instance they replace.
        let mut still = Vec::new();
        for (new, old) in std::mem::take(&mut self.control.replacing) {
            match self.instances[new as usize].life.state() {
                InstanceState::InService => {
                    self.routable_dirty = true;
                    let g = &mut self.instances[old as usize];
                    if g.life.state() == InstanceState::InService {
                        match g.life.begin_drain(now) {
                            Ok(_) => {
                                if let Some(at) = g.life.next_transition_at(&lc) {
                                    out.push((at, Msg::Lifecycle { instance: old }));
                                }
                            }
                            Err(source) => {
                                let e = FleetError::Drain {
                                    instance: old,
                                    source,
                                };
                                self.violated(ctx, e.to_string());
                                return;
                            }
                        }
                    }
                }
                s if s.is_live() => still.push((new, old)),
                // The replacement failed to boot: the next check tries again.
                _ => {}
            }
        }
        self.control.replacing = still;
        let stale: Vec<u32> = self
            .instances
            .iter()
            .filter(|g| {
                matches!(
                    g.life.state(),
                    InstanceState::InService | InstanceState::WarmingUp
                ) && g.policy.hash != want
            })
            .map(|g| g.id)
            .collect();
        for id in stale {
            match d.remediation {
                Remediation::HotReload => {
                    if self.control.pending_reload.insert(id) {
                        ctx.send_self(
                            d.reload_delay,
                            Msg::Control(ControlEvent::Reload { instance: id }),
                        );
                    }
                }
                Remediation::Replace => {
                    let busy = self.control.replacing.iter().any(|&(_, o)| o == id);
                    if busy || self.instances[id as usize].life.state() != InstanceState::InService
                    {
                        continue;
                    }
                    match self.launch(now, &lc, &mut out) {
                        Ok(new) => {
                            self.control.replacing.push((new, id));
                            let stale = &self.instances[id as usize].policy.bundle.version;
                            self.timeline.push(TimelineEvent::new(
                                now.since_epoch(),
                                TimelineKind::Remediation,
                                format!("#{new} launched to replace #{id} ({stale})"),
                            ));
                            let c = self.meter.control.replacements;
                            self.meter.count(now, c, 1);
                        }
                        Err(e) => {
                            self.violated(ctx, e.to_string());
                            return;
                        }
                    }
                }
            }
        }
        Self::schedule_all(ctx, out);
        ctx.send_self(d.interval, Msg::Control(ControlEvent::DriftCheck));
    }

    /// A hot reload takes effect: the instance runs the control plane's
    /// current bundle from now on.
    fn reload(&mut self, ctx: &mut Ctx<'_, World>, inst: u32) {
        let now = ctx.now();
        self.control.pending_reload.remove(&inst);
        let policy = self.policies[self.control.desired].clone();
        let g = &mut self.instances[inst as usize];
        let label = format!(
            "#{inst} reloaded {} -> {}",
            g.policy.bundle.version, policy.bundle.version
        );
        if !matches!(
            g.life.state(),
            InstanceState::InService | InstanceState::WarmingUp
        ) || g.policy.hash == policy.hash
        {
            return;
        }
        match g.reload(policy) {
            Ok(true) => self.load_verifier(inst, now),
            Ok(false) => {}
            Err(e) => {
                self.violated(ctx, format!("instance {inst}: reload failed: {e}"));
                return;
            }
        }
        self.routable_dirty = true;
        self.timeline.push(TimelineEvent::new(
            now.since_epoch(),
            TimelineKind::Remediation,
            label,
        ));
        let id = self.meter.control.reloads;
        self.meter.count(now, id, 1);
        self.check_converged(now);
    }

    /// Loads keys and revocations into a (re)built verifier, if the feed is
    /// reachable; otherwise its own polls will.
    pub(crate) fn load_verifier(&mut self, inst: u32, now: Instant) {
        let unix = self.unix(now);
        let vunix = self.control.verifier_clock(inst, now, unix);
        let reachable = self.control.feed_reachable(inst, now);
        let g = &mut self.instances[inst as usize];
        if let Some((kid, secret)) = &self.shared_secret {
            g.cores
                .verifier
                .add_shared_key(kid, secret)
                .expect("the service's own HS256 key is valid");
        } else if reachable {
            g.cores
                .verifier
                .on_jwks(&self.tokens.jwks_json(unix))
                .expect("the service's own JWKS is valid");
        }
        if reachable {
            g.cores
                .verifier
                .apply_revocations(vunix, &self.tokens.revocations_since(0))
                .expect("a delta from version 0 has no gap");
        }
    }

    fn check_converged(&mut self, now: Instant) {
        let Some(at) = self.control.rollout_at else {
            return;
        };
        if self.control.converge.is_some() {
            return;
        }
        let want = self.policies[self.control.desired].hash;
        let all = self
            .instances
            .iter()
            .filter(|g| g.life.state() == InstanceState::InService)
            .all(|g| g.policy.hash == want);
        if all {
            self.control.converge = Some(now.saturating_since(at));
        }
    }

    /// At each metrics boundary: stale-policy time, convergence, gauges,
    /// and pruning of the ground truth.
    pub(crate) fn control_sample(&mut self, t: Instant, interval: Duration) {
        let unix = self.unix(t);
        self.control.truth.prune(unix);
        let want = self.policies[self.control.desired].hash;
        let stale = self
            .instances
            .iter()
            .filter(|g| g.life.state() == InstanceState::InService && g.policy.hash != want)
            .count();
        self.control.stale_ns += stale as u128 * u128::from(interval.as_nanos());
        self.check_converged(t);
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_nanos() as f64 / 1e6);
        let c = &self.control;
        let ids = &self.meter.control;
        let mut sets: Vec<(GaugeId, f64)> = vec![
            (ids.stale_instances, stale as f64),
            (ids.stale_instance_seconds, c.stale_ns as f64 / 1e9),
            (ids.stale_converge_ms, ms(c.converge)),
            (ids.exposure_max_ms, ms(c.exposure_max)),
            (
                ids.revoked_instances,
                c.revoked_by_instance.iter().filter(|&&n| n > 0).count() as f64,
            ),
            (
                ids.revoked_instance_max,
                c.revoked_by_instance.iter().copied().max().unwrap_or(0) as f64,
            ),
        ];
        for (a, ai) in c.attackers.iter().zip(&ids.attackers) {
            sets.push((ai.first_block_ms, ms(a.first_block)));
            if let Some(g) = ai.exposure_max_ms {
                sets.push((g, ms(a.exposure_max)));
            }
            if let Some(g) = ai.instances {
                sets.push((g, a.instances.len() as f64));
            }
        }
        for (g, v) in sets {
            self.meter.set_gauge(g, v);
        }
    }

    /// Revoked tokens accepted per instance, for instances that accepted any.
    pub(crate) fn revoked_accepted_by_instance(&self) -> Vec<(u32, u64)> {
        self.control
            .revoked_by_instance
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (i as u32, *n))
            .collect()
    }
}
