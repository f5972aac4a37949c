//! `[[control.rollouts]]` and `[control.drift_detector]` on a live fleet,
//! through the control plane, with the simulator's semantics.
//!
//! At a rollout's `at` the plane's desired policy becomes the step's bundle
//! (`rampart_world::rollout_bundles`, the bundle the simulator publishes),
//! staged: running instances keep what they run. Under zero-trust
//! admission the balancer then routes only to instances attesting the new
//! hash; without it, to any healthy one. `launch_template_lag` after `at`,
//! instances launched from then on boot with the new bundle. Every
//! `interval` the drift detector asks the plane which connected instances
//! attest another policy; with hot-reload remediation each is released
//! `reload_delay` later, and the plane pushes it the bundle, which the
//! instance's agent loads. Under a drift fault (`stale_boot_probability`)
//! a launch boots the bundle before the template's
//! ([`LiveFleet::set_launch_policy`]) and stays on it until the detector
//! finds it. With replacement remediation each stale instance in service
//! gets a replacement launched from the template through the scaler
//! ([`Scaler::replace`]), and is drained once the replacement serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_time::Instant;
use rampart_world::{
    DriftDetectorConfig, PolicyBundle, Remediation, RolloutConfig, TimelineEvent, TimelineKind,
    WorldConfig,
};

use crate::fleet::LiveFleet;
use crate::scaler::Scaler;
use crate::token_service::Plane;

/// The rollout steps and the drift detector of a live run.
#[derive(Debug)]
pub struct Rollouts {
    bundles: Vec<PolicyBundle>,
    steps: Vec<RolloutConfig>,
    detector: Option<DriftDetectorConfig>,
    zero_trust: bool,
    /// The next step to publish.
    next_step: usize,
    /// Launch-template updates to come: (when, bundle index).
    template: Vec<(Instant, usize)>,
    next_check: Option<Instant>,
    /// Instances to release, by when. At most one entry per instance of
    /// the fleet (64 at most).
    releases: BTreeMap<u32, Instant>,
    /// What happened, for the run's timeline.
    pub timeline: Vec<TimelineEvent>,
    /// Hot reloads released so far.
    pub reloads: u64,
    /// Replacements launched so far.
    pub replacements: u64,
}

/// What one [`Rollouts::step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stepped {
    /// Instances released for a hot reload.
    pub reloads: u64,
    /// Replacements launched.
    pub replacements: u64,
}

impl Rollouts {
    /// The rollouts of `cfg`, or `None` when it has none.
    pub fn new(cfg: &WorldConfig) -> Option<Rollouts> {
        let c = &cfg.control;
        if c.rollouts.is_empty() {
            return None;
        }
        let template = c
            .rollouts
            .iter()
            .enumerate()
            .map(|(i, r)| (Instant::ZERO + r.at + r.launch_template_lag, i + 1))
            .collect();
        Some(Rollouts {
            bundles: rampart_world::rollout_bundles(&cfg.policy, &c.rollouts),
            steps: c.rollouts.clone(),
            detector: c.drift_detector.clone(),
            zero_trust: c.admission.zero_trust,
            next_step: 0,
            template,
            next_check: c
                .drift_detector
                .as_ref()
                .map(|d| Instant::ZERO + d.interval),
            releases: BTreeMap::new(),
            timeline: Vec::new(),
            reloads: 0,
            replacements: 0,
        })
    }

