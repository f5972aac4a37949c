//! The world's view of `rampart-metrics`: the names it registers, in a fixed
//! order, and the small-integer ids its hot path records with.

use rampart_metrics::{
    ClassId, GaugeId, Names, ReasonId, Recorder, RecorderConfig, Row, RowSink, RunMetrics,
};
use rampart_time::Instant;
use rampart_world::WorldConfig;

use crate::error::MetricsError;
use crate::sources::Source;

/// Rejection reasons, as indices into the registered reason names.
pub mod reason {
    use rampart_auth::Rejection;

    /// A rate-limit rule denied the request (429).
    pub const RATE_LIMITED: u16 = 0;
    /// The inspector's anomaly score reached the threshold (403).
    pub const INSPECTION_BLOCKED: u16 = 1;
    /// The abuse detector blocks this client (403).
    pub const ABUSE_BLOCKED: u16 = 2;
    /// Shed by the gateway's load shedder (503).
    pub const SHED: u16 = 3;
    /// The gateway's worker queue was full (503).
    pub const QUEUE_FULL: u16 = 4;
    /// Waited in the gateway's queue past its timeout (503).
    pub const QUEUE_TIMEOUT: u16 = 5;
    /// The LB had no routable instance (503).
    pub const NO_INSTANCE: u16 = 6;
    /// The client gave up waiting.
    pub const TIMEOUT: u16 = 7;
    /// The backend failed or was full (5xx).
    pub const BACKEND_ERROR: u16 = 8;
    /// The token service's queue was full (503).
    pub const TOKEN_SERVICE_UNAVAILABLE: u16 = 9;
    /// Wrong credentials at login (401).
    pub const LOGIN_FAILED: u16 = 10;
    /// A refresh token was refused (401); the client logs in again.
    pub const REFRESH_FAILED: u16 = 11;
    /// The instance holding the request was terminated under it.
    pub const CONNECTION_RESET: u16 = 12;
    /// First of the token verifier's rejections, one per [`Rejection`].
    pub const AUTH_BASE: u16 = 13;
    /// A connection sent its headers too slowly and the gateway closed it
    /// (408): how a header timeout ends a slowloris connection.
    pub const HEADER_TIMEOUT: u16 = AUTH_BASE + Rejection::COUNT as u16;

    /// Names, in index order.
    pub fn names() -> Vec<String> {
        let mut v: Vec<String> = [
            "rate_limited",
            "inspection_blocked",
            "abuse_blocked",
            "shed",
            "queue_full",
            "queue_timeout",
            "no_instance",
            "timeout",
            "backend_error",
            "token_service_unavailable",
            "login_failed",
            "refresh_failed",
            "connection_reset",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        debug_assert_eq!(v.len(), AUTH_BASE as usize);
        v.extend(
            Rejection::ALL
                .iter()
                .map(|r| format!("auth.{}", r.as_str())),
        );
        debug_assert_eq!(v.len(), HEADER_TIMEOUT as usize);
        v.push("header_timeout".to_owned());
        v
    }

    /// The reason for a verifier rejection.
    pub fn auth(r: Rejection) -> u16 {
        AUTH_BASE + r.index() as u16
    }

    /// Whether a refusal is a defence at work (a limit, the verifier, the
    /// inspector, the abuse detector, a header timeout) rather than
    /// overload or a wrong password: what counts as blocking an attacker.
    pub fn is_block(why: u16) -> bool {
        matches!(
            why,
            RATE_LIMITED | INSPECTION_BLOCKED | ABUSE_BLOCKED | HEADER_TIMEOUT
        ) || (AUTH_BASE..HEADER_TIMEOUT).contains(&why)
    }

    /// Whether a client may retry after this answer: overload and timeouts
    /// yes, refusals on purpose (auth, inspection, abuse) no.
    pub fn retriable(r: u16) -> bool {
        matches!(
            r,
            RATE_LIMITED
                | SHED
                | QUEUE_FULL
                | QUEUE_TIMEOUT
                | NO_INSTANCE
                | TIMEOUT
                | BACKEND_ERROR
                | TOKEN_SERVICE_UNAVAILABLE
                | CONNECTION_RESET
        )
    }
}

/// Gauges the world sets at every interval boundary, in registration order.
const GAUGES: [&str; 15] = [
    "instances.pending",
    "instances.booting",
    "instances.warming_up",
    "instances.in_service",
    "instances.draining",
    "instances.terminated",
    "instances.boot_failed",
    "desired_capacity",
    "utilisation",
    "queue_len.sum",
    "queue_len.max",
    "backend.utilisation",
    "token_service.utilisation",
    "instances.billed",
    "requests.in_flight",
];

/// Rows go somewhere the driver chose (a CSV file, memory, nowhere).
pub type BoxedSink = Box<dyn RowSink<Error = std::io::Error>>;

/// Hands rows to the driver's sink and keeps its first error instead of
/// failing the run: the metrics still finish, and the driver reports the
/// write error afterwards.
struct SinkRef<'a> {
    sink: &'a mut BoxedSink,
    error: &'a mut Option<std::io::Error>,
}

