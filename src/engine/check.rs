//! An `ImprovementAction` compiled for evaluation: its CEL programs (compiled once), the kinds
//! it reads, and the judgement of one resource.

use super::cel::{
    self as kcel, CelJson, CompileError, Compiled, EvalError, Shared, cel::Context, cel::Value,
};
use super::resource::{Inventory, Resource};
use super::selector;
use crate::api::{
    ExpectedResult, ImprovementAction, ImprovementActionSpec, MAX_MESSAGE_LEN, Scoring,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Kinds that carry a pod template, as `(group, kind)`, and where their pod template is.
pub const POD_TEMPLATE_KINDS: [(&str, &str, &[&str]); 7] = [
    ("", "Pod", &[]),
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// Longest lookup list one evaluation may read.
pub const MAX_LOOKUP_ITEMS: usize = 10_000;

/// Why an action is not `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemReason {
    InvalidExpression,
    ExampleFailed,
    LimitExceeded,
}

impl ProblemReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemReason::InvalidExpression => "InvalidExpression",
            ProblemReason::ExampleFailed => "ExampleFailed",
            ProblemReason::LimitExceeded => "LimitExceeded",
        }
    }
}

/// A loading problem, with the field it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionProblem {
    pub reason: ProblemReason,
    pub message: String,
}

/// The verdict on one applicable resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Compliant,
    NonCompliant {
        message: String,
    },
    /// The check could not be evaluated; scored as NonCompliant (fail closed).
    Error {
        message: String,
    },
}

impl Verdict {
    pub fn is_compliant(&self) -> bool {
        matches!(self, Verdict::Compliant)
    }
}

/// What an action says about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    NotApplicable,
    Applicable(Verdict),
}

#[derive(Debug)]
struct CompiledValidation {
    expression: Compiled,
    message: Option<String>,
    message_expression: Option<Compiled>,
    source: String,
}

#[derive(Debug)]
struct VariableProgram {
    name: String,
    compiled: Compiled,
    /// The expression as written: actions share a variable only when this is identical.
    source: String,
    /// Reads only the object-level bindings (object, podSpec, podMetadata, namespaceObject).
    object_level: bool,
    /// The same number for every variable of this name and expression, in any action: an
    /// object scope finds the variables it may share by comparing numbers, not texts.
    share_id: u32,
    /// The identifier it is bound as (`__v_NAME`).
    bound_name: String,
}

/// The number of a variable's name and expression (see `VariableProgram::share_id`): one
/// process-wide table, filled when actions compile.
fn share_id(name: &str, source: &str) -> u32 {
    static IDS: std::sync::OnceLock<std::sync::Mutex<HashMap<(String, String), u32>>> =
        std::sync::OnceLock::new();
    let mut ids = IDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let next = ids.len() as u32;
    *ids.entry((name.to_string(), source.to_string()))
        .or_insert(next)
}

#[derive(Debug)]
struct Programs {
    /// Expressions read variables as `__v_NAME` identifiers (else as the `variables` map).
    rewritten: bool,
    variables: Vec<VariableProgram>,
    match_conditions: Vec<(String, Compiled)>,
    validations: Vec<CompiledValidation>,
}

/// An action ready to evaluate (or the reason it is not).
#[derive(Debug)]
pub struct CompiledAction {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub generation: Option<i64>,
    pub spec: ImprovementActionSpec,
    /// Hash of the spec: changes whenever the definition changes.
    pub revision: String,
    /// `(group, kind)` the check applies to.
    pub kinds: Vec<(String, String)>,
    pub problem: Option<ActionProblem>,
    programs: Option<Programs>,
    roots: BTreeSet<&'static str>,
    /// The run-time budget of each evaluation of each of its expressions.
    pub budget: kcel::cel::budget::Limits,
    /// Resources on which an evaluation crossed the budget, over the action's life (in the
    /// operator: until the action changes). See [`limit_exceeded`](Self::limit_exceeded).
    budget_failures: AtomicU32,
}

/// Resources on which an action may cross its budget before it is `LimitExceeded`: it is
/// then no longer evaluated, so one runaway action cannot stall the others.
pub const BUDGET_FAILURES_ALLOWED: u32 = 3;

