//! The agent: the gateway's end of the control plane.
//!
//! [`run_agent`] keeps one session to the plane open: it says hello with
//! what its [`Host`] holds, applies each push through the host, reports the
//! host's status after every change and at every heartbeat, and reconnects
//! with capped, jittered backoff whenever the session ends. A session ends
//! on any error, on a frame the host refuses, on silence longer than the
//! idle timeout (a clogged link never breaks TCP by itself), and when a
//! heartbeat shows the agent holds less than the plane has sent (a frame it
//! should have had is missing). Every resync starts from what the host
//! actually holds, so a session's end loses nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use rampart_time::Duration;
use tokio::net::TcpStream;

use crate::plane::{send_all, std_duration};
use crate::proto::{Hello, Link, Status, ToAgent, ToPlane};

/// What the agent drives: the gateway instance's verifier, keys and policy.
pub trait Host: Send + Sync + 'static {
    /// What the instance holds now. The policy attestation is the hash of
    /// the bundle in use.
    fn status(&self) -> Status;
    /// Applies a push ([`ToAgent::Revocations`], [`ToAgent::Jwks`] or
    /// [`ToAgent::Policy`]). An error ends the session, which resyncs from
    /// what the host holds; a policy the host refuses to load is not an
    /// error (it keeps its policy and the plane sees the drift).
    fn apply(&self, msg: &ToAgent) -> Result<(), String>;
    /// The plane answered a status report sent `sent_ago` ago: everything
    /// it knew when that report reached it has been pushed, and the
    /// instance's lease runs from the report's sending.
    fn renewed(&self, sent_ago: Duration);
    /// Whether the plane can be reached: a driver's fault injection. While
    /// it is false the agent opens no session and ends an open one within
    /// a heartbeat, as a cut link would.
    fn reachable(&self) -> bool {
        true
    }
}

/// The agent's address and timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    /// The plane.
    pub plane: SocketAddr,
    /// This instance's index.
    pub instance: u32,
    /// This run of the instance; a restart takes a larger one.
    pub incarnation: u64,
    /// Status is sent at least this often.
    pub heartbeat: Duration,
    /// A session silent this long is closed and reopened.
    pub idle_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt up to
    /// `backoff_max`, each with up to half again of jitter.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl AgentConfig {
    /// An agent for `instance` of the plane at `plane`, with the plane's
    /// default timing.
    pub fn new(plane: SocketAddr, instance: u32, incarnation: u64) -> AgentConfig {
        AgentConfig {
            plane,
            instance,
            incarnation,
            heartbeat: Duration::from_millis(250),
            idle_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
        }
    }

    /// The delay before reconnect attempt `attempt` (1-based). The jitter
    /// is a hash of the instance, incarnation and attempt: agents that lost
    /// the plane together do not return together, and no OS randomness
    /// enters a deterministic run.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .backoff_min
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
        let base = if doubled > self.backoff_max {
            self.backoff_max
        } else {
            doubled
        };
        let h = splitmix64(
            (u64::from(self.instance) << 40) ^ (self.incarnation << 20) ^ u64::from(attempt),
        );
        base + Duration::from_nanos(h % (base.as_nanos() / 2 + 1))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The connection could not be made.
    Unreachable,
    /// The plane closed it, or it failed.
    Closed,
    /// Nothing heard within the idle timeout.
    Silent,
    /// The host refused a push.
    Refused,
    /// A heartbeat showed a frame missing.
    Behind,
}

/// Runs the agent until the task is dropped. `on_end` hears how each
/// session ended (for metrics and logs).
pub async fn run_agent<H: Host>(config: AgentConfig, host: Arc<H>, on_end: impl Fn(Ended)) {
    let mut attempt = 0u32;
    loop {
        let idle = std_duration(config.idle_timeout);
        let ended = if host.reachable() {
            match tokio::time::timeout(idle, TcpStream::connect(config.plane)).await {
                Ok(Ok(stream)) => session(&config, &*host, stream, &mut attempt).await,
                _ => Ended::Unreachable,
            }
        } else {
            Ended::Unreachable
        };
        on_end(ended);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(std_duration(config.backoff(attempt))).await;
    }
}

async fn session<H: Host>(
    config: &AgentConfig,
    host: &H,
    stream: TcpStream,
    attempt: &mut u32,
) -> Ended {
    let idle = std_duration(config.idle_timeout);
    let beat = std_duration(config.heartbeat);
    let mut link = Link::new(stream);
    let hello = ToPlane::Hello(Hello {
        instance: config.instance,
        incarnation: config.incarnation,
        status: host.status(),
    });
    if !send_all(&mut link, std::slice::from_ref(&hello), idle).await {
        return Ended::Closed;
    }
    let mut reported: Option<Status> = None;
    let mut heard = tokio::time::Instant::now();
    let mut next_beat = heard + beat;
    let mut reports = Reports::default();
    loop {
        if !host.reachable() {
            return Ended::Unreachable;
        }
        tokio::select! {
            biased;
            msg = link.recv::<ToAgent>() => {
                let Ok(Some(msg)) = msg else {
                    return Ended::Closed;
                };
                heard = tokio::time::Instant::now();
                match &msg {
                    ToAgent::Heartbeat { sent, echo } => {
                        let held = host.status();
                        if held.revocation_version < sent.revocation
                            || held.jwks_version < sent.jwks
                        {
                            return Ended::Behind;
                        }
                        if let Some(at) = reports.sent_at(*echo) {
                            host.renewed(Duration::from(heard.saturating_duration_since(at)));
                            // A session that renewed the lease is a
                            // success: the next loss backs off from the
                            // minimum again. (Merely delivering frames is
                            // not: a host that refuses every push would
                            // otherwise reconnect at the minimum forever.)
                            *attempt = 0;
                        }
                    }
                    push => {
                        if host.apply(push).is_err() {
                            return Ended::Refused;
                        }
                    }
                }
                let status = host.status();
                if reported.as_ref() != Some(&status) {
                    let msg = reports.next(status.clone());
                    if !send_all(&mut link, std::slice::from_ref(&msg), idle).await {
                        return Ended::Closed;
                    }
                    reported = Some(status);
                }
            }
            () = tokio::time::sleep_until(heard + idle) => return Ended::Silent,
            () = tokio::time::sleep_until(next_beat) => {
                next_beat = tokio::time::Instant::now() + beat;
                let status = host.status();
                let msg = reports.next(status.clone());
                if !send_all(&mut link, std::slice::from_ref(&msg), idle).await {
                    return Ended::Closed;
                }
                reported = Some(status);
            }
        }
    }
}

/// The send times of a session's recent status reports, for the lease.
#[derive(Default)]
struct Reports {
    seq: u64,
    // Oldest first; a heartbeat echoes one of the last few reports, older
    // ones are dropped so the list stays bounded.
    sent: std::collections::VecDeque<(u64, tokio::time::Instant)>,
}

impl Reports {
    const KEPT: usize = 64;

    fn next(&mut self, status: Status) -> ToPlane {
        self.seq += 1;
        if self.sent.len() == Self::KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((self.seq, tokio::time::Instant::now()));
        ToPlane::Status {
            seq: self.seq,
            status,
        }
    }

    fn sent_at(&self, seq: u64) -> Option<tokio::time::Instant> {
        self.sent.iter().find(|(s, _)| *s == seq).map(|(_, at)| *at)
    }
}
