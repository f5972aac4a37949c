//! Autoscaling a live fleet: the scenario's controller (`rampart-autoscale`,
//! the simulator's) acting on metrics scraped from the real gateways.
//!
//! Every `[scaling.pipeline] scrape_interval` the scaler scrapes each
//! running gateway's `/metrics` over HTTP and turns the counters into a
//! [`Sample`]: CPU as the gateway's own busy seconds (time in its stages,
//! not waiting upstream) per second, requests per second, and requests in
//! flight as the queue. The scrape reaches the controller after the
//! aggregation delay ([`Pipeline`]). Every sync period the controller
//! decides a desired capacity; the scaler launches or drains to it, and
//! each instance follows the scenario's lifecycle (`rampart-autoscale`'s
//! state machine, with boot draws from the simulator's `scaling` stream):
//! a real gateway starts when its boot completes, the balancer routes to
//! it once it is in service (and attests the policy), and a drained one
//! is deregistered at once and stopped after the deregistration delay.
//! Scale-in picks instances not yet serving first, then the newest.
//!
//! It also applies the scenario's fleet faults as they strike: an instance
//! crash or a zone loss stops gateways at once (the balancer learns from
//! its health checks, as a real one does) and the controller replaces
//! them at its next sync; a metrics-delay spike holds scrapes back; a
//! boot-failure window fails launches with its probability; a
//! token-service outage answers every token-service request 503. Victims
//! are drawn from the simulator's `faults` stream. A fixed fleet gets a
//! scaler with no controller when it has faults to apply.
//!
//! The scaler is driven by its owner's loop ([`Scaler::next_due`],
//! [`Scaler::step`]), which owns the fleet; time is the run's (zero at its
//! start), as in the simulator.

use std::collections::VecDeque;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
pub use rampart_autoscale::lifecycle::InstanceState;
use rampart_autoscale::lifecycle::{BootDraw, BootTime, Instance, LifecycleConfig};
use rampart_autoscale::pipeline::{CpuUnit, Pipeline, Sample};
use rampart_autoscale::{Controller, Observation};
use rampart_rng::{ActorRng, actor_rng};
use rampart_time::{Duration, Instant};
use rampart_world::{ControllerConfig, FaultConfig, FaultWindows, ScalingMetric, WorldConfig};

use crate::fleet::{FleetError, LiveFleet};

/// Instances a live run launches at most; past it the controller's
/// further launches are refused and counted in the decision's message.
pub const INSTANCES_MAX: usize = 64;

/// Scale events kept; later ones are counted.
pub const SCALE_EVENTS_MAX: usize = 1_000;

/// A capacity change the controller decided.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleEvent {
    /// When, from the run's start.
    pub at: Instant,
    /// Capacity before.
    pub from: u32,
    /// Capacity after.
    pub to: u32,
    /// The controller's explanation.
    pub message: String,
}

/// A lifecycle change, for the run's timeline and event log.
#[derive(Clone, Debug, PartialEq)]
pub struct LifeEvent {
    /// When, from the run's start.
    pub at: Instant,
    /// Instance id.
    pub instance: u32,
    /// From.
    pub from: InstanceState,
    /// To.
    pub to: InstanceState,
}

/// One gateway's counters at the previous scrape.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    busy_s: f64,
    requests: f64,
    in_flight: f64,
}

/// The scaling group of a live run.
pub struct Scaler {
    controller: Option<Box<dyn Controller>>,
    period: Duration,
    metrics: Vec<ScalingMetric>,
    cpu_unit: CpuUnit,
    cores: f64,
    lc: LifecycleConfig,
    scrape_every: Duration,
    delay: Duration,
    pipeline: Pipeline,
    /// When each scrape in transit arrives, oldest first.
    arrivals: VecDeque<Instant>,
    /// Lifecycles by instance id.
    lives: Vec<Instance>,
    /// Counters at the previous scrape, by instance id.
    last: Vec<Option<(Instant, Counters)>>,
    desired: u32,
    next_scrape: Instant,
    next_eval: Instant,
    rng: ActorRng,
    client: Client<HttpConnector, Empty<Bytes>>,
    windows: FaultWindows,
    /// Faults that strike at an instant, in time order, with their index.
    strikes: VecDeque<(Instant, FaultConfig)>,
    fault_rng: ActorRng,
    /// Fault lines for the run's timeline: (when, what).
    pub fault_log: Vec<(Instant, String)>,
    /// Capacity changes, in order (at most [`SCALE_EVENTS_MAX`]).
    pub events: Vec<ScaleEvent>,
    /// Capacity changes past the cap.
    pub events_dropped: u64,
    /// Launches refused at [`INSTANCES_MAX`].
    pub launches_refused: u64,
    /// Scrapes that failed (the instance gets no sample that time).
    pub scrapes_failed: u64,
    /// Replacements under way: (replacement, the stale instance it
    /// replaces). At most one per instance, so at most [`INSTANCES_MAX`].
    replacing: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler")
            .field("desired", &self.desired)
            .field("instances", &self.lives.len())
            .finish_non_exhaustive()
    }
}

