//! A policy bundle compiled for the instances that run it.
//!
//! The bundle itself (`rampart_world::PolicyBundle`) is plain data that
//! configures every core on an instance; here it is compiled once per
//! version, its inspector shared by every instance, its content hash kept
//! for drift detection.

use std::rc::Rc;

use rampart_waf::{Inspector, RulesetHash};
use rampart_world::PolicyBundle;

use crate::error::BundleError;

/// A bundle compiled once and shared by every instance that runs it.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// Index among the world's policy versions (0 = the first).
    pub index: u32,
    /// The source data.
    pub bundle: PolicyBundle,
    /// Content hash of `bundle`.
    pub hash: [u8; 32],
    /// The compiled inspector; pure, so instances share it.
    pub inspector: Inspector,
    /// The inspector's own rule-set hash (part of the verdict cache key).
    pub ruleset_hash: RulesetHash,
}

impl CompiledPolicy {
    /// Compiles a bundle.
    pub fn compile(index: u32, bundle: PolicyBundle) -> Result<Rc<CompiledPolicy>, BundleError> {
        let inspector = Inspector::new(bundle.waf.clone()).map_err(BundleError::Waf)?;
        let ruleset_hash = inspector.ruleset_hash();
        Ok(Rc::new(CompiledPolicy {
            index,
            hash: bundle.content_hash(),
            bundle,
            inspector,
            ruleset_hash,
        }))
    }

    /// The first eight hex digits of the content hash, for reports.
    pub fn short_hash(&self) -> String {
        self.hash[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}
