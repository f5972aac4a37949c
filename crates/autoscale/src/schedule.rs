//! Scheduled actions: at a time, or on a 5-field cron recurrence, set the
//! group's min, max and desired capacity.
//!
//! Cron is evaluated in UTC. The driver's epoch is placed on the calendar by
//! [`ScheduleConfig::epoch_unix_secs`] (the UTC time of `Instant::ZERO`), so a
//! simulation can start on a Monday at 08:55 and see the 09:00 action fire.

use rampart_time::{Duration, Instant};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Errors};

/// A parsed cron expression: minute, hour, day of month, month, day of week.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    dom_any: bool,
    dow_any: bool,
}

fn parse_field(s: &str, lo: u32, hi: u32, name: &str) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .map_err(|_| format!("{name}: bad step {st:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("{name}: step must be positive"));
        }
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse::<u32>()
                .map_err(|_| format!("{name}: bad number {a:?}"))?;
            let b = b
                .parse::<u32>()
                .map_err(|_| format!("{name}: bad number {b:?}"))?;
            (a, b)
        } else {
            let a = range
                .parse::<u32>()
                .map_err(|_| format!("{name}: bad number {range:?}"))?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{name}: {a}-{b} outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, s == "*"))
}

impl std::str::FromStr for Cron {
    type Err = String;
    /// `minute hour day-of-month month day-of-week`, each `*`, `n`, `a-b`,
    /// with `/step` and `,` lists. Day of week 0-7, where 0 and 7 are Sunday.
    /// When both day fields are restricted, either may match (Vixie cron).
    fn from_str(s: &str) -> Result<Cron, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!("expected 5 fields, found {}", f.len()));
        }
        let (minutes, _) = parse_field(f[0], 0, 59, "minute")?;
        let (hours, _) = parse_field(f[1], 0, 23, "hour")?;
        let (days, dom_any) = parse_field(f[2], 1, 31, "day of month")?;
        let (months, _) = parse_field(f[3], 1, 12, "month")?;
        let (mut weekdays, dow_any) = parse_field(f[4], 0, 7, "day of week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            dom_any,
            dow_any,
        })
    }
}

/// `(year, month 1-12, day 1-31)` of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Cron {
    fn day_matches(&self, days: i64) -> bool {
        let (_, m, d) = civil_from_days(days);
        // 1970-01-01 was a Thursday (4).
        let wd = (days + 4).rem_euclid(7) as u32;
        if self.months & (1 << m) == 0 {
            return false;
        }
        let dom = self.days & (1 << d) != 0;
        let dow = self.weekdays & (1 << wd) != 0;
        match (self.dom_any, self.dow_any) {
            (false, false) => dom || dow,
            (false, true) => dom,
            (true, false) => dow,
            (true, true) => true,
        }
    }

    /// The first matching minute strictly after `unix_secs`, searching at
    /// most eight years ahead (a `31 2 *` never matches).
    pub fn next_after(&self, unix_secs: u64) -> Option<u64> {
        let start_min = unix_secs / 60 + 1;
        let first_day = (start_min / 1440) as i64;
        let mut minute_of_day = start_min % 1440;
        for day in first_day..first_day + 366 * 8 {
            if self.day_matches(day) {
                for mod_ in minute_of_day..1440 {
                    let (h, m) = ((mod_ / 60) as u32, mod_ % 60);
                    if self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 {
                        return Some((day as u64 * 1440 + mod_) * 60);
                    }
                }
            }
            minute_of_day = 0;
        }
        None
    }
}

/// One `PutScheduledUpdateGroupAction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduledAction {
    /// `ScheduledActionName`.
    pub name: String,
    /// `Recurrence`, a 5-field cron expression in UTC.
    #[serde(default)]
    pub recurrence: Option<String>,
    /// A one-off time (offset from the driver's epoch).
    #[serde(default)]
    pub at: Option<Duration>,
    /// New `MinSize`.
    #[serde(default)]
    pub min_size: Option<u32>,
    /// New `MaxSize`.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// New `DesiredCapacity`.
    #[serde(default)]
    pub desired_capacity: Option<u32>,
}

