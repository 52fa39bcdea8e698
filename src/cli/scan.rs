//! `securescore scan`: evaluate manifests offline with the same engine as the operator.
//!
//! Pipeline: expand paths -> read and split documents -> sort ImprovementActions and
//! SecureScoreTargets out of the objects -> validate them (CRD CEL rules, action loading) ->
//! evaluate every target -> render -> exit code.

use super::output::{self, Format, Scored};
use crate::api::{ImprovementAction, SecureScoreTarget, SecurityControl};
use crate::engine::evaluate::{implicit_cluster_target, scope_namespaces};
use crate::engine::{
    CompiledAction, Inventory, Resource, Source, TargetInput, evaluate_with_controls,
};
use crate::inventory::files::{self, Exclude, Expansion, SkipReason, SkippedFile};
use crate::inventory::manifests::{
    FileObjects, NotAnObject, has_generated_name, read_file, synthesise_namespaces,
};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code when a gate fails: below `--min-score`, below its goal with `--fail-below-goal`,
/// or worse than `--baseline`.
pub const EXIT_BELOW_MIN_SCORE: u8 = 1;
/// Exit code for usage errors and skipped input.
pub const EXIT_INPUT_ERROR: u8 = 2;

/// Name of the target used when the input declares none.
pub const IMPLICIT_TARGET: &str = "scan";

/// Inputs from which a progress bar is shown (when stderr is a terminal).
const PROGRESS_FROM_FILES: usize = 200;

const AFTER_HELP: &str = "\
Exit codes:
  0  every target was evaluated (and meets --min-score, if given)
  1  a gate failed: a target below --min-score (or with nothing to evaluate), below its own
     spec.goal with --fail-below-goal, or worse than --baseline (score dropped, new findings)
  2  usage error, or some input was skipped: an unreadable file, a FIFO, device or socket
     (named or found in a directory; never read), invalid YAML/JSON, a document without
     apiVersion/kind/metadata.name, an ImprovementAction or SecureScoreTarget that breaks its
     CRD rules or does not load (not Ready), an Invalid exemption. Skipped input is reported
     on stderr as `file:line: message` and the rest is still evaluated (unless --strict).
     Exit 2 wins over exit 1.

YAML that is not a Kubernetes object by design (kustomization, Chart.yaml and values files, CI
workflows, compose files, plain configuration) is skipped and counted (--verbose lists it). The
same apiVersion group/kind/namespace/name declared twice is scored once, with a warning.

Input documents of kind ImprovementAction, SecurityControl and SecureScoreTarget
(securescore.io/v1alpha1) are used, not scored, once they pass their CRD's whole schema and CEL
rules: targets each get their own status; actions and controls found among the manifests are
ignored unless --allow-input-actions (the input under review must not rewrite its own gate),
those given with --actions add to or override the built-in catalog and controls by name.
Targets with spec.model: SecurityControls (or all targets, with --model SecurityControls) are
scored by the security controls. With no target in the input, one implicit cluster-wide target named `scan`
evaluates everything. Offline, a target's scope is not a security boundary: any target may name
other namespaces, use selectors and read cluster resources.";

