//! PURE evaluation: compile checks (CEL), evaluate objects, score, rank, build status.
//! Nothing here touches the network, awaits, or reads the clock: the caller passes objects,
//! actions, the target and `now`, and gets back a status value.

pub mod cel;
pub mod cel_guards;
pub mod check;
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
};
pub mod comparison;
pub mod incremental;
pub mod ownership;
pub mod transitions;
