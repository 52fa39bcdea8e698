//! ImprovementActions as users write them, shared by the engine tests (compiled in-process,
//! through `tests/common`) and the scan tests (written to files): one manifest builder, and the
//! checks several scenarios use.
#![allow(dead_code)]

/// An ImprovementAction manifest. `metadata` is the inside of a flow mapping (`name: x, labels:
/// {area: images}`); `spec` holds the spec's lines after title, category and maxScore, indented
/// by two spaces (e.g. [`NO_LATEST_CHECK`]).
pub fn action_manifest(
    metadata: &str,
    title: &str,
    category: &str,
    max_score: u32,
    spec: &str,
) -> String {
    format!(
        "apiVersion: securescore.io/v1alpha1\nkind: ImprovementAction\nmetadata: {{{metadata}}}\nspec:\n  title: {title}\n  category: {category}\n  maxScore: {max_score}\n{spec}"
    )
}

/// A podSpec check: no container image is tagged `:latest`.
pub const NO_LATEST_CHECK: &str = r#"  check:
    podSpec: true
    validations:
      - expression: "podSpec.containers.all(c, !c.image.endsWith(':latest'))"
        message: "an image is tagged latest"
"#;
