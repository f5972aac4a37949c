//! The world's side of the log pipeline (see `crate::monitoring`): what
//! each instance's agent records, when it ships, what reaches the
//! collector, and where the central detector's decisions land.

use std::net::IpAddr;

use rampart_des::Ctx;
use rampart_time::Instant;
use rampart_world::{TimelineEvent, TimelineKind};

use super::hooks::NO_ATTACKER;
use super::{Msg, World};
use crate::gateway::StoppedBy;
use crate::monitoring::AuthRecord;

/// Events of the log pipeline.
#[derive(Debug)]
pub enum MonitorMsg {
    /// Every agent ships what it holds.
    Flush,
    /// A batch reaches the collector.
    Arrive {
        /// Batch id.
        batch: u64,
    },
    /// A central decision reaches the fleet.
    Deliver {
        /// Push id.
        push: u64,
    },
}

impl World {
    /// The first flush, if the pipeline runs.
    pub(super) fn monitor_initial(&self, initial: &mut Vec<(Instant, Msg)>) {
        if let Some(m) = &self.monitor {
            initial.push((
                Instant::ZERO + m.cfg.flush_interval,
                Msg::Monitor(MonitorMsg::Flush),
            ));
        }
    }

    pub(super) fn on_monitor(&mut self, ctx: &mut Ctx<'_, World>, m: MonitorMsg) {
        let now = ctx.now();
        match m {
            MonitorMsg::Flush => self.flush(ctx),
            MonitorMsg::Arrive { batch } => {
                let Some(mon) = self.monitor.as_mut() else {
                    return;
                };
                for d in mon.arrive(now, batch) {
                    ctx.send_self(d.delay, Msg::Monitor(MonitorMsg::Deliver { push: d.id }));
                    if let Some(ids) = &self.meter.monitor {
                        let id = ids.pushes;
                        self.meter.count(now, id, 1);
                    }
                }
            }
            MonitorMsg::Deliver { push } => self.deliver(now, push),
        }
    }

    /// Every agent ships its buffer, a crashed instance's having been
    /// lost already; a terminated one ships what it held when it stopped.
    fn flush(&mut self, ctx: &mut Ctx<'_, World>) {
        let now = ctx.now();
        let Some(mon) = self.monitor.as_mut() else {
            return;
        };
        let mut shipped = 0;
        for g in &mut self.instances {
            if let Some((batch, records, at)) = mon.ship(now, &mut g.agent) {
                shipped += records;
                let me = ctx.me();
                ctx.send_at(me, at, Msg::Monitor(MonitorMsg::Arrive { batch }));
            }
        }
        let interval = mon.cfg.flush_interval;
        if let Some(ids) = &self.meter.monitor
            && shipped > 0
        {
            let id = ids.shipped;
            self.meter.count(now, id, shipped);
        }
        ctx.send_self(interval, Msg::Monitor(MonitorMsg::Flush));
    }

    /// A pushed decision reaches every instance that has booted (one that
    /// boots later loads the fleet's list then).
    fn deliver(&mut self, now: Instant, push: u64) {
        let Some(mon) = self.monitor.as_mut() else {
            return;
        };
        let Some(p) = mon.deliver(now, push) else {
            return;
        };
        for g in self
            .instances
            .iter_mut()
            .filter(|g| g.terminated_at.is_none())
        {
            if let Some(b) = g.blocklist.as_mut() {
                b.apply(now, p);
            }
        }
    }

    /// The record of a request an instance took (not a login's outcome).
    #[inline]
    pub(super) fn monitor_request(&mut self, inst: u32, now: Instant) {
        let Some(mon) = &self.monitor else {
            return;
        };
        if !mon.record_other(&mut self.instances[inst as usize].agent, now)
            && let Some(ids) = &self.meter.monitor
        {
            let id = ids.dropped;
            self.meter.count(now, id, 1);
        }
    }

    /// The record of a login's outcome.
    pub(super) fn monitor_login(
        &mut self,
        inst: u32,
        now: Instant,
        ip: IpAddr,
        account: &str,
        ok: bool,
    ) {
        let Some(mon) = &self.monitor else {
            return;
        };
        let r = AuthRecord {
            at: now,
            ip,
            account: account.to_owned(),
            ok,
        };
        if !mon.record_auth(&mut self.instances[inst as usize].agent, r)
            && let Some(ids) = &self.meter.monitor
        {
            let id = ids.dropped;
            self.meter.count(now, id, 1);
        }
    }

    /// A crashed instance's unshipped records are gone.
    pub(super) fn monitor_crash(&mut self, inst: u32, now: Instant) {
        if self.monitor.is_none() {
            return;
        }
        let n = crate::monitoring::Monitor::lose(&mut self.instances[inst as usize].agent);
        if let Some(ids) = &self.meter.monitor
            && n > 0
        {
            let id = ids.lost;
            self.meter.count(now, id, n);
        }
    }

    /// A booting instance loads every live central decision.
    pub(super) fn monitor_boot(&mut self, inst: u32) {
        if let Some(mon) = &self.monitor {
            self.instances[inst as usize].blocklist = Some(mon.snapshot());
        }
    }

    /// Samples the collector's lag for the interval just closed.
    pub(super) fn monitor_sample(&mut self) {
        if let (Some(mon), Some(ids)) = (self.monitor.as_mut(), &self.meter.monitor)
            && let Some(ms) = mon.take_lag_ms()
        {
            let id = ids.lag_ms;
            self.meter.set_gauge(id, ms);
        }
    }

    /// Books an attempt an abuse detector stopped: the first stop of each
    /// kind per attacker goes on the timeline, a central one is counted.
    pub(super) fn abuse_stopped(&mut self, now: Instant, attacker: u16, by: StoppedBy) {
        if attacker == NO_ATTACKER {
            return;
        }
        let a = &mut self.ext.attackers[attacker as usize];
        let since = now.saturating_since(a.start);
        let slot = match by {
            StoppedBy::Local => &mut a.outcome.first_local_abuse_block,
            StoppedBy::Central => &mut a.outcome.first_central_block,
        };
        let first = slot.is_none();
        if first {
            *slot = Some(since);
        }
        let name = a.cfg.name.clone();
        if by == StoppedBy::Central
            && let Some(ids) = &self.meter.monitor
        {
            let m = ids.attack[attacker as usize];
            self.meter.count(now, m.central_blocked, 1);
            if first {
                self.meter
                    .set_gauge(m.first_central_block_ms, since.as_nanos() as f64 / 1e6);
            }
        }
        if first {
            let which = match by {
                StoppedBy::Local => "local",
                StoppedBy::Central => "central",
            };
            self.timeline.push(TimelineEvent::new(
                now.since_epoch(),
                TimelineKind::Detection,
                format!("{name}: first {which} block"),
            ));
        }
    }

    /// An attacker succeeded (a takeover, a served request): counted as a
    /// success before detection while no abuse detector has stopped it.
    pub(super) fn attack_succeeded(&mut self, now: Instant, attacker: u16) {
        if attacker == NO_ATTACKER {
            return;
        }
        let a = &self.ext.attackers[attacker as usize];
        if a.outcome.first_local_abuse_block.is_some() || a.outcome.first_central_block.is_some() {
            return;
        }
        if let Some(ids) = &self.meter.monitor {
            let id = ids.attack[attacker as usize].succeeded_before_detection;
            self.meter.count(now, id, 1);
        }
    }
}
