//! Where objects come from: manifests on disk (`securescore scan`), or the cluster inventory of
//! shared watch caches (the operator).

pub mod cluster;
pub mod files;
pub mod manifests;