/// Evaluate Kubernetes manifests offline and print their Secure Score.
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct ScanArgs {
    /// Manifests to read: files, directories (recursively: *.yaml, *.yml, *.json, sorted by
    /// path; hidden entries, Helm chart directories and Helm values files skipped — render a
    /// chart with `helm template` and pipe it in), or `-` for standard input. Multi-document
    /// YAML and `List` kinds are read.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Output: `table` for people, `json` for a SecureScoreTargetList (each item with the
    /// status the operator would write), `sarif` for code-scanning tools (SARIF 2.1.0),
    /// `prometheus` for the operator's per-target series (textfile collector, Pushgateway),
    /// `html` for one self-contained page (CI artefacts).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Read ImprovementActions and SecurityControls from PATH (file or directory;
    /// repeatable). They add to the built-in catalog and controls, or replace a built-in one
    /// of the same name.
    #[arg(long = "actions", value_name = "PATH")]
    pub actions: Vec<PathBuf>,

    /// Read SecureScoreTargets from PATH (file or directory; repeatable), in addition to those
    /// found among the manifests.
    #[arg(long = "target", value_name = "PATH")]
    pub targets: Vec<PathBuf>,

    /// Read Namespace objects from PATH (file or directory; repeatable), e.g. the platform
    /// repository's: they are judged like declared ones. Without them, a namespace the
    /// manifests only imply is used for scope and lookups but not judged.
    #[arg(long = "namespaces", value_name = "PATH")]
    pub namespace_files: Vec<PathBuf>,

    /// Leave out paths matching GLOB (repeatable): matched against the path as given, the
    /// path relative to the directory walked, and the file or directory name; `*` also
    /// crosses `/` (e.g. `--exclude 'overlays/**' --exclude '*.tmpl.yaml'`).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Use ImprovementActions and SecurityControls found among the scanned manifests. Without
    /// it they are ignored with a warning: the input under review must not rewrite its own
    /// gate (a pull request could replace a built-in action by one that always passes, or
    /// regroup the controls). Those given with --actions are always used.
    #[arg(long)]
    pub allow_input_actions: bool,

    /// List what was skipped by design (files that are not Kubernetes objects, duplicates).
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Do not use the built-in catalog and controls: only the actions and controls given
    /// with --actions or found in the input.
    #[arg(long)]
    pub no_builtin: bool,

    /// Score every target in this model, whatever its spec.model says: `ImprovementActions`
    /// (the sum of the actions' points) or `SecurityControls` (the sum of the security
    /// controls' points, Defender for Cloud's model).
    #[arg(long, value_enum, value_name = "MODEL")]
    pub model: Option<ModelArg>,

    /// Namespace of namespaced objects (and targets) that have none.
    #[arg(long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Fail (exit 1) when any target's percentage is below PERCENT (0-100), or when a target
    /// has nothing to evaluate.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub min_score: Option<f64>,

    /// Fail (exit 1) when any target misses its own spec.goal (a target with nothing to
    /// evaluate misses it; a target without a goal never does).
    #[arg(long)]
    pub fail_below_goal: bool,

    /// Fail (exit 1) when, against FILE (an earlier `--format json` output of the same scan),
    /// a target's score dropped, a sample finding appeared, or an action has more
    /// non-compliant resources; each is listed on stderr. Targets match by namespace/name.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Abort before evaluating (exit 2, nothing on stdout) when any input is skipped.
    #[arg(long)]
    pub strict: bool,

    /// Evaluate as of this instant (RFC 3339, e.g. 2026-01-31T12:00:00Z) instead of the
    /// current time: exemption expiry, due dates, whether task attestations are fresh, and
    /// lastEvaluated use it. Makes output reproducible.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<jiff::Timestamp>,

    /// Also evaluate the built-in actions over PRODUCT's reports (repeatable): `trivy-operator`
    /// (VulnerabilityReport, ConfigAuditReport, ExposedSecretReport) or `policy-reports`
    /// (PolicyReport, ClusterPolicyReport; Kyverno and others). Give the reports in the input
    /// (e.g. `kubectl get vulnerabilityreports -A -o yaml`); a product with none of its report
    /// kinds in the input is not detected: its actions are Unknown (maxScore kept, 0 points) and
    /// the target lists it under productsNotDetected.
    #[arg(long = "product", value_name = "PRODUCT")]
    pub products: Vec<String>,

    /// Score one framework: only the actions whose spec.references name FRAMEWORK (exactly as
    /// spelled there, e.g. "Pod Security Standards") are evaluated, and only that framework's
    /// controls are listed. An unknown name is an error that lists the valid ones.
    #[arg(long, value_name = "FRAMEWORK")]
    pub framework: Option<String>,
}

/// `--model`: the scoring model of [`crate::api::ScoringModel`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelArg {
    #[value(name = "ImprovementActions")]
    ImprovementActions,
    #[value(name = "SecurityControls")]
    SecurityControls,
}

impl From<ModelArg> for crate::api::ScoringModel {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::ImprovementActions => crate::api::ScoringModel::ImprovementActions,
            ModelArg::SecurityControls => crate::api::ScoringModel::SecurityControls,
        }
    }
}

impl ScanArgs {
    /// The scan behind `securescore explain`: the given manifests and actions, nothing else.
    pub fn for_explain(
        paths: Vec<PathBuf>,
        actions: Vec<PathBuf>,
        namespace: String,
        now: jiff::Timestamp,
    ) -> ScanArgs {
        ScanArgs {
            paths,
            format: Format::Table,
            actions,
            targets: Vec::new(),
            namespace_files: Vec::new(),
            exclude: Vec::new(),
            allow_input_actions: false,
            verbose: false,
            no_builtin: false,
            model: None,
            namespace,
            min_score: None,
            fail_below_goal: false,
            baseline: None,
            strict: false,
            now: Some(now),
            // Every product: explain names one action, which may be a product's.
            products: crate::engine::products::PRODUCTS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            framework: None,
        }
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number (a percentage, 0-100)"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a percentage between 0 and 100"))
    }
}

/// An action or a security control with where it came from.
struct Defined<T> {
    definition: T,
    origin: Origin,
}

type LoadedAction = Defined<ImprovementAction>;
type LoadedControl = Defined<SecurityControl>;

