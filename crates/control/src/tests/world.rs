//! A fleet for the control plane's tests, the same under madsim and tokio.
//!
//! A token service (the real `rampart-auth` core) issues and revokes tokens
//! and rotates its key; a [`PlaneServer`] pushes its state and a policy
//! rollout to gateways, each a real [`Verifier`] behind an agent. A
//! supervisor plays a balancer and clients: every few milliseconds it picks
//! a routable instance, presents a token, and checks the verdict against an
//! oracle of what the token service has revoked and published. A [`Script`]
//! drawn from the seed says when faults strike; a [`Cluster`] applies them
//! (madsim's node kills and network clogs, or on tokio a relay and task
//! aborts). Invariants checked:
//!
//! 1. no instance accepts a token revoked at or before the revocation
//!    version it holds, nor one revoked longer than a lease ago;
//! 2. after the faults heal, every live instance holds the latest
//!    revocation version and JWKS within [`World::convergence_bound`];
//! 3. after a rollout's grace every instance served is on the desired
//!    policy, and at the end every live instance is on it or not routable;
//! 4. no instance serves without a policy, or under one whose text does
//!    not hash to what it attests;
//! 5. no instance rejects a token for its key while the key is published.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rampart_auth::{
    KeyMaterial, Rejection, RevokeOutcome, ServiceConfig, TokenService, Verifier, VerifierConfig,
};
use rampart_rng::{ActorRng, actor_rng, bernoulli, uniform_u64};
use rampart_time::{Duration, Instant};

use crate::agent::{AgentConfig, Host};
use crate::plane::{PlaneConfig, PlaneServer, Source};
use crate::policy::{PolicyBundle, PolicyHash};
use crate::proto::{Attestation, Status, ToAgent};

/// Unix time at the start of every run: tokens carry real-looking times.
const EPOCH: Instant = Instant::from_nanos(1_800_000_000 * 1_000_000_000);

/// The largest link latency a script sets.
pub(crate) const LATENCY_MAX: Duration = Duration::from_millis(40);

/// The verifiers' allowance on `exp` and `nbf`.
const VERIFIER_LEEWAY: Duration = Duration::from_secs(2);

/// The largest clock skew of an instance, either way.
const SKEW_MAX_MS: u64 = 1_500;

/// Which faults a script draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Partitions, one-way clogs, latency and loss on gateway links.
    Partitions,
    /// Gateway kills and restarts (from a possibly stale launch template)
    /// and plane restarts.
    Kills,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    Kill(u32),
    Restart(u32),
    Partition(u32),
    /// Plane to gateway only: the gateway's reports still arrive.
    ClogToGateway(u32),
    Heal(u32),
    KillPlane,
    RestartPlane,
    Latency(Duration),
    Loss(f64),
}

/// One run's plan, a function of the seed only.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub gateways: u32,
    /// Per gateway, its token clock's offset from the plane's (ms).
    pub skews_ms: Vec<i64>,
    /// Sorted by time (ms from the start).
    pub faults: Vec<(u64, Fault)>,
    pub rollout_ms: u64,
    /// A second before the rollout, a bundle whose text does not match its
    /// hash is published (no instance may load it).
    pub damaged_first: bool,
    /// An instance that cannot load the rollout's bundle.
    pub refuses_rollout: Option<u32>,
    /// Whether restarts boot from the first policy (the launch template
    /// was not updated by the rollout).
    pub stale_template: bool,
    pub rotation_ms: u64,
    /// Every fault is over by here; revocations stop.
    pub heal_ms: u64,
}

