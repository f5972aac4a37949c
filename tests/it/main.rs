//! Rampart's one integration-test binary. Each module is a topic; every test
//! says in its name what it proves.

mod anchor;
mod check;
mod cli;
mod decision_table;
mod jwt_interop;
mod live;
mod mutate;
// The CLI's own writer, so the golden test hashes the bytes `rampart run`
// writes. The binary has no library target to import it from; what only
// `main` calls goes unused here.
#[allow(dead_code)]
#[path = "../../src/output.rs"]
mod output;
mod properties;
mod scenarios;
mod snapshots;
mod support;
mod sweep;
