//! rampart-report (doc written below).

mod chart;
mod compare;
pub mod downsample;
pub mod escape;
mod fmt;
mod keys;
mod model;
mod page;
mod run;

#[cfg(test)]
mod tests;

pub use compare::{pareto_front, render_compare, render_sweep};
pub use model::{Annotation, AnnotationKind, AssertionResult, Cost, RunReport, SweepRow};
pub use run::render_run;
