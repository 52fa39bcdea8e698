//! PURE evaluation: compile checks (CEL), evaluate objects, score, rank, build status.
//! Nothing here touches the network, awaits, or reads the clock: the caller passes objects,
//! actions, the target and `now`, and gets back a status value.

pub mod attestations;
pub mod cel;
pub mod cel_fast;
pub mod cel_guards;
pub mod cel_parsed;
pub mod check;
pub mod compact;
pub mod resource;
pub mod selector;

pub use check::{CompiledAction, Judgement, Verdict};
pub use resource::{Inventory, KindStatus, Resource, Source};
pub mod evaluate;
pub mod evaluation;
pub mod exemptions;
pub mod score;
pub mod status;

pub use evaluate::{
    ActionOutcome, Outcome, ResourceResult, TargetEvaluation, TargetInput, evaluate,
    evaluate_with_controls,
};
pub mod comparison;
pub mod controls;
pub mod frameworks;
pub mod incremental;
pub mod ownership;
pub mod products;
pub mod transitions;