impl RowSink for SinkRef<'_> {
    type Error = std::convert::Infallible;
    fn row(&mut self, row: &Row<'_>) -> Result<(), Self::Error> {
        if self.error.is_none()
            && let Err(e) = self.sink.row(row)
        {
            *self.error = Some(e);
        }
        Ok(())
    }
}

/// The recorder plus the ids the world uses.
pub struct Meter {
    rec: Recorder,
    classes: Vec<ClassId>,
    reasons: Vec<ReasonId>,
    gauges: Vec<GaugeId>,
    sink: BoxedSink,
    sink_error: Option<std::io::Error>,
    /// Ids of the control plane's and token attackers' metrics.
    pub(crate) control: crate::world::control::ControlIds,
    offered: u64,
    completed: u64,
    rejected: u64,
    /// Each attacker's class and outcome metrics, in scenario order.
    pub(crate) attack: Vec<crate::attack::AttackIds>,
    /// The log pipeline's metrics, when it runs.
    pub(crate) monitor: Option<crate::monitoring::MonitorIds>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("offered", &self.offered)
            .finish_non_exhaustive()
    }
}

impl Meter {
    /// Registers every name the world records, in a fixed order.
    pub fn new(cfg: &WorldConfig, _sources: &[Source]) -> Result<Meter, MetricsError> {
        let mut names = Names::new();
        let legit = names.add_class("legit")?;
        let mut reasons = Vec::new();
        for r in reason::names() {
            reasons.push(names.add_reason(&r)?);
        }
        let mut gauges = Vec::new();
        for g in GAUGES {
            gauges.push(names.add_gauge(g)?);
        }
        let attack = crate::attack::register(&mut names, cfg)?;
        let control = crate::world::control::register(cfg, &mut names)?;
        let monitor = crate::monitoring::register(cfg, &mut names)?;
        for p in &cfg.run.phases {
            names
                .add_phase(&p.name, Instant::ZERO + p.start, Instant::ZERO + p.end)
                .map_err(MetricsError::Phase)?;
        }
        let rec = Recorder::new(
            RecorderConfig {
                interval: cfg.run.metrics_interval,
                ..RecorderConfig::default()
            },
            names,
        )
        .map_err(MetricsError::Interval)?;
        let mut classes: Vec<_> = std::iter::once(legit)
            .chain(attack.iter().map(|a| a.class))
            .collect();
        // The token attackers' classes follow the `[[attack]]` ones.
        let control = control.assign_classes(&mut classes);
        Ok(Meter {
            rec,
            classes,
            control,
            reasons,
            gauges,
            sink: Box::new(DiscardSink),
            sink_error: None,
            offered: 0,
            completed: 0,
            rejected: 0,
            attack,
            monitor,
        })
    }

