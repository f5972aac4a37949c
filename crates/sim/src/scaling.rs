//! The scaling group's controller and its metrics pipeline.

use std::collections::VecDeque;

use rampart_autoscale::Controller;
use rampart_time::Instant;
use rampart_world::ScalingMetric;

/// A boxed controller that can be printed.
pub struct ControllerBox(pub Box<dyn Controller>);

impl std::fmt::Debug for ControllerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Controller")
    }
}

/// Whether a controller reads CPU as cores (the HPA's `Resource cpu`) or as
/// percent of the instance (AWS's `CPUUtilization`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuUnit {
    /// Cores in use.
    Cores,
    /// Percent of the instance's cores.
    Percent,
}

/// One instance's sample from one scrape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Instance id.
    pub instance: u32,
    /// Cores in use over the scrape window.
    pub cpu_cores: f64,
    /// Cores the instance has.
    pub cores: f64,
    /// Requests per second arriving over the window.
    pub rps: f64,
    /// Requests waiting at the scrape.
    pub queue_len: f64,
}

impl Sample {
    /// The value of one named metric, in the controller's unit.
    pub fn metric(&self, m: ScalingMetric, cpu: CpuUnit) -> f64 {
        match (m, cpu) {
            (ScalingMetric::Cpu, CpuUnit::Cores) => self.cpu_cores,
            (ScalingMetric::Cpu, CpuUnit::Percent) => 100.0 * self.cpu_cores / self.cores,
            (ScalingMetric::RequestsPerSecond, _) => self.rps,
            (ScalingMetric::QueueLength, _) => self.queue_len,
        }
    }
}

/// Scrapes on their way to the controller: each arrives after the
/// aggregation delay; the controller sees only the newest that has arrived.
#[derive(Debug, Default)]
pub struct Pipeline {
    in_transit: VecDeque<(Instant, Vec<Sample>)>,
    /// The newest scrape that has arrived, and when it was taken.
    pub latest: Option<(Instant, Vec<Sample>)>,
}

impl Pipeline {
    /// A scrape taken at `at` leaves for the controller.
    pub fn send(&mut self, at: Instant, samples: Vec<Sample>) {
        self.in_transit.push_back((at, samples));
    }

    /// The oldest scrape in transit arrives.
    pub fn arrive(&mut self) {
        if let Some(s) = self.in_transit.pop_front() {
            self.latest = Some(s);
        }
    }

    /// The latest sample for an instance.
    pub fn sample_for(&self, instance: u32) -> Option<(Instant, &Sample)> {
        let (at, samples) = self.latest.as_ref()?;
        // Samples are pushed in instance order, so a binary search finds it.
        let i = samples
            .binary_search_by_key(&instance, |s| s.instance)
            .ok()?;
        Some((*at, &samples[i]))
    }
}
