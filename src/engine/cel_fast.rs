//! A checked fast path for the catalog's common expression shapes (issue 15): field tests
//! over containers, `LIST.filter(c, PRED).map(c, c.name)`, `.exists`, `.all`, with PRED made
//! of `has()`, field selection, `!`, `&&`, `||`, `? :`, `==`, `!=`, `in` and literals.
//!
//! An expression whose root is one of those nodes is compiled once into [`Fast`]; a
//! subexpression of another kind (`join`, indexing, `substring`...) becomes an opaque node,
//! and an evaluation that reaches one is left to the interpreter (one that does not, e.g. a
//! filter whose condition no item passes, is answered). `lookupByName` reads the inventory's
//! object in place. Evaluating walks the values in place (no per-node budget charge through a
//! thread-local, no variable lookup by name in a `BTreeMap` per scope, no boxing of
//! intermediate booleans). It never decides anything CEL could decide differently: every
//! node does what `cel::Value::resolve_val` does
//! for it, with the same `Val` methods (`equals`, `Container::contains`, `DefaultMap::get_str`),
//! and any case that is not plainly a success there (a missing field, a non-boolean under `!`,
//! `&&`, `||` or `? :`, a non-list range, a non-map under a field selection, an unbound
//! identifier, an error of `in`, an evaluation near its budget) makes [`Fast::run`] return
//! `None`, and the caller runs the CEL interpreter, which produces the exact value or error.
//! The reference mode (`cel::reference_mode`) never uses it, so `tests/differential.rs`
//! compares it with the interpreter on every catalog fixture, the corpus and synthetic
//! clusters.