/// What an evaluation of one resource can see besides the resource.
pub struct Surroundings<'a> {
    pub inventory: &'a Inventory,
    /// Whether lookups may include cluster-scoped objects.
    pub cluster_visible: bool,
}

/// The object-level CEL bindings (`object`, `podSpec`, `podMetadata`, `namespaceObject`),
/// converted once and shared by every action judging the object.
pub struct ObjectScope {
    ctx: Context<'static>,
    pod_template_missing: bool,
    /// Variables evaluated once for the object and bound as `__v_NAME`: their
    /// `VariableProgram::share_id` (same name and expression) and the evaluation error if it
    /// failed.
    shared: Vec<(u32, Option<String>)>,
}

impl ObjectScope {
    pub fn new(resource: &Resource, inventory: &Inventory) -> ObjectScope {
        Self::binding(resource, inventory, &kcel::ROOT_VARIABLES)
    }

    /// Bind only the object-level roots in `roots` (binding deep-copies: a Deployment whose
    /// actions read only `podSpec` need not copy the whole object as well).
    fn binding(resource: &Resource, inventory: &Inventory, roots: &[&str]) -> ObjectScope {
        let wants = |r: &str| roots.contains(&r);
        let converted = resource.cel();
        let mut ctx = kcel::root_context().new_inner_scope();
        if wants("object") {
            kcel::bind(&mut ctx, "object", &converted.shared);
        }
        let mut pod_template_missing = false;
        if let Some(path) = pod_template_path(&resource.group, &resource.kind) {
            match pod_template(&converted.shared, path) {
                Some((spec, metadata)) => {
                    if wants("podSpec") {
                        kcel::bind_owned(&mut ctx, "podSpec", spec);
                    }
                    if wants("podMetadata") {
                        kcel::bind_owned(&mut ctx, "podMetadata", metadata);
                    }
                }
                None => pod_template_missing = true,
            }
        }
        if wants("namespaceObject") {
            let synthesised;
            let namespace_object = match &resource.namespace {
                Some(ns) => match inventory.namespace(ns) {
                    Some(n) => &n.cel().shared,
                    None => {
                        synthesised = synthesised_namespace(ns).shared;
                        &synthesised
                    }
                },
                None => &Shared::null(),
            };
            kcel::bind(&mut ctx, "namespaceObject", namespace_object);
        }
        ObjectScope {
            ctx,
            pod_template_missing,
            shared: Vec::new(),
        }
    }

    /// The object's bindings plus the variables that two or more of `actions` define with the
    /// same expression on the object alone (e.g. `allContainers`): each is evaluated and bound
    /// once for the object instead of once per action.
    pub fn with_shared(
        resource: &Resource,
        inventory: &Inventory,
        actions: &[&CompiledAction],
    ) -> ObjectScope {
        let mut scope = ObjectScope::new(resource, inventory);
        // Every object-level variable of the actions, grouped by name and expression (their
        // number): runs of equal numbers are the uses of one variable. This runs for every
        // object, so it compares numbers, not texts, and allocates one small vector.
        let mut uses: Vec<(u32, &VariableProgram)> = actions
            .iter()
            .filter_map(|a| a.programs.as_ref().filter(|p| p.rewritten))
            .flat_map(|p| p.variables.iter().filter(|v| v.object_level))
            .map(|v| (v.share_id, v))
            .collect();
        uses.sort_unstable_by_key(|(id, _)| *id);
        // One binding per name: the expression most actions use (ties: the smallest text).
        let mut chosen: Vec<(usize, &VariableProgram)> = Vec::new();
        for run in uses.chunk_by(|a, b| a.0 == b.0) {
            let (count, v) = (run.len(), run[0].1);
            if count < 2 {
                continue;
            }
            match chosen.iter_mut().find(|(_, c)| c.name == v.name) {
                Some(best) => {
                    if count > best.0 || (count == best.0 && v.source < best.1.source) {
                        *best = (count, v);
                    }
                }
                None => chosen.push((count, v)),
            }
        }
        chosen.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        // A shared variable serves several actions: the most generous of their budgets.
        let budget = actions
            .iter()
            .map(|a| a.budget)
            .max_by_key(|b| (b.steps, b.memory))
            .unwrap_or(kcel::BUDGET);
        for (_, v) in chosen {
            let outcome = match v.compiled.execute_shared_within(&scope.ctx, budget) {
                Ok(value) => {
                    kcel::bind_owned(&mut scope.ctx, v.bound_name.as_str(), value);
                    None
                }
                Err(e) => Some(e.message(false)),
            };
            scope.shared.push((v.share_id, outcome));
        }
        scope
    }
}