/// The scheduled actions of a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// UTC Unix seconds of the driver's epoch.
    #[serde(default)]
    pub epoch_unix_secs: u64,
    /// The actions.
    #[serde(default)]
    pub actions: Vec<ScheduledAction>,
}

/// A change due now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledChange {
    /// Which action.
    pub name: String,
    /// When it was due.
    pub at: Instant,
    /// New minimum, if set.
    pub min_size: Option<u32>,
    /// New maximum, if set.
    pub max_size: Option<u32>,
    /// New desired capacity, if set.
    pub desired_capacity: Option<u32>,
}

/// Fires scheduled actions as time passes.
#[derive(Clone, Debug)]
pub struct Schedule {
    config: ScheduleConfig,
    crons: Vec<Option<Cron>>,
    checked_until: Option<Instant>,
}

impl Schedule {
    /// Parses and validates every action.
    pub fn new(config: ScheduleConfig) -> Result<Schedule, ConfigError> {
        let mut e = Errors::default();
        let mut crons = Vec::new();
        for (i, a) in config.actions.iter().enumerate() {
            let p = format!("actions[{i}]");
            e.check(
                a.recurrence.is_some() != a.at.is_some(),
                p.clone(),
                "set exactly one of recurrence and at",
            );
            e.check(
                a.min_size.is_some() || a.max_size.is_some() || a.desired_capacity.is_some(),
                p.clone(),
                "must change at least one of min_size, max_size, desired_capacity",
            );
            if let (Some(lo), Some(hi)) = (a.min_size, a.max_size) {
                e.check(
                    lo <= hi,
                    format!("{p}.max_size"),
                    "must be at least min_size",
                );
            }
            crons.push(match &a.recurrence {
                Some(r) => match r.parse::<Cron>() {
                    Ok(c) => Some(c),
                    Err(m) => {
                        e.push(format!("{p}.recurrence"), m);
                        None
                    }
                },
                None => None,
            });
        }
        e.finish()?;
        Ok(Schedule {
            config,
            crons,
            checked_until: None,
        })
    }

    /// Actions due in `(last call, now]` (the first call covers `[0, now]`),
    /// in time order then declaration order. A recurrence fires at most
    /// [`FIRES_PER_CALL_MAX`] times per call.
    pub fn due(&mut self, now: Instant) -> Vec<ScheduledChange> {
        let from = self.checked_until;
        if from.is_some_and(|f| now <= f) {
            return Vec::new();
        }
        self.checked_until = Some(now);
        let epoch = self.config.epoch_unix_secs;
        let mut out = Vec::new();
        for (a, cron) in self.config.actions.iter().zip(&self.crons) {
            let change = |at: Instant| ScheduledChange {
                name: a.name.clone(),
                at,
                min_size: a.min_size,
                max_size: a.max_size,
                desired_capacity: a.desired_capacity,
            };
            if let Some(at) = a.at {
                let at = Instant::ZERO + at;
                if from.is_none_or(|f| at > f) && at <= now {
                    out.push(change(at));
                }
            } else if let Some(c) = cron {
                // Search from one second before the window so a fire exactly
                // at the window start (or at the epoch) is included once.
                let mut cursor = match from {
                    Some(f) => epoch + f.as_nanos() / 1_000_000_000,
                    None => epoch.saturating_sub(1),
                };
                for _ in 0..FIRES_PER_CALL_MAX {
                    let Some(next) = c.next_after(cursor) else {
                        break;
                    };
                    let at = Instant::ZERO + Duration::from_secs(next.saturating_sub(epoch));
                    if next < epoch || at > now || from.is_some_and(|f| at <= f) {
                        if at > now {
                            break;
                        }
                        cursor = next;
                        continue;
                    }
                    out.push(change(at));
                    cursor = next;
                }
            }
        }
        out.sort_by_key(|c| c.at);
        out
    }
}