use super::cel::cel::budget;
use super::cel::cel::budget::{LIST_ELEMENT_BYTES, Limits, MAP_ENTRY_BYTES};
use super::cel::cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};
use super::cel::cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapEntries, CelNull, CelString, CelUInt,
};
use super::cel::cel::common::value::Val;
use super::cel::cel::extractors::This;
use super::cel::cel::{Context, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Most identifiers of the context one fast expression reads.
const MAX_FREE: usize = 8;

/// An expression the fast path evaluates (see the module documentation).
#[derive(Debug)]
pub struct Fast {
    root: Node,
    /// The identifiers read from the context (not bound by a comprehension), by slot.
    free: Vec<String>,
}

#[derive(Debug)]
enum Node {
    /// A subexpression the fast path does not evaluate (a function call such as `join` or
    /// `lookupByName`, indexing, a map literal...): reaching it leaves the whole expression to
    /// the interpreter; an evaluation that does not reach it (the other side of a decided
    /// `&&`, `||` or `? :`, a filter over no item) is answered as usual.
    Opaque,
    /// A literal, or a list of literals, built once.
    Constant(Box<dyn Val>, Cost),
    /// A list literal with computed elements.
    List(Vec<Node>),
    /// A comprehension's variable: 0 is the innermost.
    Local(usize),
    /// An identifier of the context, by slot in [`Fast::free`].
    Free(usize),
    Select {
        operand: Box<Node>,
        field: String,
        test: bool,
        /// For `item.a.b` (a path from the innermost comprehension's item): its slot in the
        /// item's cache of found fields, and the nodes of its operand (the steps the
        /// interpreter spends on them, counted when the cache answers).
        slot: Option<(usize, u64)>,
    },
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Conditional(Box<Node>, Box<Node>, Box<Node>),
    Equals(Box<Node>, Box<Node>),
    NotEquals(Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    /// `+` of two lists (anything else is left to the interpreter).
    Concatenate(Box<Node>, Box<Node>),
    /// `<`, `<=`, `>`, `>=`: the `Comparer` of the left side, as the interpreter asks it.
    Compare(Box<Node>, Box<Node>, Comparison),
    /// The standard `size(x)` of a list or map of scalars (whose conversion to a `Value`,
    /// which the function call makes, is a copy of known size).
    Size(Box<Node>),
    /// `int(x)` of an integer (anything else, which converts, is left to the interpreter).
    Int(Box<Node>),
    /// `s.startsWith(t)`, `s.endsWith(t)`, `s.contains(t)`, `s.matches(t)` of two strings:
    /// the same functions the interpreter calls (`matches` is securescore's guarded one).
    StringTest(StringTest, Box<Node>, Box<Node>),
    /// `lookupByName('lookup', name)`: the object of the action's lookup named `name`, read in
    /// place from the inventory's index (the interpreter converts it to a `Value` and back).
    LookupByName {
        lookup: String,
        name: Box<Node>,
    },
    /// `map`/`filter`: the shape cel's `resolve_list_building` recognises.
    ListBuilding {
        range: Box<Node>,
        condition: Option<Box<Node>>,
        elements: Vec<Node>,
    },
    /// The `exists` (`any == true`) and `all` (`any == false`) macros.
    Quantifier {
        range: Box<Node>,
        predicate: Box<Node>,
        exists: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum StringTest {
    StartsWith,
    EndsWith,
    Contains,
    Matches,
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Less,
    LessEquals,
    Greater,
    GreaterEquals,
}

/// What building a constant costs the interpreter on every evaluation.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    steps: u64,
    memory: u64,
}

/// Number of evaluations the fast path answered, when counting is on (tests only: an atomic
/// increment shared by the worker threads would cost more than some evaluations).
static HITS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Count the evaluations the fast path answers (process-wide; for tests).
#[doc(hidden)]
pub fn count_hits(on: bool) {
    COUNTING.store(on, Ordering::SeqCst);
}

/// Evaluations answered by the fast path while counting was on.
#[doc(hidden)]
pub fn hits() -> u64 {
    HITS.load(Ordering::SeqCst)
}

impl Fast {
    /// The fast form of `expr`, or `None` when a node is not one the fast path evaluates.
    pub fn compile(expr: &IdedExpr) -> Option<Fast> {
        let mut builder = Builder {
            locals: Vec::new(),
            paths: Vec::new(),
            free: Vec::new(),
        };
        let root = builder.supported(expr)?;
        if builder.free.len() > MAX_FREE {
            return None;
        }
        Some(Fast {
            root,
            free: builder.free,
        })
    }

    /// Evaluate against `ctx`: the value the interpreter would return, or `None` when the
    /// interpreter must decide (see the module documentation).
    pub fn run(&self, ctx: &Context, limits: Limits) -> Option<Box<dyn Val>> {
        // The identifiers, looked up once, on the stack (a bound one always borrows; an owned
        // value would come from a resolver, which securescore's contexts do not have).
        let mut slots: [Option<&dyn Val>; MAX_FREE] = [None; MAX_FREE];
        for (slot, name) in slots.iter_mut().zip(&self.free) {
            match ctx.get_variable(name) {
                Some(Cow::Borrowed(v)) => *slot = Some(v),
                Some(Cow::Owned(_)) => return None,
                None => {}
            }
        }
        let free = &slots[..self.free.len()];
        let mut spent = Spent {
            steps: 0,
            memory: 0,
            // Generous: an evaluation anywhere near its budget is left to the interpreter,
            // which charges exactly.
            steps_cap: limits.steps / 2,
            memory_cap: limits.memory / 2,
        };
        let value = eval(&self.root, free, None, None, &mut spent)?.into_owned();
        if spent.over() {
            return None;
        }
        if COUNTING.load(Ordering::Relaxed) {
            HITS.fetch_add(1, Ordering::Relaxed);
        }
        Some(value)
    }
}

struct Builder {
    /// Comprehension variables in scope, innermost last.
    locals: Vec<String>,
    /// Per comprehension in scope, the field paths from its item given a cache slot.
    paths: Vec<Vec<Vec<String>>>,
    free: Vec<String>,
}

impl Builder {
    /// The fields of `e` when it is `item.f1.f2...` (selections, not `has()`) from the item of
    /// the innermost comprehension.
    fn item_path(&self, e: &IdedExpr) -> Option<Vec<String>> {
        match &e.expr {
            Expr::Ident(name) if self.locals.last() == Some(name) => Some(Vec::new()),
            Expr::Select(select) if !select.test => {
                let mut path = self.item_path(&select.operand)?;
                path.push(select.field.clone());
                Some(path)
            }
            _ => None,
        }
    }

    fn boxed(&mut self, e: &IdedExpr) -> Option<Box<Node>> {
        self.node(e).map(Box::new)
    }

    /// The node of `e`, or [`Node::Opaque`] when `e` is not one the fast path evaluates.
    fn node(&mut self, e: &IdedExpr) -> Option<Node> {
        Some(self.supported(e).unwrap_or(Node::Opaque))
    }

    /// The node of `e` when the fast path evaluates it (its operands may be opaque).
    fn supported(&mut self, e: &IdedExpr) -> Option<Node> {
        match &e.expr {
            Expr::Literal(literal) => constant_literal(literal),
            Expr::Ident(name) => {
                if let Some(depth) = self.locals.iter().rev().position(|l| l == name) {
                    return Some(Node::Local(depth));
                }
                if name.starts_with('@') {
                    return None;
                }
                let slot = match self.free.iter().position(|f| f == name) {
                    Some(slot) => slot,
                    None => {
                        self.free.push(name.clone());
                        self.free.len() - 1
                    }
                };
                Some(Node::Free(slot))
            }
            Expr::Select(select) => {
                let slot = self.item_path(&select.operand).and_then(|mut path| {
                    path.push(select.field.clone());
                    let nodes = path.len() as u64;
                    let table = self.paths.last_mut()?;
                    let slot = match table.iter().position(|p| *p == path) {
                        Some(slot) => slot,
                        None => {
                            table.push(path);
                            table.len() - 1
                        }
                    };
                    (slot < CACHE_SLOTS).then_some((slot, nodes))
                });
                Some(Node::Select {
                    operand: self.boxed(&select.operand)?,
                    field: select.field.clone(),
                    test: select.test,
                    slot,
                })
            }
            Expr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return None;
                }
                let mut items = Vec::with_capacity(list.elements.len());
                for element in &list.elements {
                    match &element.expr {
                        Expr::Literal(literal) if literal_supported(literal) => {
                            items.push(literal.to_val().into_owned())
                        }
                        // Built on every evaluation, as the interpreter does.
                        _ => {
                            let elements = list
                                .elements
                                .iter()
                                .map(|e| self.node(e))
                                .collect::<Option<Vec<_>>>()?;
                            return Some(Node::List(elements));
                        }
                    }
                }
                let cost = Cost {
                    steps: 1 + items.len() as u64,
                    memory: items.len() as u64 * LIST_ELEMENT_BYTES,
                };
                Some(Node::Constant(Box::new(CelList::from(items)), cost))
            }
            Expr::Call(call) => {
                let args = &call.args;
                if let Some(target) = &call.target {
                    let test = match call.func_name.as_str() {
                        "startsWith" => StringTest::StartsWith,
                        "endsWith" => StringTest::EndsWith,
                        "contains" => StringTest::Contains,
                        "matches" => StringTest::Matches,
                        _ => return None,
                    };
                    // `x.f(...)` on an identifier is first looked up as a function `x.f`.
                    if let Expr::Ident(name) = &target.expr
                        && super::cel::function_exists(&format!("{name}.{}", call.func_name))
                    {
                        return None;
                    }
                    if args.len() != 1 {
                        return None;
                    }
                    return Some(Node::StringTest(
                        test,
                        self.boxed(target)?,
                        self.boxed(&args[0])?,
                    ));
                }
                match (call.func_name.as_str(), args.len()) {
                    (operators::LOGICAL_NOT, 1) => Some(Node::Not(self.boxed(&args[0])?)),
                    (operators::LOGICAL_AND, 2) => {
                        Some(Node::And(self.boxed(&args[0])?, self.boxed(&args[1])?))
                    }
                    (operators::LOGICAL_OR, 2) => {
                        Some(Node::Or(self.boxed(&args[0])?, self.boxed(&args[1])?))
                    }
                    (operators::EQUALS, 2) => {
                        Some(Node::Equals(self.boxed(&args[0])?, self.boxed(&args[1])?))
                    }
                    (operators::NOT_EQUALS, 2) => Some(Node::NotEquals(
                        self.boxed(&args[0])?,
                        self.boxed(&args[1])?,
                    )),
                    (operators::ADD, 2) => Some(Node::Concatenate(
                        self.boxed(&args[0])?,
                        self.boxed(&args[1])?,
                    )),
                    (operators::LESS, 2) => self.compare(args, Comparison::Less),
                    (operators::LESS_EQUALS, 2) => self.compare(args, Comparison::LessEquals),
                    (operators::GREATER, 2) => self.compare(args, Comparison::Greater),
                    (operators::GREATER_EQUALS, 2) => self.compare(args, Comparison::GreaterEquals),
                    ("size", 1) => Some(Node::Size(self.boxed(&args[0])?)),
                    (super::cel::LOOKUP_BY_NAME, 2) => match &args[0].expr {
                        Expr::Literal(LiteralValue::String(lookup)) => Some(Node::LookupByName {
                            lookup: lookup.inner().to_string(),
                            name: self.boxed(&args[1])?,
                        }),
                        _ => None,
                    },
                    ("int", 1) => Some(Node::Int(self.boxed(&args[0])?)),
                    (operators::IN, 2) => {
                        Some(Node::In(self.boxed(&args[0])?, self.boxed(&args[1])?))
                    }
                    (operators::CONDITIONAL, 3) => Some(Node::Conditional(
                        self.boxed(&args[0])?,
                        self.boxed(&args[1])?,
                        self.boxed(&args[2])?,
                    )),
                    _ => None,
                }
            }
            Expr::Comprehension(c) => {
                if c.iter_var2.is_some() || c.iter_var.starts_with('@') {
                    return None;
                }
                let range = self.boxed(&c.iter_range)?;
                let accu = c.accu_var.as_str();
                let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == accu);
                if !is_accu(&c.result) || !accu.starts_with('@') {
                    return None;
                }
                self.locals.push(c.iter_var.clone());
                self.paths.push(Vec::new());
                let body = self.comprehension_body(c, range, &is_accu);
                self.paths.pop();
                self.locals.pop();
                body
            }
            // `{}`: the only map literal the fast path builds.
            Expr::Map(map) if map.entries.is_empty() => Some(Node::Constant(
                Box::new(CelMap::from(CelMapEntries::default())),
                Cost {
                    steps: 1,
                    memory: 0,
                },
            )),
            Expr::Map(_) | Expr::Struct(_) | Expr::Unspecified => None,
        }
    }

    fn compare(&mut self, args: &[IdedExpr], how: Comparison) -> Option<Node> {
        Some(Node::Compare(
            self.boxed(&args[0])?,
            self.boxed(&args[1])?,
            how,
        ))
    }

    /// The body of a list-building or quantifier comprehension, its variable in scope.
    fn comprehension_body(
        &mut self,
        c: &super::cel::cel::common::ast::ComprehensionExpr,
        range: Box<Node>,
        is_accu: &dyn Fn(&IdedExpr) -> bool,
    ) -> Option<Node> {
        let literal_bool = |e: &IdedExpr| match &e.expr {
            Expr::Literal(LiteralValue::Boolean(b)) => Some(*b.inner()),
            _ => None,
        };
        let call = |e: &'_ IdedExpr, name: &str, arity: usize| match &e.expr {
            Expr::Call(call)
                if call.func_name == name && call.target.is_none() && call.args.len() == arity =>
            {
                Some(call.args.clone())
            }
            _ => None,
        };
        // `map`/`filter`, exactly as cel's `resolve_list_building` recognises them.
        if literal_bool(&c.loop_cond) == Some(true)
            && matches!(&c.accu_init.expr, Expr::List(l) if l.elements.is_empty())
        {
            let appended = |e: &IdedExpr| -> Option<Vec<IdedExpr>> {
                let args = call(e, operators::ADD, 2)?;
                if !is_accu(&args[0]) {
                    return None;
                }
                match &args[1].expr {
                    Expr::List(list) if list.optional_indices.is_empty() => {
                        Some(list.elements.clone())
                    }
                    _ => None,
                }
            };
            let (condition, elements) = match appended(&c.loop_step) {
                Some(elements) => (None, elements),
                None => {
                    let args = call(&c.loop_step, operators::CONDITIONAL, 3)?;
                    if !is_accu(&args[2]) {
                        return None;
                    }
                    (Some(args[0].clone()), appended(&args[1])?)
                }
            };
            let condition = match condition {
                Some(condition) => Some(self.boxed(&condition)?),
                None => None,
            };
            let elements = elements
                .iter()
                .map(|e| self.node(e))
                .collect::<Option<Vec<_>>>()?;
            return Some(Node::ListBuilding {
                range,
                condition,
                elements,
            });
        }
        // `exists`: init false, loop while `@not_strictly_false(!@result)`, step
        // `@result || P`; `all`: init true, `@not_strictly_false(@result)`, `@result && P`.
        let exists = !literal_bool(&c.accu_init)?;
        let cond = call(&c.loop_cond, operators::NOT_STRICTLY_FALSE, 1)?;
        let cond_ok = if exists {
            call(&cond[0], operators::LOGICAL_NOT, 1).is_some_and(|n| is_accu(&n[0]))
        } else {
            is_accu(&cond[0])
        };
        let step_op = if exists {
            operators::LOGICAL_OR
        } else {
            operators::LOGICAL_AND
        };
        let step = call(&c.loop_step, step_op, 2)?;
        if !cond_ok || !is_accu(&step[0]) {
            return None;
        }
        Some(Node::Quantifier {
            range,
            predicate: self.boxed(&step[1])?,
            exists,
        })
    }
}

