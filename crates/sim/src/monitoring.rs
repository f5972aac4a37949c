//! The fleet's log pipeline and the central abuse detector it feeds.
//!
//! ```text
//!  instance ──records──► Agent (bounded buffer) ──flush every F──► batch
//!     ▲                     │ crash: unshipped records are lost      │ ship + index delay
//!     │                     ▼                                         ▼
//!  Blocklist ◄──push delay── CentralDetector::observe ◄── collector (arrival order)
//! ```
//!
//! What a team running Fluent Bit or Vector into a SIEM has: each instance's
//! agent buffers log records (one per request it takes, and for logins the
//! attempt's address, account and outcome) up to `buffer_max`, dropping new
//! records when full; every `flush_interval` it ships what it holds as one
//! batch, which reaches the collector after a log-normal shipping and
//! indexing delay. Batches arrive in arrival order, not event order, and
//! the central detector (the same `abuse` core the instances run, see
//! `rampart_waf::central`) reads them as they arrive. What it decides is
//! pushed to every instance's blocklist after the `push_delay`.
//!
//! Which detector an instance consults is its own policy's
//! `monitoring.detection`: `local` (its own detector, today's behaviour),
//! `central` (only the pushed decisions) or `both`. The pipeline and the
//! central detector are built from the boot bundle's `monitoring` and
//! `abuse` sections and run whenever that section is present, so a `local`
//! policy still shows what the central detector would have decided; a
//! stale instance keeps running the detection its own bundle names.
//!
//! The model is kept apart from the detector: a live driver feeds
//! `CentralDetector::observe` from the fleet's merged log stream instead.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rampart_des::rng::{self, ActorRng, actor_rng};
use rampart_metrics::{CounterId, GaugeId, Names};
use rampart_time::{Duration, Instant};
use rampart_waf::abuse::{AbuseConfig, AuthEvent, Outcome};
use rampart_waf::central::{Blocklist, CentralDetector, Push};
use rampart_world::{MonitoringConfig, WorldConfig};

use crate::error::MetricsError;

/// One log record of a login attempt, as an agent ships it.
#[derive(Clone, Debug)]
pub(crate) struct AuthRecord {
    pub at: Instant,
    pub ip: IpAddr,
    pub account: String,
    pub ok: bool,
}

/// An instance's log agent: a bounded buffer of records not yet shipped.
#[derive(Debug, Default)]
pub(crate) struct Agent {
    /// Records of other requests (counted, not read by the detector).
    other: u32,
    /// When the oldest buffered record was written.
    oldest: Option<Instant>,
    auth: Vec<AuthRecord>,
}

impl Agent {
    fn len(&self) -> u64 {
        u64::from(self.other) + self.auth.len() as u64
    }
}

/// A shipped batch on its way to the collector.
#[derive(Debug)]
struct Batch {
    oldest: Instant,
    auth: Vec<AuthRecord>,
}

/// Metric ids, registered only when the pipeline runs.
#[derive(Debug)]
pub(crate) struct MonitorIds {
    pub shipped: CounterId,
    pub dropped: CounterId,
    pub lost: CounterId,
    pub pushes: CounterId,
    pub lag_ms: GaugeId,
    /// Per `[[attack]]`: attempts a pushed decision stopped, the first
    /// central block, and successes before the first block of either kind.
    pub attack: Vec<AttackMonitorIds>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AttackMonitorIds {
    pub central_blocked: CounterId,
    pub first_central_block_ms: GaugeId,
    pub succeeded_before_detection: CounterId,
}

/// Registers the pipeline's metrics, if it runs: after every other name,
/// so runs without it keep their columns.
pub(crate) fn register(
    cfg: &WorldConfig,
    names: &mut Names,
) -> Result<Option<MonitorIds>, MetricsError> {
    if cfg.policy.monitoring.is_none() {
        return Ok(None);
    }
    let attack = cfg
        .attack
        .iter()
        .map(|a| {
            let n = &a.name;
            Ok(AttackMonitorIds {
                central_blocked: names.add_counter(&format!("attack.{n}.central_blocked"))?,
                first_central_block_ms: names
                    .add_gauge(&format!("attack.{n}.first_central_block_ms"))?,
                succeeded_before_detection: names
                    .add_counter(&format!("attack.{n}.succeeded_before_detection"))?,
            })
        })
        .collect::<Result<Vec<_>, MetricsError>>()?;
    Ok(Some(MonitorIds {
        shipped: names.add_counter("monitoring.events_shipped")?,
        dropped: names.add_counter("monitoring.events_dropped")?,
        lost: names.add_counter("monitoring.events_lost")?,
        pushes: names.add_counter("monitoring.pushes")?,
        lag_ms: names.add_gauge("monitoring.collector_lag_ms")?,
        attack,
    }))
}

/// The pipeline's state in the world.
#[derive(Debug)]
pub(crate) struct Monitor {
    pub cfg: MonitoringConfig,
    central: CentralDetector,
    /// Every decision delivered so far: what a booting instance loads.
    fleet: Blocklist,
    rng: ActorRng,
    next_id: u64,
    batches: BTreeMap<u64, Batch>,
    pushes: BTreeMap<u64, Push>,
    /// The largest record age seen at the collector since the last sample.
    lag_max: Option<Duration>,
}

/// What the world does with one arrived batch's decisions.
pub(crate) struct Decided {
    pub id: u64,
    pub delay: Duration,
}

impl Monitor {
    /// The pipeline of the boot bundle, if it has a `monitoring` section.
    pub fn new(cfg: &WorldConfig, abuse: &AbuseConfig) -> Option<Monitor> {
        let m = cfg.policy.monitoring.clone()?;
        let central = CentralDetector::new(abuse.clone()).ok()?;
        let fleet = Blocklist::new(abuse, m.blocklist_max as usize);
        Some(Monitor {
            cfg: m,
            central,
            fleet,
            rng: actor_rng(cfg.run.seed, "monitoring"),
            next_id: 0,
            batches: BTreeMap::new(),
            pushes: BTreeMap::new(),
            lag_max: None,
        })
    }

