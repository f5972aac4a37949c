//! A scenario's whole edge on loopback: the token service, the gateways
//! (its initial fleet, then whatever the scaler launches), the balancer in
//! front and the backend behind, each on an ephemeral port of 127.0.0.1.
//!
//! What it takes from the scenario: the policy; the token service's
//! signing algorithm, token lifetimes and feed mode (push or poll); the
//! fleet's initial size, header timeout and balancer; the backend's
//! concurrency, queue, service-time distribution and overload errors; and
//! the routes of every traffic class. Accounts are the simulator's
//! (`CLASS-i`, password `pw-CLASS-i`), the first
//! [`FleetOptions::accounts_per_class_max`] of each class, registered with
//! real argon2id. Everything else in the scenario is the business of the
//! traffic, attack, fault and control drivers, which [`unsupported`] names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use hyper::Uri;
use rampart_auth::{KeyMaterial, PasswordConfig, PasswordMode, ServiceConfig};
use rampart_traffic::Route;
use rampart_world::{LbAlgorithm, RevocationSync, WorldConfig};

use crate::backend::{Backend, BackendConfig, ServiceTime};
use crate::balancer::{Algorithm, Balancer, BalancerConfig};
use crate::clock::{Clock, WallClock};
use crate::gateway::feed::FeedMode;
use crate::gateway::routes::RouteTable;
use crate::gateway::{GatewayConfig, GatewayHandle, Limits};
use crate::token_service::{Account, ServerConfig, TokenServer};

/// How the fleet is started beyond what the scenario says.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Accounts registered per traffic class (argon2id each, so startup
    /// takes about this many hashes per class).
    pub accounts_per_class_max: u32,
    /// Further accounts to register, such as those attackers signed up
    /// for: (subject, password).
    pub extra_accounts: Vec<(String, Vec<u8>)>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            accounts_per_class_max: 20,
            extra_accounts: Vec::new(),
        }
    }
}

/// Why a fleet could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// A server could not bind or start.
    #[error("{what}: {message}")]
    Start {
        /// Which server.
        what: &'static str,
        /// Why.
        message: String,
    },
}

fn start_err(what: &'static str) -> impl Fn(String) -> FleetError {
    move |message| FleetError::Start { what, message }
}

/// The running edge.
#[derive(Debug)]
pub struct LiveFleet {
    /// The token service.
    pub token_service: TokenServer,
    /// The backend stub.
    pub backend: Backend,
    /// The gateways, by instance id.
    pub gateways: Vec<GatewayHandle>,
    /// The balancer in front.
    pub balancer: Balancer,
    /// The accounts registered: (subject, password).
    pub accounts: Vec<(String, String)>,
    /// The clock every gateway reads.
    pub clock: Arc<dyn Clock>,
    /// How a new gateway starts (its id aside).
    template: GatewayConfig,
    /// The launch template's policy.
    policy: rampart_world::PolicyBundle,
    /// A drift fault: the bundle before the template's, and how likely a
    /// launch is to boot it ([`LiveFleet::set_launch_policy`]).
    stale_boot: Option<(rampart_world::PolicyBundle, f64)>,
    /// Draws the stale boots: the simulator's `control` stream.
    boot_rng: rampart_rng::ActorRng,
    /// Launches that booted the previous bundle under the drift fault.
    pub stale_boots: u64,
    /// The control plane the token service hosts, when revocations are
    /// pushed (it carries them, the JWKS and policy rollouts) or there are
    /// rollouts to run (it carries those alone); it attests what each
    /// gateway serves under and reports drift.
    pub plane: Option<Arc<crate::token_service::Plane>>,
    /// The token service's first signing key: what a key leak leaks.
    signing_key: KeyMaterial,
    /// Revocation partitions and clock skews, applied through each
    /// gateway's clock ([`crate::clock::FaultedClock`]); `None` without any.
    token_faults: Option<Arc<rampart_world::TokenFaults>>,
    /// The run's start on `clock`'s monotonic time, in nanoseconds
    /// ([`LiveFleet::begin_run`]).
    origin: Arc<std::sync::atomic::AtomicU64>,
}

/// The clock gateway `id` reads: `clock`, through the run's token faults
/// when it has any.
fn instance_clock(
    clock: &Arc<dyn Clock>,
    faults: Option<&Arc<rampart_world::TokenFaults>>,
    id: u32,
    origin: &Arc<std::sync::atomic::AtomicU64>,
) -> Arc<dyn Clock> {
    match faults {
        Some(f) => Arc::new(crate::clock::FaultedClock::new(
            clock.clone(),
            f.clone(),
            id,
            origin.clone(),
        )),
        None => clock.clone(),
    }
}

