//! The security policy bundle: what a gateway instance enforces.
//!
//! One bundle configures every core on an instance: the rate-limit rules,
//! the token verifier, the inspector and the abuse detector. It holds no
//! simulator-only field, so the same data can configure a live gateway. A
//! bundle is versioned by its author and content-hashed by us: the hash is
//! what drift detection compares across instances.

use rampart_auth::VerifierConfig;
use rampart_ratelimit::RuleConfig;
use rampart_waf::Inspector;
use rampart_waf::abuse::AbuseConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Errors;

/// The policy every instance boots with: plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct PolicyBundle {
    /// The author's version label, such as `2026-11-28.1`.
    pub version: String,
    /// Rate-limit rules; each instance builds its own limiters from them.
    pub ratelimit: Vec<RuleConfig>,
    /// Token verification.
    pub auth: VerifierConfig,
    /// Request inspection (WAF rules, paranoia, per-route allow-lists).
    pub waf: rampart_waf::Policy,
    /// Abuse detection on login outcomes.
    pub abuse: AbuseConfig,
    /// Which abuse detector instances consult, and the log pipeline that
    /// feeds the central one (see `monitoring`). Absent: local detection
    /// only, no pipeline. Left out of the encoding when absent, so a
    /// bundle without it hashes as it always has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<crate::monitoring::MonitoringConfig>,
}

impl Default for PolicyBundle {
    fn default() -> Self {
        PolicyBundle {
            version: "v1".into(),
            ratelimit: Vec::new(),
            auth: VerifierConfig::default(),
            waf: rampart_waf::Policy::default(),
            abuse: AbuseConfig::default(),
            monitoring: None,
        }
    }
}

impl PolicyBundle {
    /// SHA-256 over the canonical JSON encoding of the bundle. Struct fields
    /// serialise in declaration order and lists in their order, so equal
    /// bundles hash equally on every machine.
    pub fn content_hash(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).expect("a policy bundle always serialises");
        Sha256::digest(&json).into()
    }

    /// Adds every problem to `e`, with paths under `policy.`.
    pub fn validate(&self, e: &mut Errors) {
        e.check(!self.version.trim().is_empty(), "policy.version", || {
            "must not be empty".into()
        });
        if let Err(err) = rampart_ratelimit::RuleSet::<rampart_ratelimit::Local>::new(
            &self.ratelimit,
            rampart_ratelimit::RuleSetConfig::default(),
        ) {
            e.push("policy.ratelimit", err.to_string());
        }
        if let Err(err) = Inspector::new(self.waf.clone()) {
            e.push("policy.waf", err.to_string());
        }
        if let Err(err) = rampart_waf::abuse::AbuseDetector::new(self.abuse.clone()) {
            e.push("policy.abuse", err.to_string());
        }
        if let Some(m) = &self.monitoring {
            m.validate("policy.monitoring", e);
        }
    }
}
