//! The manifest reader (`inventory::manifests::load_text`) and the owner-chain walk.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::manifests(data);
});
