//! The Kubernetes-CEL layer: one shared environment (standard library + the Kubernetes
//! extension libraries), expressions compiled once with static limits, JSON converted to CEL
//! values once per object, and a bounded evaluation that never panics or runs away.

use kube::core::cel::KubeCelExt;
use kube::core::cel::cel::common::ast::{EntryExpr, Expr, IdedExpr};
use kube::core::cel::cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapEntries, CelMapKey, CelNull, CelString,
    CelUInt,
};
use kube::core::cel::cel::common::value::Val;
use kube::core::cel::cel::{Context, ExecutionError, Program, Value};
use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

pub use kube::core::cel::cel;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = crate::api::MAX_EXPRESSION_LEN;
/// Deepest nesting of comprehensions (all, exists, map, filter...) accepted.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;
/// The run-time budget of one evaluation of one expression, enforced while it runs by the
/// interpreter (vendor/cel, `cel::budget`): expression nodes resolved plus elements compared...
pub const MAX_EVALUATION_STEPS: u64 = 5_000_000;
/// ...and the estimated bytes of the lists, maps and strings it builds or copies.
pub const MAX_EVALUATION_MEMORY: u64 = 256 << 20;

/// The budget every evaluation runs under (variables, matchConditions, validations, message
/// expressions, and the examples at load).
pub const BUDGET: cel::budget::Limits = cel::budget::Limits {
    steps: MAX_EVALUATION_STEPS,
    memory: MAX_EVALUATION_MEMORY,
};

/// `variables.NAME` is evaluated as the identifier `__v_NAME` (see [`rewrite_variables`]).
pub const VARIABLE_PREFIX: &str = "__v_";

/// Rewrite `variables.NAME` into the identifier `__v_NAME` outside string literals, so that
/// each variable is bound on its own (once) instead of as one map rebuilt for every variable.
/// The cel interpreter deep-copies whatever is bound, so this halves the copies of an action
/// with two variables and lets actions share a variable's value. Returns None when nothing
/// references `variables`.
pub fn rewrite_variables(src: &str) -> Option<String> {
    let b = src.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = String::with_capacity(src.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            let raw = i > 0 && matches!(b[i - 1], b'r' | b'R') && (i < 2 || !ident(b[i - 2]));
            let triple = b[i..].starts_with(&[c, c, c]);
            i += if triple { 3 } else { 1 };
            while i < b.len() {
                if !raw && b[i] == b'\\' {
                    i += 2;
                } else if triple && b[i..].starts_with(&[c, c, c]) {
                    i += 3;
                    break;
                } else if !triple && b[i] == c {
                    i += 1;
                    break;
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if b[i..].starts_with(b"variables") && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b'.')) {
            let mut j = i + "variables".len();
            if j < b.len() && ident(b[j]) {
                i = j;
                continue;
            }
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'.' {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                let start = k;
                while k < b.len() && ident(b[k]) {
                    k += 1;
                }
                if k > start {
                    out.push_str(&src[copied..i]);
                    out.push_str(VARIABLE_PREFIX);
                    out.push_str(&src[start..k]);
                    copied = k;
                    changed = true;
                    i = k;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&src[copied..]);
    changed.then_some(out)
}

/// The top-level names an expression may read.
pub const ROOT_VARIABLES: [&str; 6] = [
    "object",
    "podSpec",
    "podMetadata",
    "namespaceObject",
    "variables",
    "lookups",
];

/// Why an expression cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    LimitExceeded(String),
}

/// A parsed expression with what the engine needs to bind and bound it.
#[derive(Debug)]
pub struct Compiled {
    program: Program,
    /// The expression as compiled (after the `variables.` rewrite).
    source: Arc<str>,
    /// Root variables it reads.
    pub roots: BTreeSet<&'static str>,
    /// `variables.<name>` it reads.
    pub variable_refs: BTreeSet<String>,
    /// `lookups.<name>` it reads.
    pub lookup_refs: BTreeSet<String>,
    /// The fast form when every node is one the fast path evaluates (`cel_fast`).
    fast: Option<super::cel_fast::Fast>,
}

/// The root context holding every standard and Kubernetes function; built once, shared.
pub fn root_context() -> &'static Context<'static> {
    static ROOT: OnceLock<Context<'static>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut ctx = Context::default().with_all();
        ctx.add_function(LOOKUP_BY_NAME, lookup_by_name);
        guards::register(&mut ctx);
        super::cel_guards::register(&mut ctx);
        ctx
    })
}

