//! The built-in catalog's CEL expressions, parsed ahead of time.
//!
//! cel 0.13 parses with an ANTLR-generated parser: ~200 parses of the catalog's expressions
//! were a quarter of the CPU time of a `securescore scan` of a real repository (every scan and
//! every operator start compiles the whole catalog; docs/performance.md). The parsed trees of
//! those expressions (and of the `name()` probes by which `kcel::function_exists` checks each
//! function they call) are committed in `src/catalog/cel-parsed.bin`, in the compact encoding
//! below, keyed by their exact source text; [`lookup`] decodes one in microseconds, and any
//! other text (a user's action, an edited catalog) is parsed as before.
//!
//! The file is generated from the catalog and the parser (`SECURESCORE_REGENERATE=1 cargo test
//! --lib cel_parsed`); a unit test fails when it differs from what they give now, so a tree is
//! never one the parser would not produce for its text.
//!
//! Encoding (all integers unsigned LEB128, signed ones zigzag first; strings and byte strings
//! as a length and the bytes): the file is [`MAGIC`], the number of entries, then per entry its
//! text and its tree's length and bytes, sorted by text. A tree is its id, a tag and the
//! fields of [`Expr`]'s variant in declaration order (an `Option` as 0 or 1 and the value, a
//! `Vec` as its length and the items, a `bool` as one byte, an `f64` as its 8 bytes).

use super::cel::cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedEntryExpr, IdedExpr, ListExpr, LiteralValue,
    MapEntryExpr, MapExpr, SelectExpr, StructExpr, StructFieldExpr,
};
use super::cel::cel::common::types::{CelBool, CelBytes, CelDouble, CelInt, CelString, CelUInt};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The committed trees of the built-in catalog's expressions.
const TABLE: &[u8] = include_bytes!("../catalog/cel-parsed.bin");

/// The first bytes of the file (its format's version).
const MAGIC: &[u8] = b"securescore cel-parsed 1\n";

/// Deepest tree decoded (the catalog's are about 20 deep); a deeper one is refused rather
/// than risking the stack, and its text is parsed (the unit test below fails first if the
/// catalog ever has one).
pub const MAX_DEPTH: u32 = 200;

/// The tree the parser gives for `text`, when `text` is one of the committed expressions.
pub fn lookup(text: &str) -> Option<IdedExpr> {
    static INDEX: OnceLock<HashMap<&'static str, &'static [u8]>> = OnceLock::new();
    let bytes = INDEX
        .get_or_init(|| entries(TABLE).unwrap_or_default().into_iter().collect())
        .get(text)?;
    decode(bytes)
}

/// The `(text, encoded tree)` entries of a table; None when it is not one.
fn entries(table: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut r = Reader(table.strip_prefix(MAGIC)?);
    let n = r.len()?;
    let mut out = Vec::with_capacity(n.min(table.len()));
    for _ in 0..n {
        let text = r.str()?;
        let tree = r.bytes()?;
        out.push((text, tree));
    }
    r.0.is_empty().then_some(out)
}

/// The table of `trees` (`(text, tree)`), as committed (made by the unit test below).
#[cfg(test)]
fn table(trees: &[(String, IdedExpr)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, IdedExpr)> = trees.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut out = MAGIC.to_vec();
    write_uint(&mut out, sorted.len() as u64);
    for (text, tree) in sorted {
        write_bytes(&mut out, text.as_bytes());
        write_bytes(&mut out, &encode(tree));
    }
    out
}

/// A tree's encoding.
pub fn encode(expr: &IdedExpr) -> Vec<u8> {
    let mut out = Vec::new();
    write_expr(&mut out, expr);
    out
}

/// The tree of an encoding; None when `bytes` is not exactly one.
pub fn decode(bytes: &[u8]) -> Option<IdedExpr> {
    let mut r = Reader(bytes);
    let expr = r.expr(0)?;
    r.0.is_empty().then_some(expr)
}

fn write_uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