/// The Namespace object an inventory lacks, with the label the API server always sets.
pub fn synthesised_namespace(name: &str) -> CelJson {
    kcel::json_to_cel(&serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}
    }))
}

fn pod_template_path(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    POD_TEMPLATE_KINDS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, p)| *p)
}

fn get_path(v: &Shared, path: &[&str]) -> Option<Shared> {
    let mut cur = v.clone();
    for p in path {
        cur = cur.field(p)?;
    }
    Some(cur)
}

/// `(spec, metadata)` of the pod template at `path` (empty path: the Pod itself).
fn pod_template(object: &Shared, path: &[&str]) -> Option<(Shared, Shared)> {
    let template = get_path(object, path)?;
    let spec = get_path(&template, &["spec"])?;
    if !spec.is_map() {
        return None;
    }
    let metadata = get_path(&template, &["metadata"]).unwrap_or_else(|| kcel::map_of([]));
    Some((spec, metadata))
}

/// A short stable hash (FNV-1a 64) of a JSON value with sorted keys.
pub fn revision_of(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in text.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("{hash:016x}")
}

/// The `(group, kind)`s a check judges: its `resources`, or every pod-template kind for
/// `podSpec: true`. With its lookups' kinds, what the action reads (see
/// [`CompiledAction::kinds_read`]).
pub fn kinds_judged(check: &crate::api::Check) -> Vec<(String, String)> {
    if check.pod_spec {
        POD_TEMPLATE_KINDS
            .iter()
            .map(|(g, k, _)| (g.to_string(), k.to_string()))
            .collect()
    } else {
        check
            .resources
            .iter()
            .map(|r| (r.api_group.clone(), r.kind.clone()))
            .collect()
    }
}

impl CompiledAction {
    /// Compile every expression, check the static limits, and run the examples, all under
    /// the engine's budget ([`kcel::BUDGET`]).
    pub fn compile(action: &ImprovementAction) -> CompiledAction {
        Self::compile_with_budget(action, kcel::BUDGET)
    }

    /// As [`compile`](Self::compile), with another budget (tests compare a run with the
    /// limits lifted).
    pub fn compile_with_budget(
        action: &ImprovementAction,
        budget: kcel::cel::budget::Limits,
    ) -> CompiledAction {
        let spec = action.spec.clone();
        let check = &spec.check;
        let kinds = kinds_judged(check);
        let mut compiled = CompiledAction {
            name: action.metadata.name.clone().unwrap_or_default(),
            labels: action.metadata.labels.clone().unwrap_or_default(),
            generation: action.metadata.generation,
            revision: revision_of(&spec),
            spec,
            kinds,
            problem: None,
            programs: None,
            roots: BTreeSet::new(),
            budget,
            budget_failures: AtomicU32::new(0),
        };
        match compiled.compile_programs() {
            Ok(programs) => {
                for p in programs.all() {
                    compiled.roots.extend(p.roots.iter().copied());
                }
                compiled.programs = Some(programs);
                if let Err(problem) = compiled.run_examples() {
                    compiled.problem = Some(problem);
                    compiled.programs = None;
                }
            }
            Err(problem) => compiled.problem = Some(problem),
        }
        compiled
    }