/// Functions whose work or output can be far larger than their arguments, replaced by
/// versions that charge the evaluation budget BEFORE they work or allocate. The interpreter
/// charges everything else itself (vendor/cel): it cannot see inside a function, and by the
/// time `lists.range(2000000000)` returns, 48 GB are gone.
mod guards {
    use super::cel::budget::{self, LIST_ELEMENT_BYTES};
    use super::cel::extractors::{Arguments, This};
    use super::cel::{Context, ExecutionError, ResolveResult, Value};
    use std::sync::Arc;

    pub(super) fn register(ctx: &mut Context) {
        ctx.add_function("lists.range", range);
        ctx.add_function("replace", replace);
        ctx.add_function("join", join);
        ctx.add_function("sets.contains", sets_contains);
        ctx.add_function("sets.equivalent", sets_equivalent);
        ctx.add_function("sets.intersects", sets_intersects);
        ctx.add_function("distinct", distinct);
    }

    /// `list.distinct()` compares every element with every one kept so far.
    fn distinct(This(this): This<Arc<Vec<Value>>>) -> ResolveResult {
        pairs(&this, &this)?;
        let mut kept: Vec<Value> = Vec::new();
        for item in this.iter() {
            if !kept.contains(item) {
                kept.push(item.clone());
            }
        }
        Ok(Value::List(Arc::new(kept)))
    }

    /// `lists.range(n)`: n integers.
    fn range(n: i64) -> ResolveResult {
        if n < 0 {
            return Err(ExecutionError::function_error(
                "lists.range",
                "range argument must be non-negative",
            ));
        }
        budget::reserve_memory((n as u64).saturating_mul(LIST_ELEMENT_BYTES))?;
        Ok(Value::List(Arc::new((0..n).map(Value::Int).collect())))
    }

