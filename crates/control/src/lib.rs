//! Rampart's control plane: what keeps a fleet of gateways in step.
//!
//! The plane ([`plane`]) pushes the token service's revocations and JWKS and
//! the operator's policy rollouts to an agent ([`agent`]) inside every
//! gateway instance; agents report what they hold and attest the hash of the
//! policy they serve under; from those reports the plane tells the balancer
//! which instances it may route to and reports drift. The protocol is
//! length-delimited JSON over TCP ([`proto`]).
//!
//! The code is written against tokio's API only, through `madsim-tokio`: a
//! normal build runs on tokio, and a build with `RUSTFLAGS="--cfg madsim"`
//! runs the same code on madsim's deterministic time, tasks and network,
//! where the tests kill and restart nodes, partition, clog and slow links,
//! and skew the clocks the gateways' verifiers read (madsim keeps one clock
//! for all nodes), over a thousand seeds per scenario. The state machines
//! ([`plane::Plane`], the agent's [`agent::Host`]) take `now` from their
//! caller; the only clock read here is tokio's, for timeouts and heartbeats.
//! `tokio::sync::watch` is avoided (madsim does not make it deterministic)
//! and every `select!` is `biased`.

pub mod agent;
pub mod plane;
pub mod policy;
pub mod proto;

pub use agent::{AgentConfig, Ended, Host, run_agent};
pub use plane::{AgentView, Drift, Plane, PlaneConfig, PlaneServer, PlaneStats, Refused, Source};
pub use policy::{PolicyBundle, PolicyHash};
pub use proto::{Attestation, Hello, Status, ToAgent, ToPlane, Versions};

#[cfg(test)]
mod tests;