    fn compile_programs(&self) -> Result<Programs, ActionProblem> {
        let check = &self.spec.check;
        let problem = |field: String, e: CompileError| match e {
            CompileError::Invalid(m) => ActionProblem {
                reason: ProblemReason::InvalidExpression,
                message: format!("{field}: {m}"),
            },
            CompileError::LimitExceeded(m) => ActionProblem {
                reason: ProblemReason::LimitExceeded,
                message: format!("{field}: {m}"),
            },
        };
        if check.is_task() {
            // A task has no CEL: it is judged from the target's attestations.
            return match super::attestations::task_problem(&self.spec) {
                Some(message) => Err(ActionProblem {
                    reason: ProblemReason::InvalidExpression,
                    message,
                }),
                None => Ok(Programs {
                    rewritten: false,
                    variables: Vec::new(),
                    match_conditions: Vec::new(),
                    validations: Vec::new(),
                }),
            };
        }
        if !check.pod_spec && check.resources.is_empty() {
            return Err(ActionProblem {
                reason: ProblemReason::InvalidExpression,
                message: "spec.check: needs resources or podSpec: true".into(),
            });
        }
        if check.validations.is_empty() {
            return Err(ActionProblem {
                reason: ProblemReason::InvalidExpression,
                message: "spec.check.validations: at least one validation is required".into(),
            });
        }
        for (field, sel) in [
            ("namespaceSelector", &check.namespace_selector),
            ("objectSelector", &check.object_selector),
        ] {
            if let Some(msg) = sel
                .as_ref()
                .and_then(|s| selector::validate(s).into_iter().next())
            {
                return Err(ActionProblem {
                    reason: ProblemReason::InvalidExpression,
                    message: format!("spec.check.{field}.{msg}"),
                });
            }
        }
        let lookups: Vec<String> = check.lookups.iter().map(|l| l.name.clone()).collect();
        let mut seen = BTreeSet::new();
        for (i, l) in check.lookups.iter().enumerate() {
            if !seen.insert(&l.name) {
                return Err(ActionProblem {
                    reason: ProblemReason::InvalidExpression,
                    message: format!("spec.check.lookups[{i}].name: duplicate name {:?}", l.name),
                });
            }
        }
        // Expressions read `variables.x` as the identifier `__v_x` when every one of them can be
        // rewritten (see cel::rewrite_variables); otherwise the action binds the classic map.
        let rewritten = self.compile_with(true, &lookups, &problem);
        match rewritten {
            Ok(p) => Ok(p),
            Err(_) => self.compile_with(false, &lookups, &problem),
        }
    }

    fn compile_with(
        &self,
        rewrite: bool,
        lookups: &[String],
        problem: &dyn Fn(String, CompileError) -> ActionProblem,
    ) -> Result<Programs, ActionProblem> {
        let check = &self.spec.check;
        let prepare = |src: &str| -> String {
            if rewrite {
                kcel::rewrite_variables(src).unwrap_or_else(|| src.to_string())
            } else {
                src.to_string()
            }
        };
        let lookups = lookups.to_vec();
        let mut declared = Vec::new();
        let mut variables = Vec::new();
        for (i, v) in check.variables.iter().enumerate() {
            if declared.contains(&v.name) {
                return Err(ActionProblem {
                    reason: ProblemReason::InvalidExpression,
                    message: format!(
                        "spec.check.variables[{i}].name: duplicate name {:?}",
                        v.name
                    ),
                });
            }
            // A variable may use the ones declared before it.
            let c = kcel::compile(&prepare(&v.expression), &declared, &lookups)
                .map_err(|e| problem(format!("spec.check.variables[{i}].expression"), e))?;
            declared.push(v.name.clone());
            let object_level = c.variable_refs.is_empty()
                && c.lookup_refs.is_empty()
                && c.roots.iter().all(|r| {
                    matches!(*r, "object" | "podSpec" | "podMetadata" | "namespaceObject")
                });
            variables.push(VariableProgram {
                name: v.name.clone(),
                compiled: c,
                source: v.expression.clone(),
                object_level,
                share_id: share_id(&v.name, &v.expression),
                bound_name: format!("{}{}", kcel::VARIABLE_PREFIX, v.name),
            });
        }
        let mut match_conditions = Vec::new();
        for (i, m) in check.match_conditions.iter().enumerate() {
            let c = kcel::compile(&prepare(&m.expression), &declared, &lookups)
                .map_err(|e| problem(format!("spec.check.matchConditions[{i}].expression"), e))?;
            match_conditions.push((m.name.clone(), c));
        }
        let mut validations = Vec::new();
        for (i, v) in check.validations.iter().enumerate() {
            let expression = kcel::compile(&prepare(&v.expression), &declared, &lookups)
                .map_err(|e| problem(format!("spec.check.validations[{i}].expression"), e))?;
            let message_expression =
                match &v.message_expression {
                    Some(m) => Some(kcel::compile(&prepare(m), &declared, &lookups).map_err(
                        |e| problem(format!("spec.check.validations[{i}].messageExpression"), e),
                    )?),
                    None => None,
                };
            if v.message
                .as_ref()
                .is_some_and(|m| m.chars().count() > MAX_MESSAGE_LEN)
            {
                return Err(ActionProblem {
                    reason: ProblemReason::LimitExceeded,
                    message: format!(
                        "spec.check.validations[{i}].message: longer than {MAX_MESSAGE_LEN} characters"
                    ),
                });
            }
            validations.push(CompiledValidation {
                expression,
                message: v.message.clone(),
                message_expression,
                source: v.expression.clone(),
            });
        }
        let programs = Programs {
            rewritten: rewrite,
            variables,
            match_conditions,
            validations,
        };
        if rewrite && programs.all().any(|p| p.roots.contains("variables")) {
            // Something still reads the map (e.g. `has(variables.x)`): use the map for all.
            return Err(ActionProblem {
                reason: ProblemReason::InvalidExpression,
                message: "variables map needed".into(),
            });
        }
        Ok(programs)
    }