    /// A copy of every live decision, for an instance that boots now.
    pub fn snapshot(&self) -> Blocklist {
        self.fleet.clone()
    }

    /// Buffers a login record; returns false if the agent was full and
    /// dropped it.
    pub fn record_auth(&self, agent: &mut Agent, r: AuthRecord) -> bool {
        if agent.len() >= u64::from(self.cfg.buffer_max) {
            return false;
        }
        agent.oldest.get_or_insert(r.at);
        agent.auth.push(r);
        true
    }

    /// Buffers the record of a request other than a login.
    pub fn record_other(&self, agent: &mut Agent, now: Instant) -> bool {
        if agent.len() >= u64::from(self.cfg.buffer_max) {
            return false;
        }
        agent.oldest.get_or_insert(now);
        agent.other += 1;
        true
    }

    /// Ships an agent's buffer: returns the batch id, its record count
    /// and when it arrives, or `None` if the buffer was empty.
    pub fn ship(&mut self, now: Instant, agent: &mut Agent) -> Option<(u64, u64, Instant)> {
        let oldest = agent.oldest.take()?;
        let records = agent.len();
        let batch = Batch {
            oldest,
            auth: std::mem::take(&mut agent.auth),
        };
        agent.other = 0;
        let d = self.cfg.ship_delay;
        let delay = rng::lognormal(&mut self.rng, d.median, d.sigma);
        let id = self.next_id;
        self.next_id += 1;
        self.batches.insert(id, batch);
        Some((id, records, now + delay))
    }

    /// A crash: what the agent had not shipped is gone. Returns how much.
    pub fn lose(agent: &mut Agent) -> u64 {
        let n = agent.len();
        *agent = Agent::default();
        n
    }

    /// A batch reaches the collector: the central detector reads it in
    /// order, and each new decision is scheduled for the fleet.
    pub fn arrive(&mut self, now: Instant, batch: u64) -> Vec<Decided> {
        let Some(b) = self.batches.remove(&batch) else {
            return Vec::new();
        };
        let age = now.saturating_since(b.oldest);
        self.lag_max = Some(self.lag_max.map_or(age, |m| m.max(age)));
        let mut out = Vec::new();
        let mut pushes = Vec::new();
        for r in &b.auth {
            let ev = AuthEvent {
                ip: r.ip,
                account: Some(&r.account),
                outcome: if r.ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            };
            self.central.observe(now, ev, &mut pushes);
            for p in pushes.drain(..) {
                let d = self.cfg.push_delay;
                let delay = rng::lognormal(&mut self.rng, d.median, d.sigma);
                let id = self.next_id;
                self.next_id += 1;
                self.pushes.insert(id, p);
                out.push(Decided { id, delay });
            }
        }
        out
    }

    /// A push reaches the fleet.
    pub fn deliver(&mut self, now: Instant, push: u64) -> Option<Push> {
        let p = self.pushes.remove(&push)?;
        self.fleet.apply(now, p);
        Some(p)
    }

    /// The largest record age seen since the last call, in milliseconds.
    pub fn take_lag_ms(&mut self) -> Option<f64> {
        self.lag_max.take().map(|d| d.as_nanos() as f64 / 1e6)
    }
}
