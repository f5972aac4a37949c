//! One gateway instance: workers, a bounded queue, and the real cores.

use std::collections::VecDeque;
use std::rc::Rc;

use std::net::IpAddr;

use rampart_auth::{SignatureMemo, Verdict};
use rampart_autoscale::{Instance, InstanceState};
use rampart_des::rng::ActorRng;
use rampart_gateway::{Bearer, BundleError, CompiledPolicy, Cores, Inspected, Rejected};
use rampart_ratelimit::Decision;
use rampart_time::{Duration, Instant};
use rampart_waf::abuse::{AuthEvent, Outcome};
use rampart_world::Detection;

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
    /// Its own cores: rate limiters (local, or global with periodic sync),
    /// token verifier and verified-token cache, abuse detector.
    pub cores: Cores,
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
        let cores = Cores::new(id, &policy.bundle)?;
        Ok(Gateway {
            id,
            life,
            policy,
            cores,
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
        let verifier = self
            .cores
            .reload(self.id, &self.policy.bundle, &policy.bundle)?;
        self.policy = policy;
        Ok(verifier)
    }

    /// Runs the security stages on one request, in the order every
    /// request meets them: rate limits, then the token on an authenticated
    /// route, then inspection, then abuse detection on a login. Stops at
    /// the first that rejects. `unix` is the instance's own clock on the
    /// Unix epoch (a skew fault moves it); `inspect` gives the inspector's
    /// verdict under this instance's policy (the world reuses it per
    /// template, as the verdict is a pure function of the bytes).
    pub fn decide(
        &mut self,
        now: Instant,
        unix: Instant,
        facts: &Facts<'_>,
        inspect: impl FnOnce(&CompiledPolicy) -> Inspected,
        memo: &mut dyn SignatureMemo,
    ) -> Decided {
        let (rate, mut rejected) = rampart_gateway::rate_limit(
            &self.cores.limiter,
            now,
            facts.ip,
            facts.route,
            facts.account,
        );
        let mut d = Decided {
            rate,
            verdict: None,
            inspected: None,
            rejected: None,
            stopped_by: None,
        };
        if rejected.is_none()
            && let Some(token) = facts.token
        {
            let (v, r) = rampart_gateway::authenticate(&mut self.cores.verifier, unix, token, memo);
            d.verdict = v;
            rejected = r;
        }
        if rejected.is_none() {
            let i = inspect(&self.policy);
            rejected = i.rejected();
            d.inspected = Some(i);
        }
        if rejected.is_none()
            && let Some(subject) = facts.login_subject
        {
            d.stopped_by = self.abuse_stops(now, facts.ip, subject, facts.solves_challenges);
            if d.stopped_by.is_some() {
                rejected = Some(Rejected::Abuse);
            }
        }
        d.rejected = rejected;
        d
    }

    /// The outcome of a login this instance proxied, seen when the token
    /// service answers: its own abuse detector learns from it when its
    /// policy runs local detection.
    pub fn observe_login(&mut self, now: Instant, ip: IpAddr, subject: &str, ok: bool) {
        let local = self
            .policy
            .bundle
            .monitoring
            .as_ref()
            .is_none_or(|m| m.detection.local());
        if local {
            self.cores.abuse.observe(
                now,
                AuthEvent {
                    ip,
                    account: Some(subject),
                    outcome: if ok {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    },
                },
            );
        }
    }

    /// Whether the abuse detection this instance runs stops a login from
    /// `ip` on `account`, and which detector did: its own first, then the
    /// central decisions, as its own policy says.
    fn abuse_stops(
        &self,
        now: Instant,
        ip: IpAddr,
        account: &str,
        solves_challenges: bool,
    ) -> Option<StoppedBy> {
        let detection = self
            .policy
            .bundle
            .monitoring
            .as_ref()
            .map_or(Detection::Local, |m| m.detection);
        if detection.local()
            && rampart_gateway::abuse(&self.cores.abuse, now, ip, account, solves_challenges)
                .is_some()
        {
            return Some(StoppedBy::Local);
        }
        if detection.central()
            && let Some(b) = &self.blocklist
            && rampart_gateway::stops(b.check(now, ip, Some(account)), solves_challenges)
        {
            return Some(StoppedBy::Central);
        }
        None
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
        self.cores = Cores::empty();
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

/// What a request presents to the stages, read off it by the driver.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The route's name (rate-limit rules select routes by it).
    pub route: &'a str,
    /// The subject that keys per-account limits, on an authenticated call.
    pub account: Option<&'a str>,
    /// On an authenticated call, the bearer token presented: `Some(None)`
    /// is a call without one. `None`: the route needs no token.
    pub token: Option<Option<Bearer<'a>>>,
    /// Whose login the abuse detector judges, on a login.
    pub login_subject: Option<&'a str>,
    /// Whether the client solves an abuse challenge (people do, bots not).
    pub solves_challenges: bool,
}

/// What the stages decided on one request.
#[derive(Debug)]
pub struct Decided {
    /// The rate limiter's decision (every request meets it).
    pub rate: Decision,
    /// The verifier's verdict, if a token was checked.
    pub verdict: Option<Verdict>,
    /// The inspector's verdict, if inspection ran.
    pub inspected: Option<Inspected>,
    /// The stage that rejected the request, if one did.
    pub rejected: Option<Rejected>,
    /// On an abuse rejection, which detector stopped it.
    pub stopped_by: Option<StoppedBy>,
}

/// Which detector stopped a login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoppedBy {
    /// The instance's own detector.
    Local,
    /// The central detector's pushed decisions.
    Central,
}