fn literal_supported(literal: &LiteralValue) -> bool {
    matches!(
        literal,
        LiteralValue::String(_)
            | LiteralValue::Boolean(_)
            | LiteralValue::Int(_)
            | LiteralValue::UInt(_)
            | LiteralValue::Null
    )
}

fn constant_literal(literal: &LiteralValue) -> Option<Node> {
    literal_supported(literal).then(|| {
        Node::Constant(
            literal.to_val().into_owned(),
            Cost {
                steps: 1,
                memory: 0,
            },
        )
    })
}

/// Budget spent, counted as the interpreter charges it (one step per node, the width of
/// compared or scanned collections, the bytes of built lists).
struct Spent {
    steps: u64,
    memory: u64,
    steps_cap: u64,
    memory_cap: u64,
}

impl Spent {
    fn over(&self) -> bool {
        self.steps > self.steps_cap || self.memory > self.memory_cap
    }
}

/// Field paths from one comprehension item that the fast path remembers (per item: the values
/// are immutable, so a path found once is the same value every time it is read).
const CACHE_SLOTS: usize = 8;

/// The values found at the item's cached paths (see `Node::Select::slot`).
type ItemCache<'a> = [Cell<Option<&'a dyn Val>>; CACHE_SLOTS];

fn item_cache<'a>() -> ItemCache<'a> {
    std::array::from_fn(|_| Cell::new(None))
}