/// Bound on the fires of one recurrence reported by a single [`Schedule::due`]
/// call (a driver that jumps a year ahead gets the first ones).
pub const FIRES_PER_CALL_MAX: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    const MON_2024_01_01: u64 = 1_704_067_200; // a Monday, 00:00 UTC

    #[test]
    fn cron_finds_the_next_weekday_nine_oclock() {
        let c: Cron = "0 9 * * 1-5".parse().unwrap();
        assert_eq!(
            c.next_after(MON_2024_01_01),
            Some(MON_2024_01_01 + 9 * 3600)
        );
        // Friday 09:00 -> next is Monday 09:00.
        let fri_9 = MON_2024_01_01 + 4 * 86_400 + 9 * 3600;
        assert_eq!(c.next_after(fri_9), Some(fri_9 + 3 * 86_400));
    }

    #[test]
    fn cron_steps_lists_and_sunday_as_seven() {
        let c: Cron = "*/15 0 * * 7".parse().unwrap();
        let sun = MON_2024_01_01 + 6 * 86_400;
        assert_eq!(c.next_after(MON_2024_01_01), Some(sun));
        assert_eq!(c.next_after(sun), Some(sun + 15 * 60));
        let c: Cron = "5,10 12 1 2 *".parse().unwrap();
        assert_eq!(
            c.next_after(MON_2024_01_01),
            Some(MON_2024_01_01 + 31 * 86_400 + 12 * 3600 + 300)
        );
        assert!(
            "0 0 31 2 *"
                .parse::<Cron>()
                .unwrap()
                .next_after(0)
                .is_none(),
            "Feb 31 never comes"
        );
        for bad in [
            "* * * *",
            "60 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(bad.parse::<Cron>().is_err(), "{bad}");
        }
    }

    #[test]
    fn scheduled_actions_fire_once_each_in_their_window() {
        let cfg = ScheduleConfig {
            epoch_unix_secs: MON_2024_01_01 + 8 * 3600 + 55 * 60, // Monday 08:55
            actions: vec![
                ScheduledAction {
                    name: "morning".into(),
                    recurrence: Some("0 9 * * 1-5".into()),
                    at: None,
                    min_size: Some(10),
                    max_size: None,
                    desired_capacity: Some(10),
                },
                ScheduledAction {
                    name: "once".into(),
                    recurrence: None,
                    at: Some(Duration::from_secs(60)),
                    min_size: None,
                    max_size: Some(50),
                    desired_capacity: None,
                },
            ],
        };
        let mut s = Schedule::new(cfg).unwrap();
        assert!(s.due(Instant::ZERO).is_empty());
        let d = s.due(Instant::ZERO + Duration::from_mins(10));
        let names: Vec<&str> = d.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["once", "morning"]);
        assert_eq!(d[1].at, Instant::ZERO + Duration::from_mins(5));
        assert!(
            s.due(Instant::ZERO + Duration::from_mins(20)).is_empty(),
            "no repeats"
        );
        let d = s.due(Instant::ZERO + Duration::from_hours(24) + Duration::from_mins(10));
        assert_eq!(d.len(), 1, "Tuesday 09:00");
    }

    #[test]
    fn schedule_validation_lists_every_problem() {
        let cfg = ScheduleConfig {
            epoch_unix_secs: 0,
            actions: vec![ScheduledAction {
                name: "x".into(),
                recurrence: Some("61 * * * *".into()),
                at: Some(Duration::ZERO),
                min_size: Some(5),
                max_size: Some(2),
                desired_capacity: None,
            }],
        };
        let e = Schedule::new(cfg).unwrap_err();
        let paths: Vec<&str> = e.fields().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["actions[0]", "actions[0].max_size", "actions[0].recurrence"]
        );
    }
}
