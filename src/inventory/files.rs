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

/// A file set aside while expanding the paths, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub file: String,
    pub why: SkipReason,
}

/// Why a file is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A Helm values file or a chart directory: not a Kubernetes object by design.
    Helm,
    /// Not a regular file (a FIFO, a device, a socket): reading it could hang or never end.
    NotRegular,
    /// The same file (the same device and inode on Unix) was already read: given twice, or
    /// reached again through a symlink or a hard link.
    AlreadyRead,
}

impl std::fmt::Display for SkippedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.why {
            SkipReason::Helm => {
                "Helm chart sources or values (render with `helm template ... | securescore scan -`)"
            }
            SkipReason::NotRegular => "not a regular file (FIFO, device or socket): skipped",
            SkipReason::AlreadyRead => "already read (the same file, reached by another path)",
        };
        write!(f, "{}: {why}", self.file)
    }
}

/// The inputs of a scan, and what was set aside or failed on the way.
#[derive(Debug, Default)]
pub struct Expansion {
    pub inputs: Vec<Input>,
    pub errors: Vec<FileError>,
    pub skipped: Vec<SkippedFile>,
}

/// Paths to leave out (`--exclude GLOB`): a glob matches a path as given, a path relative to
/// the directory being walked, or a file or directory name; `*` also crosses `/`.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    globs: Option<globset::GlobSet>,
}

impl Exclude {
    pub fn new(patterns: &[String]) -> Result<Exclude, FileError> {
        if patterns.is_empty() {
            return Ok(Exclude::default());
        }
        let mut set = globset::GlobSetBuilder::new();
        for p in patterns {
            let glob = globset::Glob::new(p).map_err(|e| FileError {
                file: format!("--exclude {p:?}"),
                message: format!("not a glob: {}", e.kind()),
            })?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| FileError {
            file: "--exclude".into(),
            message: e.to_string(),
        })?;
        Ok(Exclude { globs: Some(globs) })
    }

    fn excludes(&self, shown: &Path, relative: &Path) -> bool {
        let Some(globs) = &self.globs else {
            return false;
        };
        let name = shown.file_name().map(Path::new);
        globs.is_match(shown) || globs.is_match(relative) || name.is_some_and(|n| globs.is_match(n))
    }
}

/// Expand the command line's paths into the inputs to read, in order: each argument in turn,
/// a directory's manifests sorted by path. Each file is read once, however it is reached
/// (the same file: its device and inode on Unix, so symlinks and hard links to it too),
/// directory symlink loops end, and non-regular files are set aside.
/// Missing or unlistable paths are errors; the rest is still returned.
pub fn expand(paths: &[PathBuf], exclude: &Exclude) -> Expansion {
    let mut out = Expansion::default();
    let mut seen = Seen::default();
    for path in paths {
        if path.as_os_str() == "-" {
            out.inputs.push(Input::Stdin);
            continue;
        }
        if exclude.excludes(path, path) {
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let mut found = Vec::new();
                let mut walk = Walk {
                    root: path,
                    exclude,
                    found: &mut found,
                    out: &mut out,
                    seen: &mut seen,
                };
                walk.dir(path, &meta);
                found.sort();
                out.inputs.extend(found.into_iter().map(Input::File));
            }
            Ok(meta) => {
                if let Some(input) = seen.file(path, &meta, &mut out) {
                    out.inputs.push(input);
                }
            }
            Err(e) => out.errors.push(FileError {
                file: path.display().to_string(),
                message: format!("cannot read: {}", io_message(&e)),
            }),
        }
    }
    out
}

/// Which file a path reaches, however it is reached: its device and inode on Unix (read from
/// the metadata the walk has already taken: no system call per path component, as
/// `canonicalize` costs), its canonical path elsewhere.
#[derive(PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode { device: u64, inode: u64 },
    #[cfg(not(unix))]
    Path(PathBuf),
}

