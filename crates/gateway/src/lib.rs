//! One gateway instance's security decisions, sans-IO.
//!
//! Both drivers run requests through this crate: the simulator's world
//! (`rampart-sim`) on virtual time, and the live gateway (`rampart-live`)
//! as one tower layer per stage on the wall clock. Neither the cores nor
//! this crate learn which driver calls them; both take `now` and the
//! request's facts and return a decision.
//!
//! - [`CompiledPolicy`]: a policy bundle compiled once per version.
//! - [`Cores`]: an instance's own stateful cores (limiters, verifier and
//!   token cache, abuse detector), built and hot-reloaded from a bundle.
//! - The stages, in the order every request meets them: [`rate_limit`],
//!   [`authenticate`], [`inspect`], [`abuse`]. The first that rejects ends
//!   the request with a [`Rejected`], which names its HTTP status and the
//!   response headers ([`Rejected::status`], [`response_headers`]).

mod policy;
mod stages;

pub use policy::{BundleError, CompiledPolicy, FINGERPRINT_SEED};
pub use stages::{
    Bearer, Cores, Inspected, Rejected, abuse, authenticate, inspect, rate_limit, response_headers,
    stops,
};
