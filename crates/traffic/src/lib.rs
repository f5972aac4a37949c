//! The traffic model: *when* legitimate clients send requests and *what*
//! they send.
//!
//! Rampart's simulator (and, later, a live load generator) asks this crate
//! for send times, routes, think times and retry delays. Everything here is
//! a pure function or a small state machine: it takes `now` and a
//! `&mut ActorRng` from the caller and never reads a clock, a file or the OS
//! RNG, so the same seed gives the same traffic on every machine. For the
//! same reason the diurnal shape takes its `sin` and `cos` from the [`libm`]
//! crate rather than the platform's math library, whose last bit can differ
//! between platforms (see `rampart_rng`).
//!
//! ```text
//!   scenario file ──serde──▶ TrafficSpec ──validate()──▶ Vec<FieldError> (all of them, with paths)
//!                              │
//!        ┌─────────────────────┼──────────────────────┬─────────────────┐
//!        ▼                     ▼                      ▼                 ▼
//!   Model::Open           Model::Closed          Model::Trace       routes / retry
//!   Shape + Process       users + ThinkTime      parse_trace(text)  RouteMix::pick
//!   Arrivals::next        Closed::think          TraceCursor        RetryPolicy::next_delay
//! ```
//!
//! # Author
//!
//! A traffic entry is plain data, written in TOML with human units
//! ([`units`]: `"10k/s"`, `"64KiB"`, `"5x"`, `"99.9%"`; durations such as
//! `"250ms"` come from `rampart_time`):
//!
//! ```
//! use rampart_traffic::{TrafficSpec, validate_traffic};
//!
//! let entry: TrafficSpec = toml::from_str(r#"
//!     name = "shoppers"
//!     accounts = 5000
//!     timeout = "5s"
//!     retry = { max_attempts = 3, backoff = { kind = "exponential", base = "100ms", cap = "2s" } }
//!     model = { kind = "open", process = "poisson", shape = { kind = "surge", base = "1k/s", multiplier = "5x", start = "30s", duration = "10s" } }
//!     routes = [
//!         { name = "login",  method = "POST", path = "/login",  weight = 0, backend_cost = "2ms", login = true },
//!         { name = "orders", path = "/orders", weight = 9, backend_cost = "5ms", auth = true, response_bytes = "8KiB" },
//!         { name = "upload", method = "POST", path = "/upload", weight = 1, backend_cost = "20ms", auth = true, request_bytes = "64KiB" },
//!     ]
//! "#).unwrap();
//! validate_traffic(std::slice::from_ref(&entry)).unwrap();
//! # let _ = entry;
//! ```
//!
//! # Assemble and run
//!
//! The driver builds the generator and the mix once, then asks for one
//! arrival at a time, each time with the time of the one just handled:
//!
//! ```
//! # use rampart_traffic::TrafficSpec;
//! # let entry: TrafficSpec = toml::from_str(r#"
//! #     name = "shoppers"
//! #     model = { kind = "open", shape = { kind = "surge", base = "1k/s", multiplier = "5x", start = "30s", duration = "10s" } }
//! #     routes = [{ name = "orders", path = "/orders", weight = 1, backend_cost = "5ms" }]
//! # "#).unwrap();
//! use rampart_rng::actor_rng;
//! use rampart_time::{Duration, Instant};
//!
//! let mut rng = actor_rng(42, "traffic/shoppers");
//! let mut arrivals = entry.arrivals(Instant::ZERO).expect("an open model");
//! let mix = entry.route_mix().unwrap();
//!
//! let surge = Instant::ZERO + Duration::from_secs(30);
//! let (mut now, mut in_surge) = (Instant::ZERO, 0u32);
//! while let Some(at) = arrivals.next(now, &mut rng) {
//!     if at >= surge + Duration::from_secs(10) { break; }
//!     let route = mix.route(mix.pick(&mut rng));
//!     assert_eq!(route.name, "orders");
//!     if at >= surge { in_surge += 1; }
//!     now = at;
//! }
//! // 5k/s for 10 s: about 50,000 arrivals (Poisson: ± a few hundred).
//! assert!((48_500..51_500).contains(&in_surge), "{in_surge}");
//! ```
//!
//! A failed attempt asks the retry policy how long to wait
//! ([`RetryPolicy::next_delay`]; `None` means give up); a closed-model user
//! asks [`Closed::think`]; a trace entry's text goes through [`parse_trace`]
//! and [`compile_trace`] into a [`TraceCursor`].
//!
//! # What belongs here and what does not
//!
//! This crate decides the *intended* send time of each request. The
//! simulator measures latency from that intended time, not from when the
//! request actually left (so there is no coordinated omission), runs logins
//! and token refreshes against the token service, and decides which
//! failures are retried.

pub mod arrivals;
pub mod closed;
mod error;
pub mod mix;
pub mod retry;
pub mod shape;
pub mod spec;
pub mod trace;
pub mod units;

pub use arrivals::{Arrivals, Process};
pub use closed::{Closed, ThinkTime};
pub use error::FieldError;
pub use mix::{Method, Route, RouteId, RouteMix};
pub use retry::{Backoff, ClientTimeout, Jitter, RetryPolicy};
pub use shape::{Shape, Stage};
pub use spec::{ClientSpec, Model, TrafficSpec, validate_traffic};
pub use trace::{TraceCursor, TraceError, TraceEvent, TraceRow, compile_trace, parse_trace};
pub use units::{ByteSize, ParseUnitError, Percent, Rate, Ratio};