impl FileId {
    #[cfg(unix)]
    fn of(_path: &Path, meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId::Inode {
            device: meta.dev(),
            inode: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(path: &Path, _meta: &std::fs::Metadata) -> FileId {
        FileId::Path(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

/// Files and directories already taken.
#[derive(Default)]
struct Seen {
    files: std::collections::HashSet<FileId>,
    dirs: std::collections::HashSet<FileId>,
}

impl Seen {
    /// The input for a file, or None when it is set aside (not regular, already read).
    fn file(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
        out: &mut Expansion,
    ) -> Option<Input> {
        let shown = path.display().to_string();
        if !meta.is_file() {
            out.skipped.push(SkippedFile {
                file: shown,
                why: SkipReason::NotRegular,
            });
            return None;
        }
        if !self.files.insert(FileId::of(path, meta)) {
            out.skipped.push(SkippedFile {
                file: shown,
                why: SkipReason::AlreadyRead,
            });
            return None;
        }
        Some(Input::File(path.to_path_buf()))
    }

    /// Whether a directory is new (false: already walked, e.g. through a symlink loop).
    fn dir(&mut self, path: &Path, meta: &std::fs::Metadata) -> bool {
        self.dirs.insert(FileId::of(path, meta))
    }
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

struct Walk<'a> {
    root: &'a Path,
    exclude: &'a Exclude,
    found: &'a mut Vec<PathBuf>,
    out: &'a mut Expansion,
    seen: &'a mut Seen,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata) {
        if !self.seen.dir(dir, meta) {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.out.errors.push(FileError {
                    file: dir.display().to_string(),
                    message: format!("cannot list directory: {}", io_message(&e)),
                });
                return;
            }
        };
        // Each entry with its type as listed (no system call where the file system gives it).
        let mut listed = Vec::new();
        let mut listing_errors = Vec::new();
        let mut chart_listed = false;
        for entry in entries {
            match entry {
                Ok(e) => {
                    let name = e.file_name();
                    // Hidden entries (.git) are skipped.
                    if name.as_encoded_bytes().starts_with(b".") {
                        continue;
                    }
                    chart_listed |= name.eq_ignore_ascii_case("Chart.yaml");
                    listed.push((e.path(), e.file_type().ok()));
                }
                Err(e) => listing_errors.push(FileError {
                    file: dir.display().to_string(),
                    message: format!("cannot list directory: {}", io_message(&e)),
                }),
            }
        }
        // A Helm chart's sources are templates, not manifests: render them and scan the output
        // (`helm template ... | securescore scan -`). Asked of the file system only when the
        // listing names it (in any case: the file system may not tell cases apart) or is
        // incomplete: a directory without a chart costs no system call.
        if (chart_listed || !listing_errors.is_empty()) && dir.join("Chart.yaml").is_file() {
            self.out.skipped.push(SkippedFile {
                file: dir.display().to_string(),
                why: SkipReason::Helm,
            });
            return;
        }
        self.out.errors.extend(listing_errors);
        // Sorted, so that which of two paths to one file is read does not depend on the
        // file system's order.
        listed.sort_by(|(a, _), (b, _)| a.cmp(b));
        for (path, listed_type) in listed {
            let relative = path.strip_prefix(self.root).unwrap_or(&path);
            if self.exclude.excludes(&path, relative) {
                continue;
            }
            let wanted = path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| MANIFEST_EXTENSIONS.contains(&x));
            // A regular file (not a symlink) that is not a manifest by its name is passed
            // over without asking for its metadata.
            if !wanted && listed_type.is_some_and(|t| t.is_file()) {
                continue;
            }
            // Follows symlinks, like `kubectl apply -R`.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => self.dir(&path, &m),
                Ok(m) => {
                    if !wanted {
                        continue;
                    }
                    if is_helm_values(&path) {
                        self.out.skipped.push(SkippedFile {
                            file: path.display().to_string(),
                            why: SkipReason::Helm,
                        });
                        continue;
                    }
                    if let Some(Input::File(p)) = self.seen.file(&path, &m, self.out) {
                        self.found.push(p);
                    }
                }
                Err(e) => self.out.errors.push(FileError {
                    file: path.display().to_string(),
                    message: format!("cannot read: {}", io_message(&e)),
                }),
            }
        }
    }
}

/// The most a scan reads from one input; a larger file is an error, not an out-of-memory abort.
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Read one input as UTF-8 text, at most [`MAX_INPUT_BYTES`].
pub fn read(input: &Input) -> Result<String, FileError> {
    let fail = |message: String| FileError {
        file: input.name(),
        message,
    };
    let too_large = || {
        fail(format!(
            "larger than {} MiB: not read (split it into smaller files)",
            MAX_INPUT_BYTES / (1024 * 1024)
        ))
    };
    let cannot_read = |e: std::io::Error| fail(format!("cannot read: {}", io_message(&e)));
    let mut bytes = Vec::new();
    match input {
        Input::Stdin => std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot_read)?,
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(cannot_read)?;
            // Reserved at the file's length (and a byte, where its end is found): `read_to_end`
            // through `take` has no size hint, and would otherwise grow the buffer by probes.
            // A file that grows is still read to its end, up to the limit.
            let length = file.metadata().map_or(0, |m| m.len());
            if length > MAX_INPUT_BYTES {
                return Err(too_large());
            }
            bytes
                .try_reserve_exact(usize::try_from(length + 1).unwrap_or(0))
                .map_err(|e| fail(format!("cannot read: {e}")))?;
            file.take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(cannot_read)?
        }
    };
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
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
        let Expansion { inputs, errors, .. } = expand(&[root.to_path_buf()], &Exclude::default());
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
        let Expansion { inputs, errors, .. } = expand(&[root.to_path_buf()], &Exclude::default());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<String> = inputs.iter().map(|i| i.name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with("app.yaml"));
        // Named explicitly, a values file is read (and reported if it is not a manifest).
        let inputs = expand(&[root.join("values.yaml")], &Exclude::default()).inputs;
        assert_eq!(inputs.len(), 1);
    }

    #[test]
    fn files_of_every_length_around_the_read_sizes_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        for length in [0, 1, 31, 32, 33, 8191, 8192, 8193, 100_000, 1_000_003] {
            let text: String = (0..length)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            let path = dir.path().join(format!("{length}.yaml"));
            std::fs::write(&path, &text).unwrap();
            assert_eq!(read(&Input::File(path)).unwrap(), text, "{length} bytes");
        }
    }

    #[test]
    fn a_file_longer_than_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yaml");
        // Sparse: no disk space taken.
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_INPUT_BYTES + 1).unwrap();
        assert_eq!(
            read(&Input::File(path.clone())).unwrap_err().to_string(),
            format!(
                "{}: larger than 256 MiB: not read (split it into smaller files)",
                path.display()
            )
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_fifo_named_explicitly_is_read_to_its_end_whatever_its_listed_length() {
        // A FIFO's length is 0: the reservation is a hint, the end is where the writer closes.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let text = "kind: ConfigMap\n".repeat(10_000);
        let writer = {
            let (fifo, text) = (fifo.clone(), text.clone());
            std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
        };
        assert_eq!(read(&Input::File(fifo)).unwrap(), text);
        writer.join().unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn a_chart_is_found_through_a_symlinked_chart_yaml_and_a_symlinked_directory_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.join("chart/templates")).unwrap();
        std::fs::write(outside.path().join("chart-source"), "name: x\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("chart-source"),
            root.join("chart/Chart.yaml"),
        )
        .unwrap();
        std::fs::write(root.join("chart/templates/d.yaml"), "a: 1\n").unwrap();
        // A lower-case name is not a chart (on a file system that tells cases apart).
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/chart.yaml"), "a: 1\n").unwrap();
        // A directory reached through a symlink whose name is no manifest's is walked.
        std::fs::create_dir_all(outside.path().join("more")).unwrap();
        std::fs::write(outside.path().join("more/e.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("more"), root.join("linked.d")).unwrap();
        let Expansion {
            inputs,
            errors,
            skipped,
            ..
        } = expand(&[root.to_path_buf()], &Exclude::default());
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<String> = inputs.iter().map(|i| i.name()).collect();
        assert_eq!(
            names,
            [
                root.join("app/chart.yaml").display().to_string(),
                root.join("linked.d/e.yaml").display().to_string(),
            ]
        );
        assert_eq!(
            skipped,
            [SkippedFile {
                file: root.join("chart").display().to_string(),
                why: SkipReason::Helm,
            }]
        );
    }

    #[test]
    fn a_missing_path_is_an_error_and_dash_is_stdin() {
        let Expansion { inputs, errors, .. } = expand(
            &["-".into(), "/no/such/file.yaml".into()],
            &Exclude::default(),
        );
        assert_eq!(inputs, [Input::Stdin]);
        assert_eq!(
            errors[0].to_string(),
            "/no/such/file.yaml: cannot read: No such file or directory"
        );
    }
}
