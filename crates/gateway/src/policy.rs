//! A policy bundle compiled for the instances that run it.
//!
//! The bundle itself ([`PolicyBundle`]) is plain data that configures every
//! core on an instance; here it is compiled once per version, its inspector
//! shared by every instance, its content hash kept for drift detection and
//! attestation.

use rampart_waf::{Inspector, RulesetHash};
use rampart_world::PolicyBundle;

/// The seed of the limiters' key fingerprints. Both drivers use it, so an
/// instance's limiter tables hold the same keys whichever driver runs it.
pub const FINGERPRINT_SEED: u64 = 0x5241_4d50_4152_5421;

/// Why a bundle cannot configure an instance.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The WAF rules do not compile into an inspector.
    #[error("policy.waf: {0}")]
    Waf(#[source] rampart_waf::PolicyError),
    /// The rate-limit rules do not build a rule set.
    #[error("policy.ratelimit: {0}")]
    RateLimit(#[source] rampart_ratelimit::ConfigError),
    /// The abuse detector's configuration is invalid.
    #[error("policy.abuse: {0}")]
    Abuse(#[source] rampart_waf::abuse::AbuseConfigError),
}

/// A bundle compiled once and shared by every instance that runs it.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// Index among a run's policy versions (0 = the first).
    pub index: u32,
    /// The source data.
    pub bundle: PolicyBundle,
    /// Content hash of `bundle`.
    pub hash: [u8; 32],
    /// The compiled inspector; pure, so instances share it.
    pub inspector: Inspector,
    /// The inspector's own rule-set hash (part of a verdict cache key).
    pub ruleset_hash: RulesetHash,
}

impl CompiledPolicy {
    /// Compiles a bundle's inspector. The per-instance cores are built by
    /// [`Cores::new`](crate::Cores::new), which reports their own errors.
    pub fn compile(index: u32, bundle: PolicyBundle) -> Result<CompiledPolicy, BundleError> {
        let inspector = Inspector::new(bundle.waf.clone()).map_err(BundleError::Waf)?;
        let ruleset_hash = inspector.ruleset_hash();
        Ok(CompiledPolicy {
            index,
            hash: bundle.content_hash(),
            bundle,
            inspector,
            ruleset_hash,
        })
    }

    /// The first eight hex digits of the content hash, for reports.
    pub fn short_hash(&self) -> String {
        hex(&self.hash[..4])
    }

    /// The whole content hash in hex, as instances attest it.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}
