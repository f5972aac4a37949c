//! Rampart's one integration-test binary. Each module is a topic; every test
//! says in its name what it proves.

mod cli;
mod scenarios;
