//! `securescore catalog`: the built-in improvement actions, as YAML to `kubectl apply` (the
//! embedded files verbatim) or as a readable table.

use std::io::Write;
use std::process::ExitCode;

/// Output of `securescore catalog`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFormat {
    /// Multi-document YAML, ready for `kubectl apply -f -`.
    Yaml,
    /// One line per action: name, category, points, title.
    Table,
}

/// Print the built-in catalog.
#[derive(clap::Args, Debug)]
pub struct CatalogArgs {
    /// `yaml` (the catalog files verbatim, `---` separated) or `table`.
    #[arg(long, value_enum, default_value_t = CatalogFormat::Yaml)]
    pub format: CatalogFormat,
}

/// The embedded catalog files as one YAML stream.
pub fn yaml() -> String {
    let mut out = String::new();
    for (i, (_, text)) in crate::catalog::files().iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The catalog as a table, by category then name.
pub fn table() -> Result<String, crate::catalog::CatalogError> {
    let mut actions = crate::catalog::builtin()?;
    actions.sort_by(|a, b| {
        (a.spec.category, &a.metadata.name).cmp(&(b.spec.category, &b.metadata.name))
    });
    let width = actions
        .iter()
        .map(|a| a.metadata.name.as_deref().unwrap_or_default().len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:width$}  {:14}  {:>6}  TITLE\n",
        "NAME", "CATEGORY", "POINTS"
    );
    for a in &actions {
        out.push_str(&format!(
            "{:width$}  {:14}  {:>6}  {}{}\n",
            a.metadata.name.as_deref().unwrap_or_default(),
            a.spec.category.as_str(),
            a.spec.max_score,
            a.spec.title,
            if a.spec.preview { " (preview)" } else { "" }
        ));
    }
    let total: u32 = actions.iter().map(|a| a.spec.max_score).sum();
    out.push_str(&format!("{} actions, {total} points\n", actions.len()));
    Ok(out)
}

pub fn run(args: CatalogArgs) -> ExitCode {
    let text = match args.format {
        CatalogFormat::Yaml => yaml(),
        CatalogFormat::Table => match table() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("securescore catalog: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("securescore catalog: cannot write to stdout: {err}");
            ExitCode::from(2)
        }
    }
}
