//! Where objects come from: manifests on disk (`securescore scan`), or watch caches in a
//! cluster (the operator).

pub mod files;
pub mod manifests;