impl Scaler {
    /// The scaler of `cfg`'s group, whose initial instances are in service
    /// at time zero; `None` for a fixed fleet without fleet faults or
    /// replacement remediation.
    pub fn new(cfg: &WorldConfig) -> Result<Option<Scaler>, String> {
        let built = cfg.scaling.controller.build().map_err(|e| e.to_string())?;
        // Crashes and zone losses strike once; an outage at both edges.
        let mut strikes: Vec<(Instant, FaultConfig)> = Vec::new();
        for f in &cfg.fault {
            match f {
                FaultConfig::InstanceCrash { at, .. } | FaultConfig::ZoneLoss { at, .. } => {
                    strikes.push((Instant::ZERO + *at, f.clone()));
                }
                FaultConfig::TokenServiceOutage { start, end } => {
                    strikes.push((Instant::ZERO + *start, f.clone()));
                    strikes.push((Instant::ZERO + *end, f.clone()));
                }
                _ => {}
            }
        }
        strikes.sort_by_key(|(at, _)| *at);
        let windowed = cfg.fault.iter().any(|f| {
            matches!(
                f,
                FaultConfig::MetricsDelay { .. } | FaultConfig::BootFailure { .. }
            )
        });
        // The drift detector's replacements launch through the group.
        let replaces = !cfg.control.rollouts.is_empty()
            && cfg
                .control
                .drift_detector
                .as_ref()
                .is_some_and(|d| d.remediation == rampart_world::Remediation::Replace);
        if built.is_none() && strikes.is_empty() && !windowed && !replaces {
            return Ok(None);
        }
        let (controller, period) = match built {
            Some((c, p)) => (Some(c), p),
            None => (None, None),
        };
        let s = &cfg.scaling;
        let period = period.unwrap_or(s.evaluation_interval);
        let mut rng = actor_rng(cfg.run.seed, "scaling");
        // The initial fleet is in service at zero; its launches draw from
        // the stream as the simulator's do, so later boots draw alike.
        let instant = LifecycleConfig {
            pending: Duration::ZERO,
            boot: BootTime::Fixed {
                time: Duration::ZERO,
            },
            warmup: Duration::ZERO,
            boot_failure_probability: 0.0,
            ..s.lifecycle.clone()
        };
        let lives = (0..s.initial)
            .map(|id| {
                let mut l =
                    Instance::launch(u64::from(id), 0, Instant::ZERO, &instant, draw(&mut rng));
                l.advance(Instant::ZERO, &instant);
                l
            })
            .collect();
        Ok(Some(Scaler {
            controller,
            period,
            metrics: s.metrics.clone(),
            cpu_unit: match s.controller {
                ControllerConfig::Hpa(_) => CpuUnit::Cores,
                _ => CpuUnit::Percent,
            },
            cores: f64::from(cfg.fleet.gateway.workers),
            lc: s.lifecycle.clone(),
            scrape_every: s.pipeline.scrape_interval,
            delay: s.pipeline.aggregation_delay,
            pipeline: Pipeline::default(),
            arrivals: VecDeque::new(),
            lives,
            last: vec![None; s.initial as usize],
            desired: s.initial,
            next_scrape: Instant::ZERO + s.pipeline.scrape_interval,
            next_eval: Instant::ZERO + period,
            rng,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            windows: FaultWindows::new(&cfg.fault),
            strikes: strikes.into(),
            fault_rng: actor_rng(cfg.run.seed, "faults"),
            fault_log: Vec::new(),
            events: Vec::new(),
            events_dropped: 0,
            launches_refused: 0,
            scrapes_failed: 0,
            replacing: Vec::new(),
        }))
    }

    /// The capacity the controller wants.
    pub fn desired(&self) -> u32 {
        self.desired
    }

    /// Instances launched so far, the initial ones included.
    pub fn launched(&self) -> usize {
        self.lives.len()
    }

    /// Instances in each state now.
    pub fn count(&self, state: InstanceState) -> usize {
        self.lives.iter().filter(|l| l.state() == state).count()
    }