impl Script {
    pub(crate) fn draw(kind: Kind, seed: u64) -> Script {
        let mut rng = actor_rng(seed, "script");
        let gateways = uniform_u64(&mut rng, 3, 6) as u32;
        // Within the verifiers' leeway: the token service prunes a
        // revocation once its tokens are expired by that much, so a clock
        // lagging by more would take a pruned, revoked token for live.
        let skews_ms = (0..gateways)
            .map(|_| uniform_u64(&mut rng, 0, 2 * SKEW_MAX_MS + 1) as i64 - SKEW_MAX_MS as i64)
            .collect();
        let heal_ms = 16_000;
        let mut faults = Vec::new();
        let mut episode = |rng: &mut ActorRng, start: Fault, end: Fault, max_ms: u64| {
            let at = uniform_u64(rng, 500, heal_ms - 200);
            let until = (at + uniform_u64(rng, 100, max_ms)).min(heal_ms);
            faults.push((at, start));
            faults.push((until, end));
        };
        for g in 0..gateways {
            for _ in 0..uniform_u64(&mut rng, 0, 3) {
                match kind {
                    Kind::Partitions => {
                        let start = if bernoulli(&mut rng, 0.5) {
                            Fault::Partition(g)
                        } else {
                            Fault::ClogToGateway(g)
                        };
                        episode(&mut rng, start, Fault::Heal(g), 6_000);
                    }
                    Kind::Kills => episode(&mut rng, Fault::Kill(g), Fault::Restart(g), 4_000),
                }
            }
        }
        match kind {
            Kind::Partitions => {
                for _ in 0..uniform_u64(&mut rng, 0, 3) {
                    let max = Duration::from_millis(uniform_u64(
                        &mut rng,
                        2,
                        LATENCY_MAX.as_millis() + 1,
                    ));
                    episode(
                        &mut rng,
                        Fault::Latency(max),
                        Fault::Latency(Duration::from_millis(10)),
                        5_000,
                    );
                }
                if bernoulli(&mut rng, 0.5) {
                    let rate = uniform_u64(&mut rng, 1, 21) as f64 / 100.0;
                    episode(&mut rng, Fault::Loss(rate), Fault::Loss(0.0), 8_000);
                }
            }
            Kind::Kills => {
                if bernoulli(&mut rng, 0.4) {
                    episode(&mut rng, Fault::KillPlane, Fault::RestartPlane, 3_000);
                }
            }
        }
        // Episodes overlap; sorting by time keeps each one's start before
        // its end (ties keep insertion order).
        faults.sort_by_key(|(at, _)| *at);
        Script {
            gateways,
            skews_ms,
            faults,
            rollout_ms: uniform_u64(&mut rng, 2_000, 12_000),
            damaged_first: bernoulli(&mut rng, 0.3),
            refuses_rollout: bernoulli(&mut rng, 0.2)
                .then(|| uniform_u64(&mut rng, 0, u64::from(gateways)) as u32),
            stale_template: bernoulli(&mut rng, 0.5),
            rotation_ms: uniform_u64(&mut rng, 1_000, 12_000),
            heal_ms,
        }
    }
}

/// What a run applies faults through.
pub(crate) trait Cluster {
    fn apply(&self, fault: Fault);
}

/// The token service, as the plane reads it.
pub(crate) struct TokenSource {
    service: Mutex<TokenService>,
    start: tokio::time::Instant,
}

impl TokenSource {
    fn service(&self) -> MutexGuard<'_, TokenService> {
        self.service.lock().unwrap()
    }
}

/// The plane's clock (and the token service's): Unix-like, unskewed.
fn clock(start: tokio::time::Instant, skew_ms: i64) -> Instant {
    let at = EPOCH + Duration::from(tokio::time::Instant::now().saturating_duration_since(start));
    if skew_ms >= 0 {
        at + Duration::from_millis(skew_ms as u64)
    } else {
        at - Duration::from_millis(skew_ms.unsigned_abs())
    }
}

impl Source for TokenSource {
    fn now(&self) -> Instant {
        clock(self.start, 0)
    }
    fn revocation_version(&self) -> u64 {
        self.service().revocation_log().version()
    }
    fn revocations_since(&self, version: u64) -> rampart_auth::RevocationDelta {
        self.service().revocations_since(version)
    }
    fn jwks(&self) -> String {
        let now = self.now();
        self.service().jwks_json(now)
    }
}

/// The first policy, and the rollout's.
fn policy(version: u64, refused_by: Option<u32>) -> PolicyBundle {
    let refuse = refused_by.map_or(String::new(), |g| format!("unsupported_on = \"gw-{g}\"\n"));
    PolicyBundle::new(
        version,
        format!(
            "version = {version}\n{refuse}[rate_limit]\nper_ip = {}\n",
            100 * version
        ),
    )
}

