//! The instance's agent of the control plane (`rampart_control`): the
//! token service's revocations and JWKS, and the fleet's policy rollouts,
//! pushed over one session the agent keeps open.
//!
//! The instance attests the content hash of the policy in force, the hash
//! its `/attest` endpoint serves. A rollout's bundle is the canonical JSON
//! of a `PolicyBundle`, so its SHA-256 is that same content hash; one that
//! does not parse, validate or match its hash is not loaded, and the plane
//! sees the drift. A reload that rebuilds the verifier empties its keys and
//! denylist: the agent then reports holding nothing, the plane's next
//! heartbeat shows it behind, and the session resyncs. While the instance's
//! clock says a revocation partition cuts it off, the agent holds no
//! session, as a cut link would.
//!
//! On a fleet whose revocations are polled ([`super::feed::FeedMode::PolicyPlane`])
//! the plane carries the policy only: the instance polls the token service
//! for revocations and keys as before, and the agent acknowledges the
//! plane's revocation deltas and JWKS by version without applying them, so
//! the plane neither resyncs the instance nor speeds its revocations up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rampart_control::{AgentConfig, Attestation, Ended, Host, PolicyHash, Status, ToAgent};
use tokio::sync::watch;

use super::{Instance, feed};

/// Incarnations of agents in this process: every start takes a new one.
static INCARNATIONS: AtomicU64 = AtomicU64::new(1);

struct PlaneHost {
    inst: Arc<Instance>,
    /// The verifier epoch the JWKS was applied in, and its plane version.
    jwks: Mutex<(u64, u64)>,
    /// The plane version of the policy in force (0: the launch bundle).
    policy_version: AtomicU64,
    /// Policy only: the highest revocation version the plane offered,
    /// acknowledged unapplied; `None` when the plane feeds revocations.
    offered: Option<AtomicU64>,
}

impl PlaneHost {
    fn epoch(&self) -> u64 {
        *self.inst.verifier_epoch.borrow()
    }
}

impl Host for PlaneHost {
    fn status(&self) -> Status {
        let (epoch, version) = *self.jwks.lock().unwrap_or_else(|e| e.into_inner());
        let revocation_version = match &self.offered {
            Some(v) => v.load(Ordering::Relaxed),
            None => self.inst.cores().verifier.revocation_version(),
        };
        Status {
            revocation_version,
            jwks_version: if epoch == self.epoch() { version } else { 0 },
            policy: Some(Attestation {
                version: self.policy_version.load(Ordering::Relaxed),
                hash: PolicyHash(self.inst.policy().hash),
            }),
        }
    }

    fn apply(&self, msg: &ToAgent) -> Result<(), String> {
        match msg {
            ToAgent::Revocations(delta) => match &self.offered {
                Some(v) => {
                    v.fetch_max(delta.version, Ordering::Relaxed);
                    Ok(())
                }
                None => feed::apply(&self.inst, delta),
            },
            ToAgent::Jwks { version, json } => {
                let epoch = self.epoch();
                if self.offered.is_none() {
                    feed::load_jwks(&self.inst, json)?;
                }
                *self.jwks.lock().unwrap_or_else(|e| e.into_inner()) = (epoch, *version);
                Ok(())
            }
            ToAgent::Policy(bundle) => {
                if PolicyHash(self.inst.policy().hash) == bundle.hash {
                    self.policy_version.store(bundle.version, Ordering::Relaxed);
                    return Ok(());
                }
                let parsed = if bundle.is_intact() {
                    serde_json::from_str(&bundle.text).map_err(|e| e.to_string())
                } else {
                    Err("its text does not match its hash".to_owned())
                };
                match parsed.and_then(|b| self.inst.reload(b).map_err(|e| e.to_string())) {
                    Ok(_) => self.policy_version.store(bundle.version, Ordering::Relaxed),
                    Err(e) => tracing::warn!(
                        instance = self.inst.id,
                        version = bundle.version,
                        error = %e,
                        "rollout refused; keeping the policy in force"
                    ),
                }
                Ok(())
            }
            ToAgent::Heartbeat { .. } => Ok(()),
        }
    }

    fn renewed(&self, _sent_ago: rampart_time::Duration) {
        if self.offered.is_some() {
            // The poll keeps the revocations fresh, not the plane.
            return;
        }
        // The plane answered, holding nothing newer (the agent checked): the
        // feed is live, as a push stream's keep-alive proves it. The live
        // gateway does not fence itself when the plane falls silent; the
        // verifier's stale policy decides then, as with the other feeds.
        let v = self.inst.cores().verifier.revocation_version();
        let keepalive = rampart_auth::RevocationDelta {
            since_version: v,
            version: v,
            entries: Vec::new(),
        };
        let _ = feed::apply(&self.inst, &keepalive);
    }

    fn reachable(&self) -> bool {
        !self.inst.clock.feed_cut()
    }
}

/// Runs the instance's agent against the plane at `plane` until `stop`
/// turns; with `policy_only`, the plane's revocations and keys are
/// acknowledged, not applied.
pub(super) async fn run(
    inst: Arc<Instance>,
    plane: SocketAddr,
    policy_only: bool,
    mut stop: watch::Receiver<bool>,
) {
    let config = AgentConfig::new(plane, inst.id, INCARNATIONS.fetch_add(1, Ordering::Relaxed));
    let host = Arc::new(PlaneHost {
        inst: inst.clone(),
        jwks: Mutex::new((0, 0)),
        policy_version: AtomicU64::new(0),
        offered: policy_only.then(|| AtomicU64::new(0)),
    });
    let on_end = |ended: Ended| {
        inst.metrics.feed_reconnects.inc();
        tracing::debug!(instance = inst.id, ?ended, "control-plane session ended");
    };
    tokio::select! {
        biased;
        _ = stop.changed() => {}
        () = rampart_control::run_agent(config, host, on_end) => {}
    }
}
