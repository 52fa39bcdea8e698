//! The built-in improvement actions, embedded from `charts/securescore/catalog/`, and the
//! built-in security controls, from `charts/securescore/controls/` (the same files the Helm
//! chart renders: one source of truth).

use crate::api::{ImprovementAction, SecurityControl};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));
}

mod embedded_controls {
    include!(concat!(env!("OUT_DIR"), "/control_files.rs"));
}

/// The frameworks the built-in actions map their controls to, spelled exactly as their
/// `spec.references[].framework` spells them (a test holds the catalog to these three names).
pub const FRAMEWORKS: [&str; 3] = [FRAMEWORK_PSS, FRAMEWORK_CIS, FRAMEWORK_NSA_CISA];
/// Pod Security Standards; controls are `Baseline: <control>` or `Restricted: <control>`.
pub const FRAMEWORK_PSS: &str = "Pod Security Standards";
/// CIS Kubernetes Benchmark; controls are recommendation numbers such as `5.1.1`.
pub const FRAMEWORK_CIS: &str = "CIS Kubernetes Benchmark v1.9";
/// NSA/CISA Kubernetes Hardening Guide; controls are the guide's section titles.
pub const FRAMEWORK_NSA_CISA: &str = "NSA/CISA Kubernetes Hardening Guide v1.2";

/// A built-in action that does not parse (a build of a broken catalog).
#[derive(Debug, thiserror::Error)]
#[error("built-in catalog file {file}: {message}")]
pub struct CatalogError {
    pub file: &'static str,
    pub message: String,
}

/// The embedded catalog files, `(file name, YAML)`, sorted by name.
pub fn files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}

/// The built-in actions, in file-name order.
pub fn builtin() -> Result<Vec<ImprovementAction>, CatalogError> {
    parse_files(files())
}

/// Parse embedded files, each named after the object's `metadata.name`: on every core (a scan
/// waits for the built-in catalog before it reads its input), the first error in file order.
fn parse_files<T>(files: &'static [(&'static str, &'static str)]) -> Result<Vec<T>, CatalogError>
where
    T: serde::de::DeserializeOwned + kube::Resource + Send,
{
    use rayon::prelude::*;
    files
        .par_iter()
        .map(|(file, yaml)| {
            let object: T = serde_yaml_ng::from_str(yaml).map_err(|e| CatalogError {
                file,
                message: e.to_string(),
            })?;
            let expected = file.trim_end_matches(".yaml");
            if object.meta().name.as_deref() != Some(expected) {
                return Err(CatalogError {
                    file,
                    message: format!("metadata.name must be {expected:?}"),
                });
            }
            Ok(object)
        })
        .collect()
}

/// The embedded security control files, `(file name, YAML)`, sorted by name.
pub fn control_files() -> &'static [(&'static str, &'static str)] {
    embedded_controls::FILES
}

/// The built-in security controls, in file-name order.
pub fn builtin_controls() -> Result<Vec<SecurityControl>, CatalogError> {
    parse_files(control_files())
}