    fn run_examples(&self) -> Result<(), ActionProblem> {
        for (i, example) in self.spec.check.examples.iter().enumerate() {
            let field = format!("spec.check.examples[{i}]");
            let resource =
                Resource::new(example.object.clone(), None).map_err(|e| ActionProblem {
                    reason: ProblemReason::ExampleFailed,
                    message: format!("{field}.object: {e}"),
                })?;
            let resource = Arc::new(resource);
            let inventory = Inventory::complete([resource.clone()]);
            let surroundings = Surroundings {
                inventory: &inventory,
                cluster_visible: true,
            };
            let scope = ObjectScope::new(&resource, &inventory);
            let got = self.judge_detailed(&resource, &scope, &surroundings, true);
            let ok = matches!(
                (&got, example.expect),
                (Judgement::NotApplicable, ExpectedResult::NotApplicable)
                    | (
                        Judgement::Applicable(Verdict::Compliant),
                        ExpectedResult::Compliant
                    )
                    | (
                        Judgement::Applicable(Verdict::NonCompliant { .. }),
                        ExpectedResult::NonCompliant
                    )
            );
            if let Judgement::Applicable(Verdict::Error { message }) = &got
                && kcel::is_budget_message(message)
            {
                return Err(ActionProblem {
                    reason: ProblemReason::LimitExceeded,
                    message: format!("{field}: {message}"),
                });
            }
            if !ok {
                let said = match got {
                    Judgement::NotApplicable => "NotApplicable".to_string(),
                    Judgement::Applicable(Verdict::Compliant) => "Compliant".to_string(),
                    Judgement::Applicable(Verdict::NonCompliant { message }) => {
                        format!("NonCompliant ({message})")
                    }
                    Judgement::Applicable(Verdict::Error { message }) => {
                        format!("Error ({message})")
                    }
                };
                return Err(ActionProblem {
                    reason: ProblemReason::ExampleFailed,
                    message: format!("{field}: expected {:?}, got {said}", example.expect),
                });
            }
        }
        Ok(())
    }

    /// Ready to evaluate: compiled and every example passed.
    pub fn is_ready(&self) -> bool {
        self.problem.is_none()
    }

    /// The engine's decision that the action crossed its evaluation budget repeatedly (on
    /// [`BUDGET_FAILURES_ALLOWED`] resources): it is then `Ready=False, reason=LimitExceeded`
    /// and `Unknown` for every target (max kept, 0 points), like an action that fails to load,
    /// and no longer evaluated; every other action is scored as usual.
    pub fn limit_exceeded(&self) -> Option<ActionProblem> {
        let failures = self.budget_failures.load(Ordering::Relaxed);
        (failures >= BUDGET_FAILURES_ALLOWED).then(|| ActionProblem {
            reason: ProblemReason::LimitExceeded,
            message: format!(
                "{} on {failures} resources: a check must stay within {} steps and {} MiB per evaluation",
                kcel::BUDGET_EXCEEDED,
                self.budget.steps,
                self.budget.memory >> 20
            ),
        })
    }

