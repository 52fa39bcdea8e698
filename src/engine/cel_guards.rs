//! Guarded versions of the CEL functions whose work or output is not proportional to what the
//! interpreter charges for a call (the conversion of its arguments and result): string
//! formatting, `sort`, `flatten`, `indexOf`/`lastIndexOf` and the regular-expression functions
//! (`matches`, `find`, `findAll`). Each charges the evaluation budget (vendor/cel,
//! `cel::budget`) for the steps it takes and reserves the bytes it builds BEFORE it works, so a
//! hostile expression ends with the budget error instead of a long run or a huge allocation.
//! Registered over the standard and Kubernetes versions by `engine::cel::root_context`;
//! tests/hostile/engine.rs holds a runaway case for each.

// The cel crate itself, not through `super::cel` (which registers these: no import cycle).
use kube::core::cel::KubeCelExt;
use kube::core::cel::cel::budget::{self, LIST_ELEMENT_BYTES};
use kube::core::cel::cel::extractors::{Arguments, This};
use kube::core::cel::cel::objects::Key;
use kube::core::cel::cel::{Context, ExecutionError, Program, ResolveResult, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

/// Bytes of a string scanned per step: the Kubernetes CEL cost model charges 0.1 per byte
/// traversed (`common.StringTraversalCostFactor`).
pub const BYTES_PER_STEP: u64 = 10;
/// Largest compiled form of one regular expression (the regex crate's default is 10 MiB):
/// `a{1000}{1000}` is refused instead of compiled.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Deepest nesting of groups and repetitions in one regular expression.
pub const REGEX_NEST_LIMIT: u32 = 64;
/// Automaton states that scan a byte for the price of one: a larger regular expression costs
/// proportionally more per byte (the matcher's worst case visits every state for every byte).
const REGEX_STATES_PER_COST: u64 = 64;
/// Steps one compilation of a regular expression costs, plus [`REGEX_STEPS_PER_STATE`] for each
/// state of its automaton: compiling is far dearer than evaluating an expression node, and a
/// pattern computed from the object is compiled on every call (only the pattern text is
/// cached, per thread).
const REGEX_COMPILE_STEPS: u64 = 10_000;
const REGEX_STEPS_PER_STATE: u64 = 32;
/// Charges are gathered locally and sent to the budget in chunks of this many steps.
const CHUNK: u64 = 1024;

/// Register the guarded functions over the ones of the same names.
pub fn register(ctx: &mut Context) {
    ctx.add_function("format", format);
    ctx.add_function("sort", sort);
    ctx.add_function("flatten", flatten);
    ctx.add_function("indexOf", index_of);
    ctx.add_function("lastIndexOf", last_index_of);
    ctx.add_function("matches", matches);
    ctx.add_function("find", find);
    ctx.add_function("findAll", find_all);
}

/// Steps to scan `bytes` bytes of a string (at least one).
fn scan_steps(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_STEP).max(1)
}

/// Visits the nodes of a value (lists and maps element by element), charging one step per
/// node as it goes, so that a value far larger than its memory (one list referenced many times
/// over) ends at the step budget instead of being walked for ever. Returns what `visit`
/// summed.
fn walk(
    value: &Value,
    depth: usize,
    visit: &mut dyn FnMut(&Value, usize) -> u64,
) -> Result<u64, ExecutionError> {
    struct Walker<'a> {
        pending: u64,
        visit: &'a mut dyn FnMut(&Value, usize) -> u64,
    }
    impl Walker<'_> {
        fn node(&mut self, value: &Value, depth: usize) -> Result<u64, ExecutionError> {
            self.pending += 1;
            if self.pending >= CHUNK {
                budget::charge_steps(std::mem::take(&mut self.pending))?;
            }
            let mut sum = (self.visit)(value, depth);
            match value {
                Value::List(items) if depth > 0 => {
                    for item in items.iter() {
                        sum = sum.saturating_add(self.node(item, depth - 1)?);
                    }
                }
                Value::Map(map) if depth > 0 => {
                    for item in map.map.values() {
                        sum = sum.saturating_add(self.node(item, depth - 1)?);
                    }
                }
                _ => {}
            }
            Ok(sum)
        }
    }
    let mut walker = Walker { pending: 0, visit };
    let sum = walker.node(value, depth)?;
    budget::charge_steps(walker.pending)?;
    Ok(sum)
}