    /// `s.replace(from, to[, n])`: the output's exact length is counted first (one linear
    /// pass); `s.replace('', s)` squares the string.
    fn replace(This(this): This<Arc<String>>, Arguments(args): Arguments) -> ResolveResult {
        let text = |i: usize| match args.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ExecutionError::function_error(
                "replace",
                "expected string argument",
            )),
        };
        let (from, to) = (text(0)?, text(1)?);
        let limit = match args.get(2) {
            Some(Value::Int(n)) => Some((*n).max(0) as u64),
            _ => None,
        };
        let found = if from.is_empty() {
            this.chars().count() as u64 + 1
        } else {
            budget::charge_steps(this.len() as u64)?;
            this.matches(from.as_str()).count() as u64
        };
        let replaced = limit.map_or(found, |n| n.min(found));
        let size = (this.len() as u64)
            .saturating_add(replaced.saturating_mul(to.len() as u64))
            .saturating_sub(replaced.saturating_mul(from.len() as u64));
        budget::reserve_memory(size)?;
        Ok(Value::String(Arc::new(match limit {
            Some(n) => this.replacen(from.as_str(), to.as_str(), n as usize),
            None => this.replace(from.as_str(), to.as_str()),
        })))
    }

    /// `list.join([separator])`: the separator is repeated between every two elements.
    fn join(This(this): This<Arc<Vec<Value>>>, Arguments(args): Arguments) -> ResolveResult {
        let separator = match args.first() {
            Some(Value::String(s)) => s.to_string(),
            _ => String::new(),
        };
        let parts: u64 = this
            .iter()
            .map(|v| match v {
                Value::String(s) => s.len() as u64,
                _ => 32,
            })
            .sum();
        let gaps = (this.len() as u64).saturating_sub(1);
        budget::reserve_memory(parts.saturating_add(gaps.saturating_mul(separator.len() as u64)))?;
        let parts: Vec<String> = this
            .iter()
            .map(|v| match v {
                Value::String(s) => s.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        Ok(Value::String(Arc::new(parts.join(&separator))))
    }

    /// The `sets` functions compare every element of one list with every element of the other.
    fn pairs(a: &[Value], b: &[Value]) -> Result<(), ExecutionError> {
        budget::charge_steps((a.len() as u64).saturating_mul(b.len() as u64))
    }

    fn sets_contains(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> ResolveResult {
        pairs(&a, &b)?;
        Ok(Value::Bool(b.iter().all(|x| a.contains(x))))
    }

    fn sets_equivalent(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> ResolveResult {
        pairs(&a, &b)?;
        pairs(&a, &b)?;
        Ok(Value::Bool(
            b.iter().all(|x| a.contains(x)) && a.iter().all(|x| b.contains(x)),
        ))
    }

    fn sets_intersects(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> ResolveResult {
        pairs(&a, &b)?;
        Ok(Value::Bool(a.iter().any(|x| b.contains(x))))
    }
}

/// `lookupByName('<lookup>', name)`: the object of the lookup named `<lookup>` with this
/// `metadata.name`, as a list of zero or one object (the object's own namespace first, then
/// the cluster-scoped ones). It resolves in constant time through the inventory's index, where
/// `lookups.<lookup>.filter(o, o.metadata.name == name)` binds and scans the whole list: with
/// 1,000 ClusterRoles, every ClusterRoleBinding paid for all of them.
pub const LOOKUP_BY_NAME: &str = "lookupByName";

/// Objects of one lookup by name, as the inventory indexes them.
pub trait NamedObjects: Send + Sync {
    /// The object named `name`, in the interpreter's shared form (converted to a `Value` only
    /// by the interpreter's `lookupByName`; the fast path reads it in place).
    fn named(&self, name: &str) -> Option<Shared>;
}

/// Each lookup's name with the indexes it sees.
pub type NamedLookups = Vec<(String, Vec<Arc<dyn NamedObjects>>)>;

thread_local! {
    static NAMED_LOOKUPS: std::cell::RefCell<NamedLookups> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with `lookups` readable by `lookupByName` on this thread (restored afterwards).
pub fn with_named_lookups<R>(lookups: NamedLookups, f: impl FnOnce() -> R) -> R {
    struct Restore(NamedLookups);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = std::mem::take(&mut self.0);
            NAMED_LOOKUPS.with(|n| *n.borrow_mut() = previous);
        }
    }
    let _restore = Restore(NAMED_LOOKUPS.with(|n| n.replace(lookups)));
    f()
}

fn lookup_by_name(lookup: Arc<String>, name: Arc<String>) -> cel::ResolveResult {
    cel::budget::charge_steps(1)?;
    let Some(found) = named_object(&lookup, &name) else {
        return Err(ExecutionError::function_error(
            LOOKUP_BY_NAME,
            "the first argument is not a lookup of this action",
        ));
    };
    Ok(Value::List(Arc::new(
        found.map(|object| object.value()).into_iter().collect(),
    )))
}

/// What `lookupByName(lookup, name)` finds on this thread: the object or none, or `None` when
/// `lookup` is not a lookup of the action being evaluated (an error of the function).
pub(crate) fn named_object(lookup: &str, name: &str) -> Option<Option<Shared>> {
    NAMED_LOOKUPS.with(|n| {
        let lookups = n.borrow();
        let (_, indexes) = lookups.iter().find(|(l, _)| l.as_str() == lookup)?;
        Some(indexes.iter().find_map(|i| i.named(name)))
    })
}

/// Whether a function name resolves in the environment. Operators (`_&&_`, `@in`, `!_`...)
/// always do. The registry is not public, so a name is probed once by calling it without
/// arguments: only an unknown function answers "undeclared reference".
pub(crate) fn function_exists(name: &str) -> bool {
    if name.starts_with(['_', '@', '!', '-']) {
        return true;
    }
    #[cfg(test)]
    PROBED.with(|p| p.borrow_mut().push(name.to_string()));
    static KNOWN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    if let Some(found) = known.lock().ok().and_then(|k| k.get(name).copied()) {
        return found;
    }
    let exists = probe(name);
    if let Ok(mut k) = known.lock() {
        k.insert(name.to_string(), exists);
    }
    exists
}

/// [`function_exists`] without its memory: calls `name()`. The probes of the built-in
/// catalog's functions are parsed ahead too ([`super::cel_parsed`]).
pub(crate) fn probe(name: &str) -> bool {
    match parse(&format!("{name}()")) {
        Ok(probe) => {
            let outcome = quietly(|| probe.execute(root_context()));
            !matches!(outcome, Some(Err(ExecutionError::UndeclaredReference(_))))
        }
        Err(_) => false,
    }
}

/// Compile one expression: size limit, parse, then a walk of the tree that checks every
/// variable and function resolves, comprehensions nest at most two deep, and no construct
/// the interpreter cannot evaluate (message literals) is present.
pub fn compile(
    expression: &str,
    declared_variables: &[String],
    declared_lookups: &[String],
) -> Result<Compiled, CompileError> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(CompileError::LimitExceeded(format!(
            "expression is {} bytes, the limit is {MAX_EXPRESSION_BYTES}",
            expression.len()
        )));
    }
    let program = parse(expression)?;
    let mut walk = Walk {
        depth: 0,
        max_depth: 0,
        scopes: Vec::new(),
        roots: BTreeSet::new(),
        variable_refs: BTreeSet::new(),
        lookup_refs: BTreeSet::new(),
        problem: None,
    };
    walk.expr(program.expression());
    if let Some(problem) = walk.problem {
        return Err(problem);
    }
    if walk.max_depth as usize > MAX_COMPREHENSION_DEPTH {
        return Err(CompileError::LimitExceeded(format!(
            "comprehensions are nested {} deep, the limit is {MAX_COMPREHENSION_DEPTH}",
            walk.max_depth
        )));
    }
    for name in &walk.variable_refs {
        if !declared_variables.contains(name) {
            return Err(CompileError::Invalid(format!(
                "undeclared reference to 'variables.{name}'"
            )));
        }
    }
    for name in &walk.lookup_refs {
        if !declared_lookups.contains(name) {
            return Err(CompileError::Invalid(format!(
                "undeclared reference to 'lookups.{name}'"
            )));
        }
    }
    let fast = super::cel_fast::Fast::compile(program.expression());
    Ok(Compiled {
        fast,
        program,
        source: Arc::from(expression),
        roots: walk.roots,
        variable_refs: walk.variable_refs,
        lookup_refs: walk.lookup_refs,
    })
}

#[cfg(test)]
thread_local! {
    /// Expressions this thread gave to cel's parser (those not parsed ahead).
    static PARSED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The function names this thread asked [`function_exists`] about (operators aside).
    pub(crate) static PROBED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many expressions this thread has given to cel's parser in [`compile`]: the built-in
/// catalog's are parsed ahead ([`super::cel_parsed`]), and a test compiles it to see none here.
#[cfg(test)]
pub(crate) fn parsed_on_this_thread() -> u64 {
    PARSED.with(std::cell::Cell::get)
}

/// The program of `expression`: its tree parsed ahead when it is one of the built-in
/// catalog's, parsed now otherwise.
fn parse(expression: &str) -> Result<Program, CompileError> {
    if let Some(tree) = super::cel_parsed::lookup(expression) {
        return Ok(Program::from_expression(tree));
    }
    #[cfg(test)]
    PARSED.with(|n| n.set(n.get() + 1));
    Program::compile(expression).map_err(|e| CompileError::Invalid(format!("parse error: {e}")))
}

struct Walk {
    depth: u32,
    max_depth: u32,
    scopes: Vec<Vec<String>>,
    roots: BTreeSet<&'static str>,
    variable_refs: BTreeSet<String>,
    lookup_refs: BTreeSet<String>,
    problem: Option<CompileError>,
}

impl Walk {
    fn bound(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.iter().any(|v| v == name))
    }

    fn fail(&mut self, message: String) {
        if self.problem.is_none() {
            self.problem = Some(CompileError::Invalid(message));
        }
    }

    fn expr(&mut self, e: &IdedExpr) {
        match &e.expr {
            Expr::Unspecified => self.fail("unsupported empty expression".into()),
            Expr::Struct(_) => {
                self.fail("message construction (Type{...}) is not supported".into())
            }
            Expr::Literal(_) => {}
            Expr::Ident(name) => {
                if self.bound(name) || name.starts_with('@') {
                    return;
                }
                if let Some(variable) = name.strip_prefix(VARIABLE_PREFIX) {
                    self.variable_refs.insert(variable.to_string());
                    return;
                }
                match ROOT_VARIABLES.iter().find(|r| **r == name) {
                    Some(root) => {
                        self.roots.insert(root);
                    }
                    None => self.fail(format!("undeclared reference to '{name}'")),
                }
            }
            Expr::Select(select) => {
                if let Expr::Ident(base) = &select.operand.expr
                    && !self.bound(base)
                {
                    match base.as_str() {
                        "variables" => {
                            self.variable_refs.insert(select.field.clone());
                        }
                        "lookups" => {
                            self.lookup_refs.insert(select.field.clone());
                        }
                        _ => {}
                    }
                }
                self.expr(&select.operand);
            }
            Expr::Call(call) => {
                // `sets.contains(a, b)`, `math.greatest(...)`: a namespaced function, not a
                // method on a variable.
                if let Some(IdedExpr {
                    expr: Expr::Ident(ns),
                    ..
                }) = call.target.as_deref()
                    && !self.bound(ns)
                    && !ROOT_VARIABLES.contains(&ns.as_str())
                {
                    let qualified = format!("{ns}.{}", call.func_name);
                    if !function_exists(&qualified) {
                        self.fail(format!("undeclared reference to function '{qualified}'"));
                    }
                    call.args.iter().for_each(|a| self.expr(a));
                    return;
                }
                if call.func_name == LOOKUP_BY_NAME && call.target.is_none() {
                    match call.args.first().map(|a| &a.expr) {
                        Some(Expr::Literal(cel::common::ast::LiteralValue::String(name)))
                            if call.args.len() == 2 =>
                        {
                            self.lookup_refs.insert(name.inner().to_string());
                        }
                        _ => self.fail(format!(
                            "{LOOKUP_BY_NAME} takes a lookup's name in quotes and a name"
                        )),
                    }
                }
                if !function_exists(&call.func_name) {
                    self.fail(format!(
                        "undeclared reference to function '{}'",
                        call.func_name
                    ));
                }
                if let Some(target) = &call.target {
                    self.expr(target);
                }
                for arg in &call.args {
                    self.expr(arg);
                }
            }
            Expr::List(list) => list.elements.iter().for_each(|el| self.expr(el)),
            Expr::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::StructField(field) => self.expr(&field.value),
                        EntryExpr::MapEntry(entry) => {
                            self.expr(&entry.key);
                            self.expr(&entry.value);
                        }
                    }
                }
            }
            Expr::Comprehension(c) => {
                self.expr(&c.iter_range);
                self.expr(&c.accu_init);
                let mut scope = vec![c.iter_var.clone(), c.accu_var.clone()];
                scope.extend(c.iter_var2.clone());
                self.scopes.push(scope);
                self.depth += 1;
                self.max_depth = self.max_depth.max(self.depth);
                self.expr(&c.loop_cond);
                self.expr(&c.loop_step);
                self.expr(&c.result);
                self.depth -= 1;
                self.scopes.pop();
            }
        }
    }
}