/// Where an action or target was declared.
#[derive(Clone)]
enum Origin {
    Builtin(&'static str),
    Document(Source),
}

impl Origin {
    fn locate(&self) -> String {
        match self {
            Origin::Builtin(file) => format!("built-in catalog {file}"),
            Origin::Document(s) => locate(s),
        }
    }
}

/// `file:line` (or `file: document N` where there is no line) of a document.
pub fn locate(s: &Source) -> String {
    match s.line {
        Some(line) => format!("{}:{line}", s.file),
        None => format!("{}: document {}", s.file, s.document),
    }
}

/// What the input held.
#[derive(Default)]
struct Loaded {
    objects: Vec<Resource>,
    actions: Vec<LoadedAction>,
    controls: Vec<LoadedControl>,
    targets: Vec<(SecureScoreTarget, Source)>,
    /// Whether any SecureScoreTarget document was seen, valid or not.
    target_documents: bool,
    /// Skipped input, already formatted `file:line: message`.
    errors: Vec<String>,
    /// Warnings that do not change the exit code (duplicates, ignored input actions).
    warnings: Vec<String>,
    /// Documents that are not Kubernetes objects by design.
    not_objects: Vec<NotAnObject>,
    /// Files set aside while walking (Helm sources, non-regular files, read twice).
    skipped_files: Vec<SkippedFile>,
    /// Where each identity was first declared: objects by group/kind/namespace/name.
    declared: HashMap<(String, String, Option<String>, String), Source>,
}

/// How inputs are read: the options that apply to every file.
struct Reading {
    namespace: String,
    exclude: Exclude,
    allow_input_actions: bool,
    /// The `(group, kind)`s some action may read, whose documents are read whole (with
    /// Namespaces and our own kinds); `None`: every kind. See [`kinds_read`].
    kinds_read: Option<HashSet<(String, String)>>,
}

impl Reading {
    /// Whether documents of this kind are read whole, or for their identity only.
    fn full_body(&self, group: &str, kind: &str) -> bool {
        group == GROUP
            || (group.is_empty() && kind == "Namespace")
            || self
                .kinds_read
                .as_ref()
                .is_none_or(|kinds| kinds.contains(&(group.to_string(), kind.to_string())))
    }
}

/// What a file given to the scan may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Anything: objects, actions and targets.
    Manifests,
    Actions,
    Targets,
    /// Namespace objects only (`--namespaces`).
    Namespaces,
}

const GROUP: &str = crate::api::GROUP;

impl Loaded {
    fn read_paths(&mut self, paths: &[PathBuf], role: Role, reading: &Reading) {
        self.read_expansion(files::expand(paths, &reading.exclude), role, reading);
    }