    /// When [`Scaler::step`] next has something to do.
    pub fn next_due(&self) -> Instant {
        let transition = self
            .lives
            .iter()
            .filter_map(|l| l.next_transition_at(&self.lc))
            .min();
        [
            Some(self.next_scrape),
            Some(self.next_eval),
            self.arrivals.front().copied(),
            transition,
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("scrapes are always due")
    }

    /// Does what is due at `now`: lifecycle transitions (starting,
    /// admitting and stopping gateways), scrapes, arrivals and the
    /// controller's sync. Returns the lifecycle changes.
    pub async fn step(
        &mut self,
        now: Instant,
        fleet: &mut LiveFleet,
    ) -> Result<Vec<LifeEvent>, FleetError> {
        let mut out = Vec::new();
        self.advance(now, fleet, &mut out).await?;
        self.settle_replacements(now, fleet, &mut out).await;
        while self.strikes.front().is_some_and(|(at, _)| *at <= now) {
            let (at, f) = self.strikes.pop_front().expect("just seen");
            self.strike(at, &f, fleet, &mut out).await;
        }
        if now >= self.next_scrape {
            let samples = self.scrape(now, fleet).await;
            self.pipeline.send(now, samples);
            let arrive = self.windows.metrics_arrival(now, self.delay);
            self.arrivals.push_back(arrive);
            self.next_scrape = now + self.scrape_every;
        }
        while self.arrivals.front().is_some_and(|&t| t <= now) {
            self.arrivals.pop_front();
            self.pipeline.arrive();
        }
        if now >= self.next_eval && self.controller.is_some() {
            self.evaluate(now);
            self.reconcile(now, fleet, &mut out).await?;
            // A launch may already be due (no pending time).
            self.advance(now, fleet, &mut out).await?;
            self.settle_replacements(now, fleet, &mut out).await;
            self.next_eval = now + self.period;
        }
        Ok(out)
    }

    async fn advance(
        &mut self,
        now: Instant,
        fleet: &mut LiveFleet,
        out: &mut Vec<LifeEvent>,
    ) -> Result<(), FleetError> {
        for id in 0..self.lives.len() {
            for t in self.lives[id].advance(now, &self.lc) {
                let id32 = id as u32;
                match t.to {
                    // Booted: the server starts; not routed to yet.
                    InstanceState::WarmingUp => {
                        fleet.launch(id32).await?;
                    }
                    InstanceState::InService => {
                        if fleet.gateway(id32).is_none() {
                            fleet.launch(id32).await?;
                        }
                        fleet.admit(id32).await;
                    }
                    InstanceState::Terminated => fleet.stop(id32).await,
                    _ => {}
                }
                out.push(LifeEvent {
                    at: t.at,
                    instance: id32,
                    from: t.from,
                    to: t.to,
                });
            }
        }
        Ok(())
    }

    /// Scrapes every running gateway; counters become rates over the time
    /// since its previous scrape.
    async fn scrape(&mut self, now: Instant, fleet: &LiveFleet) -> Vec<Sample> {
        let mut samples = Vec::new();
        for (id, life) in self.lives.iter().enumerate() {
            if !matches!(
                life.state(),
                InstanceState::WarmingUp | InstanceState::InService
            ) {
                continue;
            }
            let Some(g) = fleet.gateway(id as u32) else {
                continue;
            };
            let Some(c) = scrape_one(&self.client, g.addr()).await else {
                self.scrapes_failed += 1;
                continue;
            };
            let prev = self.last[id].replace((now, c));
            let Some((then, p)) = prev else {
                continue;
            };
            let dt = now.saturating_since(then).as_secs_f64();
            if dt <= 0.0 {
                continue;
            }
            samples.push(Sample {
                instance: id as u32,
                cpu_cores: (c.busy_s - p.busy_s).max(0.0) / dt,
                cores: self.cores,
                rps: (c.requests - p.requests).max(0.0) / dt,
                queue_len: c.in_flight,
            });
        }
        samples
    }

    fn evaluate(&mut self, now: Instant) {
        let mut obs = Vec::new();
        for (id, l) in self.lives.iter().enumerate() {
            if !l.state().is_live() || l.state() == InstanceState::Draining {
                continue;
            }
            let (at, values) = match self.pipeline.sample_for(id as u32) {
                Some((at, s)) => (
                    at,
                    self.metrics
                        .iter()
                        .map(|&m| Some(s.metric(m, self.cpu_unit)))
                        .collect(),
                ),
                None => (now, vec![None; self.metrics.len()]),
            };
            let mut o = l.observe(values, at);
            o.metrics_window = self.scrape_every;
            o.requests.cpu_cores = self.cores;
            obs.push(o);
        }
        let Some(controller) = self.controller.as_mut() else {
            return;
        };
        let d = controller.evaluate(&Observation {
            now,
            current_replicas: self.desired,
            instances: &obs,
            object_metrics: &[],
        });
        if d.desired_replicas != self.desired {
            if self.events.len() < SCALE_EVENTS_MAX {
                self.events.push(ScaleEvent {
                    at: now,
                    from: self.desired,
                    to: d.desired_replicas,
                    message: d.message,
                });
            } else {
                self.events_dropped += 1;
            }
            self.desired = d.desired_replicas;
        }
    }

    /// Launches or drains until the live, non-draining count is the
    /// desired capacity.
    async fn reconcile(
        &mut self,
        now: Instant,
        fleet: &mut LiveFleet,
        out: &mut Vec<LifeEvent>,
    ) -> Result<(), FleetError> {
        // An instance being replaced counts as its replacement.
        let active: Vec<usize> = (0..self.lives.len())
            .filter(|&i| {
                let s = self.lives[i].state();
                s.is_live()
                    && s != InstanceState::Draining
                    && !self.replacing.iter().any(|&(_, old)| old == i)
            })
            .collect();
        let have = active.len() as u32;
        for _ in have..self.desired {
            self.launch(now);
        }
        if have > self.desired {
            let mut victims = active;
            victims.sort_by_key(|&i| {
                let l = &self.lives[i];
                (
                    l.state() == InstanceState::InService,
                    std::cmp::Reverse(l.launched_at()),
                    std::cmp::Reverse(i),
                )
            });
            for &i in victims.iter().take((have - self.desired) as usize) {
                self.drain(i, now, fleet, out).await;
            }
        }
        Ok(())
    }

    /// Drains instance `i`: deregistered at once, stopped after the
    /// deregistration delay (at once without one).
    async fn drain(
        &mut self,
        i: usize,
        now: Instant,
        fleet: &mut LiveFleet,
        out: &mut Vec<LifeEvent>,
    ) {
        let Ok(t) = self.lives[i].begin_drain(now) else {
            return;
        };
        if t.to == InstanceState::Terminated {
            fleet.stop(i as u32).await;
        } else {
            fleet.deregister(i as u32);
        }
        out.push(LifeEvent {
            at: now,
            instance: i as u32,
            from: t.from,
            to: t.to,
        });
    }

    /// Launches a replacement for instance `old` (the drift detector's
    /// replacement remediation): the replacement boots from the launch
    /// template and follows the lifecycle, and `old` is drained once it is
    /// in service. Returns the replacement's id; `None` when `old` is not
    /// in service, is already being replaced, or the fleet is at
    /// [`INSTANCES_MAX`] (counted in `launches_refused`).
    pub fn replace(&mut self, old: u32, now: Instant) -> Option<u32> {
        let old = old as usize;
        let serving = self
            .lives
            .get(old)
            .is_some_and(|l| l.state() == InstanceState::InService);
        if !serving || self.replacing.iter().any(|&(_, o)| o == old) {
            return None;
        }
        let id = self.launch(now)?;
        self.replacing.push((id, old));
        Some(id as u32)
    }

    /// Starts an instance's lifecycle at `now` (its gateway starts when it
    /// boots); `None` at [`INSTANCES_MAX`], counted in `launches_refused`.
    fn launch(&mut self, now: Instant) -> Option<usize> {
        if self.lives.len() >= INSTANCES_MAX {
            self.launches_refused += 1;
            return None;
        }
        let id = self.lives.len();
        let d = draw(&mut self.rng);
        self.lives
            .push(Instance::launch(id as u64, 0, now, &self.lc, d));
        self.last.push(None);
        Some(id)
    }

    /// Drains each replaced instance whose replacement is in service; a
    /// replacement that failed to boot frees its instance for the next
    /// check to try again.
    async fn settle_replacements(
        &mut self,
        now: Instant,
        fleet: &mut LiveFleet,
        out: &mut Vec<LifeEvent>,
    ) {
        let mut k = 0;
        while k < self.replacing.len() {
            let (new, old) = self.replacing[k];
            match self.lives[new].state() {
                InstanceState::InService => {
                    self.replacing.swap_remove(k);
                    self.drain(old, now, fleet, out).await;
                }
                s if !s.is_live() => {
                    self.replacing.swap_remove(k);
                }
                _ => k += 1,
            }
        }
    }
}

impl Scaler {
    /// Applies a fault that strikes at `at`.
    async fn strike(
        &mut self,
        at: Instant,
        f: &FaultConfig,
        fleet: &mut LiveFleet,
        out: &mut Vec<LifeEvent>,
    ) {
        let victims: Vec<usize> = match *f {
            FaultConfig::InstanceCrash { instance, .. } => match instance {
                Some(i) => vec![i as usize],
                None => {
                    let serving: Vec<usize> = (0..self.lives.len())
                        .filter(|&i| self.lives[i].state() == InstanceState::InService)
                        .collect();
                    if serving.is_empty() {
                        Vec::new()
                    } else {
                        let k =
                            rampart_rng::uniform_u64(&mut self.fault_rng, 0, serving.len() as u64);
                        vec![serving[k as usize]]
                    }
                }
            },
            FaultConfig::ZoneLoss { percent, .. } => {
                let mut live: Vec<usize> = (0..self.lives.len())
                    .filter(|&i| self.lives[i].state().is_live())
                    .collect();
                let k = ((percent / 100.0) * live.len() as f64).ceil() as usize;
                // A partial Fisher-Yates shuffle picks k distinct victims.
                for j in 0..k.min(live.len()) {
                    let pick =
                        rampart_rng::uniform_u64(&mut self.fault_rng, j as u64, live.len() as u64);
                    live.swap(j, pick as usize);
                }
                live.truncate(k);
                live
            }
            FaultConfig::TokenServiceOutage { start, .. } => {
                let down = at == Instant::ZERO + start;
                fleet.token_service.admin().set_down(down);
                let what = if down { "begins" } else { "ends" };
                self.fault_log
                    .push((at, format!("token service outage {what}")));
                return;
            }
            _ => return,
        };
        let lc = LifecycleConfig {
            deregistration_delay: Duration::ZERO,
            ..self.lc.clone()
        };
        let mut crashed = Vec::new();
        for v in victims {
            let Some(l) = self.lives.get_mut(v) else {
                continue;
            };
            let from = l.state();
            if !from.is_live() || (from != InstanceState::Draining && l.begin_drain(at).is_err()) {
                continue;
            }
            l.advance(at, &lc);
            fleet.crash(v as u32).await;
            crashed.push(v);
            out.push(LifeEvent {
                at,
                instance: v as u32,
                from,
                to: InstanceState::Terminated,
            });
        }
        let what = f.kind().replace('_', " ");
        let label = match crashed.as_slice() {
            [] => format!("{what}: no live instance to crash"),
            [one] => format!("{what}: #{one} crashed"),
            many => format!("{what}: {} crashed", many.len()),
        };
        self.fault_log.push((at, label));
    }
}

fn draw(rng: &mut ActorRng) -> BootDraw {
    BootDraw {
        boot: rampart_rng::unit(rng),
        failure: rampart_rng::unit(rng),
    }
}

/// A gateway's busy seconds, requests answered and requests in flight,
/// from its `/metrics`; `None` if it does not answer within a second.
async fn scrape_one(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: std::net::SocketAddr,
) -> Option<Counters> {
    let uri: hyper::Uri = format!("http://{addr}/metrics").parse().ok()?;
    let body = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let r = client.get(uri).await.ok()?;
        r.into_body().collect().await.ok().map(|c| c.to_bytes())
    })
    .await
    .ok()??;
    Some(parse(std::str::from_utf8(&body).ok()?))
}

/// Sums the series the scaler reads from OpenMetrics text.
fn parse(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        match name {
            "rampart_gateway_busy_seconds_total" => c.busy_s += value,
            "rampart_gateway_requests_total" => c.requests += value,
            "rampart_gateway_in_flight" => c.in_flight += value,
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_reads_busy_seconds_requests_summed_over_labels_and_in_flight() {
        let text = "# HELP rampart_gateway_requests Requests answered\n\
            # TYPE rampart_gateway_requests counter\n\
            rampart_gateway_requests_total{instance=\"0\",route=\"a\",outcome=\"ok\",reason=\"\"} 12\n\
            rampart_gateway_requests_total{instance=\"0\",route=\"b\",outcome=\"rejected\",reason=\"rate_limited\"} 3\n\
            rampart_gateway_busy_seconds_total{instance=\"0\"} 0.25\n\
            rampart_gateway_in_flight{instance=\"0\"} 4\n\
            rampart_gateway_connections{instance=\"0\"} 9\n\
            # EOF\n";
        let c = parse(text);
        assert_eq!((c.requests, c.busy_s, c.in_flight), (15.0, 0.25, 4.0));
    }
}