/// An upper bound of the bytes `%s` renders a value in (quotes, separators and keys included).
fn rendered_bytes(value: &Value) -> Result<u64, ExecutionError> {
    walk(value, usize::MAX, &mut |v, _| match v {
        Value::String(s) => s.len() as u64 + 4,
        Value::Bytes(b) => b.len() as u64 * 4 + 4,
        // Each element: ", " and the key of a map entry (keys are bounded by their map's
        // conversion; a generous constant covers numbers, booleans and short keys).
        Value::List(items) => 2 + items.len() as u64 * 2,
        Value::Map(map) => {
            2 + map
                .map
                .keys()
                .map(|k| match k {
                    Key::String(s) => s.len() as u64 + 5,
                    _ => 26,
                })
                .sum::<u64>()
        }
        _ => 40,
    })
}

/// `string.format(list)`: the output is reserved (format string, rendered arguments and every
/// `%.N` precision) before the Kubernetes implementation builds it.
fn format(This(this): This<Arc<String>>, list: Value) -> ResolveResult {
    budget::charge_steps(scan_steps(this.len()))?;
    let mut size = this.len() as u64;
    let mut rest = this.as_str();
    while let Some(at) = rest.find("%.") {
        rest = &rest[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        // An unparseable precision is the implementation's error to report.
        size = size.saturating_add(rest[..digits].parse::<u64>().unwrap_or(0));
    }
    if !matches!(list, Value::List(_)) {
        return Err(ExecutionError::function_error(
            "format",
            "format() requires a list argument",
        ));
    }
    size = size.saturating_add(rendered_bytes(&list)?);
    budget::reserve_memory(size)?;
    unguarded_format(Value::String(this), list)
}

/// `s.format(list)` as cel and kube-cel implement it (this module replaces it in the engine's
/// environment), under the running budget.
fn unguarded_format(receiver: Value, list: Value) -> ResolveResult {
    static CONTEXT: OnceLock<Context<'static>> = OnceLock::new();
    static CALL: OnceLock<Option<Program>> = OnceLock::new();
    let context = CONTEXT.get_or_init(|| Context::default().with_all());
    let Some(call) = CALL.get_or_init(|| Program::compile("s.format(a)").ok()) else {
        return Err(ExecutionError::function_error(
            "format",
            "the formatting call could not be prepared",
        ));
    };
    let mut scope = context.new_inner_scope();
    scope.add_variable_from_value("s", receiver);
    scope.add_variable_from_value("a", list);
    call.execute(&scope)
}

/// Comparisons a sort of `n` elements makes at most (n × ⌈log2 n⌉).
fn sort_comparisons(n: usize) -> u64 {
    let n = n as u64;
    n.saturating_mul(u64::from(u64::BITS - n.leading_zeros()))
}

/// `list.sort()`: one step per comparison, the copy reserved.
fn sort(This(this): This<Arc<Vec<Value>>>) -> ResolveResult {
    budget::charge_steps(sort_comparisons(this.len()))?;
    budget::reserve_memory((this.len() as u64).saturating_mul(LIST_ELEMENT_BYTES))?;
    let mut items: Vec<Value> = this.iter().cloned().collect();
    let mut failed = false;
    items.sort_by(|a, b| {
        a.partial_cmp(b).unwrap_or_else(|| {
            failed = true;
            std::cmp::Ordering::Equal
        })
    });
    if failed {
        return Err(ExecutionError::function_error(
            "compare",
            "cannot compare values of different types",
        ));
    }
    Ok(Value::List(Arc::new(items)))
}

/// `list.flatten([depth])`: the elements of the result are counted (one step per node
/// visited) and reserved before the list is built.
fn flatten(This(this): This<Arc<Vec<Value>>>, Arguments(args): Arguments) -> ResolveResult {
    let depth = match args.first() {
        Some(Value::Int(d)) if *d < 0 => {
            return Err(ExecutionError::function_error(
                "flatten",
                "depth must be non-negative",
            ));
        }
        Some(Value::Int(d)) => usize::try_from(*d).unwrap_or(usize::MAX),
        None => 1,
        _ => {
            return Err(ExecutionError::function_error(
                "flatten",
                "expected int argument for depth",
            ));
        }
    };
    let list = Value::List(this.clone());
    // A node at remaining depth d is copied into the result when it is not a list or d is 0.
    let elements = walk(&list, depth, &mut |v, d| {
        u64::from(!matches!(v, Value::List(_)) || d == 0)
    })?;
    budget::reserve_memory(elements.saturating_mul(LIST_ELEMENT_BYTES))?;
    fn collect(items: &[Value], depth: usize, out: &mut Vec<Value>) {
        for item in items {
            match item {
                Value::List(inner) if depth > 0 => collect(inner, depth - 1, out),
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    collect(&this, depth, &mut out);
    Ok(Value::List(Arc::new(out)))
}

/// Nodes an equality test with `value` may visit.
fn nodes(value: &Value) -> Result<u64, ExecutionError> {
    walk(value, usize::MAX, &mut |v, _| match v {
        Value::String(s) => 1 + s.len() as u64 / BYTES_PER_STEP,
        _ => 1,
    })
}

/// The byte offset of the `chars`-th character of `s` (None: past the end).
fn byte_of_char(s: &str, chars: usize) -> Option<usize> {
    s.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .nth(chars)
}

fn search_argument(function: &str, args: &[Value]) -> Result<Arc<String>, ExecutionError> {
    match args.first() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ExecutionError::function_error(
            function,
            "expected string argument",
        )),
    }
}

/// `string.indexOf(s[, from])` and `list.indexOf(x)`: the first match, in characters or
/// elements. The string search is linear (the Kubernetes implementation compares at every
/// position: quadratic); the list search is charged for every element it compares.
fn index_of(This(this): This<Value>, Arguments(args): Arguments) -> ResolveResult {
    match this {
        Value::String(s) => {
            let search = search_argument("indexOf", &args)?;
            budget::charge_steps(scan_steps(s.len()))?;
            let from = match args.get(1) {
                Some(Value::Int(n)) => usize::try_from((*n).max(0)).unwrap_or(usize::MAX),
                _ => 0,
            };
            if search.is_empty() {
                return Ok(Value::Int(from as i64));
            }
            let Some(start) = byte_of_char(&s, from) else {
                return Ok(Value::Int(-1));
            };
            Ok(Value::Int(match s[start..].find(search.as_str()) {
                Some(at) => (from + s[start..start + at].chars().count()) as i64,
                None => -1,
            }))
        }
        Value::List(list) => {
            let target = args
                .first()
                .ok_or_else(|| ExecutionError::function_error("indexOf", "expected argument"))?;
            budget::charge_steps((list.len() as u64).saturating_mul(nodes(target)?))?;
            Ok(Value::Int(
                list.iter()
                    .position(|v| v == target)
                    .map_or(-1, |i| i as i64),
            ))
        }
        other => Err(ExecutionError::function_error(
            "indexOf",
            format!("indexOf not supported on type {:?}", other.type_of()),
        )),
    }
}

/// `string.lastIndexOf(s[, atMost])` (the match starts at character `atMost` or before) and
/// `list.lastIndexOf(x)`, as [`index_of`].
fn last_index_of(This(this): This<Value>, Arguments(args): Arguments) -> ResolveResult {
    match this {
        Value::String(s) => {
            let search = search_argument("lastIndexOf", &args)?;
            budget::charge_steps(scan_steps(s.len()))?;
            let len = s.chars().count() as i64;
            let at_most = match args.get(1) {
                Some(Value::Int(n)) => *n,
                _ => len,
            };
            if search.is_empty() {
                return Ok(Value::Int(at_most.clamp(0, len)));
            }
            if at_most < 0 {
                return Ok(Value::Int(-1));
            }
            // A match starting at character `at_most` or before ends at most `search.len()`
            // bytes after that character's offset.
            let start = byte_of_char(&s, at_most.min(len) as usize).unwrap_or(s.len());
            let mut end = start.saturating_add(search.len()).min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Ok(Value::Int(match s[..end].rfind(search.as_str()) {
                Some(at) => s[..at].chars().count() as i64,
                None => -1,
            }))
        }
        Value::List(list) => {
            let target = args.first().ok_or_else(|| {
                ExecutionError::function_error("lastIndexOf", "expected argument")
            })?;
            budget::charge_steps((list.len() as u64).saturating_mul(nodes(target)?))?;
            Ok(Value::Int(
                list.iter()
                    .rposition(|v| v == target)
                    .map_or(-1, |i| i as i64),
            ))
        }
        other => Err(ExecutionError::function_error(
            "lastIndexOf",
            format!("lastIndexOf not supported on type {:?}", other.type_of()),
        )),
    }
}

/// A compiled regular expression and the number of states of its automaton.
struct CompiledRegex {
    regex: regex::Regex,
    states: u64,
}

/// Compile `pattern` within [`REGEX_SIZE_LIMIT`] and [`REGEX_NEST_LIMIT`], charging
/// [`REGEX_COMPILE_STEPS`] and the automaton's states; compiled patterns are kept per thread (the standard `matches`
/// compiled the pattern on every call, which dominated image and environment checks).
fn compiled(function: &str, pattern: &str) -> Result<Rc<CompiledRegex>, ExecutionError> {
    const MAX_CACHED: usize = 256;
    thread_local! {
        static CACHE: RefCell<HashMap<String, Rc<CompiledRegex>>> = RefCell::new(HashMap::new());
    }
    if let Some(hit) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(hit);
    }
    budget::charge_steps(REGEX_COMPILE_STEPS.saturating_add(scan_steps(pattern.len())))?;
    let invalid = |e: &dyn std::fmt::Display| {
        ExecutionError::function_error(function, format!("invalid regex: {e}"))
    };
    // The automaton alone first (the same limits as the matcher's), to charge its size.
    let nfa = regex_automata::nfa::thompson::Compiler::new()
        .syntax(regex_automata::util::syntax::Config::new().nest_limit(REGEX_NEST_LIMIT))
        .configure(
            regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
        )
        .build(pattern)
        .map_err(|e| invalid(&e))?;
    let states = nfa.states().len() as u64;
    budget::charge_steps(states.saturating_mul(REGEX_STEPS_PER_STATE))?;
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| invalid(&e))?;
    let compiled = Rc::new(CompiledRegex { regex, states });
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(pattern.to_string(), compiled.clone());
    });
    Ok(compiled)
}