/// Every route of every traffic class, the first declaration of a name
/// first.
pub fn routes(cfg: &WorldConfig) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for t in &cfg.traffic {
        for r in &t.routes {
            if !out.iter().any(|x| x.name == r.name) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// What a fixed live fleet does not honour in `cfg`, one line each.
pub fn unsupported(cfg: &WorldConfig) -> Vec<String> {
    let mut out = Vec::new();
    let n = |v: usize, what: &str| format!("{v} {what}{}", if v == 1 { "" } else { "s" });
    if !cfg.traffic.is_empty() {
        // A driver that generates the traffic drops this line.
        out.push(format!(
            "{}: no load is generated; send your own requests to the balancer",
            n(cfg.traffic.len(), "[[traffic]] class")
        ));
    }
    if !cfg.attack.is_empty() {
        out.push(format!(
            "{}: no attacker runs",
            n(cfg.attack.len(), "[[attack]]")
        ));
    }
    out.push(format!(
        "[scaling]: the fleet stays at its initial {} (no controller acts)",
        n(cfg.scaling.initial as usize, "instance")
    ));
    let c = &cfg.control;
    if !c.token_replays.is_empty() {
        // A driver that runs the replays drops this line.
        out.push(format!(
            "{}: no replay runs",
            n(c.token_replays.len(), "[[control.token_replays]] entry")
        ));
    }
    if !c.revocations.is_empty() {
        // A driver that makes them drops this line.
        out.push(format!(
            "{}: none is made",
            n(c.revocations.len(), "[[control.revocations]] entry")
        ));
    }
    if cfg
        .policy
        .monitoring
        .as_ref()
        .is_some_and(|m| m.detection.central())
    {
        out.push("[policy.monitoring] central detection: no log pipeline runs; instances detect locally only".into());
    }
    if let RevocationSync::Push { median, .. } = cfg.token_service.revocation_sync {
        out.push(format!(
            "[token_service.revocation_sync] push median {median}: the real feed adds no modelled delay"
        ));
    }
    out.push("[fleet.gateway] workers, queue and modelled stage costs: the real gateway runs on this machine's CPUs".into());
    out
}

async fn start_gateway(
    template: &GatewayConfig,
    id: u32,
    policy: rampart_world::PolicyBundle,
    clock: Arc<dyn Clock>,
) -> Result<GatewayHandle, FleetError> {
    GatewayHandle::start(
        GatewayConfig {
            instance: id,
            ..template.clone()
        },
        policy,
        clock,
    )
    .await
    .map_err(|e| start_err("gateway")(e.to_string()))
}

impl LiveFleet {
    /// Starts everything on loopback.
    pub async fn start(cfg: &WorldConfig, opts: &FleetOptions) -> Result<LiveFleet, FleetError> {
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let seed = cfg.run.seed;
        // The simulator's key derivation: a run's tokens are reproducible
        // and no real secret is involved.
        let mut key_rng = rampart_rng::actor_rng(seed, "token_service/keys");
        let mut secret = [0u8; 32];
        rand::RngExt::fill(&mut key_rng, &mut secret[..]);
        let key = cfg.token_service.algorithm.key("k1", secret);
        let service = ServiceConfig {
            access_ttl: cfg.token_service.access_ttl,
            refresh_ttl: cfg.token_service.refresh_ttl,
            issuer: cfg.policy.auth.issuer.clone(),
            audience: cfg.policy.auth.audience.clone(),
            verifier_leeway_max: cfg.policy.auth.leeway,
            password: PasswordConfig {
                mode: PasswordMode::Argon2,
                ..PasswordConfig::default()
            },
            ..ServiceConfig::default()
        };
        let mut accounts = Vec::new();
        let mut registered = Vec::new();
        for (index, t) in cfg.traffic.iter().enumerate() {
            for i in 0..t.accounts.min(opts.accounts_per_class_max) {
                let subject = format!("{}-{i}", t.name);
                let password = format!("pw-{}-{i}", t.name);
                let mut salt = [0u8; 16];
                salt[..4].copy_from_slice(&i.to_le_bytes());
                salt[4..6].copy_from_slice(&u16::try_from(index).unwrap_or(u16::MAX).to_le_bytes());
                registered.push(Account {
                    subject: subject.clone(),
                    password: password.clone().into_bytes(),
                    salt,
                });
                accounts.push((subject, password));
            }
        }
        for (i, (subject, password)) in opts.extra_accounts.iter().enumerate() {
            let mut salt = [0xa5u8; 16];
            salt[..8].copy_from_slice(&(i as u64).to_le_bytes());
            registered.push(Account {
                subject: subject.clone(),
                password: password.clone(),
                salt,
            });
        }
        let token_service = TokenServer::start(
            loopback,
            service,
            &key,
            &registered,
            ServerConfig::default(),
        )
        .await
        .map_err(|e| start_err("token service")(e.to_string()))?;
        let routes = routes(cfg);
        let b = &cfg.fleet.backend;
        let backend = Backend::start(
            loopback,
            BackendConfig {
                routes: routes
                    .iter()
                    .map(|r| crate::backend::Route {
                        method: r.method.as_str().into(),
                        path: r.path.clone(),
                        cost: r.backend_cost,
                    })
                    .collect(),
                concurrency: b.concurrency as usize,
                queue_max: b.queue_max as usize,
                service: match b.service {
                    rampart_world::ServiceTime::Lognormal { sigma } => {
                        ServiceTime::Lognormal { sigma }
                    }
                    rampart_world::ServiceTime::Exponential => ServiceTime::Exponential,
                    rampart_world::ServiceTime::Fixed => ServiceTime::Fixed,
                },
                overload_error_rate: b.overload_error_rate,
                seed,
            },
        )
        .await
        .map_err(|e| start_err("backend")(e.to_string()))?;
        let clock: Arc<dyn Clock> = Arc::new(WallClock::new());
        let shared_keys = match &key {
            KeyMaterial::Hs256 { kid, secret } => vec![(kid.clone(), secret.clone())],
            _ => Vec::new(),
        };
        let table = RouteTable::new(&routes);
        // Pushed revocations go through the control plane, which pushes
        // the JWKS on every change too; polls stay polls, and with policy
        // rollouts to run the plane carries those alone.
        let push = matches!(
            cfg.token_service.revocation_sync,
            RevocationSync::Push { .. }
        );
        let (feed, plane) = if push || !cfg.control.rollouts.is_empty() {
            // No grace: as in the simulator, an instance off the desired
            // policy has drifted from the moment it changes.
            let config = rampart_control::PlaneConfig {
                rollout_grace: rampart_time::Duration::ZERO,
                ..rampart_control::PlaneConfig::default()
            };
            let (plane, addr) = token_service
                .start_plane(loopback, config)
                .await
                .map_err(|e| start_err("control plane")(e.to_string()))?;
            plane.publish_policy(crate::rollout::published(0, &cfg.policy));
            let feed = if push {
                FeedMode::Plane(addr)
            } else {
                FeedMode::PolicyPlane(addr)
            };
            (feed, Some(plane))
        } else {
            (FeedMode::Poll, None)
        };
        let uri = |a: SocketAddr| -> Uri { format!("http://{a}").parse().expect("a loopback URI") };
        let header_timeout =
            StdDuration::from_nanos(cfg.fleet.gateway.header_timeout.as_nanos().max(1_000_000));
        let template = GatewayConfig {
            instance: 0,
            listen: loopback,
            upstream: uri(backend.addr()),
            token_service: Some(uri(token_service.addr())),
            feed,
            shared_keys,
            routes: table,
            trusted_proxies: vec![loopback.ip()],
            tls: None,
            admin_listen: None,
            limits: Limits {
                header_read_timeout: header_timeout,
                ..Limits::default()
            },
        };
        let origin = Arc::new(std::sync::atomic::AtomicU64::new(clock.now().as_nanos()));
        let token_faults = Some(rampart_world::TokenFaults::new(&cfg.fault, cfg.run.seed))
            .filter(rampart_world::TokenFaults::any_per_instance)
            .map(Arc::new);
        let mut gateways = Vec::new();
        for id in 0..cfg.scaling.initial {
            let c = instance_clock(&clock, token_faults.as_ref(), id, &origin);
            gateways.push(start_gateway(&template, id, cfg.policy.clone(), c).await?);
        }
        let lb = &cfg.fleet.lb;
        let addrs: Vec<SocketAddr> = gateways.iter().map(GatewayHandle::addr).collect();
        let balancer = Balancer::start(
            loopback,
            BalancerConfig {
                algorithm: match lb.algorithm {
                    LbAlgorithm::RoundRobin => Algorithm::RoundRobin,
                    LbAlgorithm::LeastOutstanding => Algorithm::LeastOutstanding,
                    LbAlgorithm::PowerOfTwo => Algorithm::PowerOfTwo,
                },
                max_in_flight_per_instance: lb.max_in_flight_per_instance,
                health_check_interval: StdDuration::from_nanos(
                    lb.health_check_interval.as_nanos().max(1_000_000),
                ),
                unhealthy_threshold: lb.unhealthy_threshold,
                seed,
                header_read_timeout: header_timeout,
            },
            &addrs,
        )
        .await
        .map_err(|e| start_err("balancer")(e.to_string()))?;
        // Zero trust: instances take traffic once they attest the policy.
        if let Some(g) = gateways.first() {
            balancer.set_policy_hash(Some(g.instance().policy().hash_hex()));
        }
        balancer.check_now().await;
        Ok(LiveFleet {
            token_service,
            backend,
            gateways,
            balancer,
            accounts,
            clock,
            template,
            policy: cfg.policy.clone(),
            stale_boot: None,
            boot_rng: rampart_rng::actor_rng(seed, "control"),
            stale_boots: 0,
            plane,
            signing_key: key,
            token_faults,
            origin,
        })
    }

    /// The run starts now: the faults' windows count from here.
    pub fn begin_run(&self) -> rampart_time::Instant {
        let now = self.clock.now();
        self.origin
            .store(now.as_nanos(), std::sync::atomic::Ordering::Relaxed);
        now
    }

    /// Starts gateway `id` with the launch template's policy and puts it
    /// in the fleet; the balancer does not route to it until
    /// [`LiveFleet::admit`].
    pub async fn launch(&mut self, id: u32) -> Result<SocketAddr, FleetError> {
        let c = instance_clock(&self.clock, self.token_faults.as_ref(), id, &self.origin);
        let policy = match &self.stale_boot {
            Some((previous, p)) if rampart_rng::bernoulli(&mut self.boot_rng, *p) => {
                self.stale_boots += 1;
                previous.clone()
            }
            _ => self.policy.clone(),
        };
        let g = start_gateway(&self.template, id, policy, c).await?;
        let addr = g.addr();
        self.gateways.push(g);
        Ok(addr)
    }

    /// The bundle gateways launched from now on boot with; under a drift
    /// fault, each boots the bundle it replaces instead with probability
    /// `stale_boot_probability` (a stale image cache, a config agent that
    /// failed to fetch), as in the simulator.
    pub fn set_launch_policy(
        &mut self,
        bundle: rampart_world::PolicyBundle,
        stale_boot_probability: f64,
    ) {
        let previous = std::mem::replace(&mut self.policy, bundle);
        self.stale_boot =
            (stale_boot_probability > 0.0).then_some((previous, stale_boot_probability));
    }

    /// Gateway `id`, if it runs.
    pub fn gateway(&self, id: u32) -> Option<&GatewayHandle> {
        self.gateways.iter().find(|g| g.instance().id == id)
    }

    /// Registers gateway `id` with the balancer, which routes to it once
    /// it passes a health check and attests the policy.
    pub async fn admit(&self, id: u32) {
        if let Some(g) = self.gateway(id) {
            self.balancer.add_instance(g.addr());
            self.balancer.check_now().await;
        }
    }

    /// Deregisters gateway `id` from the balancer: no new requests reach
    /// it; those in flight finish.
    pub fn deregister(&self, id: u32) {
        if let Some(g) = self.gateway(id) {
            self.balancer.remove_instance(g.addr());
        }
    }

    /// Gateway `id` dies: it stops at once and leaves the fleet, but stays
    /// registered at the balancer until its health checks fail, as after
    /// a real crash.
    pub async fn crash(&mut self, id: u32) {
        if let Some(k) = self.gateways.iter().position(|g| g.instance().id == id) {
            self.gateways.remove(k).shutdown().await;
        }
    }

    /// Stops gateway `id` and takes it out of the fleet.
    pub async fn stop(&mut self, id: u32) {
        if let Some(k) = self.gateways.iter().position(|g| g.instance().id == id) {
            let g = self.gateways.remove(k);
            self.balancer.remove_instance(g.addr());
            g.shutdown().await;
        }
    }

    /// Arms `plan`'s attackers against this fleet: forged tokens made with
    /// the live token service's own core and key, as the simulator does
    /// with its core (expired, alg-none and tampered tokens start from real
    /// ones; wrong-key ones come from the attacker's own key), and the
    /// token service's console for the replays' revocations.
    pub async fn arm(&self, cfg: &WorldConfig, plan: &mut crate::attack::AttackPlan) {
        plan.set_admin(self.token_service.admin());
        plan.set_leaked_key(cfg, &self.signing_key, crate::clock::now());
        for (a, subjects) in plan.to_forge() {
            let forged = self
                .token_service
                .with_core(|core, now| {
                    rampart_attack::forge(&a, cfg.run.seed, cfg, core, now, &|k| {
                        subjects[k % subjects.len()].clone()
                    })
                })
                .await
                .map_err(|e| e.to_string());
            plan.set_forged(&a.name, forged);
        }
    }

    /// Stops every server.
    pub async fn shutdown(self) {
        self.balancer.shutdown().await;
        for g in self.gateways {
            g.shutdown().await;
        }
        self.backend.shutdown().await;
        self.token_service.shutdown().await;
    }
}