/// Comprehension variables in scope, innermost first.
struct Locals<'a, 'p> {
    value: &'a dyn Val,
    parent: Option<&'p Locals<'a, 'p>>,
}

fn local<'a>(locals: Option<&Locals<'a, '_>>, depth: usize) -> Option<&'a dyn Val> {
    let mut at = locals?;
    for _ in 0..depth {
        at = at.parent?;
    }
    Some(at.value)
}

static TRUE: LazyLock<CelBool> = LazyLock::new(|| CelBool::from(true));
static FALSE: LazyLock<CelBool> = LazyLock::new(|| CelBool::from(false));

fn boolean<'a>(b: bool) -> Cow<'a, dyn Val> {
    Cow::Borrowed(if b { &*TRUE } else { &*FALSE })
}

/// A value whose conversion to a `Value` copies nothing deeper.
fn is_scalar(v: &dyn Val) -> bool {
    v.downcast_ref::<CelString>().is_some()
        || v.downcast_ref::<CelBool>().is_some()
        || v.downcast_ref::<CelInt>().is_some()
        || v.downcast_ref::<CelUInt>().is_some()
        || v.downcast_ref::<CelDouble>().is_some()
        || v.downcast_ref::<CelNull>().is_some()
}

fn as_bool(v: &dyn Val) -> Option<bool> {
    v.downcast_ref::<CelBool>().map(|b| *b.inner())
}

/// The memory the interpreter charges for converting `v` to a `Value` (its lists and maps,
/// at every depth; strings are shared).
fn copy_bytes(v: &dyn Val) -> u64 {
    if let Some(list) = v.downcast_ref::<CelList>() {
        let items = list.inner();
        items.len() as u64 * LIST_ELEMENT_BYTES
            + items.iter().map(|i| copy_bytes(i.as_ref())).sum::<u64>()
    } else if let Some(map) = v.downcast_ref::<CelMap>() {
        let entries = map.inner();
        entries.len() as u64 * MAP_ENTRY_BYTES
            + entries
                .values()
                .map(|i| copy_bytes(i.as_ref()))
                .sum::<u64>()
    } else {
        0
    }
}

/// Elements a comparison or scan visits (as the interpreter charges them).
fn width(v: &dyn Val) -> u64 {
    if let Some(list) = v.downcast_ref::<CelList>() {
        list.inner().len() as u64
    } else if let Some(map) = v.downcast_ref::<CelMap>() {
        map.inner().len() as u64
    } else {
        1
    }
}

