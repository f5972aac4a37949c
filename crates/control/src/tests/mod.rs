//! The control plane's tests: the state machine on its own, then the whole
//! plane and its agents in a fleet, under madsim (`--cfg madsim`, a thousand
//! seeds per scenario) or on tokio over loopback.

mod unit;
mod world;

#[cfg(madsim)]
mod sim;

#[cfg(not(madsim))]
mod real;
