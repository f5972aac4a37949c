//! Rampart's live testbed: the same sans-IO cores the simulator runs,
//! behind real sockets.
//!
//! The simulator drives `rampart-auth`, `rampart-ratelimit`, `rampart-waf`
//! and `rampart-autoscale` on virtual time; this crate drives them on tokio
//! and hyper with the wall clock. The clock enters here and only here
//! ([`clock`]); the cores never learn which driver calls them.
//!
//! What exists:
//!
//! | piece | module | endpoints |
//! |---|---|---|
//! | gateway | [`gateway`] | the stages of `rampart-gateway` as tower layers, then a pooled proxy; `/healthz`, `/attest`, `/metrics` |
//! | a scenario's edge on loopback | [`fleet`] | token service, gateways, balancer, backend |
//! | L7 balancer | [`balancer`] | round robin, least outstanding, power of two choices; health checks; zero-trust admission by attested policy hash |
//! | backend stub | [`backend`] | the scenario's routes, with its service times, concurrency, queue and overload errors |
//! | load generator | [`load`] | the scenario's open traffic, without coordinated omission |
//! | attackers | [`attack`] | every `[[attack]]` kind on real sockets, and the `[control]` token replays |
//! | scaler | [`scaler`] | the scenario's controller on scraped `/metrics`, the lifecycle, fleet faults |
//! | policy rollouts, drift detector | [`rollout`] | through the token service's control plane |
//! | live view | [`dashboard`] | `GET /` (a self-contained page), `GET /events` (the run's rows as server-sent events) |
//! | token service | [`token_service`] | `POST /login`, `POST /token/refresh`, `POST /revoke` (RFC 7009), `POST /introspect` (RFC 7662), `GET /.well-known/jwks.json`, `GET /revocations?since=N` (poll), `GET /revocations/stream?since=N` (server-sent events) |
//!
//! Every server binds where it is told (tests use `127.0.0.1:0`), caps what
//! a client can make it hold (request bodies, header read time, feed
//! subscribers), and shuts down when its handle is dropped or asked to.

pub mod attack;
pub mod backend;
pub mod balancer;
mod client;
pub mod clock;
pub mod dashboard;
pub mod fleet;
pub mod gateway;
mod h1;
mod http;
pub mod load;
mod pace;
mod pool;
mod replay;
pub mod rollout;
pub mod scaler;
pub mod token_service;

#[cfg(test)]
mod tests;
