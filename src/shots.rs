//! Recording what the load generator's clients saw, for `rampart live` and
//! `rampart load`: every traffic class as `legit`, every attacker as its
//! own class `attack.NAME` with the simulator's outcome counters
//! (`blocked`, `takeovers`, `forged_accepted`; for a token replay
//! `accepted_after_revocation` and the gauge `exposure_max_ms`) and
//! `first_block_ms`, so
//! the report's security charts read a live run as they read a simulated
//! one.
//!
//! An answer's reason is the gateway's (`{"error": …}`) when it names one
//! of the simulator's reasons, else one from its status. Reasons past the
//! gateway's decision (`backend_error`, `timeout`, `login_failed`) count the
//! request as admitted first, as the simulator does. Counters only a
//! gateway can see (an attacker's CPU, payloads flagged in detection-only
//! mode) are not registered, rather than shown as zeros.

use std::collections::BTreeSet;

use rampart_live::load::{Hit, Sent, Shot};
use rampart_metrics::{ClassId, CounterId, GaugeId, Names, NamesError, ReasonId, Recorder};
use rampart_time::{Duration, Instant};

/// Reasons only a client sees, after the simulator's.
pub const CLIENT_REASONS: [&str; 4] = ["dropped", "connection_failed", "http_4xx", "http_5xx"];

/// Reasons that come after the gateway admitted the request.
const AFTER_ADMISSION: [&str; 4] = [
    "backend_error",
    "timeout",
    "login_failed",
    "connection_reset",
];

/// Registers the classes and reasons: `legit`, then one class and its
/// outcome counters per attacker (the last `replays` of them token
/// replays), the simulator's reasons and the client's.
///
/// With replays, the fleet-wide revocation names too, as the client sees
/// them (the replays' acceptances): `revoked.accepted`,
/// `revoked.accepted_after.<D>` per lag threshold, `revoked.exposure_max_ms`.
pub fn register(
    n: &mut Names,
    attackers: &[String],
    replays: usize,
    lag_thresholds: &[Duration],
) -> Result<(), NamesError> {
    if replays > 0 {
        n.add_counter("revoked.accepted")?;
        let mut lags = lag_thresholds.to_vec();
        lags.sort();
        lags.dedup();
        for d in lags {
            n.add_counter(&format!("revoked.accepted_after.{d}"))?;
        }
        n.add_gauge("revoked.exposure_max_ms")?;
    }
    if n.class("legit").is_none() {
        n.add_class("legit")?;
    }
    let first_replay = attackers.len().saturating_sub(replays);
    for (k, a) in attackers.iter().enumerate() {
        n.add_class(&format!("attack.{a}"))?;
        let outcomes: &[&str] = if k >= first_replay {
            &["blocked", "accepted_after_revocation"]
        } else {
            &["blocked", "takeovers", "forged_accepted"]
        };
        for c in outcomes {
            n.add_counter(&format!("attack.{a}.{c}"))?;
        }
        n.add_gauge(&format!("attack.{a}.first_block_ms"))?;
        if k >= first_replay {
            n.add_gauge(&format!("attack.{a}.exposure_max_ms"))?;
        }
    }
    for r in rampart_sim::reason::names()
        .iter()
        .map(String::as_str)
        .chain(CLIENT_REASONS)
    {
        if n.reason(r).is_none() {
            n.add_reason(r)?;
        }
    }
    Ok(())
}

struct Attacker {
    class: ClassId,
    blocked: CounterId,
    takeovers: Option<CounterId>,
    forged: Option<CounterId>,
    after_revocation: Option<CounterId>,
    exposure_max_ms: Option<GaugeId>,
    exposure_max: Duration,
    first_block_ms: GaugeId,
    start: Duration,
    blocked_once: bool,
    /// Target accounts taken over, so each counts once.
    taken: BTreeSet<u32>,
}

/// The fleet-wide revocation names.
struct Revoked {
    accepted: CounterId,
    after: Vec<(Duration, CounterId)>,
    exposure_max_ms: GaugeId,
    exposure_max: Duration,
}

/// Turns shots into recorder calls.
pub struct ShotRecorder {
    legit: ClassId,
    revoked: Option<Revoked>,
    /// Shot class index → attacker, past the traffic classes.
    n_classes: usize,
    attackers: Vec<Attacker>,
    /// The simulator's reason names, whose indices say what blocks.
    sim: Vec<String>,
}

