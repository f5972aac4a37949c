//! The world description of Rampart: pure serde data and its validation, no
//! runtime, shared by the simulator (`rampart-sim`) and the live driver.
//!
//! A world is what a scenario file describes: the fleet (load balancer,
//! gateway instances and their modelled stage costs, backend, network), the
//! scaling group and its controller, the token service, the policy bundle
//! every instance boots with, the legit traffic, the attackers, the faults
//! and the control plane. This crate holds those types, their defaults and
//! [`WorldConfig::validate`], which reports every problem at once with its
//! field path. It runs nothing: no event loop, no clock, no file, no
//! network. Validation builds the sans-IO cores' own configurations through
//! their constructors (rate-limit rules, inspector, abuse detector,
//! autoscaling controller), so a world that validates is one either driver
//! can build.
//!
//! ```text
//!   scenario file ──► rampart-scenario ──► WorldConfig (this crate)
//!                                            │ validate()
//!                        ┌───────────────────┴──────────────────┐
//!                        ▼                                      ▼
//!               rampart-sim (virtual time)           live driver (tokio, hyper)
//! ```
//!
//! # Author and validate
//!
//! ```
//! use rampart_world::WorldConfig;
//!
//! let mut cfg: WorldConfig = toml::from_str(r#"
//!     [run]
//!     name = "doc"
//!     duration = "20s"
//!
//!     [[traffic]]
//!     name = "shoppers"
//!     accounts = 100
//!     model = { kind = "open", shape = { kind = "constant", rate = "200/s" } }
//!     routes = [
//!         { name = "login", method = "POST", path = "/login", weight = 0.0, backend_cost = "1ms", login = true },
//!         { name = "browse", path = "/api/items", weight = 1.0, auth = true, backend_cost = "5ms" },
//!     ]
//! "#).unwrap();
//! // Everything left out has a default a platform engineer would recognise.
//! assert_eq!(cfg.fleet.gateway.workers, 4);
//! assert!(cfg.validate().is_ok());
//!
//! // Every problem at once, each with its path into the file.
//! cfg.fleet.gateway.workers = 0;
//! cfg.scaling.initial = 0;
//! let errs = cfg.validate().unwrap_err();
//! let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
//! assert!(paths.contains(&"fleet.gateway.workers"));
//! assert!(paths.contains(&"scaling.initial"));
//! ```
//!
//! The policy bundle is content-hashed ([`PolicyBundle::content_hash`]):
//! equal bundles hash equally on every machine, which is what drift
//! detection compares. [`planned`] lists what a world schedules (surges,
//! attack and fault windows, rollouts, token events) for a report's time
//! axes.

mod attack;
mod config;
mod control;
mod fault;
mod monitoring;
mod policy;
mod timeline;

pub use attack::{AttackConfig, AttackKind, Forgery, HOSTS_PER_SUBNET, PayloadClass, Rotation};
pub use config::{
    BackendConfig, BuiltController, ControllerConfig, Errors, FieldError, FleetConfig,
    GatewayConfig, LbAlgorithm, LbConfig, MetricsPipelineConfig, NetworkConfig, PhaseConfig,
    RevocationSync, RunConfig, ScalingConfig, ScalingMetric, ServiceTime, SigningAlgorithm,
    StageCosts, TokenServiceConfig, WorldConfig,
};
pub use control::{
    AccountRef, AdminRevocation, AdmissionConfig, ControlConfig, DriftDetectorConfig,
    KeyLeakConfig, PolicyOverrides, Remediation, RevocationTargetConfig, RolloutConfig,
    SkewDirection, TokenFault, TokenReplayConfig, rollout_bundles,
};
pub use fault::{FaultConfig, FaultWindows, TokenFaults};
pub use monitoring::{Delay, Detection, MonitoringConfig};
pub use policy::PolicyBundle;
pub use timeline::{TimelineEvent, TimelineKind, planned};