    /// When [`step`](Self::step) has something to do next (run time).
    pub fn next_due(&self) -> Instant {
        let step = self.steps.get(self.next_step).map(|r| Instant::ZERO + r.at);
        let template = self.template.first().map(|t| t.0);
        let release = self.releases.values().min().copied();
        [step, template, self.next_check, release]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Instant::from_nanos(u64::MAX))
    }

    /// Does what is due at run time `now`: rollout steps, template
    /// updates, drift checks and releases. Replacements launch through
    /// `scaler`, which [`Scaler::new`] builds whenever the detector
    /// replaces.
    pub fn step(
        &mut self,
        now: Instant,
        fleet: &mut LiveFleet,
        scaler: Option<&mut Scaler>,
    ) -> Stepped {
        let mut done = Stepped::default();
        let Some(plane) = fleet.plane.clone() else {
            return done;
        };
        while let Some(r) = self.steps.get(self.next_step)
            && Instant::ZERO + r.at <= now
        {
            self.next_step += 1;
            let i = self.next_step;
            let bundle = &self.bundles[i];
            plane.stage_policy(published(i, bundle));
            let hash = rampart_control::PolicyHash(bundle.content_hash()).to_string();
            fleet
                .balancer
                .set_policy_hash(self.zero_trust.then_some(hash));
            self.mark(
                now,
                TimelineKind::Rollout,
                format!("rollout {}", bundle.version),
            );
        }
        while let Some(&(at, i)) = self.template.first()
            && at <= now
        {
            self.template.remove(0);
            fleet.set_launch_policy(
                self.bundles[i].clone(),
                self.steps[i - 1].stale_boot_probability,
            );
            let label = format!("launch template carries {}", self.bundles[i].version);
            self.mark(now, TimelineKind::Rollout, label);
        }
        if let (Some(d), Some(at)) = (&self.detector, self.next_check)
            && at <= now
        {
            self.next_check = Some(now + d.interval);
            let drift = plane.plane().drift(plane_now(&plane));
            match (d.remediation, scaler) {
                (Remediation::HotReload, _) => {
                    for g in drift {
                        self.releases
                            .entry(g.instance)
                            .or_insert(now + d.reload_delay);
                    }
                }
                (Remediation::Replace, Some(scaler)) => {
                    for g in drift {
                        let Some(new) = scaler.replace(g.instance, now) else {
                            continue;
                        };
                        done.replacements += 1;
                        self.replacements += 1;
                        let stale = fleet.gateway(g.instance).map_or_else(String::new, |gw| {
                            gw.instance().policy().bundle.version.clone()
                        });
                        self.mark(
                            now,
                            TimelineKind::Remediation,
                            format!("#{new} launched to replace #{} ({stale})", g.instance),
                        );
                    }
                }
                (Remediation::Replace, None) => {}
            }
        }
        let due: Vec<u32> = self
            .releases
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(i, _)| *i)
            .collect();
        for id in due {
            self.releases.remove(&id);
            plane.release(id);
            done.reloads += 1;
            self.reloads += 1;
            let version = &self.bundles[self.next_step].version;
            self.mark(
                now,
                TimelineKind::Remediation,
                format!("#{id} released {version}"),
            );
        }
        done
    }

    fn mark(&mut self, now: Instant, kind: TimelineKind, label: String) {
        self.timeline
            .push(TimelineEvent::new(now.since_epoch(), kind, label));
    }
}

fn plane_now(plane: &Arc<Plane>) -> Instant {
    rampart_control::Source::now(plane.source())
}