impl Compiled {
    /// Evaluate against `ctx` under [`BUDGET`].
    pub fn execute(&self, ctx: &Context) -> Result<Value, EvalError> {
        self.execute_within(ctx, BUDGET)
    }

    /// Evaluate against `ctx` under `limits`, enforced while the expression runs: crossing one
    /// ends the evaluation with [`EvalError::BudgetExceeded`]. A panic inside the interpreter or
    /// a function becomes [`EvalError::Panicked`] and prints nothing.
    pub fn execute_within(
        &self,
        ctx: &Context,
        limits: cel::budget::Limits,
    ) -> Result<Value, EvalError> {
        // The fast path answers only booleans here: any other result is converted to a
        // `Value` under the budget by the interpreter.
        if !reference_mode()
            && let Some(value) = self.run_fast(ctx, limits)
            && let Some(b) = value.downcast_ref::<CelBool>()
        {
            return Ok(Value::Bool(*b.inner()));
        }
        self.run(limits, || self.program.execute(ctx))
    }

    /// As [`execute_within`](Self::execute_within), the result kept in the interpreter's form
    /// (shared, not converted): for a variable that is bound again with [`bind`].
    pub fn execute_shared_within(
        &self,
        ctx: &Context,
        limits: cel::budget::Limits,
    ) -> Result<Shared, EvalError> {
        if reference_mode() {
            // The path before sharing: convert to a `Value`, and back when bound.
            let value = self.execute_within(ctx, limits)?;
            return Box::<dyn Val>::try_from(value)
                .map(Shared)
                .map_err(|error| EvalError::Execution {
                    error,
                    source_text: self.source.clone(),
                });
        }
        if let Some(value) = self.run_fast(ctx, limits) {
            return Ok(Shared(value));
        }
        self.run(limits, || self.program.execute_val(ctx).map(Shared))
    }

