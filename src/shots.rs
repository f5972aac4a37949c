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

/// A send handed out this much after its intended time means the
/// generator's machine was the limit in that interval.
pub const LATE_MAX: Duration = Duration::from_millis(50);

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
///
/// A key leak's attacker (named in `leaks`) also gets
/// `forged_accepted_after_rotation`.
pub fn register(
    n: &mut Names,
    attackers: &[String],
    replays: usize,
    leaks: &[String],
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
    n.add_gauge("load.send_lag_ms")?;
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
        if leaks.contains(a) {
            n.add_counter(&format!("attack.{a}.forged_accepted_after_rotation"))?;
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
    forged_after_rotation: Option<CounterId>,
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

/// Intervals where the generator's machine was the limit: (start, end,
/// latest send, sends dropped).
type Span = (Instant, Instant, Duration, u64);

/// Turns shots into recorder calls.
pub struct ShotRecorder {
    legit: ClassId,
    lag_ms: GaugeId,
    /// The current interval's latest send and drops.
    late_max: Duration,
    dropped: u64,
    spans: Vec<Span>,
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
                forged_after_rotation: n
                    .counter(&format!("attack.{a}.forged_accepted_after_rotation")),
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
            lag_ms: n.gauge("load.send_lag_ms").expect("registered"),
            late_max: Duration::ZERO,
            dropped: 0,
            spans: Vec::new(),
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
        self.late_max = self.late_max.max(shot.late);
        if shot.sent == Sent::Dropped {
            self.dropped += 1;
        }
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
            Some(Hit::ForgedAcceptedAfterRotation) => {
                for c in [a.forged, a.forged_after_rotation].into_iter().flatten() {
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

impl ShotRecorder {
    /// Closes the interval `[start, end)` for the machine-limit marks: its
    /// latest send goes to the gauge `load.send_lag_ms`, and an interval
    /// with a send later than [`LATE_MAX`] or a drop joins a span.
    pub fn end_interval(&mut self, rec: &mut Recorder, start: Instant, end: Instant) {
        rec.set_gauge(self.lag_ms, self.late_max.as_nanos() as f64 / 1e6);
        if self.late_max > LATE_MAX || self.dropped > 0 {
            match self.spans.last_mut() {
                Some(s) if s.1 == start => {
                    s.1 = end;
                    s.2 = s.2.max(self.late_max);
                    s.3 += self.dropped;
                }
                _ => self.spans.push((start, end, self.late_max, self.dropped)),
            }
        }
        self.late_max = Duration::ZERO;
        self.dropped = 0;
    }

    /// The spans where the machine was the limit, as marks for the
    /// report's time axes.
    pub fn machine_limits(&self) -> Vec<rampart_world::TimelineEvent> {
        self.spans
            .iter()
            .map(|&(start, end, late, dropped)| {
                rampart_world::TimelineEvent::new(
                    start.since_epoch(),
                    rampart_world::TimelineKind::Machine,
                    format!(
                        "machine limit to {}: sends up to {} ms late, {dropped} dropped",
                        end.since_epoch(),
                        late.as_nanos() / 1_000_000
                    ),
                )
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use rampart_metrics::RecorderConfig;

    use super::*;

    fn shot(class: usize, sent: Sent, late_ms: u64, hit: Option<Hit>) -> Shot {
        Shot {
            class,
            intended: Duration::ZERO,
            latency: Duration::from_millis(3),
            sent,
            login: false,
            hit,
            late: Duration::from_millis(late_ms),
        }
    }

    #[test]
    fn attackers_get_their_outcomes_and_late_or_dropped_intervals_become_machine_limit_marks() {
        let mut n = Names::new();
        register(
            &mut n,
            &["bots".into(), "thief".into()],
            1,
            &[],
            &[Duration::from_secs(5)],
        )
        .unwrap();
        let start = [
            ("bots".to_owned(), Duration::ZERO),
            ("thief".to_owned(), Duration::ZERO),
        ];
        let mut shots = ShotRecorder::new(&n, 1, &start);
        let mut rec = Recorder::new(RecorderConfig::default(), n).unwrap();
        let t = |s: u64| Instant::ZERO + Duration::from_secs(s);
        let ok = || Sent::Answered {
            status: 200,
            reason: None,
        };
        let blocked = || Sent::Answered {
            status: 403,
            reason: Some("abuse_blocked".into()),
        };
        // Second 0: on time. 1: late. 2: a drop. 3: on time. 4: late.
        shots.record(&mut rec, t(0), &shot(1, ok(), 0, Some(Hit::TakeOver(7))));
        shots.record(&mut rec, t(0), &shot(1, ok(), 0, Some(Hit::TakeOver(7))));
        shots.record(&mut rec, t(0), &shot(1, blocked(), 1, None));
        let age = Duration::from_secs(6);
        shots.record(
            &mut rec,
            t(0),
            &shot(2, ok(), 0, Some(Hit::AcceptedAfterRevocation { age })),
        );
        shots.end_interval(&mut rec, t(0), t(1));
        shots.record(&mut rec, t(1), &shot(0, ok(), 80, None));
        shots.end_interval(&mut rec, t(1), t(2));
        shots.record(&mut rec, t(2), &shot(0, Sent::Dropped, 0, None));
        shots.end_interval(&mut rec, t(2), t(3));
        shots.record(&mut rec, t(3), &shot(0, ok(), 2, None));
        shots.end_interval(&mut rec, t(3), t(4));
        shots.record(&mut rec, t(4), &shot(0, ok(), 120, None));
        shots.end_interval(&mut rec, t(4), t(5));
        let marks: Vec<String> = shots
            .machine_limits()
            .into_iter()
            .map(|e| e.label)
            .collect();
        assert_eq!(
            marks,
            [
                "machine limit to 3s: sends up to 80 ms late, 1 dropped",
                "machine limit to 5s: sends up to 120 ms late, 0 dropped",
            ]
        );
        let m = rec
            .finish(t(5), &mut rampart_metrics::CsvSink::new(Vec::new()))
            .unwrap();
        let c = |name: &str| m.totals.counters[name];
        // One takeover however often the account falls; one block.
        assert_eq!(c("attack.bots.takeovers"), 1);
        assert_eq!(c("attack.bots.blocked"), 1);
        assert_eq!(c("attack.thief.accepted_after_revocation"), 1);
        assert_eq!(
            (c("revoked.accepted"), c("revoked.accepted_after.5s")),
            (1, 1)
        );
        assert_eq!(m.totals.classes["legit"].offered, 4);
        assert_eq!(m.totals.classes["attack.bots"].offered, 3);
        assert_eq!(m.totals.gauges["load.send_lag_ms"].max, Some(120.0));
    }
}