struct GwState {
    verifier: Verifier,
    jwks_version: u64,
    /// The text in use, and the attestation recorded when it was loaded.
    policy: Option<String>,
    attested: Option<Attestation>,
    lease_until: Option<tokio::time::Instant>,
}

/// One gateway instance: the agent's host and the balancer's target.
pub(crate) struct Gw {
    index: u32,
    start: tokio::time::Instant,
    skew_ms: i64,
    lease: Duration,
    state: Mutex<GwState>,
}

/// What an instance answered.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Fenced, or not yet synced: the balancer tries elsewhere.
    NotReady,
    Served {
        outcome: Result<(), Rejection>,
        revocation_version: u64,
        /// The hash of the text in use, and what the instance attests.
        in_use: PolicyHash,
        attested: PolicyHash,
    },
}

impl Gw {
    fn state(&self) -> MutexGuard<'_, GwState> {
        self.state.lock().unwrap()
    }

    fn now(&self) -> Instant {
        clock(self.start, self.skew_ms)
    }

    pub(crate) fn serve(&self, token: &str) -> Answer {
        let now = self.now();
        let mut s = self.state();
        let leased = s
            .lease_until
            .is_some_and(|until| tokio::time::Instant::now() <= until);
        let (Some(text), Some(attested)) = (&s.policy, s.attested) else {
            return Answer::NotReady;
        };
        if !leased || s.jwks_version == 0 {
            return Answer::NotReady;
        }
        let in_use = PolicyHash::of(text);
        let verdict = s.verifier.verify(now, token);
        Answer::Served {
            outcome: verdict.outcome.map(|_| ()),
            revocation_version: s.verifier.revocation_version(),
            in_use,
            attested: attested.hash,
        }
    }

    pub(crate) fn revocation_version(&self) -> u64 {
        self.state().verifier.revocation_version()
    }
}

impl Host for Gw {
    fn status(&self) -> Status {
        let s = self.state();
        Status {
            revocation_version: s.verifier.revocation_version(),
            jwks_version: s.jwks_version,
            policy: s.attested,
        }
    }

    fn apply(&self, msg: &ToAgent) -> Result<(), String> {
        let now = self.now();
        let mut s = self.state();
        match msg {
            ToAgent::Revocations(delta) => s
                .verifier
                .apply_revocations(now, delta)
                .map_err(|e| e.to_string()),
            ToAgent::Jwks { version, json } => {
                s.verifier.on_jwks(json).map_err(|e| e.to_string())?;
                s.jwks_version = *version;
                Ok(())
            }
            ToAgent::Policy(bundle) => {
                // A bundle this instance cannot load is kept out, and the
                // old one stays in use; the plane sees the drift in its
                // attestation.
                let unsupported = format!("unsupported_on = \"gw-{}\"", self.index);
                if bundle.is_intact() && !bundle.text.contains(&unsupported) {
                    s.policy = Some(bundle.text.clone());
                    s.attested = Some(Attestation {
                        version: bundle.version,
                        hash: bundle.hash,
                    });
                }
                Ok(())
            }
            ToAgent::Heartbeat { .. } => Ok(()),
        }
    }

    fn renewed(&self, sent_ago: Duration) {
        let at = tokio::time::Instant::now() - crate::plane::std_duration(sent_ago)
            + crate::plane::std_duration(self.lease);
        let mut s = self.state();
        s.lease_until = Some(s.lease_until.map_or(at, |u| u.max(at)));
    }
}

#[derive(Clone, Debug)]
struct Tok {
    access: String,
    jti: String,
    sid: String,
    kid: String,
    exp_s: u64,
}

/// A run's findings.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub violations: Vec<String>,
    pub served: u64,
    pub not_ready: u64,
    pub no_route: u64,
    pub revocations: u64,
    /// FNV-1a over every verdict, for comparing runs.
    pub trace: u64,
}

