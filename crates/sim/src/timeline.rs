//! The run's part of the timeline: what only the run knows (which instance
//! a crash took, each drift reload and each replacement), in a bounded
//! buffer. What the scenario schedules is `rampart_world::planned`.

use rampart_world::TimelineEvent;

/// Most runtime entries a run keeps; later ones are counted in
/// [`crate::RunOutput::timeline_dropped`]. A drift detector reloading a
/// large fleet after every rollout stays far below it.
pub(crate) const TIMELINE_MAX: usize = 10_000;

/// The bounded runtime part of the timeline.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    pub(crate) events: Vec<TimelineEvent>,
    pub(crate) dropped: u64,
}

impl Timeline {
    pub(crate) fn push(&mut self, e: TimelineEvent) {
        if self.events.len() < TIMELINE_MAX {
            self.events.push(e);
        } else {
            self.dropped += 1;
        }
    }
}
