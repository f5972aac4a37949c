//! Registration of everything the recorder counts: classes, rejection
//! reasons, counters, gauges and phases. Done once at setup; the ids it hands
//! out are small integers so the hot path indexes a `Vec` and never hashes.

use rampart_time::Instant;
use thiserror::Error;

/// A traffic class, such as `legit` or `attack.stuffing`. Index into the
/// [`Names`] it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClassId(pub(crate) u16);

/// A rejection reason, such as `rate_limited` or `timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReasonId(pub(crate) u16);

/// A monotonic event counter, such as `security.takeovers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterId(pub(crate) u16);

/// A sampled quantity, such as `instances.in_service`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GaugeId(pub(crate) u16);

/// A named phase of the scenario, such as `surge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhaseId(pub(crate) u16);

macro_rules! id_index {
    ($($t:ty),*) => {$(
        impl $t {
            /// The position in registration order.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}
id_index!(ClassId, ReasonId, CounterId, GaugeId, PhaseId);

/// A named time window `[start, end)`. An event belongs to the phase when
/// its time is at or after `start` and before `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// The name assertions use in `during = "..."`.
    pub name: String,
    /// First instant inside the phase.
    pub start: Instant,
    /// First instant after the phase.
    pub end: Instant,
}

impl Phase {
    /// Whether an event at `t` belongs to this phase.
    pub fn contains(&self, t: Instant) -> bool {
        self.start <= t && t < self.end
    }
}

/// Why a name could not be registered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NamesError {
    /// Names are keys in `metrics.json` and columns in the CSV, so they
    /// cannot be empty.
    #[error("{kind} name is empty")]
    Empty {
        /// `class`, `reason`, `counter`, `gauge` or `phase`.
        kind: &'static str,
    },
    /// Two registrations of the same kind used the same name.
    #[error("{kind} `{name}` is registered twice")]
    Duplicate {
        /// `class`, `reason`, `counter`, `gauge` or `phase`.
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// Ids are `u16`, which bounds each kind at 65 535 names.
    #[error("too many {kind} names (at most {max})")]
    TooMany {
        /// `class`, `reason`, `counter`, `gauge` or `phase`.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// A phase must end after it starts.
    #[error("phase `{name}` ends at {end} which is not after its start {start}")]
    EmptyPhase {
        /// The phase.
        name: String,
        /// Its start.
        start: Instant,
        /// Its end.
        end: Instant,
    },
}

/// Everything a [`Recorder`](crate::Recorder) counts, in registration
/// order. The order is the column order of the CSV and of the plot series,
/// so register in a deterministic order (scenario order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub(crate) classes: Vec<String>,
    pub(crate) reasons: Vec<String>,
    pub(crate) counters: Vec<String>,
    pub(crate) gauges: Vec<String>,
    pub(crate) phases: Vec<Phase>,
}

const ID_MAX: usize = u16::MAX as usize;

fn register(list: &mut Vec<String>, kind: &'static str, name: &str) -> Result<u16, NamesError> {
    if name.is_empty() {
        return Err(NamesError::Empty { kind });
    }
    if list.iter().any(|n| n == name) {
        return Err(NamesError::Duplicate {
            kind,
            name: name.to_owned(),
        });
    }
    if list.len() >= ID_MAX {
        return Err(NamesError::TooMany { kind, max: ID_MAX });
    }
    list.push(name.to_owned());
    Ok((list.len() - 1) as u16)
}

impl Names {
    /// No names yet.
    pub fn new() -> Names {
        Names::default()
    }

    /// Registers a traffic class. By convention class 0 is `legit`.
    pub fn add_class(&mut self, name: &str) -> Result<ClassId, NamesError> {
        register(&mut self.classes, "class", name).map(ClassId)
    }

    /// Registers a rejection reason.
    pub fn add_reason(&mut self, name: &str) -> Result<ReasonId, NamesError> {
        register(&mut self.reasons, "reason", name).map(ReasonId)
    }

    /// Registers a counter.
    pub fn add_counter(&mut self, name: &str) -> Result<CounterId, NamesError> {
        register(&mut self.counters, "counter", name).map(CounterId)
    }

    /// Registers a gauge.
    pub fn add_gauge(&mut self, name: &str) -> Result<GaugeId, NamesError> {
        register(&mut self.gauges, "gauge", name).map(GaugeId)
    }

    /// Registers a phase `[start, end)`. Phases may overlap.
    pub fn add_phase(
        &mut self,
        name: &str,
        start: Instant,
        end: Instant,
    ) -> Result<PhaseId, NamesError> {
        if end <= start {
            return Err(NamesError::EmptyPhase {
                name: name.to_owned(),
                start,
                end,
            });
        }
        let mut names: Vec<String> = self.phases.iter().map(|p| p.name.clone()).collect();
        let id = register(&mut names, "phase", name)?;
        self.phases.push(Phase {
            name: name.to_owned(),
            start,
            end,
        });
        Ok(PhaseId(id))
    }

    /// The id of a class, by name.
    pub fn class(&self, name: &str) -> Option<ClassId> {
        position(&self.classes, name).map(ClassId)
    }
    /// The id of a rejection reason, by name.
    pub fn reason(&self, name: &str) -> Option<ReasonId> {
        position(&self.reasons, name).map(ReasonId)
    }
    /// The id of a counter, by name.
    pub fn counter(&self, name: &str) -> Option<CounterId> {
        position(&self.counters, name).map(CounterId)
    }
    /// The id of a gauge, by name.
    pub fn gauge(&self, name: &str) -> Option<GaugeId> {
        position(&self.gauges, name).map(GaugeId)
    }
    /// The id of a phase, by name.
    pub fn phase(&self, name: &str) -> Option<PhaseId> {
        self.phases
            .iter()
            .position(|p| p.name == name)
            .map(|i| PhaseId(i as u16))
    }

    /// Class names in registration order.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// Rejection reasons in registration order.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
    /// Counter names in registration order.
    pub fn counters(&self) -> &[String] {
        &self.counters
    }
    /// Gauge names in registration order.
    pub fn gauges(&self) -> &[String] {
        &self.gauges
    }
    /// Phases in registration order.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }
}

fn position(list: &[String], name: &str) -> Option<u16> {
    list.iter().position(|n| n == name).map(|i| i as u16)
}