/// The fleet and its oracle.
pub(crate) struct World {
    pub script: Script,
    pub seed: u64,
    pub plane_config: PlaneConfig,
    pub server: Arc<PlaneServer<TokenSource>>,
    gws: Vec<Mutex<Option<Arc<Gw>>>>,
    incarnations: Mutex<Vec<u64>>,
    template: Mutex<PolicyBundle>,
    start: tokio::time::Instant,
}

impl World {
    pub(crate) fn new(kind: Kind, seed: u64) -> Arc<World> {
        let script = Script::draw(kind, seed);
        let start = tokio::time::Instant::now();
        let plane_config = PlaneConfig::default();
        let lease = plane_config.lease;
        let mut service = TokenService::new(ServiceConfig {
            access_ttl: Duration::from_secs(10),
            // The verifiers' leeway plus their skew: a revocation pruned
            // any sooner can be missed by a lagging verifier that was
            // restarted after the pruning and still takes the token for live.
            verifier_leeway_max: VERIFIER_LEEWAY + Duration::from_millis(SKEW_MAX_MS),
            // Past the lease, plus a heartbeat for the plane to notice the
            // change: any instance still serving by then has the key.
            key_publish_lead: lease + Duration::from_millis(500) + LATENCY_MAX * 2,
            ..ServiceConfig::default()
        });
        service
            .add_key(clock(start, 0), &key(seed, 0))
            .expect("a fresh service takes its first key");
        let source = TokenSource {
            service: Mutex::new(service),
            start,
        };
        let server = PlaneServer::new(plane_config.clone(), source);
        let first = policy(1, None);
        server.publish_policy(first.clone());
        Arc::new(World {
            gws: (0..script.gateways).map(|_| Mutex::new(None)).collect(),
            incarnations: Mutex::new(vec![0; script.gateways as usize]),
            template: Mutex::new(first),
            script,
            seed,
            plane_config,
            server,
            start,
        })
    }

    /// A fresh instance `g`, booted from the launch template, registered
    /// for the balancer; returns it and its agent's configuration.
    pub(crate) fn boot(&self, g: u32, plane: SocketAddr) -> (Arc<Gw>, AgentConfig) {
        let mut incarnations = self.incarnations.lock().unwrap();
        incarnations[g as usize] += 1;
        let template = self.template.lock().unwrap().clone();
        let gw = Arc::new(Gw {
            index: g,
            start: self.start,
            skew_ms: self.script.skews_ms[g as usize],
            lease: self.plane_config.lease,
            state: Mutex::new(GwState {
                verifier: Verifier::new(VerifierConfig {
                    leeway: VERIFIER_LEEWAY,
                    ..VerifierConfig::default()
                }),
                jwks_version: 0,
                attested: Some(Attestation {
                    version: template.version,
                    hash: template.hash,
                }),
                policy: Some(template.text),
                lease_until: None,
            }),
        });
        *self.gws[g as usize].lock().unwrap() = Some(Arc::clone(&gw));
        let config = AgentConfig {
            heartbeat: self.plane_config.heartbeat,
            idle_timeout: self.plane_config.idle_timeout,
            ..AgentConfig::new(plane, g, incarnations[g as usize])
        };
        (gw, config)
    }

    /// Marks `g` dead for the balancer (its node was killed).
    pub(crate) fn down(&self, g: u32) {
        *self.gws[g as usize].lock().unwrap() = None;
    }

    fn gw(&self, g: u32) -> Option<Arc<Gw>> {
        self.gws[g as usize].lock().unwrap().clone()
    }

    /// How long after the last fault heals every live instance holds the
    /// plane's latest state: the silence that ends a dead session, the
    /// longest reconnect backoff, a connect and the resync's delivery.
    pub(crate) fn convergence_bound(&self) -> Duration {
        let c = &self.plane_config;
        let agent = AgentConfig::new(([0, 0, 0, 0], 0).into(), 0, 0);
        c.idle_timeout + agent.backoff_max * 3 / 2 + c.heartbeat + LATENCY_MAX * 4
    }

    fn ms(&self) -> u64 {
        tokio::time::Instant::now()
            .saturating_duration_since(self.start)
            .as_millis() as u64
    }