    /// Read the inputs paths were expanded into (see [`files::expand`]).
    fn read_expansion(&mut self, expansion: Expansion, role: Role, reading: &Reading) {
        let Expansion {
            inputs,
            errors,
            skipped,
        } = expansion;
        self.errors.extend(errors.iter().map(ToString::to_string));
        for s in skipped {
            // A FIFO, device or socket is not read (it could hang or never end), but it was
            // given as input: skipped input, visible in the exit code like an unreadable file,
            // so that a gate never passes over a manifest it did not read.
            if s.why == SkipReason::NotRegular {
                self.errors.push(s.to_string());
            }
            self.skipped_files.push(s);
        }
        let progress = progress_bar(inputs.len());
        // Files are read and parsed in parallel, each object kept compact as soon as it is read
        // (our own kinds keep their JSON: they are deserialised below); the results are used in
        // input order, so the output does not depend on the number of threads.
        let keep_json = |r: &Resource| r.group == GROUP;
        let full_body =
            |group: &str, kind: &str| role != Role::Manifests || reading.full_body(group, kind);
        // Each result comes with the input's name, formatted there rather than again on the one
        // thread that takes the results in order.
        let read: Vec<(String, Result<FileObjects, files::FileError>)> = inputs
            .par_iter()
            .map(|input| {
                let name = input.name();
                if let Some(p) = &progress {
                    p.set_message(name.clone());
                }
                let read = files::read(input).map(|text| {
                    read_file(&name, &text, &reading.namespace, &keep_json, &full_body)
                });
                if let Some(p) = &progress {
                    p.inc(1);
                }
                (name, read)
            })
            .collect();
        if let Some(p) = progress {
            p.finish_and_clear();
        }
        // Room for every object at once, rather than growing (and moving) them as they come.
        let objects: usize = read
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|r| r.documents.objects.len())
            .sum();
        self.objects.reserve(objects);
        self.declared.reserve(objects);
        for (name, read) in read {
            match read {
                Ok(read) => self.read_text(name, read, role, reading),
                Err(e) => self.errors.push(e.to_string()),
            }
        }
    }

    /// Take one file's objects (`name`: the file as shown), in input order.
    fn read_text(&mut self, name: String, read: FileObjects, role: Role, reading: &Reading) {
        let FileObjects {
            parse_errors,
            documents: read,
        } = read;
        self.errors
            .extend(parse_errors.iter().map(ToString::to_string));
        self.errors
            .extend(read.errors.iter().map(ToString::to_string));
        self.not_objects.extend(read.not_objects);
        for r in read.objects {
            let source = r.source.clone().unwrap_or(Source {
                file: name.clone(),
                line: None,
                document: 0,
            });
            let ours = r.group == GROUP;
            let accepted = match (ours, r.kind.as_str(), role) {
                (_, _, Role::Manifests) => true,
                (true, "ImprovementAction" | "SecurityControl", Role::Actions) => true,
                (true, "SecureScoreTarget", Role::Targets) => true,
                (false, "Namespace", Role::Namespaces) => r.group.is_empty(),
                _ => false,
            };
            if accepted && !self.first_declaration(&r, &source) {
                continue;
            }
            match (ours, r.kind.as_str(), role) {
                (true, kind @ ("ImprovementAction" | "SecurityControl"), Role::Manifests)
                    if !reading.allow_input_actions =>
                {
                    self.warnings.push(format!(
                        "{}: {kind} {}: ignored: actions and controls in the scanned input are used only with --allow-input-actions (or pass them with --actions)",
                        locate(&source),
                        r.name
                    ));
                }
                (true, "SecurityControl", Role::Manifests | Role::Actions) => {
                    if let Some(control) = self.typed::<SecurityControl>(&r, &source) {
                        self.controls.push(Defined {
                            definition: control,
                            origin: Origin::Document(source),
                        });
                    }
                }
                (true, "ImprovementAction", Role::Manifests | Role::Actions) => {
                    if let Some(action) = self.typed::<ImprovementAction>(&r, &source) {
                        self.actions.push(Defined {
                            definition: action,
                            origin: Origin::Document(source),
                        });
                    }
                }
                (true, "SecureScoreTarget", Role::Manifests | Role::Targets) => {
                    self.target_documents = true;
                    if let Some(target) = self.typed::<SecureScoreTarget>(&r, &source) {
                        self.targets.push((target, source));
                    }
                }
                (_, _, Role::Manifests) => self.objects.push(r),
                (false, "Namespace", Role::Namespaces) if r.group.is_empty() => {
                    self.objects.push(r)
                }
                (_, kind, Role::Namespaces) => self.errors.push(format!(
                    "{}: {kind} {}: --namespaces files hold Namespace objects (v1) only",
                    locate(&source),
                    r.display_name()
                )),
                (_, kind, Role::Actions) => self.errors.push(format!(
                    "{}: {kind} {}: --actions files hold ImprovementActions and SecurityControls (securescore.io/v1alpha1) only",
                    locate(&source),
                    r.display_name()
                )),
                (_, kind, Role::Targets) => self.errors.push(format!(
                    "{}: {kind} {}: --target files hold SecureScoreTargets (securescore.io/v1alpha1) only",
                    locate(&source),
                    r.display_name()
                )),
            }
        }
    }

    /// Whether this is the first declaration of the object's identity (group, kind, namespace,
    /// name); a later one is a duplicate, warned about with both places and not used.
    /// `generateName` objects are never duplicates: each creates a new object.
    fn first_declaration(&mut self, r: &Resource, source: &Source) -> bool {
        if has_generated_name(r) {
            return true;
        }
        let key = (
            r.group.clone(),
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
        );
        match self.declared.get(&key) {
            Some(first) => {
                self.warnings.push(format!(
                    "{}: {} {} is declared again (first at {}): scored once, this one ignored",
                    locate(source),
                    r.kind,
                    r.display_name(),
                    locate(first)
                ));
                false
            }
            None => {
                self.declared.insert(key, source.clone());
                true
            }
        }
    }

    /// Deserialize one of our kinds and check its CRD CEL rules, as the API server would.
    fn typed<T: CustomResourceValidate>(&mut self, r: &Resource, source: &Source) -> Option<T> {
        let what = format!("{} {}", r.kind, r.display_name());
        // The whole CRD schema first, as the API server checks it before anything else.
        let violations = crate::api::schema::validate(&r.kind, &r.object);
        if !violations.is_empty() {
            for v in violations {
                self.errors.push(format!("{}: {what}: {v}", locate(source)));
            }
            return None;
        }
        // serde_path_to_error names the field that failed (e.g. `spec.check.validations[0]`).
        let value: T = match serde_path_to_error::deserialize(r.object.clone()) {
            Ok(v) => v,
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                self.errors.push(format!(
                    "{}: {what}: invalid: {path}: {inner}",
                    locate(source)
                ));
                return None;
            }
        };
        let violations = value.violations();
        if violations.is_empty() {
            Some(value)
        } else {
            for v in violations {
                self.errors.push(format!("{}: {what}: {v}", locate(source)));
            }
            None
        }
    }
}

