//! The metrics pipeline between a fleet and its controller, as both
//! drivers run it: each scrape's per-instance [`Sample`]s leave for the
//! controller and arrive after the aggregation delay; the controller reads
//! only the newest scrape that has arrived.

use std::collections::VecDeque;

use rampart_time::Instant;
use serde::{Deserialize, Serialize};

/// Per-instance metrics the pipeline can feed a controller, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScalingMetric {
    /// CPU in cores for the HPA's `Resource cpu`; percent of the instance's
    /// cores for AWS controllers.
    Cpu,
    /// Requests per second arriving at the instance.
    RequestsPerSecond,
    /// Requests waiting in the instance's queue.
    QueueLength,
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
    /// A scrape taken at `at` leaves for the controller; `samples` are in
    /// instance order.
    pub fn send(&mut self, at: Instant, mut samples: Vec<Sample>) {
        samples.sort_by_key(|s| s.instance);
        self.in_transit.push_back((at, samples));
    }

    /// The oldest scrape in transit arrives.
    pub fn arrive(&mut self) {
        if let Some(s) = self.in_transit.pop_front() {
            self.latest = Some(s);
        }
    }

    /// Scrapes in transit.
    pub fn in_transit(&self) -> usize {
        self.in_transit.len()
    }

    /// The latest sample for an instance.
    pub fn sample_for(&self, instance: u32) -> Option<(Instant, &Sample)> {
        let (at, samples) = self.latest.as_ref()?;
        let i = samples
            .binary_search_by_key(&instance, |s| s.instance)
            .ok()?;
        Some((*at, &samples[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_time::Duration;

    #[test]
    fn the_controller_sees_the_newest_scrape_that_has_arrived_and_nothing_in_transit() {
        let s = |instance, rps| Sample {
            instance,
            cpu_cores: 0.5,
            cores: 2.0,
            rps,
            queue_len: 0.0,
        };
        let mut p = Pipeline::default();
        let t1 = Instant::ZERO + Duration::from_secs(15);
        p.send(t1, vec![s(2, 20.0), s(0, 10.0)]);
        assert_eq!(p.sample_for(0), None, "in transit");
        p.send(t1 + Duration::from_secs(15), vec![s(0, 30.0)]);
        assert_eq!(p.in_transit(), 2);
        p.arrive();
        assert_eq!(p.sample_for(0).map(|(at, x)| (at, x.rps)), Some((t1, 10.0)));
        assert_eq!(p.sample_for(2).map(|(_, x)| x.rps), Some(20.0));
        p.arrive();
        assert_eq!(p.sample_for(2), None, "gone from the newest scrape");
        assert_eq!(
            p.sample_for(0)
                .unwrap()
                .1
                .metric(ScalingMetric::Cpu, CpuUnit::Percent),
            25.0
        );
        assert_eq!(
            p.sample_for(0)
                .unwrap()
                .1
                .metric(ScalingMetric::Cpu, CpuUnit::Cores),
            0.5
        );
    }
}
