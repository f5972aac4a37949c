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
//! finds it. Not run live, and named before a run starts: replacement
//! remediation.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_time::Instant;
use rampart_world::{
    DriftDetectorConfig, PolicyBundle, Remediation, RolloutConfig, TimelineEvent, TimelineKind,
    WorldConfig,
};

use crate::fleet::LiveFleet;
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
}

/// What a live run of `cfg`'s rollouts does not honour, one line each.
pub fn unsupported(cfg: &WorldConfig, has_plane: bool) -> Vec<String> {
    let c = &cfg.control;
    let mut out = Vec::new();
    if c.rollouts.is_empty() {
        return out;
    }
    if !has_plane {
        out.push(format!(
            "{} [[control.rollouts]] step(s): not rolled out (a live fleet rolls out through the control plane, which runs when revocations are pushed)",
            c.rollouts.len()
        ));
        return out;
    }
    if c.drift_detector
        .as_ref()
        .is_some_and(|d| d.remediation == Remediation::Replace)
    {
        out.push(
            "[control.drift_detector] remediation = \"replace\": not run (hot reloads are)".into(),
        );
    }
    out
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

    /// Does what is due at run time `now`. Returns how many instances were
    /// released for a hot reload.
    pub fn step(&mut self, now: Instant, fleet: &mut LiveFleet) -> u64 {
        let Some(plane) = fleet.plane.clone() else {
            return 0;
        };
        let mut released = 0;
        while let Some(r) = self.steps.get(self.next_step)
            && Instant::ZERO + r.at <= now
        {
            self.next_step += 1;
            let i = self.next_step;
            let bundle = &self.bundles[i];
            plane.stage_policy(published(i, bundle));
            let hash = hex(&bundle.content_hash());
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
            if d.remediation == Remediation::HotReload {
                let drift = plane.plane().drift(plane_now(&plane));
                for g in drift {
                    self.releases
                        .entry(g.instance)
                        .or_insert(now + d.reload_delay);
                }
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
            released += 1;
            self.reloads += 1;
            let version = &self.bundles[self.next_step].version;
            self.mark(
                now,
                TimelineKind::Remediation,
                format!("#{id} released {version}"),
            );
        }
        released
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

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{FleetOptions, LiveFleet};
    use rampart_time::Duration;

    /// Polls `done` every 20 ms until it holds; fails after 10 s.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_launch_under_the_drift_fault_boots_the_old_bundle_until_the_detector_reloads_it() {
        let cfg: WorldConfig = toml::from_str(
            r#"
            [run]
            name = "stale-boot"
            duration = "60s"
            [token_service]
            revocation_sync = { mode = "push", median = "50ms", sigma = 0.5 }
            [scaling]
            initial = 1
            [[traffic]]
            name = "shop"
            model = { kind = "open", shape = { kind = "constant", rate = "1/s" } }
            routes = [{ name = "pub", method = "GET", path = "/pub", weight = 1, backend_cost = "1ms" }]
            [[control.rollouts]]
            at = "1s"
            version = "v2"
            stale_boot_probability = 1.0
            overrides = { waf = { mode = "blocking" } }
            [control.drift_detector]
            interval = "2s"
            reload_delay = "0s"
            "#,
        )
        .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let mut fleet = LiveFleet::start(
                &cfg,
                &FleetOptions {
                    accounts_per_class_max: 1,
                    ..FleetOptions::default()
                },
            )
            .await
            .unwrap();
            fleet.begin_run();
            let mut r = Rollouts::new(&cfg).unwrap();
            let at = |s: u64| Instant::ZERO + Duration::from_secs(s);
            // The rollout and, with no lag, the template's update.
            assert_eq!(r.step(at(1), &mut fleet), 0);
            let version = |fleet: &LiveFleet, id: u32| {
                fleet
                    .gateway(id)
                    .unwrap()
                    .instance()
                    .policy()
                    .bundle
                    .version
                    .clone()
            };
            let first = version(&fleet, 0);
            fleet.launch(7).await.unwrap();
            assert_eq!(version(&fleet, 7), first, "a stale boot");
            assert_eq!(fleet.stale_boots, 1);
            // The detector finds both instances off v2 once the new one's
            // agent has reported, and releases each to a reload.
            let plane = fleet.plane.clone().unwrap();
            eventually("the stale launch reports to the plane", || {
                plane
                    .plane()
                    .drift(plane_now(&plane))
                    .iter()
                    .any(|d| d.instance == 7)
            })
            .await;
            assert_eq!(r.step(at(2), &mut fleet), 2, "both released");
            eventually("every instance runs v2", || {
                version(&fleet, 0) == "v2" && version(&fleet, 7) == "v2"
            })
            .await;
            assert_eq!(r.reloads, 2);
            fleet.shutdown().await;
        })
        .await
        .expect("bounded");
    }
}