/// The CRD CEL rules of our kinds, checked client-side.
trait CustomResourceValidate: serde::de::DeserializeOwned {
    fn violations(&self) -> Vec<String>;
}

impl CustomResourceValidate for ImprovementAction {
    fn violations(&self) -> Vec<String> {
        match self.validate_cel() {
            Ok(()) => Vec::new(),
            Err(e) => e.as_slice().iter().map(ToString::to_string).collect(),
        }
    }
}

impl CustomResourceValidate for SecurityControl {
    fn violations(&self) -> Vec<String> {
        match self.validate_cel() {
            Ok(()) => Vec::new(),
            Err(e) => e.as_slice().iter().map(ToString::to_string).collect(),
        }
    }
}

impl CustomResourceValidate for SecureScoreTarget {
    fn violations(&self) -> Vec<String> {
        match self.validate_cel() {
            Ok(()) => Vec::new(),
            Err(e) => e.as_slice().iter().map(ToString::to_string).collect(),
        }
    }
}

trait DisplayName {
    fn display_name(&self) -> String;
}

impl DisplayName for Resource {
    /// `ns/name` for namespaced objects, `name` for cluster-scoped ones.
    fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

fn progress_bar(len: usize) -> Option<indicatif::ProgressBar> {
    if len < PROGRESS_FROM_FILES || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("reading {pos}/{len} {bar:30} {wide_msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// The actions a scan evaluates: the built-in catalog (unless dropped), overridden by name by
/// the input's actions, then by `--actions`, each compiled once. Not-Ready actions are kept
/// (they are Unknown for every target, as in a cluster) and reported as input errors.
fn compile_actions(
    builtin: Option<BuiltinActions>,
    products: &[String],
    loaded: Vec<LoadedAction>,
    errors: &mut Vec<String>,
) -> Vec<Arc<CompiledAction>> {
    let builtin = builtin.map(|parsed| (parsed, crate::catalog::files()));
    let merged: Vec<(String, LoadedAction)> =
        merge_by_name(builtin, product_enabled(products), loaded, errors)
            .into_iter()
            .collect();
    for (name, a) in &merged {
        for i in a.definition.spec.check.messages_reading_secret_data() {
            eprintln!(
                "securescore scan: warning: {}",
                output::safe(&format!(
                    "{}: ImprovementAction {name}: spec.check.validations[{i}].messageExpression reads Secret data (data/stringData): its findings would publish secret values (scan output; in the operator, the target's status); name the failing field, never a value read from the object",
                    a.origin.locate()
                ))
            );
        }
    }
    // Compiling (CEL, examples) is independent per action: spread over the cores, in order.
    let compiled: Vec<CompiledAction> = merged
        .par_iter()
        .map(|(_, a)| CompiledAction::compile(&a.definition))
        .collect();
    merged
        .iter()
        .zip(compiled)
        .map(|((name, a), compiled)| {
            if let Some(p) = &compiled.problem {
                errors.push(format!(
                    "{}: ImprovementAction {name} is not Ready: {}: {}",
                    a.origin.locate(),
                    p.reason.as_str(),
                    p.message
                ));
            }
            Arc::new(compiled)
        })
        .collect()
}

/// The built-in actions as parsed (`crate::catalog::builtin`).
type BuiltinActions = Result<Vec<ImprovementAction>, crate::catalog::CatalogError>;

/// The `(group, kind)`s the scan's actions may read (judged or looked up): those of the
/// built-in actions (`builtin`), products' included, and of every ImprovementAction in the
/// `--actions` files (read here once more, a few small files). Documents of other kinds
/// are read for their identity only, their bodies never built. `None` (every kind read whole)
/// when the input's own actions may be used (`--allow-input-actions`: they are known only
/// once the input is read) or an `--actions` file is standard input (it cannot be read twice).
fn kinds_read(
    args: &ScanArgs,
    exclude: &Exclude,
    builtin: Option<&BuiltinActions>,
) -> Option<HashSet<(String, String)>> {
    if args.allow_input_actions {
        return None;
    }
    let mut kinds = HashSet::new();
    let mut add = |action: &ImprovementAction| {
        let check = &action.spec.check;
        kinds.extend(crate::engine::check::kinds_judged(check));
        kinds.extend(
            check
                .lookups
                .iter()
                .map(|l| (l.api_group.clone(), l.kind.clone())),
        );
    };
    if let Some(Ok(actions)) = builtin {
        actions.iter().for_each(&mut add);
    }
    for input in files::expand(&args.actions, exclude).inputs {
        if input == files::Input::Stdin {
            return None;
        }
        // Unreadable files are reported when they are read for use.
        let Ok(text) = files::read(&input) else {
            continue;
        };
        let (documents, _) = crate::inventory::manifests::parse_documents(&input.name(), &text);
        let (objects, _) = crate::inventory::manifests::objects_from(documents, &args.namespace);
        for r in objects {
            // One that does not deserialize is skipped input: it reads nothing.
            if r.group == GROUP
                && r.kind == "ImprovementAction"
                && let Ok(action) = serde_json::from_value::<ImprovementAction>(r.object)
            {
                add(&action);
            }
        }
    }
    Some(kinds)
}

/// Built-in definitions as parsed, and their embedded `(file, text)`s in the same order.
type Builtin<T> = (
    Result<Vec<T>, crate::catalog::CatalogError>,
    &'static [(&'static str, &'static str)],
);

/// The built-in definitions (`builtin`: parsed, and their embedded files, in the same order)
/// that `wanted` keeps, overridden by name by the loaded ones in input order (the last
/// wins), by name.
/// Built-in actions and controls over another product's reports are opt-in (`--product`), as
/// in the chart: one labelled with a product is kept only when that product is named.
fn product_enabled<T: kube::Resource>(products: &[String]) -> impl Fn(&T) -> bool + '_ {
    move |definition: &T| {
        definition
            .meta()
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::api::PRODUCT_LABEL))
            .is_none_or(|p| products.contains(p))
    }
}