    /// The fast path's value, if it has one (a panic in it, which would be a bug, leaves the
    /// expression to the interpreter, as any other case it does not answer).
    fn run_fast(&self, ctx: &Context, limits: cel::budget::Limits) -> Option<Box<dyn Val>> {
        let fast = self.fast.as_ref()?;
        quietly(|| fast.run(ctx, limits)).flatten()
    }

    fn run<T>(
        &self,
        limits: cel::budget::Limits,
        evaluate: impl FnOnce() -> Result<T, ExecutionError>,
    ) -> Result<T, EvalError> {
        let (outcome, usage) = cel::budget::run(limits, || quietly(evaluate));
        if let Some(exceeded) = usage.exceeded {
            return Err(EvalError::BudgetExceeded(exceeded));
        }
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) => Err(EvalError::Execution {
                error: err,
                source_text: self.source.clone(),
            }),
            None => Err(EvalError::Panicked),
        }
    }
}

/// Run `f`, turning a panic into `None` without printing it (no message, no backtrace): a
/// process-wide hook, installed once, stays silent on threads inside `quietly` and hands
/// every other panic to the hook that was there before.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(self.0));
        }
    }
    let _restore = Restore(QUIET.with(|q| q.replace(true)));
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Words that start every message about a crossed budget (see [`is_budget_message`]).
pub const BUDGET_EXCEEDED: &str = "evaluation budget exceeded";

/// Whether an Error verdict's message says the evaluation crossed its budget.
pub fn is_budget_message(message: &str) -> bool {
    message.contains(BUDGET_EXCEEDED)
}

