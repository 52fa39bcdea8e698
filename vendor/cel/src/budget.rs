//! PATCH (securescore): an evaluation budget enforced while an expression runs.
//!
//! The interpreter charges one step per expression node it resolves and per element it
//! compares, and an estimate of the bytes of every list, map and string it builds or copies.
//! [`run`] installs limits for the current thread; once a limit is crossed every later charge
//! fails, so the evaluation unwinds with [`ExecutionError::BudgetExceeded`] instead of hanging
//! or allocating without bound. Without [`run`] nothing is limited (upstream behaviour).

use crate::ExecutionError;
use std::cell::Cell;

/// Bytes charged per list element (a boxed value).
pub const LIST_ELEMENT_BYTES: u64 = 32;
/// Bytes charged per map entry (key, boxed value, table slot).
pub const MAP_ENTRY_BYTES: u64 = 64;

/// Limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Expression nodes resolved plus elements compared.
    pub steps: u64,
    /// Estimated bytes of the lists, maps and strings built or copied.
    pub memory: u64,
}

/// What one evaluation used, and which limit it crossed first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub steps: u64,
    pub memory: u64,
    pub exceeded: Option<Exceeded>,
}

/// The limit an evaluation crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Steps,
    Memory,
}

#[derive(Clone, Copy)]
struct Active {
    limits: Limits,
    usage: Usage,
}

thread_local! {
    static ACTIVE: Cell<Option<Active>> = const { Cell::new(None) };
}

/// Run `f` under `limits` on this thread; nested runs are independent and restore the outer one.
pub fn run<R>(limits: Limits, f: impl FnOnce() -> R) -> (R, Usage) {
    struct Restore(Option<Active>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let outer = ACTIVE.with(|a| {
        a.replace(Some(Active {
            limits,
            usage: Usage::default(),
        }))
    });
    let restore = Restore(outer);
    let result = f();
    let usage = ACTIVE.with(|a| a.get()).map(|a| a.usage).unwrap_or_default();
    drop(restore);
    (result, usage)
}

fn charge(steps: u64, memory: u64) -> Result<(), ExecutionError> {
    ACTIVE.with(|cell| {
        let Some(mut active) = cell.get() else {
            return Ok(());
        };
        let usage = &mut active.usage;
        usage.steps = usage.steps.saturating_add(steps);
        usage.memory = usage.memory.saturating_add(memory);
        if usage.exceeded.is_none() {
            if usage.steps > active.limits.steps {
                usage.exceeded = Some(Exceeded::Steps);
            } else if usage.memory > active.limits.memory {
                usage.exceeded = Some(Exceeded::Memory);
            }
        }
        let exceeded = usage.exceeded;
        cell.set(Some(active));
        match exceeded {
            Some(Exceeded::Steps) => Err(ExecutionError::BudgetExceeded("steps")),
            Some(Exceeded::Memory) => Err(ExecutionError::BudgetExceeded("memory")),
            None => Ok(()),
        }
    })
}

/// Charge `n` steps; fails once any limit of the running evaluation is crossed.
pub fn charge_steps(n: u64) -> Result<(), ExecutionError> {
    charge(n, 0)
}

/// Charge `bytes` built or copied; fails once any limit is crossed.
pub fn charge_memory(bytes: u64) -> Result<(), ExecutionError> {
    charge(0, bytes)
}

/// Check, before building it, that a value of `bytes` fits in what is left of the memory
/// budget (and charge it). For functions whose output can be far larger than their input.
pub fn reserve_memory(bytes: u64) -> Result<(), ExecutionError> {
    charge_memory(bytes)
}

/// Record a copy that has already happened (where no error can be returned); the next
/// charge then fails if the copy crossed a limit.
pub(crate) fn note_memory(bytes: u64) {
    let _ = charge(0, bytes);
}

// PATCH (securescore): values are shared (`Arc`) instead of deep-copied when a variable is
// bound, a field selected or a comprehension item taken. The reference mode copies them as
// upstream does, so a differential test can prove that sharing changes no result.
static DEEP_COPIES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Copy every value deeply, as upstream cel 0.13 does (process-wide; for differential tests).
pub fn set_deep_copies(on: bool) {
    DEEP_COPIES.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Whether values are deep-copied (the reference mode of [`set_deep_copies`]).
pub fn deep_copies() -> bool {
    DEEP_COPIES.load(std::sync::atomic::Ordering::Relaxed)
}