    /// Plays the clients, the balancer, the operator and the faults, and
    /// checks every verdict. Returns when the run is over.
    pub(crate) async fn drive(self: Arc<Self>, cluster: &dyn Cluster) -> Outcome {
        let mut rng = actor_rng(self.seed, "clients");
        let mut out = Outcome {
            trace: 0xcbf2_9ce4_8422_2325,
            ..Outcome::default()
        };
        let mut faults = self.script.faults.iter().peekable();
        let mut tokens: Vec<Tok> = Vec::new();
        // What was revoked: (log version, run time in ms).
        let mut revoked: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut rolled_out = false;
        let mut damaged = !self.script.damaged_first;
        let mut published = std::collections::BTreeSet::from([policy(1, None).hash]);
        let mut rotated = false;
        let mut published_at_rollout = None;
        let tick = std::time::Duration::from_millis(20);
        let check_at = self.script.heal_ms + self.convergence_bound().as_millis();
        let mut step = 0u64;
        loop {
            tokio::time::sleep(tick).await;
            step += 1;
            let ms = self.ms();
            while let Some((_, f)) = faults.next_if(|(at, _)| *at <= ms) {
                if let Fault::Kill(g) = f {
                    self.down(*g);
                }
                cluster.apply(*f);
            }
            let now = self.server.source().now();
            if !damaged && ms + 1_000 >= self.script.rollout_ms {
                damaged = true;
                let mut bundle = policy(2, self.script.refuses_rollout);
                bundle.text.push_str("# altered after hashing\n");
                self.server.publish_policy(bundle);
            }
            if !rolled_out && ms >= self.script.rollout_ms {
                rolled_out = true;
                let bundle = policy(3, self.script.refuses_rollout);
                published.insert(bundle.hash);
                if !self.script.stale_template {
                    *self.template.lock().unwrap() = bundle.clone();
                }
                published_at_rollout = Some(now);
                self.server.publish_policy(bundle);
            }
            if !rotated && ms >= self.script.rotation_ms {
                rotated = true;
                self.server
                    .source()
                    .service()
                    .add_key(now, &key(self.seed, 1))
                    .expect("a second kid");
                self.server.poke();
            }
            // The operator: a new session every 100 ms, a revocation every
            // 300 ms until the faults heal.
            if step.is_multiple_of(5) {
                let issued = self.server.source().service().issue(
                    now,
                    &format!("user-{}", uniform_u64(&mut rng, 0, 50)),
                    "api",
                );
                if let Ok(pair) = issued {
                    let c = pair.access_claims;
                    let kid = self
                        .server
                        .source()
                        .service()
                        .signing_kid(now)
                        .unwrap_or_default()
                        .to_owned();
                    tokens.push(Tok {
                        access: pair.access,
                        jti: c.jti,
                        sid: c.sid,
                        kid,
                        exp_s: c.exp,
                    });
                    if tokens.len() > 200 {
                        tokens.remove(0);
                    }
                }
            }
            if step.is_multiple_of(15) && ms < self.script.heal_ms && !tokens.is_empty() {
                let t = tokens[uniform_u64(&mut rng, 0, tokens.len() as u64) as usize].clone();
                let mut svc = self.server.source().service();
                let before = svc.revocation_log().version();
                // Only what enters the log is a revocation to check: a
                // session whose tokens have all expired gets no entry.
                if bernoulli(&mut rng, 0.5) {
                    if let RevokeOutcome::Revoked { version } = svc.revoke_token(now, &t.access)
                        && version > before
                    {
                        revoked.entry(t.jti.clone()).or_insert((version, ms));
                    }
                } else if let Some(version) = svc.revoke_session(now, &t.sid)
                    && version > before
                {
                    revoked.entry(t.sid.clone()).or_insert((version, ms));
                }
                drop(svc);
                out.revocations += 1;
                self.server.poke();
            }
            if step.is_multiple_of(50) {
                self.server.source().service().prune(now);
            }
            // Clients: two requests per tick through the balancer.
            for _ in 0..2 {
                if tokens.is_empty() {
                    break;
                }
                let t = &tokens[uniform_u64(&mut rng, 0, tokens.len() as u64) as usize];
                let plane = self.server.plane();
                let routable = plane.routable(now);
                let desired = plane.desired().map(|b| b.hash);
                let grace_over =
                    published_at_rollout.is_some_and(|at| now >= at + plane.config().rollout_grace);
                drop(plane);
                if routable.is_empty() {
                    out.no_route += 1;
                    continue;
                }
                let g = routable[uniform_u64(&mut rng, 0, routable.len() as u64) as usize];
                let Some(gw) = self.gw(g) else {
                    out.no_route += 1;
                    continue;
                };
                let answer = gw.serve(&t.access);
                let Answer::Served {
                    outcome,
                    revocation_version,
                    in_use,
                    attested,
                } = answer
                else {
                    out.not_ready += 1;
                    continue;
                };
                out.served += 1;
                out.trace = fnv(
                    out.trace,
                    &[u64::from(g), ms, outcome.is_ok() as u64, revocation_version],
                );
                let mut violation = |what: String| {
                    if out.violations.len() < 20 {
                        out.violations.push(format!("at {ms} ms, gw-{g}: {what}"));
                    }
                };
                let revoked_at = [revoked.get(&t.jti), revoked.get(&t.sid)]
                    .into_iter()
                    .flatten()
                    .min()
                    .copied();
                if let Some((v, _)) = revoked_at
                    && outcome.is_ok()
                    && v <= revocation_version
                {
                    violation(format!(
                        "accepted {} (expiring {} s from now) revoked at version {v} while holding version {revocation_version}",
                        t.jti,
                        t.exp_s as i64 - rampart_auth::unix_secs(now) as i64,
                    ));
                }
                // A serving instance's lease runs from a report the plane
                // answered after pushing everything logged before it came
                // in: a revocation older than the lease has reached it.
                if let Some((_, at_ms)) = revoked_at
                    && outcome.is_ok()
                    && at_ms + self.plane_config.lease.as_millis() < ms
                {
                    violation(format!(
                        "accepted {} revoked {} ms ago, past the {} lease",
                        t.jti,
                        ms - at_ms,
                        self.plane_config.lease
                    ));
                }
                if in_use != attested || !published.contains(&in_use) {
                    violation(format!(
                        "serves under {in_use:?}, attests {attested:?}, published {published:?}"
                    ));
                }
                if grace_over && Some(in_use) != desired {
                    violation(format!("serves under {in_use:?} after the rollout's grace"));
                }
                if matches!(
                    outcome,
                    Err(Rejection::UnknownKid | Rejection::BadSignature)
                ) {
                    let jwks = self.server.source().jwks();
                    if jwks.contains(&format!("\"kid\":\"{}\"", t.kid)) {
                        violation(format!(
                            "rejected {} signed by published key {}",
                            t.jti, t.kid
                        ));
                    }
                }
            }
            if ms >= check_at {
                self.check_converged(now, &mut out);
                return out;
            }
        }
    }

