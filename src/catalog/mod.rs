//! The built-in improvement actions, embedded from `charts/securescore/catalog/` (the same
//! files the Helm chart renders: one source of truth).

use crate::api::ImprovementAction;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));
}

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