fn write_expr(out: &mut Vec<u8>, e: &IdedExpr) {
    write_uint(out, e.id);
    match &e.expr {
        Expr::Unspecified => out.push(0),
        Expr::Call(c) => {
            out.push(1);
            write_bytes(out, c.func_name.as_bytes());
            match &c.target {
                None => out.push(0),
                Some(t) => {
                    out.push(1);
                    write_expr(out, t);
                }
            }
            write_exprs(out, &c.args);
        }
        Expr::Comprehension(c) => {
            out.push(2);
            write_expr(out, &c.iter_range);
            write_bytes(out, c.iter_var.as_bytes());
            match &c.iter_var2 {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    write_bytes(out, v.as_bytes());
                }
            }
            write_bytes(out, c.accu_var.as_bytes());
            for e in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                write_expr(out, e);
            }
        }
        Expr::Ident(name) => {
            out.push(3);
            write_bytes(out, name.as_bytes());
        }
        Expr::List(l) => {
            out.push(4);
            write_exprs(out, &l.elements);
            write_uint(out, l.optional_indices.len() as u64);
            for i in &l.optional_indices {
                write_uint(out, *i as u64);
            }
        }
        Expr::Literal(v) => {
            out.push(5);
            match v {
                LiteralValue::Boolean(b) => {
                    out.push(0);
                    write_bool(out, *b.inner());
                }
                LiteralValue::Bytes(b) => {
                    out.push(1);
                    write_bytes(out, b.inner());
                }
                LiteralValue::Double(d) => {
                    out.push(2);
                    out.extend_from_slice(&d.inner().to_bits().to_le_bytes());
                }
                LiteralValue::Int(i) => {
                    out.push(3);
                    let i = *i.inner();
                    write_uint(out, ((i << 1) ^ (i >> 63)) as u64);
                }
                LiteralValue::Null => out.push(4),
                LiteralValue::String(s) => {
                    out.push(5);
                    write_bytes(out, s.inner().as_bytes());
                }
                LiteralValue::UInt(u) => {
                    out.push(6);
                    write_uint(out, *u.inner());
                }
            }
        }
        Expr::Map(m) => {
            out.push(6);
            write_entries(out, &m.entries);
        }
        Expr::Select(s) => {
            out.push(7);
            write_expr(out, &s.operand);
            write_bytes(out, s.field.as_bytes());
            write_bool(out, s.test);
        }
        Expr::Struct(s) => {
            out.push(8);
            write_bytes(out, s.type_name.as_bytes());
            write_entries(out, &s.entries);
        }
    }
}

fn write_exprs(out: &mut Vec<u8>, exprs: &[IdedExpr]) {
    write_uint(out, exprs.len() as u64);
    for e in exprs {
        write_expr(out, e);
    }
}

fn write_entries(out: &mut Vec<u8>, entries: &[IdedEntryExpr]) {
    write_uint(out, entries.len() as u64);
    for e in entries {
        write_uint(out, e.id);
        match &e.expr {
            EntryExpr::StructField(f) => {
                out.push(0);
                write_bytes(out, f.field.as_bytes());
                write_expr(out, &f.value);
                write_bool(out, f.optional);
            }
            EntryExpr::MapEntry(m) => {
                out.push(1);
                write_expr(out, &m.key);
                write_expr(out, &m.value);
                write_bool(out, m.optional);
            }
        }
    }
}