/// Why one evaluation produced no value.
#[derive(Debug)]
pub enum EvalError {
    Execution {
        error: ExecutionError,
        /// The expression as compiled: a key named in it is the author's, not the object's.
        source_text: Arc<str>,
    },
    BudgetExceeded(cel::budget::Exceeded),
    Panicked,
    NotBool(&'static str),
}

impl EvalError {
    /// A message that names what failed but never quotes a value from the object (values,
    /// map keys included, could be secrets). `detailed` is for the action's own examples,
    /// where values are the author's.
    pub fn message(&self, detailed: bool) -> String {
        match self {
            EvalError::BudgetExceeded(cel::budget::Exceeded::Steps) => format!(
                "{BUDGET_EXCEEDED}: more than {MAX_EVALUATION_STEPS} steps (expression nodes and element comparisons)"
            ),
            EvalError::BudgetExceeded(cel::budget::Exceeded::Memory) => format!(
                "{BUDGET_EXCEEDED}: more than {} MiB of lists, maps and strings built",
                MAX_EVALUATION_MEMORY >> 20
            ),
            EvalError::Panicked => "the CEL interpreter failed on this expression".into(),
            EvalError::NotBool(got) => format!("expression returned {got}, expected a bool"),
            EvalError::Execution { error, .. } if detailed => truncate(&error.to_string(), 256),
            EvalError::Execution { error, source_text } => match error {
                ExecutionError::NoSuchKey(key) if written_in(source_text, key) => {
                    truncate(&format!("no such key: {key}"), 256)
                }
                ExecutionError::NoSuchKey(_) => {
                    "no such key (a key computed from the object, not quoted)".into()
                }
                ExecutionError::UndeclaredReference(name) => {
                    format!("undeclared reference to '{name}'")
                }
                ExecutionError::UnexpectedType { want, .. } => {
                    format!("unexpected type, want {want}")
                }
                ExecutionError::FunctionError { function, .. } => {
                    format!("function '{function}' failed")
                }
                ExecutionError::InvalidArgumentCount { expected, actual } => {
                    format!("invalid argument count: expected {expected}, got {actual}")
                }
                ExecutionError::NoSuchOverload => "no such overload".into(),
                ExecutionError::DivisionByZero(_) => "division by zero".into(),
                ExecutionError::ValuesNotComparable(..) => "values can not be compared".into(),
                other => {
                    // Every other variant may quote a value: keep only its name, in words
                    // ("IndexOutOfBounds" -> "index out of bounds").
                    let text = format!("{other:?}");
                    let variant = text.split(['(', ' ', '{']).next().unwrap_or("error");
                    let mut words = String::new();
                    for (i, c) in variant.chars().enumerate() {
                        if c.is_uppercase() && i > 0 {
                            words.push(' ');
                        }
                        words.push(c.to_ascii_lowercase());
                    }
                    words
                }
            },
        }
    }
}

/// Whether `key` appears in the expression as an identifier or a quoted string: then the
/// author wrote it and naming it reveals nothing from the object.
fn written_in(source: &str, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let bare = key.chars().all(ident)
        && source.match_indices(key).any(|(i, _)| {
            let before = source[..i].chars().next_back();
            let after = source[i + key.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        });
    bare || ["'", "\""]
        .iter()
        .any(|q| source.contains(&format!("{q}{key}{q}")))
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Name of a value's type, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) | Value::UInt(_) => "an int",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "a bool",
        Value::Null => "null",
        _ => "another type",
    }
}

/// A value in the interpreter's own form, whose lists, maps and strings are shared (the
/// vendored cel patch): binding it, selecting a field of it or iterating over it copies
/// nothing, where binding a [`Value`] converts (deep-copies) the whole tree.
#[derive(Debug)]
pub struct Shared(Box<dyn Val>);

impl Clone for Shared {
    fn clone(&self) -> Self {
        Shared(self.0.clone_as_boxed())
    }
}

impl Shared {
    pub fn val(&self) -> &dyn Val {
        self.0.as_ref()
    }

    /// The same value as a [`Value`] (a deep conversion: for functions, which take `Value`s).
    pub fn value(&self) -> Value {
        Value::try_from(self.0.as_ref()).unwrap_or(Value::Null)
    }

    /// The field `key` of a map.
    pub fn field(&self, key: &str) -> Option<Shared> {
        let map = self.0.downcast_ref::<CelMap>()?;
        map.get_str(key).map(|v| Shared(v.clone_as_boxed()))
    }

    pub fn is_map(&self) -> bool {
        self.0.downcast_ref::<CelMap>().is_some()
    }

    /// Wrap a value already in the interpreter's form.
    pub fn from_val(v: Box<dyn Val>) -> Shared {
        Shared(v)
    }