    pub fn scoring(&self) -> Scoring {
        self.spec.check.scoring
    }

    /// Whether the check reads objects of this kind.
    pub fn applies_to_kind(&self, group: &str, kind: &str) -> bool {
        // Kinds first: they tell the entries apart far more often than groups do (most
        // actions read several kinds of one group), and this runs per object per action.
        self.kinds.iter().any(|(g, k)| k == kind && g == group)
    }

    /// Every `(group, kind)` the action reads, lookups included.
    pub fn kinds_read(&self) -> impl Iterator<Item = (&str, &str)> {
        self.kinds
            .iter()
            .map(|(g, k)| (g.as_str(), k.as_str()))
            .chain(
                self.spec
                    .check
                    .lookups
                    .iter()
                    .map(|l| (l.api_group.as_str(), l.kind.as_str())),
            )
    }

    /// Selectors and excluded namespaces: the part of applicability that needs no CEL.
    pub fn prefilter(&self, resource: &Resource, inventory: &Inventory) -> bool {
        let check = &self.spec.check;
        if !self.applies_to_kind(&resource.group, &resource.kind) {
            return false;
        }
        if let Some(ns) = &resource.namespace
            && check.exclude_namespaces.iter().any(|e| e == ns)
        {
            return false;
        }
        if let Some(sel) = &check.object_selector
            && !selector::matches(sel, &resource.labels)
        {
            return false;
        }
        if let Some(sel) = &check.namespace_selector {
            // As admission webhooks do: a namespaced object is matched by its namespace's labels,
            // a Namespace by its own, and other cluster-scoped objects always match.
            let labels = match &resource.namespace {
                Some(ns) => inventory
                    .namespace(ns)
                    .map(|n| n.labels.clone())
                    .unwrap_or_else(|| {
                        [("kubernetes.io/metadata.name".to_string(), ns.clone())]
                            .into_iter()
                            .collect()
                    }),
                None if resource.kind == "Namespace" && resource.group.is_empty() => {
                    resource.labels.clone()
                }
                None => return true,
            };
            if !selector::matches(sel, &labels) {
                return false;
            }
        }
        true
    }

    /// Applicability (selectors and matchConditions) then the validations.
    pub fn judge(
        &self,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
    ) -> Judgement {
        self.judge_detailed(resource, scope, surroundings, false)
    }

    /// Only the applicability part: selectors and matchConditions (an error there makes the
    /// resource applicable, and [`judge`](Self::judge) reports the error).
    pub fn is_applicable(
        &self,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
    ) -> bool {
        if !self.prefilter(resource, surroundings.inventory) {
            return false;
        }
        let Some(programs) = &self.programs else {
            return true;
        };
        if programs.match_conditions.is_empty() {
            return true;
        }
        kcel::with_named_lookups(self.named_lookups(resource, surroundings), || {
            let mut ctx = scope.ctx.new_inner_scope();
            if self
                .bind(&mut ctx, resource, scope, surroundings, programs, false)
                .is_err()
            {
                return true;
            }
            programs.match_conditions.iter().all(|(_, c)| {
                !matches!(c.execute_within(&ctx, self.budget), Ok(Value::Bool(false)))
            })
        })
    }

    fn judge_detailed(
        &self,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
        detailed: bool,
    ) -> Judgement {
        if !self.prefilter(resource, surroundings.inventory) {
            return Judgement::NotApplicable;
        }
        self.judge_prefiltered(resource, scope, surroundings, detailed)
    }

    /// [`judge_detailed`](Self::judge_detailed) for a resource that already passed
    /// [`prefilter`](Self::prefilter): the full evaluation filters every candidate first, and
    /// this runs per object and action (its kind comparisons were ~3% of a 100k evaluation).
    pub(crate) fn judge_prefiltered(
        &self,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
        detailed: bool,
    ) -> Judgement {
        if let Some(problem) = self.limit_exceeded() {
            return Judgement::Applicable(Verdict::Error {
                message: problem.message,
            });
        }
        let judgement =
            kcel::with_named_lookups(self.named_lookups(resource, surroundings), || {
                self.judge_programs(resource, scope, surroundings, detailed)
            });
        if let Judgement::Applicable(Verdict::Error { message }) = &judgement
            && kcel::is_budget_message(message)
        {
            self.budget_failures.fetch_add(1, Ordering::Relaxed);
        }
        judgement
    }

