//! Which files a scan reads: files as given, directories walked recursively (`.yaml`, `.yml`,
//! `.json`, sorted so that the output never depends on the file system's order), and `-` for
//! standard input.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The name standard input is reported under.
pub const STDIN_NAME: &str = "<stdin>";

/// Extensions read when walking a directory (files named explicitly are read whatever their name).
pub const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    /// How the input is named in errors and findings: the path as given, or `<stdin>`.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => STDIN_NAME.to_string(),
        }
    }
}

/// An input that could not be found, listed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FileError {
    pub file: String,
    pub message: String,
}

/// Expand the command line's paths into the inputs to read, in order: each argument in turn,
/// a directory's manifests sorted by path. Missing or unlistable paths are errors; the rest
/// is still returned.
pub fn expand(paths: &[PathBuf]) -> (Vec<Input>, Vec<FileError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                walk(path, &mut found, &mut errors);
                found.sort();
                inputs.extend(found.into_iter().map(Input::File));
            }
            Ok(_) => inputs.push(Input::File(path.clone())),
            Err(e) => errors.push(FileError {
                file: path.display().to_string(),
                message: format!("cannot read: {}", io_message(&e)),
            }),
        }
    }
    (inputs, errors)
}

/// Helm values files (`values.yaml`, `values-*.yaml`, `*.values.yaml`) configure a chart; they
/// are not manifests and are skipped when a directory is walked (named explicitly, they are read).
pub fn is_helm_values(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem == "values" || stem.starts_with("values-") || stem.ends_with(".values")
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<FileError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(FileError {
                file: dir.display().to_string(),
                message: format!("cannot list directory: {}", io_message(&e)),
            });
            return;
        }
    };
    // A Helm chart's sources are templates, not manifests: render them and scan the output
    // (`helm template ... | securescore scan -`).
    if dir.join("Chart.yaml").is_file() {
        return;
    }
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(FileError {
                    file: dir.display().to_string(),
                    message: format!("cannot list directory: {}", io_message(&e)),
                });
                continue;
            }
        };
        let path = entry.path();
        // Follows symlinks, like `kubectl apply -R`; hidden entries (.git) are skipped.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, found, errors),
            Ok(_) => {
                let wanted = path
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| MANIFEST_EXTENSIONS.contains(&x));
                if wanted && !is_helm_values(&path) {
                    found.push(path);
                }
            }
            Err(e) => errors.push(FileError {
                file: path.display().to_string(),
                message: format!("cannot read: {}", io_message(&e)),
            }),
        }
    }
}

/// Read one input as UTF-8 text.
pub fn read(input: &Input) -> Result<String, FileError> {
    let fail = |message: String| FileError {
        file: input.name(),
        message,
    };
    match input {
        Input::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| fail(format!("cannot read: {}", io_message(&e))))?;
            Ok(text)
        }
        Input::File(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read: {}", io_message(&e))))?;
            String::from_utf8(bytes).map_err(|e| {
                fail(format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ))
            })
        }
    }
}

/// An I/O error without the `(os error N)` suffix, e.g. "No such file or directory".
fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_recursively_sorted_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/nested")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in [
            "z.yaml",
            "a.yml",
            "b/nested/c.json",
            "b/readme.md",
            ".git/x.yaml",
        ] {
            std::fs::write(root.join(f), "").unwrap();
        }
        let (inputs, errors) = expand(&[root.to_path_buf()]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<String> = inputs
            .iter()
            .map(|i| match i {
                Input::File(p) => p.strip_prefix(root).unwrap().display().to_string(),
                Input::Stdin => "-".into(),
            })
            .collect();
        assert_eq!(names, ["a.yml", "b/nested/c.json", "z.yaml"]);
    }

    #[test]
    fn helm_charts_and_values_files_are_skipped_when_walking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("chart/templates")).unwrap();
        std::fs::write(
            root.join("chart/Chart.yaml"),
            "apiVersion: v2\nname: x\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(root.join("chart/templates/d.yaml"), "{{ .Values.x }}\n").unwrap();
        for f in [
            "values.yaml",
            "values-prod.yaml",
            "team.values.yml",
            "app.yaml",
        ] {
            std::fs::write(root.join(f), "a: 1\n").unwrap();
        }
        let (inputs, errors) = expand(&[root.to_path_buf()]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<String> = inputs.iter().map(|i| i.name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("app.yaml"));
        // Named explicitly, a values file is read (and reported if it is not a manifest).
        let (inputs, _) = expand(&[root.join("values.yaml")]);
        assert_eq!(inputs.len(), 1);
    }

    #[test]
    fn a_missing_path_is_an_error_and_dash_is_stdin() {
        let (inputs, errors) = expand(&["-".into(), "/no/such/file.yaml".into()]);
        assert_eq!(inputs, [Input::Stdin]);
        assert_eq!(
            errors[0].to_string(),
            "/no/such/file.yaml: cannot read: No such file or directory"
        );
    }
}