fn eval<'a>(
    node: &'a Node,
    free: &[Option<&'a dyn Val>],
    locals: Option<&Locals<'a, '_>>,
    cache: Option<&ItemCache<'a>>,
    spent: &mut Spent,
) -> Option<Cow<'a, dyn Val>> {
    spent.steps += 1;
    if spent.over() {
        return None;
    }
    match node {
        Node::Constant(value, cost) => {
            spent.steps += cost.steps - 1;
            spent.memory += cost.memory;
            Some(Cow::Borrowed(value.as_ref()))
        }
        Node::Opaque => None,
        Node::Local(depth) => local(locals, *depth).map(Cow::Borrowed),
        Node::List(elements) => {
            spent.memory += elements.len() as u64 * LIST_ELEMENT_BYTES;
            let mut built: Vec<Box<dyn Val>> = Vec::with_capacity(elements.len());
            for element in elements {
                built.push(eval(element, free, locals, cache, spent)?.into_owned());
            }
            let list: Box<dyn Val> = Box::new(CelList::from(built));
            Some(Cow::Owned(list))
        }
        Node::Free(slot) => free.get(*slot).copied().flatten().map(Cow::Borrowed),
        Node::Select {
            operand,
            field,
            test,
            slot,
        } => {
            let slot = slot.and_then(|(slot, nodes)| Some((cache?.get(slot)?, nodes)));
            if let Some((remembered, nodes)) = slot
                && let Some(value) = remembered.get()
            {
                spent.steps += nodes;
                return Some(if *test {
                    boolean(true)
                } else {
                    Cow::Borrowed(value)
                });
            }
            // Only a borrowed map: what the interpreter does with anything else (a
            // non-map reads as `false`, an owned map is stolen from) is left to it.
            let Cow::Borrowed(operand) = eval(operand, free, locals, cache, spent)? else {
                return None;
            };
            let found = operand.downcast_ref::<CelMap>()?.get_str(field);
            if let (Some((remembered, _)), Some(value)) = (slot, found) {
                remembered.set(Some(value));
            }
            if *test {
                Some(boolean(found.is_some()))
            } else {
                found.map(Cow::Borrowed)
            }
        }
        Node::Not(inner) => {
            let b = as_bool(eval(inner, free, locals, cache, spent)?.as_ref())?;
            Some(boolean(!b))
        }
        Node::And(left, right) | Node::Or(left, right) => {
            // Only a boolean left side: the interpreter's answer for an error or another type
            // there depends on the right side (`error && false` is false).
            let short = matches!(node, Node::Or(..));
            let l = as_bool(eval(left, free, locals, cache, spent)?.as_ref())?;
            if l == short {
                return Some(boolean(short));
            }
            let r = as_bool(eval(right, free, locals, cache, spent)?.as_ref())?;
            Some(boolean(r))
        }
        Node::Conditional(cond, then, otherwise) => {
            if as_bool(eval(cond, free, locals, cache, spent)?.as_ref())? {
                eval(then, free, locals, cache, spent)
            } else {
                eval(otherwise, free, locals, cache, spent)
            }
        }
        Node::Equals(left, right) | Node::NotEquals(left, right) => {
            let l = eval(left, free, locals, cache, spent)?;
            let r = eval(right, free, locals, cache, spent)?;
            spent.steps += width(l.as_ref());
            let equal = l.as_ref().equals(r.as_ref());
            Some(boolean(if matches!(node, Node::Equals(..)) {
                equal
            } else {
                !equal
            }))
        }
        Node::In(item, container) => {
            let item = eval(item, free, locals, cache, spent)?;
            let container = eval(container, free, locals, cache, spent)?;
            spent.steps += width(container.as_ref());
            let found = container.as_container()?.contains(item.as_ref()).ok()?;
            Some(boolean(found))
        }
        Node::Compare(left, right, how) => {
            let l = eval(left, free, locals, cache, spent)?;
            let r = eval(right, free, locals, cache, spent)?;
            let order = l.as_comparer()?.compare(r.as_ref()).ok()?;
            Some(boolean(match how {
                Comparison::Less => order == std::cmp::Ordering::Less,
                Comparison::LessEquals => order != std::cmp::Ordering::Greater,
                Comparison::Greater => order == std::cmp::Ordering::Greater,
                Comparison::GreaterEquals => order != std::cmp::Ordering::Less,
            }))
        }
        Node::Size(of) => {
            let of = eval(of, free, locals, cache, spent)?;
            let size = if let Some(list) = of.downcast_ref::<CelList>() {
                let items = list.inner();
                if !items.iter().all(|v| is_scalar(v.as_ref())) {
                    return None;
                }
                spent.memory += items.len() as u64 * LIST_ELEMENT_BYTES;
                items.len()
            } else if let Some(map) = of.downcast_ref::<CelMap>() {
                let entries = map.inner();
                if !entries.values().all(|v| is_scalar(v.as_ref())) {
                    return None;
                }
                spent.memory += entries.len() as u64 * MAP_ENTRY_BYTES;
                entries.len()
            } else {
                return None;
            };
            let size: Box<dyn Val> = Box::new(CelInt::from(i64::try_from(size).ok()?));
            Some(Cow::Owned(size))
        }
        Node::LookupByName { lookup, name } => {
            // The literal and the function's own step.
            spent.steps += 2;
            let name = eval(name, free, locals, cache, spent)?;
            let name = name.downcast_ref::<CelString>()?;
            let found = super::cel::named_object(lookup, name.inner())?;
            let mut items: Vec<Box<dyn Val>> = Vec::new();
            if let Some(object) = found {
                // The interpreter converts the list to a `Value` and back: both copies charged.
                spent.memory += 2 * (LIST_ELEMENT_BYTES + copy_bytes(object.val()));
                items.push(object.val().clone_as_boxed());
            }
            let list: Box<dyn Val> = Box::new(CelList::from(items));
            Some(Cow::Owned(list))
        }
        Node::Int(of) => {
            let of = eval(of, free, locals, cache, spent)?;
            of.downcast_ref::<CelInt>()?;
            Some(of)
        }
        Node::StringTest(test, target, arg) => {
            let target = eval(target, free, locals, cache, spent)?;
            let arg = eval(arg, free, locals, cache, spent)?;
            let (target, arg) = (
                target.downcast_ref::<CelString>()?,
                arg.downcast_ref::<CelString>()?,
            );
            let (s, t) = (target.inner(), arg.inner());
            let found = match test {
                StringTest::StartsWith => s.starts_with(t),
                StringTest::EndsWith => s.ends_with(t),
                StringTest::Contains => s.contains(t),
                StringTest::Matches => {
                    // The guarded function itself, its charges counted here.
                    let limits = Limits {
                        steps: spent.steps_cap.saturating_sub(spent.steps),
                        memory: spent.memory_cap.saturating_sub(spent.memory),
                    };
                    let (outcome, usage) = budget::run(limits, || {
                        super::cel_guards::matches(
                            This(target.shared().clone()),
                            arg.shared().clone(),
                        )
                    });
                    spent.steps += usage.steps;
                    spent.memory += usage.memory;
                    match outcome {
                        Ok(Value::Bool(b)) if usage.exceeded.is_none() => b,
                        _ => return None,
                    }
                }
            };
            Some(boolean(found))
        }
        Node::Concatenate(left, right) => {
            let l = eval(left, free, locals, cache, spent)?;
            let r = eval(right, free, locals, cache, spent)?;
            let (l, r) = (
                l.downcast_ref::<CelList>()?.inner(),
                r.downcast_ref::<CelList>()?.inner(),
            );
            spent.memory += (l.len() + r.len()) as u64 * LIST_ELEMENT_BYTES;
            let joined: Vec<Box<dyn Val>> = l.iter().chain(r).map(|v| v.clone_as_boxed()).collect();
            let list: Box<dyn Val> = Box::new(CelList::from(joined));
            Some(Cow::Owned(list))
        }
        Node::ListBuilding {
            range,
            condition,
            elements,
        } => {
            spent.steps += 1;
            let range = eval(range, free, locals, cache, spent)?;
            let mut built: Vec<Box<dyn Val>> = Vec::new();
            // The interpreter's own iteration: a list in order, a map's keys in key order.
            let mut items = range.as_iterable()?.iter();
            while let Some(item) = items.next() {
                spent.steps += 1;
                let scope = Locals {
                    value: item,
                    parent: locals,
                };
                let fields = item_cache();
                if let Some(condition) = condition
                    && !as_bool(
                        eval(condition, free, Some(&scope), Some(&fields), spent)?.as_ref(),
                    )?
                {
                    continue;
                }
                spent.memory += elements.len() as u64 * LIST_ELEMENT_BYTES;
                for element in elements {
                    built.push(
                        eval(element, free, Some(&scope), Some(&fields), spent)?.into_owned(),
                    );
                }
            }
            let list: Box<dyn Val> = Box::new(CelList::from(built));
            Some(Cow::Owned(list))
        }
        Node::Quantifier {
            range,
            predicate,
            exists,
        } => {
            // accu_init, the range, the result; per item the loop condition (3 nodes for
            // `exists`, 2 for `all`) and the step's operator and accumulator.
            spent.steps += 2;
            let range = eval(range, free, locals, cache, spent)?;
            let mut items = range.as_iterable()?.iter();
            while let Some(item) = items.next() {
                spent.steps += 5;
                let scope = Locals {
                    value: item,
                    parent: locals,
                };
                let fields = item_cache();
                let b =
                    as_bool(eval(predicate, free, Some(&scope), Some(&fields), spent)?.as_ref())?;
                if b == *exists {
                    return Some(boolean(b));
                }
            }
            Some(boolean(!*exists))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cel::{BUDGET, bind, json_to_cel, rewrite_variables, root_context};
    use kube::core::cel::cel::{Program, Value, budget};
    use serde_json::json;

    /// The fast path's answer and the interpreter's for `expression` with `object` bound.
    fn both(
        expression: &str,
        object: &serde_json::Value,
    ) -> (Option<Value>, Result<Value, String>) {
        let program = Program::compile(expression).expect("parses");
        let fast = Fast::compile(program.expression())
            .unwrap_or_else(|| panic!("{expression}: not recognised"));
        let object = json_to_cel(object);
        let mut ctx = root_context().new_inner_scope();
        bind(&mut ctx, "object", &object.shared);
        let quick = fast
            .run(&ctx, BUDGET)
            .map(|v| Value::try_from(v.as_ref()).expect("converts"));
        let (interpreted, _) = budget::run(BUDGET, || program.execute(&ctx));
        (quick, interpreted.map_err(|e| e.to_string()))
    }

    const SHAPES: &[&str] = &[
        "object.items.filter(c, !(has(c.resources) && has(c.resources.limits) && 'cpu' in c.resources.limits)).map(c, c.name)",
        "object.items.filter(c, !has(c.livenessProbe)).map(c, c.name)",
        "object.items.filter(c, has(c.securityContext) && c.securityContext.privileged == true).map(c, c.name)",
        "object.items.filter(c, !((has(c.securityContext) && has(c.securityContext.runAsNonRoot)) ? c.securityContext.runAsNonRoot == true : object.podNonRoot)).map(c, c.name)",
        "object.items.exists(c, has(c.tags) && c.tags.exists(t, !(t in ['a', 'b'])))",
        "object.items.all(c, c.name != 'x' || c.flag)",
        "object.items.filter(c, c.name in object.allowed)",
        "object.items.map(c, c.name)",
        "object.items + (has(object.more) ? object.more : []) + object.allowed",
        "object.items.exists(c, object.items.exists(c, c.name == 'b'))",
        "object.items.filter(c, c.flag).map(c, c.name)",
        "has(object.kind) ? object.kind in ['Job', 'CronJob'] : object.kind == null",
        "size(object.items.filter(c, c.flag).map(c, c.name)) == 0",
        "size(object.allowed) > 1 && size(object.allowed) <= 2",
        "object.items.exists(c, has(c.tags) && size(c.tags) >= 2)",
        "object.kind < 'K' || size(object.items) < 3",
        "object.items.filter(c, !has(c.image) || !c.image.matches('@sha256:[0-9a-f]{64}$')).map(c, c.name)",
        "object.items.filter(c, has(c.image) && !c.image.contains('@') && (c.image.startsWith('r') || c.image.endsWith(':latest'))).map(c, c.name)",
        "object.items.exists(c, has(c.port) && int(c.port) != 0)",
        "object.items.filter(c, [has(c.resources) ? c.resources : {}, has(c.securityContext) ? c.securityContext : {}].exists(h, has(h.limits) || (has(h.privileged) && h.privileged))).map(c, c.name)",
        "object.allowed.filter(k, k != 'b')",
        // Opaque parts (indexing, `substring`, `join`), not reached on the plain inputs.
        "object.annotations.filter(k, k.startsWith('container.') && !(object.annotations[k] == 'runtime/default' || object.annotations[k].startsWith('localhost/'))).map(k, k.substring(10))",
        "size(object.allowed) > 0 || object.allowed.join(', ') == ''",
        "object.items.exists(c, c.name == 'a') ? object.kind : object.allowed.join(', ')",
    ];

    fn good_items() -> serde_json::Value {
        json!([
            {"name": "a", "image": "registry.example.com/a:latest", "port": 80, "resources": {"limits": {"cpu": "1"}}, "livenessProbe": {},
             "securityContext": {"privileged": true, "runAsNonRoot": true}, "tags": ["a"], "flag": true},
            {"name": "b", "image": "b@sha256:0000000000000000000000000000000000000000000000000000000000000000", "port": 0,
             "resources": {"limits": {"memory": "1Gi"}}, "securityContext": {"privileged": false},
             "tags": ["a", "c"], "flag": false},
            {"name": "c", "resources": {}, "tags": [], "flag": true},
            {"name": "d", "flag": false},
        ])
    }

    #[test]
    fn the_fast_path_answers_plain_inputs_with_the_interpreters_value() {
        let object = json!({"items": good_items(), "allowed": ["a", "c"], "more": [{"name": "m"}], "podNonRoot": false,
                            "kind": "Job", "annotations": {"a": "x", "b": "container.y"}});
        for shape in SHAPES {
            let (quick, interpreted) = both(shape, &object);
            let interpreted = interpreted.unwrap_or_else(|e| panic!("{shape}: {e}"));
            assert_eq!(quick.as_ref(), Some(&interpreted), "{shape}");
        }
        // A value, not only an agreement: the containers without a CPU limit.
        let (quick, _) = both(SHAPES[0], &object);
        assert_eq!(
            quick,
            Some(Value::List(std::sync::Arc::new(vec![
                Value::String("b".to_string().into()),
                Value::String("c".to_string().into()),
                Value::String("d".to_string().into()),
            ])))
        );
    }

    #[test]
    fn the_fast_path_agrees_with_the_interpreter_or_leaves_it_the_decision_on_tricky_inputs() {
        let tricky = [
            // Missing fields, null, scalars and lists where maps are expected.
            json!({"items": [null, {"name": "a"}], "allowed": ["a"], "podNonRoot": true}),
            json!({"items": ["x", 1, {"name": "a"}], "allowed": ["a"]}),
            json!({"items": [{"resources": {"limits": {"cpu": "1"}}}, {"name": "b"}]}),
            json!({"items": [{"name": "a", "resources": {"limits": ["cpu", "memory"]}}]}),
            json!({"items": [{"name": "a", "resources": {"limits": "cpu"}}]}),
            json!({"items": [{"name": "a", "resources": "none"}]}),
            json!({"items": [{"name": "a", "securityContext": {"privileged": "true", "runAsNonRoot": 1}}]}),
            json!({"items": [{"name": 7, "tags": [1, "a", null, true], "flag": "yes"}]}),
            json!({"items": [{"name": "a", "flag": 1}, {"name": "b", "flag": true}]}),
            // The range is not a list: a map (iterated by key), a string, absent.
            json!({"items": {"name": "a", "flag": true}, "allowed": {"a": 1}}),
            json!({"items": "abc", "allowed": "abc"}),
            json!({"allowed": ["a"], "kind": 3}),
            // `in` on a map, and a list of mixed types.
            json!({"items": [{"name": "a"}, {"name": "b"}], "allowed": {"a": 1, "b": 2}}),
            json!({"items": [{"name": 1}, {"name": "b"}], "allowed": [1, "b", 2.0, null]}),
            json!({"items": [], "allowed": [], "kind": null}),
            // Non-strings under string functions, non-integers under int().
            json!({"items": [{"name": "a", "image": 5, "port": "80"}, {"name": "b", "image": "x:1", "port": 1.5}]}),
            json!({"items": [{"name": "a", "image": "x", "port": -1, "flag": true}], "kind": 7}),
            // Opaque parts reached: the interpreter decides.
            json!({"items": [{"name": "b"}], "allowed": [], "kind": "Job",
                   "annotations": {"container.x": "runtime/default", "container.y": "unconfined", "z": 1}}),
            json!({"items": [], "allowed": ["a", 1], "annotations": {"container.x": 5}}),
        ];
        let mut answered = 0;
        let mut left_to_cel = 0;
        for object in &tricky {
            for shape in SHAPES {
                match both(shape, object) {
                    (Some(quick), Ok(interpreted)) => {
                        assert_eq!(quick, interpreted, "{shape} on {object}");
                        answered += 1;
                    }
                    (Some(quick), Err(e)) => {
                        panic!(
                            "{shape} on {object}: fast path {quick:?}, the interpreter fails: {e}"
                        )
                    }
                    (None, _) => left_to_cel += 1,
                }
            }
        }
        // Both kinds of outcome occur, so both branches above were exercised.
        assert!(answered > 20, "{answered} answered");
        assert!(left_to_cel > 20, "{left_to_cel} left to the interpreter");
    }

    #[test]
    fn an_unsupported_part_leaves_the_expression_to_the_interpreter_only_when_it_is_reached() {
        let expression = "object.annotations.filter(k, k.startsWith('container.') && object.annotations[k] != 'runtime/default').map(k, k.substring(10))";
        // Not reached: no key passes `startsWith`, the fast path answers.
        let (quick, interpreted) = both(expression, &json!({"annotations": {"a": "x"}}));
        assert_eq!(quick, Some(Value::List(std::sync::Arc::new(vec![]))));
        assert_eq!(interpreted, Ok(Value::List(std::sync::Arc::new(vec![]))));
        // Reached (indexing, then `substring`): the interpreter alone answers.
        for annotations in [
            json!({"container.a": "runtime/default"}),
            json!({"container.a": "unconfined"}),
        ] {
            let (quick, interpreted) = both(expression, &json!({ "annotations": annotations }));
            assert_eq!(quick, None, "{annotations}");
            assert!(interpreted.is_ok(), "{annotations}");
        }
        // An expression that is nothing but an unsupported call is not compiled at all.
        let program = Program::compile("object.allowed.join(', ')").expect("parses");
        assert!(Fast::compile(program.expression()).is_none());
    }

    /// An inventory index of one lookup, by name.
    struct Named(Vec<(&'static str, crate::engine::cel::Shared)>);

    impl crate::engine::cel::NamedObjects for Named {
        fn named(&self, name: &str) -> Option<crate::engine::cel::Shared> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, o)| o.clone())
        }
    }

    #[test]
    fn lookup_by_name_reads_the_named_object_in_place_with_the_interpreters_answer() {
        let account = |name: &str, automount: serde_json::Value| {
            json_to_cel(&json!({"metadata": {"name": name, "labels": {"a": "b"}},
                                "automountServiceAccountToken": automount, "secrets": [{"name": "s"}]}))
            .shared
        };
        let index = Named(vec![
            ("off", account("off", json!(false))),
            ("on", account("on", json!(true))),
            ("odd", account("odd", json!("false"))),
        ]);
        let lookups: crate::engine::cel::NamedLookups = vec![(
            "serviceAccounts".to_string(),
            vec![std::sync::Arc::new(index)],
        )];
        let disables = "lookupByName('serviceAccounts', object.sa).exists(s, has(s.automountServiceAccountToken) && s.automountServiceAccountToken == false)";
        crate::engine::cel::with_named_lookups(lookups, || {
            for (sa, expected) in [
                ("off", true),
                ("on", false),
                ("odd", false),
                ("none", false),
            ] {
                let (quick, interpreted) = both(disables, &json!({ "sa": sa }));
                assert_eq!(quick, Some(Value::Bool(expected)), "{sa}");
                assert_eq!(interpreted, Ok(Value::Bool(expected)), "{sa}");
            }
            // The list itself, equal to the interpreter's converted copy.
            for sa in ["off", "none"] {
                let (quick, interpreted) = both(
                    "lookupByName('serviceAccounts', object.sa)",
                    &json!({ "sa": sa }),
                );
                assert_eq!(quick, Some(interpreted.expect("found")), "{sa}");
            }
            // A name that is not a string, a lookup the action does not have: the
            // interpreter's error.
            for (expression, object) in [
                (disables, json!({"sa": 1})),
                (
                    "lookupByName('secrets', object.sa).exists(s, true)",
                    json!({"sa": "off"}),
                ),
            ] {
                let (quick, interpreted) = both(expression, &object);
                assert_eq!(quick, None, "{expression}");
                assert!(interpreted.is_err(), "{expression}");
            }
            // The copies the interpreter makes of the object count against the budget: an
            // evaluation near it is left to the interpreter, which reports the crossed budget.
            let program = Program::compile(disables).expect("parses");
            let fast = Fast::compile(program.expression()).expect("recognised");
            let object = json_to_cel(&json!({"sa": "off"}));
            let mut ctx = root_context().new_inner_scope();
            bind(&mut ctx, "object", &object.shared);
            let (_, usage) = budget::run(BUDGET, || program.execute(&ctx));
            let tight = Limits {
                steps: u64::MAX,
                memory: usage.memory - 1,
            };
            assert!(fast.run(&ctx, tight).is_none());
            let (interpreted, usage) = budget::run(tight, || program.execute(&ctx));
            assert!(interpreted.is_err() && usage.exceeded.is_some());
            assert!(fast.run(&ctx, BUDGET).is_some());
        });
    }

    #[test]
    fn an_evaluation_near_its_budget_is_left_to_the_interpreter() {
        let program = Program::compile(SHAPES[1]).expect("parses");
        let fast = Fast::compile(program.expression()).expect("recognised");
        let object = json_to_cel(&json!({"items": good_items()}));
        let mut ctx = root_context().new_inner_scope();
        bind(&mut ctx, "object", &object.shared);
        let tight = Limits {
            steps: 20,
            memory: u64::MAX,
        };
        assert!(fast.run(&ctx, tight).is_none());
        let (interpreted, usage) = budget::run(tight, || program.execute(&ctx));
        assert!(interpreted.is_err() && usage.exceeded.is_some());
        assert!(fast.run(&ctx, BUDGET).is_some());
    }

    #[test]
    fn the_catalogs_container_checks_take_the_fast_path() {
        let actions = crate::catalog::builtin().expect("built-in catalog");
        let mut fast = Vec::new();
        let mut total = 0;
        for action in &actions {
            for v in &action.spec.check.variables {
                total += 1;
                let source = rewrite_variables(&v.expression).unwrap_or(v.expression.clone());
                let program = Program::compile(&source).expect("catalog expression parses");
                if Fast::compile(program.expression()).is_some() {
                    fast.push(format!(
                        "{}/{}",
                        action.metadata.name.as_deref().unwrap_or(""),
                        v.name
                    ));
                }
            }
        }
        for expected in [
            "container-cpu-limits/appContainers",
            "image-tag-not-latest/allContainers",
            "policy-reports-no-failing-results/count",
            "image-pinned-by-digest/offenders",
            "image-pull-policy-always/offenders",
            "pss-host-ports/offenders",
            "pss-probe-host/offenders",
            "pss-apparmor-profile/annotations",
            "pss-apparmor-profile/badAnnotations",
            "disable-service-account-token-automount/saDisables",
            "container-cpu-limits/offenders",
            "container-liveness-probe/offenders",
            "pss-disallow-privilege-escalation/offenders",
            "pss-run-as-non-root/offenders",
            "pss-baseline-capabilities/offenders",
            "read-only-root-filesystem/offenders",
        ] {
            assert!(
                fast.contains(&expected.to_string()),
                "{expected} not recognised: {fast:?}"
            );
        }
        // 64 of 91 when this was written (not `matches`, `size()`, `int()`, indexing); all 91
        // since parts the fast path does not evaluate became opaque nodes.
        assert!(
            fast.len() >= 85,
            "{} of {total} variables: {fast:?}",
            fast.len()
        );
    }
}