fn merge_by_name<T: kube::Resource>(
    builtin: Option<Builtin<T>>,
    wanted: impl Fn(&T) -> bool,
    loaded: Vec<Defined<T>>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, Defined<T>> {
    let mut by_name = BTreeMap::new();
    match builtin {
        None => {}
        Some((Err(e), _)) => errors.push(e.to_string()),
        Some((Ok(definitions), files)) => {
            for (definition, (file, _)) in definitions.into_iter().zip(files) {
                if wanted(&definition) {
                    by_name.insert(
                        definition.meta().name.clone().unwrap_or_default(),
                        Defined {
                            definition,
                            origin: Origin::Builtin(file),
                        },
                    );
                }
            }
        }
    }
    for d in loaded {
        by_name.insert(d.definition.meta().name.clone().unwrap_or_default(), d);
    }
    by_name
}

/// `--framework NAME`: keep only the actions whose references name the framework. The valid
/// names are the built-in catalog's frameworks and any other the actions name.
fn select_framework(actions: &mut Vec<Arc<CompiledAction>>, framework: &str) -> Result<(), String> {
    let mut known: Vec<String> = crate::catalog::FRAMEWORKS
        .iter()
        .map(|f| f.to_string())
        .collect();
    for a in actions.iter() {
        for r in &a.spec.references {
            if !known.contains(&r.framework) {
                known.push(r.framework.clone());
            }
        }
    }
    if !known.iter().any(|k| k == framework) {
        return Err(format!(
            "--framework {framework:?} is not a framework any action names; valid names: {}",
            known
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    actions.retain(|a| a.spec.references.iter().any(|r| r.framework == framework));
    Ok(())
}

/// The security controls a scan uses: the built-in controls (unless dropped), overridden by
/// name by the input's controls, then by `--actions`. A control that groups none of the known
/// actions is kept (it is NotApplicable for every target, as in a cluster) and reported as a
/// warning on stderr.
fn load_controls(
    builtin: bool,
    products: &[String],
    loaded: Vec<LoadedControl>,
    actions: &[Arc<CompiledAction>],
    errors: &mut Vec<String>,
) -> Vec<Arc<SecurityControl>> {
    let builtin = builtin.then(|| {
        (
            crate::catalog::builtin_controls(),
            crate::catalog::control_files(),
        )
    });
    merge_by_name(builtin, product_enabled(products), loaded, errors)
        .into_iter()
        .map(|(name, c)| {
            let members = crate::engine::controls::members(
                &c.definition,
                actions.iter().map(|a| (a.name.as_str(), &a.labels)),
            );
            // Only input/--actions controls are warned about: the built-in ones group built-in
            // actions (tests/catalog.rs), and a product's are loaded only with its actions.
            if members.is_empty() && !matches!(c.origin, Origin::Builtin(_)) {
                eprintln!(
                    "securescore scan: warning: {}",
                    output::safe(&format!(
                        "{}: SecurityControl {name} groups no known ImprovementAction (NoActions): it applies to nothing",
                        c.origin.locate()
                    ))
                );
            }
            Arc::new(c.definition)
        })
        .collect()
}

/// What a scan scored: each target's evaluation, the actions used, and the skipped input
/// (already reported on stderr).
pub(super) struct Scan {
    pub scored: Vec<Scored>,
    pub actions: Vec<Arc<CompiledAction>>,
    pub errors: Vec<String>,
}

/// Read, validate and evaluate: everything but rendering and gates. `Err` is the exit code of
/// a scan that stops early (usage error, --strict).
pub(super) fn score(args: &ScanArgs) -> Result<Scan, ExitCode> {
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    if args.namespace.is_empty() {
        eprintln!(
            "securescore scan: --namespace must name a namespace (it is given to namespaced objects that have none)"
        );
        return Err(ExitCode::from(EXIT_INPUT_ERROR));
    }
    let exclude = match Exclude::new(&args.exclude) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("securescore scan: {e}");
            return Err(ExitCode::from(EXIT_INPUT_ERROR));
        }
    };
    // The manifests are listed while the built-in catalog is parsed: the walk waits on the
    // file system, one system call at a time, while the parse keeps the other cores busy.
    let ((builtin, kinds_read), manifests) = rayon::join(
        || {
            let builtin = (!args.no_builtin).then(crate::catalog::builtin);
            let kinds = kinds_read(args, &exclude, builtin.as_ref());
            (builtin, kinds)
        },
        || files::expand(&args.paths, &exclude),
    );
    let reading = Reading {
        namespace: args.namespace.clone(),
        kinds_read,
        exclude,
        allow_input_actions: args.allow_input_actions,
    };
    let mut loaded = Loaded::default();
    loaded.read_expansion(manifests, Role::Manifests, &reading);
    loaded.read_paths(&args.actions, Role::Actions, &reading);
    loaded.read_paths(&args.targets, Role::Targets, &reading);
    loaded.read_paths(&args.namespace_files, Role::Namespaces, &reading);
    let mut errors = std::mem::take(&mut loaded.errors);
    report_skipped(&loaded, args.verbose);

    if let Some(unknown) = args
        .products
        .iter()
        .find(|p| !crate::engine::products::PRODUCTS.contains(&p.as_str()))
    {
        eprintln!(
            "securescore scan: --product {unknown:?} is not a product with built-in actions (known: {})",
            crate::engine::products::PRODUCTS.join(", ")
        );
        return Err(ExitCode::from(EXIT_INPUT_ERROR));
    }
    let mut actions = compile_actions(
        builtin,
        &args.products,
        std::mem::take(&mut loaded.actions),
        &mut errors,
    );
    if let Some(framework) = &args.framework
        && let Err(e) = select_framework(&mut actions, framework)
    {
        eprintln!("securescore scan: {e}");
        return Err(ExitCode::from(EXIT_INPUT_ERROR));
    }

    let controls = load_controls(
        !args.no_builtin,
        &args.products,
        std::mem::take(&mut loaded.controls),
        &actions,
        &mut errors,
    );

    let mut targets = std::mem::take(&mut loaded.targets);
    if !loaded.target_documents {
        targets.push((
            implicit_cluster_target(IMPLICIT_TARGET, &args.namespace),
            Source {
                file: String::new(),
                line: None,
                document: 0,
            },
        ));
    }

    // Only what the input declares is judged: implied Namespaces serve scope and lookups.
    let objects = loaded.objects;
    let implied = synthesise_namespaces(&objects);
    let implied_names: Vec<String> = implied.iter().map(|n| n.name.clone()).collect();
    let mut inventory = Inventory::complete(objects.into_iter().map(Arc::new));
    for namespace in implied {
        inventory.imply_namespace(Arc::new(namespace));
    }

    if args.strict && !errors.is_empty() {
        return Err(abort(&errors));
    }

    if let Some(model) = args.model {
        for (target, _) in &mut targets {
            target.spec.model = model.into();
        }
    }
    let scored: Vec<Scored> = targets
        .into_iter()
        .map(|(target, source)| {
            let mut evaluation = evaluate_with_controls(
                &TargetInput {
                    target: &target,
                    actions: &actions,
                    inventory: &inventory,
                    now,
                    previous: None,
                    wide_scope_allowed: true,
                },
                &controls,
            );
            if let Some(framework) = &args.framework {
                // The other frameworks' numbers would count only the actions shared with this one.
                evaluation
                    .status
                    .frameworks
                    .retain(|f| &f.framework == framework);
            }
            let source = (!source.file.is_empty()).then_some(source);
            let scope = scope_namespaces(&target, &inventory);
            let implied_namespaces = implied_names
                .iter()
                .filter(|n| scope.contains(*n))
                .cloned()
                .collect();
            Scored {
                target,
                source,
                evaluation,
                implied_namespaces,
            }
        })
        .collect();

    // Exemptions the engine refused are ignored: skipped input, located at their target.
    for s in &scored {
        for (i, e) in s.evaluation.exemptions.iter().enumerate() {
            if e.state == crate::api::ExemptionState::Invalid {
                let at = s
                    .source
                    .as_ref()
                    .map(locate)
                    .unwrap_or_else(|| "<implicit target>".into());
                errors.push(format!(
                    "{at}: SecureScoreTarget {}: spec.exemptions[{i}] ({}): Invalid: {}",
                    output::target_name(&s.target),
                    e.exemption.name,
                    e.message
                        .as_deref()
                        .unwrap_or("breaks the action's exemption policy")
                ));
            }
        }
    }
    // Attestations the engine refused (in the future, not a task) likewise.
    for s in &scored {
        for a in &s.evaluation.status.attestations {
            if a.state == crate::api::AttestationState::Invalid {
                let at = s
                    .source
                    .as_ref()
                    .map(locate)
                    .unwrap_or_else(|| "<implicit target>".into());
                errors.push(format!(
                    "{at}: SecureScoreTarget {}: Invalid attestation: {}",
                    output::target_name(&s.target),
                    a.message.as_deref().unwrap_or("ignored")
                ));
            }
        }
    }
    if args.strict && !errors.is_empty() {
        return Err(abort(&errors));
    }
    report_errors(&errors);
    Ok(Scan {
        scored,
        actions,
        errors,
    })
}

pub fn run(args: ScanArgs) -> ExitCode {
    let baseline = match args.baseline.as_deref().map(super::gates::read_baseline) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            eprintln!("securescore scan: {e}");
            return ExitCode::from(EXIT_INPUT_ERROR);
        }
    };
    let scan = match score(&args) {
        Ok(scan) => scan,
        Err(code) => return code,
    };
    // Never freed: the process ends once the output is written, and dropping every result,
    // finding and resource one by one took ~1.5 ms of one core after the output was out.
    let scan = std::mem::ManuallyDrop::new(scan);
    let Scan {
        scored,
        actions,
        errors,
    } = &*scan;
    let rendered = match output::render(args.format, scored, actions) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "securescore scan: cannot render {:?} output: {e}",
                args.format
            );
            return ExitCode::from(EXIT_INPUT_ERROR);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(rendered.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("securescore scan: cannot write to stdout: {e}");
        }
        return ExitCode::from(EXIT_INPUT_ERROR);
    }

    if !errors.is_empty() {
        return ExitCode::from(EXIT_INPUT_ERROR);
    }
    let failing = super::gates::failures(
        scored,
        args.min_score,
        args.fail_below_goal,
        baseline.as_deref(),
    );
    if !failing.is_empty() {
        for f in failing {
            eprintln!("securescore scan: {}", output::safe(&f));
        }
        return ExitCode::from(EXIT_BELOW_MIN_SCORE);
    }
    ExitCode::SUCCESS
}