    fn judge_programs(
        &self,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
        detailed: bool,
    ) -> Judgement {
        let Some(programs) = &self.programs else {
            let message = self
                .problem
                .as_ref()
                .map(|p| p.message.clone())
                .unwrap_or_default();
            return Judgement::Applicable(Verdict::Error { message });
        };
        if scope.pod_template_missing
            && self
                .roots
                .iter()
                .any(|r| *r == "podSpec" || *r == "podMetadata")
        {
            return Judgement::Applicable(Verdict::Error {
                message: format!("{} has no pod template", resource.kind),
            });
        }
        let mut ctx = scope.ctx.new_inner_scope();
        match self.bind(&mut ctx, resource, scope, surroundings, programs, detailed) {
            Ok(()) => {}
            Err(message) => {
                // A failed binding matters only if the resource is applicable; without match
                // conditions it is.
                return Judgement::Applicable(Verdict::Error { message });
            }
        }
        for (name, condition) in &programs.match_conditions {
            match condition.execute_within(&ctx, self.budget) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => return Judgement::NotApplicable,
                Ok(other) => {
                    let message = format!(
                        "matchCondition {name:?}: {}",
                        EvalError::NotBool(kcel::type_name(&other)).message(detailed)
                    );
                    return Judgement::Applicable(Verdict::Error { message });
                }
                Err(e) => {
                    return Judgement::Applicable(Verdict::Error {
                        message: format!("matchCondition {name:?}: {}", e.message(detailed)),
                    });
                }
            }
        }
        // Every validation is evaluated, so that a finding names each one that fails (a Pod
        // with hostNetwork and hostPID is reported for both). A resource that fails one is
        // NonCompliant even if another could not be evaluated; the first error otherwise.
        let mut failed = Vec::new();
        let mut error = None;
        for v in &programs.validations {
            match v.expression.execute_within(&ctx, self.budget) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => failed.push(self.finding_message(v, &ctx)),
                Ok(other) => {
                    error.get_or_insert_with(|| {
                        EvalError::NotBool(kcel::type_name(&other)).message(detailed)
                    });
                }
                Err(e) => {
                    error.get_or_insert_with(|| e.message(detailed));
                }
            }
        }
        match (failed.is_empty(), error) {
            (false, _) => Judgement::Applicable(Verdict::NonCompliant {
                message: join_findings(&failed),
            }),
            (true, Some(message)) => Judgement::Applicable(Verdict::Error { message }),
            (true, None) => Judgement::Applicable(Verdict::Compliant),
        }
    }

    fn finding_message(&self, v: &CompiledValidation, ctx: &Context) -> String {
        if let Some(expr) = &v.message_expression
            && let Ok(Value::String(s)) = expr.execute_within(ctx, self.budget)
            && !s.trim().is_empty()
        {
            return kcel::truncate(s.trim(), MAX_MESSAGE_LEN);
        }
        match &v.message {
            Some(m) => m.clone(),
            None => kcel::truncate(&format!("failed: {}", v.source), MAX_MESSAGE_LEN),
        }
    }

    /// Bind `lookups` and `variables` into the action's scope.
    fn bind(
        &self,
        ctx: &mut Context,
        resource: &Resource,
        scope: &ObjectScope,
        surroundings: &Surroundings,
        programs: &Programs,
        detailed: bool,
    ) -> Result<(), String> {
        // The lists are bound only when an expression reads `lookups` (binding converts every
        // object of the list; `lookupByName` reads the index instead).
        if !self.spec.check.lookups.is_empty() && self.roots.contains("lookups") {
            let own = lookup_namespace(resource);
            let mut entries = Vec::new();
            for lookup in &self.spec.check.lookups {
                let items = surroundings.inventory.lookup(
                    &lookup.api_group,
                    &lookup.kind,
                    own,
                    surroundings.cluster_visible,
                );
                if items.len() > MAX_LOOKUP_ITEMS {
                    return Err(format!(
                        "lookup {:?} has {} items, the limit is {MAX_LOOKUP_ITEMS}",
                        lookup.name,
                        items.len()
                    ));
                }
                let list = kcel::list_of(items.iter().map(|item| item.cel().shared.clone()));
                entries.push((lookup.name.clone(), list));
            }
            kcel::bind(ctx, "lookups", &kcel::map_of(entries));
        }
        if programs.rewritten {
            // Each variable is bound on its own, in order; one the object scope already holds
            // (same name and expression) is not evaluated again.
            for v in &programs.variables {
                if let Some((_, error)) = scope.shared.iter().find(|(id, _)| *id == v.share_id) {
                    if let Some(e) = error {
                        return Err(format!("variable {:?}: {e}", v.name));
                    }
                    continue;
                }
                match v.compiled.execute_shared_within(ctx, self.budget) {
                    Ok(value) => {
                        kcel::bind_owned(ctx, v.bound_name.as_str(), value);
                    }
                    Err(e) => {
                        return Err(format!("variable {:?}: {}", v.name, e.message(detailed)));
                    }
                }
            }
        } else if !programs.variables.is_empty() {
            let mut values: Vec<(String, Shared)> = Vec::new();
            for v in &programs.variables {
                let mut vctx = ctx.new_inner_scope();
                kcel::bind(&mut vctx, "variables", &kcel::map_of(values.clone()));
                match v.compiled.execute_shared_within(&vctx, self.budget) {
                    Ok(value) => {
                        values.push((v.name.clone(), value));
                    }
                    Err(e) => {
                        return Err(format!("variable {:?}: {}", v.name, e.message(detailed)));
                    }
                }
            }
            kcel::bind(ctx, "variables", &kcel::map_of(values));
        }
        Ok(())
    }
}