impl ShotRecorder {
    /// For a run of `n_classes` traffic classes and these attackers (name,
    /// start), registered with [`register`].
    pub fn new(n: &Names, n_classes: usize, attackers: &[(String, Duration)]) -> ShotRecorder {
        let attackers = attackers
            .iter()
            .map(|(a, start)| Attacker {
                class: n.class(&format!("attack.{a}")).expect("registered"),
                blocked: n
                    .counter(&format!("attack.{a}.blocked"))
                    .expect("registered"),
                takeovers: n.counter(&format!("attack.{a}.takeovers")),
                forged: n.counter(&format!("attack.{a}.forged_accepted")),
                after_revocation: n.counter(&format!("attack.{a}.accepted_after_revocation")),
                exposure_max_ms: n.gauge(&format!("attack.{a}.exposure_max_ms")),
                exposure_max: Duration::ZERO,
                first_block_ms: n
                    .gauge(&format!("attack.{a}.first_block_ms"))
                    .expect("registered"),
                start: *start,
                blocked_once: false,
                taken: BTreeSet::new(),
            })
            .collect();
        let revoked = n.counter("revoked.accepted").map(|accepted| Revoked {
            accepted,
            after: n
                .counters()
                .iter()
                .filter_map(|c| {
                    let d = c.strip_prefix("revoked.accepted_after.")?.parse().ok()?;
                    Some((d, n.counter(c)?))
                })
                .collect(),
            exposure_max_ms: n
                .gauge("revoked.exposure_max_ms")
                .expect("registered with it"),
            exposure_max: Duration::ZERO,
        });
        ShotRecorder {
            legit: n.class("legit").expect("registered"),
            revoked,
            n_classes,
            attackers,
            sim: rampart_sim::reason::names(),
        }
    }

    /// One shot, stamped `now`: offered; then completed (2xx, latency from
    /// its intended send time) or rejected with its reason; an attacker's
    /// outcome counters.
    pub fn record(&mut self, rec: &mut Recorder, now: Instant, shot: &Shot) {
        let attacker = shot.class.checked_sub(self.n_classes);
        let class = attacker
            .and_then(|k| self.attackers.get(k))
            .map_or(self.legit, |a| a.class);
        rec.offered(now, class);
        match reason(rec, shot) {
            None => {
                rec.admitted(now, class);
                rec.completed(now, class, shot.latency);
            }
            Some((id, name)) => {
                if AFTER_ADMISSION.contains(&name.as_str()) {
                    rec.admitted(now, class);
                }
                rec.rejected(now, class, id);
                let blocks = self
                    .sim
                    .iter()
                    .position(|s| *s == name)
                    .is_some_and(|i| rampart_sim::reason::is_block(i as u16));
                if let Some(a) = attacker.and_then(|k| self.attackers.get_mut(k))
                    && blocks
                {
                    rec.count(now, a.blocked, 1);
                    if !a.blocked_once {
                        a.blocked_once = true;
                        let since = shot.intended.saturating_sub(a.start) + shot.latency;
                        rec.set_gauge(a.first_block_ms, since.as_nanos() as f64 / 1e6);
                    }
                }
            }
        }
        let Some(a) = attacker.and_then(|k| self.attackers.get_mut(k)) else {
            return;
        };
        match shot.hit {
            Some(Hit::TakeOver(k)) if a.taken.insert(k) => {
                if let Some(c) = a.takeovers {
                    rec.count(now, c, 1);
                }
            }
            Some(Hit::ForgedAccepted) => {
                if let Some(c) = a.forged {
                    rec.count(now, c, 1);
                }
            }
            Some(Hit::AcceptedAfterRevocation { age }) => {
                if let Some(r) = self.revoked.as_mut() {
                    rec.count(now, r.accepted, 1);
                    for &(d, id) in &r.after {
                        if age > d {
                            rec.count(now, id, 1);
                        }
                    }
                    if age > r.exposure_max {
                        r.exposure_max = age;
                        rec.set_gauge(r.exposure_max_ms, age.as_nanos() as f64 / 1e6);
                    }
                }
                if let Some(c) = a.after_revocation {
                    rec.count(now, c, 1);
                }
                if let Some(g) = a.exposure_max_ms
                    && age > a.exposure_max
                {
                    a.exposure_max = age;
                    rec.set_gauge(g, age.as_nanos() as f64 / 1e6);
                }
            }
            _ => {}
        }
    }
}

/// The reason a shot was not a success, if it was not.
fn reason(rec: &Recorder, shot: &Shot) -> Option<(ReasonId, String)> {
    let names = rec.names();
    let why: String = match &shot.sent {
        Sent::Answered { status, .. } if (200..300).contains(status) => return None,
        Sent::Answered { status, reason } => reason
            .clone()
            .filter(|r| names.reason(r).is_some())
            .unwrap_or_else(|| {
                match *status {
                    400..=499 if shot.login => "login_failed",
                    408 => "header_timeout",
                    429 => "rate_limited",
                    400..=499 => "http_4xx",
                    _ => "http_5xx",
                }
                .into()
            }),
        Sent::TimedOut => "timeout".into(),
        Sent::Failed => "connection_failed".into(),
        Sent::Dropped => "dropped".into(),
    };
    Some((names.reason(&why)?, why))
}