/// Warnings, and what was skipped by design: counted, listed with --verbose.
fn report_skipped(loaded: &Loaded, verbose: bool) {
    let mut stderr = buffered_stderr();
    for w in &loaded.warnings {
        let _ = writeln!(stderr, "warning: {}", output::safe(w));
    }
    let mut files: Vec<&str> = loaded
        .not_objects
        .iter()
        .map(|n| n.file.as_str())
        .chain(
            loaded
                .skipped_files
                .iter()
                .filter(|s| s.why == SkipReason::Helm)
                .map(|s| s.file.as_str()),
        )
        .collect();
    files.sort_unstable();
    files.dedup();
    if !files.is_empty() {
        let _ = writeln!(
            stderr,
            "securescore scan: skipped {} {} that {} not Kubernetes objects ({} documents){}",
            files.len(),
            if files.len() == 1 { "file" } else { "files" },
            if files.len() == 1 { "is" } else { "are" },
            loaded.not_objects.len(),
            if verbose {
                ":"
            } else {
                "; --verbose lists them"
            }
        );
    }
    if verbose {
        for s in loaded
            .skipped_files
            .iter()
            .filter(|s| s.why != SkipReason::NotRegular)
        {
            let _ = writeln!(stderr, "  skipped {}", output::safe(&s.to_string()));
        }
        for n in &loaded.not_objects {
            let _ = writeln!(stderr, "  skipped {}", output::safe(&n.to_string()));
        }
    }
    let _ = stderr.flush();
}

fn report_errors(errors: &[String]) {
    let mut stderr = buffered_stderr();
    for e in errors {
        let _ = writeln!(stderr, "{}", output::safe(e));
    }
    let _ = stderr.flush();
}

/// Standard error for a list of lines: written in a few large writes rather than several
/// per line (unbuffered, each `writeln!` is a system call per piece). Flushed by the caller
/// before anything else is printed, so the order seen on the terminal is unchanged.
fn buffered_stderr() -> std::io::BufWriter<std::io::StderrLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr().lock())
}

fn abort(errors: &[String]) -> ExitCode {
    report_errors(errors);
    eprintln!(
        "securescore scan: {} input error(s); nothing evaluated (--strict)",
        errors.len()
    );
    ExitCode::from(EXIT_INPUT_ERROR)
}
