//! The gateway's `/metrics`, in OpenMetrics text (`prometheus-client`).
//!
//! Every label's values come from a closed set: route names from the route
//! table plus `unmatched`, outcomes, and the shared rejection reasons, so
//! no client can grow the series count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's name, or `unmatched`.
    pub route: Arc<String>,
    /// `ok` (the upstream answered), `rejected` (a stage refused it),
    /// `error` (the upstream failed or timed out), `refused` (its body was
    /// refused: too large, too slow, broken).
    pub outcome: &'static str,
    /// The stage's reason on a rejection, else the outcome.
    pub reason: &'static str,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's name, or `unmatched`.
    pub route: Arc<String>,
}

/// Labels of the policy info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// The author's version label.
    pub version: String,
    /// The content hash, hex.
    pub hash: String,
}

fn latency_histogram() -> Histogram {
    // 50 us to about 6.5 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
}

/// Every series the gateway exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route, outcome and reason.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from the request's headers to its answer's headers, by route.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// The gateway's own time per request (the answer's time less the
    /// upstream's), by route.
    pub gateway_time: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests in flight.
    pub in_flight: Gauge,
    /// Connections open.
    pub connections: Gauge,
    /// Connections closed at once because the cap was reached.
    pub connections_refused: Counter,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: Counter,
    /// Seconds spent in the gateway's own stages (not waiting upstream).
    pub busy_seconds: prometheus_client::metrics::counter::Counter<f64, AtomicU64>,
    /// Busy seconds per wall second since the previous scrape, over the
    /// machine's cores.
    pub busy_fraction: Gauge<f64, AtomicU64>,
    /// 1 for the policy in force.
    pub policy: Family<PolicyLabels, Gauge>,
    /// Policy reloads refused (the old policy stayed).
    pub reloads_refused: Counter,
    /// The revocation version the verifier has applied.
    pub revocation_version: Gauge,
    /// Revocation feed reconnects.
    pub feed_reconnects: Counter,
    /// Tokens in the verified-token cache.
    pub token_cache_entries: Gauge,
    /// Answers by outcome: `[ok, rejected, error, refused]`.
    pub totals: [AtomicU64; 4],
    last_scrape: Mutex<(std::time::Instant, f64)>,
}

/// The outcomes, in [`Metrics::totals`] order.
pub const OUTCOMES: [&str; 4] = ["ok", "rejected", "error", "refused"];

impl Metrics {
    /// A registry with every series, for instance `instance`.
    pub fn new(instance: u32) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "rampart_gateway",
            [(
                std::borrow::Cow::Borrowed("instance"),
                std::borrow::Cow::Owned(instance.to_string()),
            )]
            .into_iter(),
        );
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            gateway_time: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            connections: Gauge::default(),
            connections_refused: Counter::default(),
            tls_failures: Counter::default(),
            busy_seconds: Default::default(),
            busy_fraction: Default::default(),
            policy: Family::default(),
            reloads_refused: Counter::default(),
            revocation_version: Gauge::default(),
            feed_reconnects: Counter::default(),
            token_cache_entries: Gauge::default(),
            totals: Default::default(),
            last_scrape: Mutex::new((std::time::Instant::now(), 0.0)),
            registry: Registry::default(),
        };
        registry.register("requests", "Requests answered", m.requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to answer headers",
            m.latency.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "The gateway's own time per request, without the upstream's",
            m.gateway_time.clone(),
        );
        registry.register("in_flight", "Requests in flight", m.in_flight.clone());
        registry.register("connections", "Connections open", m.connections.clone());
        registry.register(
            "connections_refused",
            "Connections closed at the cap",
            m.connections_refused.clone(),
        );
        registry.register(
            "tls_failures",
            "TLS handshakes failed or timed out",
            m.tls_failures.clone(),
        );
        registry.register(
            "busy_seconds",
            "Seconds spent in the gateway's own stages",
            m.busy_seconds.clone(),
        );
        registry.register(
            "busy_fraction",
            "Busy seconds per wall second per core since the last scrape",
            m.busy_fraction.clone(),
        );
        registry.register("policy", "The policy in force", m.policy.clone());
        registry.register(
            "policy_reloads_refused",
            "Policy reloads refused",
            m.reloads_refused.clone(),
        );
        registry.register(
            "revocation_version",
            "Revocation version applied",
            m.revocation_version.clone(),
        );
        registry.register(
            "revocation_feed_reconnects",
            "Revocation feed reconnects",
            m.feed_reconnects.clone(),
        );
        registry.register(
            "token_cache_entries",
            "Verified tokens cached",
            m.token_cache_entries.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text, refreshing the busy fraction first.
    pub fn encode(&self) -> String {
        let busy = self.busy_seconds.get();
        {
            let mut last = self
                .last_scrape
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let wall = last.0.elapsed().as_secs_f64();
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            if wall > 0.0 {
                self.busy_fraction
                    .set(((busy - last.1) / wall / cores).clamp(0.0, 1.0));
            }
            *last = (std::time::Instant::now(), busy);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Metrics {
    /// Answers with `outcome` so far (one of [`OUTCOMES`]).
    pub fn total(&self, outcome: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.totals[i].load(Ordering::Relaxed))
    }
}

/// Adds `d` seconds to a float counter.
pub(crate) fn add_seconds(c: &Counter<f64, AtomicU64>, d: std::time::Duration) {
    c.inc_by(d.as_secs_f64());
}
