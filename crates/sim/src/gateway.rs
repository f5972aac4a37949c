//! One gateway instance: workers, a bounded queue, and the real cores.

use std::collections::VecDeque;
use std::rc::Rc;

use rampart_auth::Verifier;
use rampart_autoscale::{Instance, InstanceState};
use rampart_des::rng::ActorRng;
use rampart_ratelimit::{Local, RuleSet, RuleSetConfig};
use rampart_time::{Duration, Instant};
use rampart_waf::abuse::AbuseDetector;

use crate::error::BundleError;
use crate::policy::CompiledPolicy;
use crate::slab::ReqId;

/// A gateway instance.
#[derive(Debug)]
pub struct Gateway {
    /// Fleet-wide id, also the index in the world's instance table.
    pub id: u32,
    /// Lifecycle (pending → … → terminated) and launch-template version.
    pub life: Instance,
    /// The policy bundle this instance booted with.
    pub policy: Rc<CompiledPolicy>,
    /// Its own rate limiters (local, or global with periodic sync).
    pub limiter: RuleSet<Local>,
    /// Its own token verifier and verified-token cache.
    pub verifier: Verifier,
    /// Its own abuse detector.
    pub abuse: AbuseDetector,
    /// Workers busy.
    pub busy: u32,
    /// Requests waiting for a worker.
    pub queue: VecDeque<ReqId>,
    /// Requests assigned by the LB and not yet answered (the LB's view).
    pub in_flight: u32,
    /// Requests this instance has in flight upstream.
    pub upstream_in_flight: u32,
    /// Whether the LB's health checks pass.
    pub healthy: bool,
    /// Consecutive failed (or, when unhealthy, passed) health checks.
    pub health_streak: u32,
    /// CPU time started since the last scrape, in nanoseconds.
    pub busy_ns_scrape: u64,
    /// Requests arrived since the last scrape.
    pub arrivals_scrape: u64,
    /// CPU time started since the last metrics interval.
    pub busy_ns_interval: u64,
    /// Requests served over the instance's life.
    pub served: u64,
    /// When it was terminated, if it was.
    pub terminated_at: Option<Instant>,
    /// This instance's random stream (TLS reuse, LB-independent draws).
    pub rng: ActorRng,
    /// Its log agent's unshipped records (used only with a log pipeline).
    pub(crate) agent: crate::monitoring::Agent,
    /// The central detector's decisions, from boot on (with a pipeline).
    pub blocklist: Option<rampart_waf::central::Blocklist>,
}

impl Gateway {
    /// A freshly launched instance with its cores built from the policy.
    pub fn new(
        id: u32,
        life: Instance,
        policy: Rc<CompiledPolicy>,
        rng: ActorRng,
    ) -> Result<Gateway, BundleError> {
        let limiter = RuleSet::new(
            &policy.bundle.ratelimit,
            RuleSetConfig {
                instance: id,
                fingerprint_seed: 0x5241_4d50_4152_5421,
            },
        )
        .map_err(BundleError::RateLimit)?;
        let verifier = Verifier::new(policy.bundle.auth.clone());
        let abuse = AbuseDetector::new(policy.bundle.abuse.clone()).map_err(BundleError::Abuse)?;
        Ok(Gateway {
            id,
            life,
            policy,
            limiter,
            verifier,
            abuse,
            busy: 0,
            queue: VecDeque::new(),
            in_flight: 0,
            upstream_in_flight: 0,
            healthy: true,
            health_streak: 0,
            busy_ns_scrape: 0,
            arrivals_scrape: 0,
            busy_ns_interval: 0,
            served: 0,
            terminated_at: None,
            rng,
            agent: crate::monitoring::Agent::default(),
            blocklist: None,
        })
    }

    /// Hot-reloads a policy bundle: rebuilds the cores whose configuration
    /// changed (their state starts afresh, as a real reload does) and keeps
    /// the others. Returns whether the verifier was rebuilt, in which case
    /// the driver must reload its keys and revocations.
    pub fn reload(&mut self, policy: Rc<CompiledPolicy>) -> Result<bool, BundleError> {
        let old = &self.policy.bundle;
        let new = &policy.bundle;
        if old.ratelimit != new.ratelimit {
            self.limiter = RuleSet::new(
                &new.ratelimit,
                RuleSetConfig {
                    instance: self.id,
                    fingerprint_seed: 0x5241_4d50_4152_5421,
                },
            )
            .map_err(BundleError::RateLimit)?;
        }
        if old.abuse != new.abuse {
            self.abuse = AbuseDetector::new(new.abuse.clone()).map_err(BundleError::Abuse)?;
        }
        let verifier = old.auth != new.auth;
        if verifier {
            self.verifier = Verifier::new(new.auth.clone());
        }
        self.policy = policy;
        Ok(verifier)
    }

    /// Whether the LB may send it new requests.
    #[inline]
    pub fn routable(&self, max_in_flight: u32) -> bool {
        self.life.state() == InstanceState::InService
            && self.healthy
            && (max_in_flight == 0 || self.in_flight < max_in_flight)
    }

    /// Charges `cpu` to the instance's utilisation counters.
    #[inline]
    pub fn charge(&mut self, cpu: Duration) {
        self.busy_ns_scrape += cpu.as_nanos();
        self.busy_ns_interval += cpu.as_nanos();
    }

    /// Drops a finished instance's limiter tables, token cache and abuse
    /// state, so a long run with churn keeps only live instances' memory.
    pub fn release_cores(&mut self) {
        debug_assert!(!self.life.state().is_live());
        // Workers may still be busy when an instance dies outright (a crash,
        // or a scale-in with no deregistration delay): their requests are
        // answered with a reset when the CPU time ends, without the cores.
        debug_assert!(self.queue.is_empty(), "a finished instance queues nothing");
        self.limiter =
            RuleSet::new(&[], RuleSetConfig::default()).expect("an empty rule set is valid");
        self.verifier = Verifier::new(rampart_auth::VerifierConfig::default());
        self.abuse = AbuseDetector::new(rampart_waf::abuse::AbuseConfig::default())
            .expect("defaults are valid");
        self.queue = VecDeque::new();
        // Its copy of the central decisions goes with it; its agent keeps
        // what it has not shipped yet (a crash has emptied it already).
        self.blocklist = None;
    }

    /// Seconds the instance has been billed for by `end`.
    pub fn billed_secs(&self, end: Instant) -> f64 {
        let until = self.terminated_at.unwrap_or(end).min(end);
        (until - self.life.launched_at()).as_secs_f64()
    }
}
