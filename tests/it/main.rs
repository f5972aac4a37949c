//! Rampart's one integration-test binary. Each module is a topic; every test
//! says in its name what it proves.

mod anchor;
mod check;
mod cli;
mod jwt_interop;
mod mutate;
mod properties;
mod scenarios;
mod snapshots;
mod support;
mod sweep;
