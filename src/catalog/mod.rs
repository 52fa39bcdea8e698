//! The built-in improvement actions, embedded from `charts/securescore/catalog/` (the same
//! files the Helm chart renders: one source of truth).

use crate::api::ImprovementAction;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));
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
    files()
        .iter()
        .map(|(file, yaml)| {
            let action: ImprovementAction =
                serde_yaml_ng::from_str(yaml).map_err(|e| CatalogError {
                    file,
                    message: e.to_string(),
                })?;
            let expected = file.trim_end_matches(".yaml");
            if action.metadata.name.as_deref() != Some(expected) {
                return Err(CatalogError {
                    file,
                    message: format!("metadata.name must be {expected:?}"),
                });
            }
            Ok(action)
        })
        .collect()
}