/// The namespace a lookup from `resource` sees: its own; for a Namespace, the one it names.
fn lookup_namespace(resource: &Resource) -> Option<&str> {
    match &resource.namespace {
        Some(ns) => Some(ns.as_str()),
        None if resource.kind == "Namespace" && resource.group.is_empty() => {
            Some(resource.name.as_str())
        }
        None => None,
    }
}

impl CompiledAction {
    /// The by-name indexes each lookup sees from `resource`, for `lookupByName`.
    fn named_lookups(
        &self,
        resource: &Resource,
        surroundings: &Surroundings,
    ) -> kcel::NamedLookups {
        let own = lookup_namespace(resource);
        self.spec
            .check
            .lookups
            .iter()
            .map(|l| {
                let inventory = surroundings.inventory;
                let mut indexes: Vec<Arc<dyn kcel::NamedObjects>> = Vec::new();
                if let Some(ns) = own
                    && let Some(i) = inventory.by_name(&l.api_group, &l.kind, Some(ns))
                {
                    indexes.push(i);
                }
                if surroundings.cluster_visible
                    && let Some(i) = inventory.by_name(&l.api_group, &l.kind, None)
                {
                    indexes.push(i);
                }
                (l.name.clone(), indexes)
            })
            .collect()
    }
}

/// Longest finding message (the status field's limit).
pub const MAX_FINDING_MESSAGE_LEN: usize = 512;

/// The messages of every failing validation, in order, as one finding message: whole messages
/// while they fit, then how many more failed.
fn join_findings(messages: &[String]) -> String {
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        let more = messages.len() - i;
        let tail = format!("; and {more} more failing validations");
        let sep = if out.is_empty() { "" } else { "; " };
        let fits = out.chars().count()
            + sep.len()
            + m.chars().count()
            + if more > 1 { tail.len() } else { 0 }
            <= MAX_FINDING_MESSAGE_LEN;
        if !fits && !out.is_empty() {
            out.push_str(&tail);
            return out;
        }
        out.push_str(sep);
        out.push_str(m);
    }
    kcel::truncate(&out, MAX_FINDING_MESSAGE_LEN)
}

impl Programs {
    fn all(&self) -> impl Iterator<Item = &Compiled> {
        self.variables
            .iter()
            .map(|v| &v.compiled)
            .chain(self.match_conditions.iter().map(|(_, c)| c))
            .chain(
                self.validations.iter().flat_map(|v| {
                    std::iter::once(&v.expression).chain(v.message_expression.as_ref())
                }),
            )
    }
}
