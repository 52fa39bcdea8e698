//! The CEL layer: compile an arbitrary validation expression and evaluate it over a small Pod.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::cel(data);
});
