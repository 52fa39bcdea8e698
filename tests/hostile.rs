//! Hostile input (issue 11): what a pull request author, a team writing its own target, or a
//! mistaken custom action can feed securescore, and what must still hold: every evaluation is
//! bounded, no gate can be bypassed, nothing is leaked, and the other actions and targets go on.
//!
//! One scenario per test, grouped by the layer that defends against it. (This file is the
//! crate root, so its modules are found from `tests/`: each names its file under `hostile/`.)

#[path = "common/mod.rs"]
mod common;
#[path = "hostile/engine.rs"]
mod engine;
#[path = "hostile/ownership.rs"]
mod ownership;
#[path = "hostile/scan.rs"]
mod scan;
