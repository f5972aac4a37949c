//! The scaling group's controller; its metrics pipeline is
//! [`rampart_autoscale::pipeline`], shared with the live driver.

use rampart_autoscale::Controller;
pub use rampart_autoscale::pipeline::{CpuUnit, Pipeline, Sample};

/// A boxed controller that can be printed.
pub struct ControllerBox(pub Box<dyn Controller>);

impl std::fmt::Debug for ControllerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Controller")
    }
}