/// Charge a scan of `haystack` by `re`: the bytes, times the automaton's size in units of
/// [`REGEX_STATES_PER_COST`] states.
fn charge_scan(re: &CompiledRegex, haystack: &str) -> Result<(), ExecutionError> {
    budget::charge_steps(
        scan_steps(haystack.len()).saturating_mul(re.states.div_ceil(REGEX_STATES_PER_COST).max(1)),
    )
}

fn pattern_argument(function: &str, args: &[Value]) -> Result<Arc<String>, ExecutionError> {
    match args.first() {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ExecutionError::function_error(
            function,
            "expected string pattern",
        )),
    }
}

/// `string.matches(regex)`.
pub(crate) fn matches(This(this): This<Arc<String>>, pattern: Arc<String>) -> ResolveResult {
    let re = compiled("matches", &pattern)?;
    charge_scan(&re, &this)?;
    Ok(Value::Bool(re.regex.is_match(&this)))
}

/// `string.find(regex)`: the first match, or ''.
fn find(This(this): This<Arc<String>>, pattern: Arc<String>) -> ResolveResult {
    let re = compiled("find", &pattern)?;
    charge_scan(&re, &this)?;
    let found = re.regex.find(&this).map_or("", |m| m.as_str());
    budget::reserve_memory(found.len() as u64)?;
    Ok(Value::String(Arc::new(found.to_string())))
}