    /// Invariant 2, and the end state of invariant 3.
    fn check_converged(&self, now: Instant, out: &mut Outcome) {
        let latest = self.server.source().revocation_version();
        let plane = self.server.plane();
        let desired = plane.desired().map(|b| b.hash);
        for g in 0..self.script.gateways {
            let Some(gw) = self.gw(g) else { continue };
            let held = gw.revocation_version();
            let status = gw.status();
            if held < latest {
                out.violations.push(format!(
                    "gw-{g} holds revocation version {held} of {latest} {} after the heal",
                    self.convergence_bound()
                ));
            }
            if status.jwks_version < plane.jwks_version() {
                out.violations.push(format!(
                    "gw-{g} holds JWKS version {} of {} after the heal",
                    status.jwks_version,
                    plane.jwks_version()
                ));
            }
            let on_desired = status.policy.map(|p| p.hash) == desired;
            if !on_desired && plane.is_routable(now, g) {
                out.violations
                    .push(format!("gw-{g} is routable off the desired policy"));
            }
        }
    }
}

fn key(seed: u64, n: u8) -> KeyMaterial {
    let mut secret = [n; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    KeyMaterial::Ed25519 {
        kid: format!("k{n}"),
        secret,
    }
}

fn fnv(mut h: u64, words: &[u64]) -> u64 {
    for w in words {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