/// The plane's form of bundle `i`: its canonical JSON, whose SHA-256 is the
/// bundle's content hash.
pub(crate) fn published(i: usize, bundle: &PolicyBundle) -> rampart_control::PolicyBundle {
    let text = serde_json::to_string(bundle).expect("a policy bundle serialises");
    rampart_control::PolicyBundle::new(i as u64 + 1, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{FleetOptions, LiveFleet};
    use crate::scaler::InstanceState;
    use rampart_time::Duration;

    /// Polls `done` every 20 ms until it holds; fails after 10 s.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// One instance, a rollout to v2 at 1 s whose template carries it at
    /// once, and a detector every 2 s remediating by `remediation`;
    /// revocations pushed.
    fn world(remediation: &str, stale_boot_probability: f64) -> WorldConfig {
        world_synced(
            remediation,
            stale_boot_probability,
            r#"{ mode = "push", median = "50ms", sigma = 0.5 }"#,
        )
    }

    fn world_synced(remediation: &str, stale_boot_probability: f64, sync: &str) -> WorldConfig {
        toml::from_str(&format!(
            r#"
            [run]
            name = "drift"
            duration = "60s"
            [token_service]
            revocation_sync = {sync}
            [scaling]
            initial = 1
            lifecycle = {{ pending = "0s", boot = {{ kind = "Fixed", time = "0s" }}, warmup = "0s", deregistration_delay = "0s" }}
            [[traffic]]
            name = "shop"
            model = {{ kind = "open", shape = {{ kind = "constant", rate = "1/s" }} }}
            routes = [{{ name = "pub", method = "GET", path = "/pub", weight = 1, backend_cost = "1ms" }}]
            [[control.rollouts]]
            at = "1s"
            version = "v2"
            stale_boot_probability = {stale_boot_probability}
            overrides = {{ waf = {{ mode = "blocking" }} }}
            [control.drift_detector]
            interval = "2s"
            remediation = "{remediation}"
            reload_delay = "0s"
            "#
        ))
        .unwrap()
    }

    async fn fleet(cfg: &WorldConfig) -> LiveFleet {
        let fleet = LiveFleet::start(
            cfg,
            &FleetOptions {
                accounts_per_class_max: 1,
                ..FleetOptions::default()
            },
        )
        .await
        .unwrap();
        fleet.begin_run();
        fleet
    }

    fn version(fleet: &LiveFleet, id: u32) -> Option<String> {
        fleet
            .gateway(id)
            .map(|g| g.instance().policy().bundle.version.clone())
    }

    /// Waits until the plane reports instance `id` off the desired policy
    /// (its agent has connected and reported).
    async fn reported_off(plane: &Arc<Plane>, id: u32) {
        eventually("the instance reports off the desired policy", || {
            plane
                .plane()
                .drift(plane_now(plane))
                .iter()
                .any(|d| d.instance == id)
        })
        .await;
    }

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    /// Where revocations are polled the plane carries the rollout alone:
    /// the instance is reloaded through it, and its revocations still come
    /// by its poll, which the plane does not speed up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_fleet_that_polls_revocations_the_plane_carries_the_rollout_alone() {
        let mut cfg = world_synced("hot_reload", 0.0, r#"{ mode = "poll" }"#);
        cfg.policy.auth.revocation_poll_interval = Duration::from_secs(3600);
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut fleet = fleet(&cfg).await;
            let plane = fleet.plane.clone().expect("rollouts run a plane");
            let mut r = Rollouts::new(&cfg).unwrap();
            r.step(at(1), &mut fleet, None);
            reported_off(&plane, 0).await;
            // A revocation the plane offers is not applied: the hourly poll
            // has not run since the start.
            let held = fleet
                .gateway(0)
                .unwrap()
                .instance()
                .cores()
                .verifier
                .revocation_version();
            assert!(fleet.token_service.admin().revoke_subject("shop-0").await > held);
            assert_eq!(r.step(at(2), &mut fleet, None).reloads, 1);
            eventually("instance 0 runs v2", || {
                version(&fleet, 0).as_deref() == Some("v2")
            })
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert_eq!(
                fleet
                    .gateway(0)
                    .unwrap()
                    .instance()
                    .cores()
                    .verifier
                    .revocation_version(),
                held
            );
            fleet.shutdown().await;
        })
        .await
        .expect("bounded");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replacement_boots_from_the_template_and_the_stale_instance_drains_once_it_serves() {
        let cfg = world("replace", 0.0);
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut fleet = fleet(&cfg).await;
            let mut sc = Scaler::new(&cfg)
                .unwrap()
                .expect("replacements need a scaler");
            let mut r = Rollouts::new(&cfg).unwrap();
            r.step(at(1), &mut fleet, Some(&mut sc));
            let plane = fleet.plane.clone().unwrap();
            reported_off(&plane, 0).await;
            let done = r.step(at(2), &mut fleet, Some(&mut sc));
            assert_eq!(
                done,
                Stepped {
                    reloads: 0,
                    replacements: 1
                }
            );
            assert!(
                r.timeline
                    .iter()
                    .any(|e| e.label.starts_with("#1 launched to replace #0 ("))
            );
            // A second check while it boots launches no second one.
            assert_eq!(sc.replace(0, at(2)), None);
            // The replacement boots at once and serves; the stale one drains.
            let mut changes = sc.step(at(2), &mut fleet).await.unwrap();
            // Draining ends at the next step due (no deregistration delay).
            assert_eq!(sc.next_due(), at(2));
            changes.extend(sc.step(at(2), &mut fleet).await.unwrap());
            assert_eq!(version(&fleet, 1).as_deref(), Some("v2"));
            assert_eq!(version(&fleet, 0), None, "stopped");
            assert!(
                changes
                    .iter()
                    .any(|c| c.instance == 0 && c.to == InstanceState::Terminated)
            );
            assert_eq!(sc.count(InstanceState::InService), 1);
            fleet.shutdown().await;
        })
        .await
        .expect("bounded");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_launch_under_the_drift_fault_boots_the_old_bundle_until_the_detector_reloads_it() {
        let cfg = world("hot_reload", 1.0);
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut fleet = fleet(&cfg).await;
            let mut r = Rollouts::new(&cfg).unwrap();
            // The rollout and, with no lag, the template's update.
            assert_eq!(r.step(at(1), &mut fleet, None), Stepped::default());
            let first = version(&fleet, 0);
            fleet.launch(7).await.unwrap();
            assert_eq!(version(&fleet, 7), first, "a stale boot");
            assert_ne!(first.as_deref(), Some("v2"));
            assert_eq!(fleet.stale_boots, 1);
            // The detector finds both instances off v2 once the new one's
            // agent has reported, and releases each to a reload.
            let plane = fleet.plane.clone().unwrap();
            reported_off(&plane, 7).await;
            assert_eq!(r.step(at(2), &mut fleet, None).reloads, 2, "both released");
            eventually("every instance runs v2", || {
                version(&fleet, 0).as_deref() == Some("v2")
                    && version(&fleet, 7).as_deref() == Some("v2")
            })
            .await;
            assert_eq!(r.reloads, 2);
            fleet.shutdown().await;
        })
        .await
        .expect("bounded");
    }
}