/// Reads an encoding from the front of its slice; every read is None past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A count or length: at most the bytes left (each item takes at least one), so a damaged
    /// length cannot make a caller reserve more than the input's size.
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uint()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn expr(&mut self, depth: u32) -> Option<IdedExpr> {
        if depth > MAX_DEPTH {
            return None;
        }
        let d = depth + 1;
        let id = self.uint()?;
        let expr = match self.byte()? {
            0 => Expr::Unspecified,
            1 => Expr::Call(CallExpr {
                func_name: self.string()?,
                target: match self.bool()? {
                    false => None,
                    true => Some(Box::new(self.expr(d)?)),
                },
                args: self.exprs(d)?,
            }),
            2 => Expr::Comprehension(Box::new(ComprehensionExpr {
                iter_range: self.expr(d)?,
                iter_var: self.string()?,
                iter_var2: match self.bool()? {
                    false => None,
                    true => Some(self.string()?),
                },
                accu_var: self.string()?,
                accu_init: self.expr(d)?,
                loop_cond: self.expr(d)?,
                loop_step: self.expr(d)?,
                result: self.expr(d)?,
            })),
            3 => Expr::Ident(self.string()?),
            4 => {
                let elements = self.exprs(d)?;
                let n = self.len()?;
                let mut optional_indices = Vec::with_capacity(n);
                for _ in 0..n {
                    optional_indices.push(usize::try_from(self.uint()?).ok()?);
                }
                Expr::List(ListExpr {
                    elements,
                    optional_indices,
                })
            }
            5 => Expr::Literal(match self.byte()? {
                0 => LiteralValue::Boolean(CelBool::from(self.bool()?)),
                1 => LiteralValue::Bytes(CelBytes::from(self.bytes()?.to_vec())),
                2 => {
                    let (b, rest) = self.0.split_first_chunk::<8>()?;
                    self.0 = rest;
                    LiteralValue::Double(CelDouble::from(f64::from_bits(u64::from_le_bytes(*b))))
                }
                3 => {
                    let z = self.uint()?;
                    LiteralValue::Int(CelInt::from(((z >> 1) as i64) ^ -((z & 1) as i64)))
                }
                4 => LiteralValue::Null,
                5 => LiteralValue::String(CelString::from(self.string()?)),
                6 => LiteralValue::UInt(CelUInt::from(self.uint()?)),
                _ => return None,
            }),
            6 => Expr::Map(MapExpr {
                entries: self.entries(d)?,
            }),
            7 => Expr::Select(SelectExpr {
                operand: Box::new(self.expr(d)?),
                field: self.string()?,
                test: self.bool()?,
            }),
            8 => Expr::Struct(StructExpr {
                type_name: self.string()?,
                entries: self.entries(d)?,
            }),
            _ => return None,
        };
        Some(IdedExpr { id, expr })
    }

    fn exprs(&mut self, depth: u32) -> Option<Vec<IdedExpr>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.expr(depth)?);
        }
        Some(out)
    }

    fn entries(&mut self, depth: u32) -> Option<Vec<IdedEntryExpr>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.uint()?;
            let expr = match self.byte()? {
                0 => EntryExpr::StructField(StructFieldExpr {
                    field: self.string()?,
                    value: self.expr(depth)?,
                    optional: self.bool()?,
                }),
                1 => EntryExpr::MapEntry(MapEntryExpr {
                    key: self.expr(depth)?,
                    value: self.expr(depth)?,
                    optional: self.bool()?,
                }),
                _ => return None,
            };
            out.push(IdedEntryExpr { id, expr });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cel as kcel;
    use kcel::cel::Program;

    /// Every text the built-in catalog gives the parser: each expression as written and as
    /// rewritten to read its variables by name (`CompiledAction::compile` tries the latter
    /// first), and the probe `name()` of each function it calls (`kcel::function_exists`).
    fn catalog_texts() -> Vec<String> {
        let actions = crate::catalog::builtin().expect("the built-in catalog parses");
        let mut texts = probes(&actions);
        for a in &actions {
            let c = &a.spec.check;
            let sources = c
                .variables
                .iter()
                .map(|v| &v.expression)
                .chain(c.match_conditions.iter().map(|m| &m.expression))
                .chain(c.validations.iter().map(|v| &v.expression))
                .chain(
                    c.validations
                        .iter()
                        .filter_map(|v| v.message_expression.as_ref()),
                );
            for s in sources {
                texts.extend(kcel::rewrite_variables(s));
                texts.push(s.clone());
            }
        }
        texts
    }

    /// The probe of every function name compiling `actions` asks about.
    fn probes(actions: &[crate::api::ImprovementAction]) -> Vec<String> {
        kcel::PROBED.with(|p| p.borrow_mut().clear());
        for a in actions {
            crate::engine::CompiledAction::compile(a);
        }
        let names = kcel::PROBED.with(|p| p.take());
        assert!(names.len() > 20, "{} function names probed", names.len());
        names.iter().map(|n| format!("{n}()")).collect()
    }

    fn parsed(text: &str) -> IdedExpr {
        Program::compile(text)
            .unwrap_or_else(|e| panic!("{text:?} parses: {e}"))
            .expression()
            .clone()
    }

    #[test]
    fn the_committed_trees_are_what_the_parser_gives_the_catalog_now() {
        let trees: Vec<(String, IdedExpr)> = catalog_texts()
            .into_iter()
            .filter_map(|t| Some((t.clone(), Program::compile(&t).ok()?.expression().clone())))
            .collect();
        assert!(trees.len() > 150, "{} catalog expressions", trees.len());
        let generated = table(&trees);
        if std::env::var_os("SECURESCORE_REGENERATE").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/catalog/cel-parsed.bin");
            std::fs::write(path, &generated).expect("src/catalog is writable");
        }
        assert!(
            generated == TABLE,
            "src/catalog/cel-parsed.bin is stale (the catalog or cel's parser changed): run \
             `SECURESCORE_REGENERATE=1 cargo test --lib cel_parsed` and commit it"
        );
        // And each committed tree, decoded, is the parser's tree for its text.
        let committed = entries(TABLE).expect("the committed table reads");
        assert_eq!(committed.len(), generated_len(&trees));
        for (text, bytes) in committed {
            assert_eq!(decode(bytes).as_ref(), Some(&parsed(text)), "{text}");
            assert_eq!(lookup(text).as_ref(), Some(&parsed(text)), "{text}");
        }
    }

    fn generated_len(trees: &[(String, IdedExpr)]) -> usize {
        trees
            .iter()
            .map(|(t, _)| t)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    #[test]
    fn compiling_the_built_in_catalog_parses_nothing() {
        let actions = crate::catalog::builtin().expect("the built-in catalog parses");
        let before = kcel::parsed_on_this_thread();
        for a in &actions {
            let c = crate::engine::CompiledAction::compile(a);
            assert!(c.problem.is_none(), "{:?}", c.problem);
        }
        assert_eq!(kcel::parsed_on_this_thread(), before);
        // Whether an earlier test already probed a function or not: each probe is committed,
        // and probing parses nothing.
        let names = probes(&actions);
        for name in &names {
            kcel::probe(name.trim_end_matches("()"));
        }
        assert_eq!(kcel::parsed_on_this_thread(), before);
        assert!(!kcel::probe("noSuchFunction"));
        assert_eq!(kcel::parsed_on_this_thread(), before + 1);
        // Any other text is still parsed, and its errors reported as before.
        assert!(kcel::compile("object.spec.replicas > 1 && true", &[], &[]).is_ok());
        assert_eq!(kcel::parsed_on_this_thread(), before + 2);
        let Err(kcel::CompileError::Invalid(e)) = kcel::compile("object.(", &[], &[]) else {
            panic!("a syntax error is an error");
        };
        assert!(e.starts_with("parse error: "), "{e}");
    }

    /// Every kind of node the encoding knows, each decoded to the parser's tree.
    #[test]
    fn every_kind_of_node_survives_the_encoding() {
        for text in [
            "f(1, 2u, -3, 4.5, -0.0, 1e300, 'é\\u00e9', b'\\xff\\x00', null, true, false)",
            "has(object.metadata.labels) ? {'k': [1, 2], 3: {}} : []",
            "google.protobuf.Int64Value{value: 1}",
            "object.spec.containers.all(c, c.name.startsWith('x')) || [1].exists_one(i, i == 1)",
            "[1, 2].map(x, x > 1, x * 2).filter(y, y != 4)",
            "{'a': 1}.all(k, v, v > 0)",
            "-9223372036854775808 + 18446744073709551615u",
        ] {
            let tree = parsed(text);
            assert_eq!(decode(&encode(&tree)).as_ref(), Some(&tree), "{text}");
        }
        // What cel 0.13's parser never produces (optional entries and elements, a second
        // iteration variable, an unspecified node), built by hand.
        let leaf = |id, name: &str| IdedExpr {
            id,
            expr: Expr::Ident(name.into()),
        };
        let tree = IdedExpr {
            id: 1,
            expr: Expr::Comprehension(Box::new(ComprehensionExpr {
                iter_range: IdedExpr {
                    id: 2,
                    expr: Expr::List(ListExpr::new_with_optionals(
                        vec![leaf(3, "a"), leaf(4, "b")],
                        vec![1],
                    )),
                },
                iter_var: "k".into(),
                iter_var2: Some("v".into()),
                accu_var: "@result".into(),
                accu_init: IdedExpr {
                    id: 5,
                    expr: Expr::Map(MapExpr {
                        entries: vec![IdedEntryExpr {
                            id: 6,
                            expr: EntryExpr::MapEntry(MapEntryExpr {
                                key: leaf(7, "x"),
                                value: leaf(8, "y"),
                                optional: true,
                            }),
                        }],
                    }),
                },
                loop_cond: IdedExpr {
                    id: 9,
                    expr: Expr::Struct(StructExpr {
                        type_name: "T".into(),
                        entries: vec![IdedEntryExpr {
                            id: 10,
                            expr: EntryExpr::StructField(StructFieldExpr {
                                field: "f".into(),
                                value: leaf(11, "z"),
                                optional: true,
                            }),
                        }],
                    }),
                },
                loop_step: IdedExpr::default(),
                result: IdedExpr {
                    id: u64::MAX,
                    expr: Expr::Literal(LiteralValue::Int(CelInt::from(i64::MIN))),
                },
            })),
        };
        assert_eq!(decode(&encode(&tree)), Some(tree));
    }

    #[test]
    fn a_damaged_encoding_is_refused_not_misread() {
        let tree = parsed("object.spec.containers.all(c, has(c.name) && c.name != 'x' && 1.5 > 1)");
        let bytes = encode(&tree);
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        // An unknown tag.
        assert_eq!(decode(&[1, 9]), None);
        assert_eq!(decode(&[1, 5, 7]), None);
        // A length beyond the input.
        assert_eq!(decode(&[1, 3, 0xff, 0x7f]), None);
        // Nesting deeper than any parse: `!!!...x` as calls, refused, not a stack overflow.
        let mut deep = Vec::new();
        for _ in 0..=MAX_DEPTH + 1 {
            deep.extend_from_slice(&[1, 1, 1, b'!', 0, 1]);
        }
        deep.extend_from_slice(&[1, 3, 1, b'x']);
        assert_eq!(decode(&deep), None);
        // A table that is not one is no table: everything is parsed.
        assert_eq!(entries(b"securescore cel-parsed 0\n\0"), None);
        assert_eq!(entries(&[MAGIC, &[1u8, 1, b'x'][..]].concat()), None);
        assert_eq!(entries(&[MAGIC, &[0u8][..]].concat()), Some(Vec::new()));
    }
}
