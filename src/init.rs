//! `rampart init`: a commented starter scenario and policy.

use std::io::Write;
use std::path::Path;

use crate::Common;

/// The starter scenario; the test suite checks that it validates and runs.
pub const SCENARIO: &str = include_str!("starter/scenario.toml");
/// The starter policy bundle it names.
pub const POLICY: &str = include_str!("starter/policy.toml");

pub fn init(dir: &Path, common: &Common) -> u8 {
    let files = [("scenario.toml", SCENARIO), ("policy.toml", POLICY)];
    // Refuse before writing anything, so a partial starter never appears.
    for (name, _) in files {
        let p = dir.join(name);
        if p.exists() {
            eprintln!(
                "error: {} exists; rampart init never overwrites (choose another directory)",
                p.display()
            );
            return 2;
        }
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: {}: {e}", dir.display());
        return 1;
    }
    for (name, text) in files {
        let p = dir.join(name);
        // create_new: never replace a file that appeared meanwhile.
        let r = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = r {
            eprintln!("error: {}: {e}", p.display());
            return if e.kind() == std::io::ErrorKind::AlreadyExists {
                2
            } else {
                1
            };
        }
        if !common.quiet {
            println!("wrote {}", p.display());
        }
    }
    if !common.quiet {
        println!("next: rampart run {}", dir.join("scenario.toml").display());
    }
    0
}