    pub fn null() -> Shared {
        Shared(Box::new(CelNull))
    }
}

/// Bind `value` as `name` in `ctx`: shared, not copied (the reference mode deep-copies, as
/// binding a [`Value`] did).
pub fn bind(ctx: &mut Context, name: impl Into<String>, value: &Shared) {
    ctx.add_variable_as_val(name, value.0.clone_as_boxed());
}

/// As [`bind`], for a value the caller is done with: moved into the scope, not cloned (in the
/// reference mode, bound as [`bind`] binds it).
pub fn bind_owned(ctx: &mut Context, name: impl Into<String>, value: Shared) {
    if reference_mode() {
        bind(ctx, name, &value);
    } else {
        ctx.add_variable_as_val(name, value.0);
    }
}

/// Whether the reference mode is on: every value is deep-copied and converted as cel 0.13
/// does upstream (see [`set_reference_mode`]).
pub fn reference_mode() -> bool {
    cel::budget::deep_copies()
}

/// Evaluate without the sharing fast paths, as upstream cel 0.13 would (process-wide): the
/// reference a differential test compares the shared evaluation with. Not for production.
#[doc(hidden)]
pub fn set_reference_mode(on: bool) {
    cel::budget::set_deep_copies(on);
}

/// A JSON value converted to CEL, once, in the interpreter's shared form.
#[derive(Debug, Clone)]
pub struct CelJson {
    pub shared: Shared,
}

impl CelJson {
    /// The value as a [`Value`] (a deep conversion).
    pub fn value(&self) -> Value {
        self.shared.value()
    }
}

/// Convert JSON to a CEL value. Map entries whose value is null are dropped, as the API server
/// does for typed objects, so `has(x.f)` means "set" and a null never reaches an operator.
pub fn json_to_cel(v: &serde_json::Value) -> CelJson {
    CelJson {
        shared: Shared(convert(v)),
    }
}

fn convert(v: &serde_json::Value) -> Box<dyn Val> {
    match v {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        serde_json::Value::String(s) => Box::new(CelString::from(intern(s))),
        serde_json::Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(convert).collect::<Vec<_>>()))
        }
        serde_json::Value::Object(fields) => {
            let map: CelMapEntries = fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (CelMapKey::String(CelString::from(intern(k))), convert(v)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

/// Strings up to this length are interned: field names and enum-like values ("name", "image",
/// "IfNotPresent", "TCP") repeat in every object, and a cache holding 100k objects would
/// otherwise allocate each occurrence.
const INTERN_MAX_LEN: usize = 48;
/// Distinct strings one thread interns before it stops (label values and names vary).
const INTERN_MAX_ENTRIES: usize = 200_000;

fn intern(s: &str) -> Arc<String> {
    thread_local! {
        static INTERNED: std::cell::RefCell<HashMap<String, Arc<String>>> = Default::default();
    }
    if s.len() > INTERN_MAX_LEN {
        return Arc::new(s.to_string());
    }
    INTERNED.with(|cell| {
        let mut set = cell.borrow_mut();
        if let Some(existing) = set.get(s) {
            return existing.clone();
        }
        let fresh = Arc::new(s.to_string());
        if set.len() < INTERN_MAX_ENTRIES {
            set.insert(s.to_string(), fresh.clone());
        }
        fresh
    })
}

/// A CEL map from named values.
pub fn map_of(entries: impl IntoIterator<Item = (String, Shared)>) -> Shared {
    let map: CelMapEntries = entries
        .into_iter()
        .map(|(k, v)| (CelMapKey::String(CelString::from(k)), v.0))
        .collect();
    Shared(Box::new(CelMap::from(map)))
}

/// A CEL list of values.
pub fn list_of(items: impl IntoIterator<Item = Shared>) -> Shared {
    Shared(Box::new(CelList::from(
        items.into_iter().map(|i| i.0).collect::<Vec<_>>(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with(object: serde_json::Value) -> (Context<'static>, u64) {
        let converted = json_to_cel(&object);
        let mut ctx = root_context().new_inner_scope();
        bind(&mut ctx, "object", &converted.shared);
        (ctx, 0)
    }

    #[test]
    fn kubernetes_extension_functions_are_available() {
        for expr in [
            "quantity('500m').isLessThan(quantity('1'))",
            "'a,b'.split(',').size() == 2",
            "[1, 2, 3].isSorted()",
            "sets.contains([1, 2, 3], [1])",
            "math.greatest([1, 5]) == 5",
            "'abc'.matches('^a')",
            "isURL('https://example.com')",
            "ip('10.0.0.1').family() == 4",
            "semver('1.2.3').major() == 1",
            "'%s'.format(['x']) == 'x'",
        ] {
            let c = compile(expr, &[], &[]).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let (ctx, _) = ctx_with(serde_json::json!({}));
            assert_eq!(c.execute(&ctx).unwrap(), Value::Bool(true), "{expr}");
        }
    }

    #[test]
    fn unknown_names_are_rejected_at_compile_time() {
        assert!(
            matches!(compile("nosuchfn(object)", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("nosuchfn"))
        );
        assert!(
            matches!(compile("sets.nosuch([1], [1])", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("sets.nosuch"))
        );
        assert!(
            matches!(compile("obj.spec", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("'obj'"))
        );
        assert!(
            matches!(compile("variables.x", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("variables.x"))
        );
        assert!(compile("variables.x", &["x".into()], &[]).is_ok());
        assert!(
            matches!(compile("lookups.p", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("lookups.p"))
        );
        assert!(matches!(
            compile("Foo{a: 1}", &[], &[]),
            Err(CompileError::Invalid(_))
        ));
        assert!(
            matches!(compile("object.spec.(", &[], &[]), Err(CompileError::Invalid(m)) if m.contains("parse"))
        );
        // Comprehension variables are in scope inside the macro only.
        assert!(compile("object.items.all(i, i > 0)", &[], &[]).is_ok());
        assert!(compile("object.items.all(i, i > 0) && i == 1", &[], &[]).is_err());
    }

    #[test]
    fn static_limits() {
        let long = format!("object.a == '{}'", "x".repeat(MAX_EXPRESSION_BYTES));
        assert!(matches!(
            compile(&long, &[], &[]),
            Err(CompileError::LimitExceeded(_))
        ));
        assert!(compile("object.a.all(x, object.b.all(y, x == y))", &[], &[]).is_ok());
        let deep = "object.a.all(x, object.b.all(y, object.c.all(z, x == z)))";
        assert!(
            matches!(compile(deep, &[], &[]), Err(CompileError::LimitExceeded(m)) if m.contains("3 deep"))
        );
    }

    #[test]
    fn a_comprehension_over_a_huge_list_ends_with_a_budget_error_not_a_hang() {
        let huge: Vec<i64> = (0..200_000).collect();
        let (ctx, _) = ctx_with(serde_json::json!({ "items": huge }));
        let c = compile(
            "object.items.all(x, object.items.exists(y, y == x))",
            &[],
            &[],
        )
        .unwrap();
        let err = c.execute(&ctx).unwrap_err();
        assert!(matches!(
            err,
            EvalError::BudgetExceeded(cel::budget::Exceeded::Steps)
        ));
        assert!(err.message(false).contains("budget"));
        // The same expression on a small list runs.
        let (ctx, _) = ctx_with(serde_json::json!({ "items": [1, 2, 3] }));
        assert_eq!(c.execute(&ctx).unwrap(), Value::Bool(true));
    }

    #[test]
    fn runtime_error_messages_never_quote_values() {
        let (ctx, _) = ctx_with(serde_json::json!({ "env": "hunter2-secret", "n": 1 }));
        let c = compile("object.env > object.n", &[], &[]).unwrap();
        let message = c.execute(&ctx).unwrap_err().message(false);
        assert!(!message.contains("hunter2"), "{message}");
        let c = compile("object.missing == 1", &[], &[]).unwrap();
        assert!(
            c.execute(&ctx)
                .unwrap_err()
                .message(false)
                .contains("missing")
        );
    }

    #[test]
    fn variables_are_rewritten_outside_string_literals_only() {
        assert_eq!(
            rewrite_variables("size(variables.offenders) == 0 && variables .x.all(c, c)")
                .as_deref(),
            Some("size(__v_offenders) == 0 && __v_x.all(c, c)")
        );
        assert_eq!(
            rewrite_variables("'variables.a' + \"variables.b\" + variables.c").as_deref(),
            Some("'variables.a' + \"variables.b\" + __v_c")
        );
        assert_eq!(
            rewrite_variables("object.variables.a == myvariables.b"),
            None
        );
        assert_eq!(
            rewrite_variables("r'variables.\\' + variables.d").as_deref(),
            Some("r'variables.\\' + __v_d")
        );
        let c = compile(
            &rewrite_variables("variables.a + 1").unwrap(),
            &["a".into()],
            &[],
        )
        .unwrap();
        assert!(c.variable_refs.contains("a"));
        assert!(
            compile(
                &rewrite_variables("variables.b + 1").unwrap(),
                &["a".into()],
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn null_fields_read_as_unset() {
        let (ctx, _) = ctx_with(serde_json::json!({ "spec": { "securityContext": null } }));
        let c = compile("!has(object.spec.securityContext)", &[], &[]).unwrap();
        assert_eq!(c.execute(&ctx).unwrap(), Value::Bool(true));
    }
}
