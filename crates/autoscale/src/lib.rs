//! Scaling controllers with the real semantics of Kubernetes HPA and AWS Auto
//! Scaling, written sans-IO.
//!
//! (Tutorial docs are filled in below.)

#![forbid(unsafe_code)]

pub mod aws;
pub mod error;
pub mod hpa;
pub mod lifecycle;
pub mod observe;
pub mod schedule;

#[cfg(test)]
mod aws_tests;
#[cfg(test)]
mod hpa_tests;

pub use error::{ConfigError, FieldError};
pub use hpa::{Hpa, HpaConfig};
pub use observe::{
    Controller, Decision, InstanceObservation, InstancePhase, Observation, Reason, ResourceRequests,
};
