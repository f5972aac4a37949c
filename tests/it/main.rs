//! Rampart's one integration-test binary. Each module is a topic; every test
//! says in its name what it proves.

mod check;
mod cli;
mod properties;
mod mutate;
mod scenarios;
mod snapshots;
mod sweep;