    /// Adds `n` to a counter.
    #[inline]
    pub(crate) fn count(&mut self, now: Instant, id: rampart_metrics::CounterId, n: u64) {
        self.rec.count(now, id, n);
    }

    /// Sets a gauge; it keeps its value until set again.
    pub(crate) fn set_gauge(&mut self, id: GaugeId, value: f64) {
        self.rec.set_gauge(id, value);
    }

    /// Index of the first token attacker's class.
    pub(crate) fn control_class_base(&self) -> u16 {
        self.control.class_base
    }

    /// Where interval rows go from now on.
    pub fn set_sink(&mut self, sink: BoxedSink) {
        self.sink = sink;
    }

    /// An attempt was sent.
    #[inline]
    pub fn offered(&mut self, class: u16, now: Instant) {
        self.offered += 1;
        self.rec.offered(now, self.classes[class as usize]);
    }

    /// An attempt passed the gateway's checks.
    #[inline]
    pub fn admitted(&mut self, class: u16, now: Instant) {
        self.rec.admitted(now, self.classes[class as usize]);
    }

    /// An attempt succeeded, `latency` after it was meant to be sent.
    #[inline]
    pub fn completed(&mut self, class: u16, now: Instant, latency: rampart_time::Duration) {
        self.completed += 1;
        self.rec
            .completed(now, self.classes[class as usize], latency);
    }

    /// An attempt failed.
    #[inline]
    pub fn rejected(&mut self, class: u16, why: u16, now: Instant) {
        self.rejected += 1;
        self.rec.rejected(
            now,
            self.classes[class as usize],
            self.reasons[why as usize],
        );
    }

    /// Rejection reason names, by index.
    pub(crate) fn reason_names(&self) -> &[String] {
        self.rec.names().reasons()
    }

    /// Attempts offered, completed and rejected so far.
    pub fn attempt_totals(&self) -> (u64, u64, u64) {
        (self.offered, self.completed, self.rejected)
    }

    /// Sets the fleet gauges for the interval ending now.
    #[allow(clippy::too_many_arguments)]
    pub fn gauges(
        &mut self,
        by_state: &[u32; 7],
        desired: u32,
        utilisation: f64,
        queue_sum: f64,
        queue_max: f64,
        backend_utilisation: f64,
        token_utilisation: f64,
        billed: f64,
        in_flight: f64,
    ) {
        let mut values = [0.0; GAUGES.len()];
        for (i, n) in by_state.iter().enumerate() {
            values[i] = f64::from(*n);
        }
        values[7] = f64::from(desired);
        values[8] = utilisation;
        values[9] = queue_sum;
        values[10] = queue_max;
        values[11] = backend_utilisation;
        values[12] = token_utilisation;
        values[13] = billed;
        values[14] = in_flight;
        for (g, v) in self.gauges.iter().zip(values) {
            self.rec.set_gauge(*g, v);
        }
    }

    /// Which policy version each live instance runs.
    pub fn instance_versions(&mut self, versions: &[(u32, u32)]) {
        self.rec.set_instance_versions(versions);
    }

    /// Closes the interval ending at `t` and streams its row.
    pub fn close_interval(&mut self, t: Instant) {
        let mut sink = SinkRef {
            sink: &mut self.sink,
            error: &mut self.sink_error,
        };
        let Ok(()) = self.rec.close_interval(t, &mut sink);
    }

    /// The run's metrics, and the first sink error if writing rows failed.
    pub fn finish(mut self, end: Instant) -> (RunMetrics, Option<std::io::Error>) {
        let mut sink = SinkRef {
            sink: &mut self.sink,
            error: &mut self.sink_error,
        };
        let Ok(m) = self.rec.finish(end, &mut sink);
        (m, self.sink_error)
    }
}

/// A sink that drops rows.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl RowSink for DiscardSink {
    type Error = std::io::Error;
    fn row(&mut self, _: &Row<'_>) -> Result<(), std::io::Error> {
        Ok(())
    }
}