/// `string.findAll(regex[, limit])`: every match (at most `limit`); each one found is charged
/// before it is kept.
fn find_all(This(this): This<Arc<String>>, Arguments(args): Arguments) -> ResolveResult {
    let re = compiled("findAll", &pattern_argument("findAll", &args)?)?;
    charge_scan(&re, &this)?;
    let limit = match args.get(1) {
        Some(Value::Int(n)) if *n < 0 => usize::MAX,
        Some(Value::Int(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let mut found = Vec::new();
    let mut pending = 0u64;
    for m in re.regex.find_iter(&this).take(limit) {
        pending += LIST_ELEMENT_BYTES + m.len() as u64;
        if pending >= CHUNK * LIST_ELEMENT_BYTES {
            budget::charge_memory(std::mem::take(&mut pending))?;
        }
        found.push(Value::String(Arc::new(m.as_str().to_string())));
    }
    budget::charge_memory(pending)?;
    Ok(Value::List(Arc::new(found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluate `expression` with the guarded functions, under a budget.
    fn eval(expression: &str) -> Result<Value, String> {
        let mut ctx = Context::default().with_all();
        register(&mut ctx);
        let limits = budget::Limits {
            steps: 1_000_000,
            memory: 64 << 20,
        };
        let program = Program::compile(expression).map_err(|e| e.to_string())?;
        budget::run(limits, || program.execute(&ctx).map_err(|e| e.to_string())).0
    }

    /// The same call in the unguarded environment (cel and kube-cel as published).
    fn unguarded(expression: &str) -> Result<Value, String> {
        let ctx = Context::default().with_all();
        Program::compile(expression)
            .map_err(|e| e.to_string())?
            .execute(&ctx)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn string_searches_answer_as_the_kubernetes_implementation() {
        let haystacks = [
            "",
            "a",
            "hello wello",
            "ta©o©αT",
            "bananananana",
            "abcabc",
            "ααα",
        ];
        let needles = ["", "a", "©", "©αT", "nana", "abc", "ello", "α", "zz"];
        let offsets = ["", ", -5", ", 0", ", 1", ", 3", ", 4", ", 7", ", 100"];
        let mut compared = 0;
        for h in haystacks {
            for n in needles {
                for o in offsets {
                    for f in ["indexOf", "lastIndexOf"] {
                        let e = format!("'{h}'.{f}('{n}'{o})");
                        let want = unguarded(&e);
                        if want.is_err() {
                            continue;
                        }
                        assert_eq!(eval(&e), want, "{e}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 900, "{compared}");
    }

    #[test]
    fn list_functions_answer_as_the_kubernetes_implementation() {
        for e in [
            "[3, 1, 2].sort()",
            "['b', 'a'].sort()",
            "[[1, [2, [3]]], 4].flatten()",
            "[[1, [2, [3]]], 4].flatten(0)",
            "[[1, [2, [3]]], 4].flatten(2)",
            "[[1, [2, [3]]], 4].flatten(9)",
            "[1, 2, 1].indexOf(1)",
            "[1, 2, 1].lastIndexOf(1)",
            "[[1], [2]].indexOf([2])",
            "'%s %d %.3f %e %x %b %o'.format(['x', 1, 1.5, 1500.0, 255, 5, 8])",
            "'%s'.format([{'a': [1, 'b']}])",
        ] {
            assert_eq!(eval(e), unguarded(e), "{e}");
        }
        assert!(eval("[1, 'a'].sort()").is_err());
        assert!(eval("[1].flatten(-1)").is_err());
    }

    #[test]
    fn regexes_beyond_the_size_limit_are_refused() {
        for e in [
            "'a'.matches('a{1000}{1000}')",
            "'a'.find('(a{100}){100}{100}')",
            "'a'.findAll('((((a{50}){50}){50}){50})')",
        ] {
            let err = eval(e).expect_err(e);
            assert!(err.contains("invalid regex"), "{e}: {err}");
        }
        assert_eq!(
            eval("'a1b22c3'.findAll('[0-9]+', 2)"),
            unguarded("'a1b22c3'.findAll('[0-9]+', 2)")
        );
        assert_eq!(
            eval("'a1b22'.find('[0-9]+')"),
            unguarded("'a1b22'.find('[0-9]+')")
        );
    }
}
