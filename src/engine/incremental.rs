//! Incremental evaluation of one target: per-(action, object) verdicts and per-action
//! aggregates are kept, so a changed object re-judges only what it can affect, and the status
//! is rebuilt from the aggregates (no pass over every verdict).
//!
//! What a change to object X re-judges (every action, for each object listed):
//! - X itself (old and new version);
//! - every object whose owner chain names X (its pod-template de-duplication depends on X);
//! - X a Namespace: every object of that namespace (`namespaceObject`, `namespaceSelector`);
//! - X of a kind some action looks up: the objects of that action's kinds that see X (X's
//!   namespace, or everywhere for a cluster-scoped X).
//!
//! A change that can move the target's namespace scope (a Namespace while the target selects
//! namespaces by label) or a different `now` re-evaluates in full. Equivalence with
//! [`evaluate`](super::evaluate()) is tested in tests/incremental.rs.

use super::check::{CompiledAction, Surroundings, Verdict};
use super::evaluate::{
    self, ActionOutcome, Outcome, ResourceResult, TargetEvaluation, TargetInput, in_scope,
    judge_object, scope_namespaces, select_actions,
};
use super::exemptions::{self, Assessed, Declared};
use super::ownership::{chain_refers_to, top_owner};
use super::resource::{Inventory, Resource};
use super::score::Tally;
use super::status::{self, MAX_FINDINGS};
use crate::api::{
    ActionState, ExemptionState, ResolutionState, SecureScoreTarget, SecurityControl,
};
use jiff::Timestamp;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An object as a key of the books: compared, ordered and hashed by its identity
/// `(namespace, kind, name, group)` (the order findings are listed in), so that any version of
/// the object finds its entries; it holds the object for the price of a pointer (the books of
/// 100k objects × their actions would otherwise copy four strings per entry).
#[derive(Clone)]
struct Key(Arc<Resource>);

impl Key {
    fn identity(&self) -> (&str, &str, &str, &str) {
        let r = &self.0;
        (
            r.namespace.as_deref().unwrap_or(""),
            &r.kind,
            &r.name,
            &r.group,
        )
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

fn key_of(r: &Arc<Resource>) -> Key {
    Key(r.clone())
}

/// An object and the verdicts of the actions applicable to it.
type Judged = (Arc<Resource>, Vec<(usize, Verdict)>);

/// A verdict other than Compliant, and what decides it.
struct Entry {
    /// `Verdict::Error` (else `Verdict::NonCompliant`).
    error: bool,
    /// The verdict's message, shared: an action says the same few things of many objects.
    message: Arc<str>,
    /// The declared resolution (None: unresolved).
    state: Option<ResolutionState>,
    /// The exemption declaring it (None: the action's own resolution, or none).
    exemption: Option<u32>,
}

/// One judged action's verdicts and their aggregates. Compliant objects, most of them, are
/// kept as keys only.
#[derive(Default)]
struct ActionBook {
    compliant: HashSet<Key>,
    failing: HashMap<Key, Entry>,
    tally: Tally,
    /// Non-compliant keys a finding is listed for (unresolved or planned), sorted.
    findings: BTreeSet<Key>,
}

/// A target's evaluation kept up to date object by object.
pub struct Incremental {
    target: SecureScoreTarget,
    actions: Vec<Arc<CompiledAction>>,
    inventory: Inventory,
    now: Timestamp,
    wide_scope_allowed: bool,
    /// The last full evaluation: actions that are not judged (Unknown) and the outcome.
    base: TargetEvaluation,
    judged: Vec<Arc<CompiledAction>>,
    books: Vec<ActionBook>,
    /// Objects a pod-template action applied to, per action (by identity key).
    applicable_tops: Vec<HashSet<Key>>,
    assessed: Vec<Assessed>,
    covered: Vec<u64>,
    namespaces: BTreeSet<String>,
    in_scope: u64,
    /// The full evaluation path is needed (the scope or the unknown actions may move).
    simple: bool,
    /// SecurityControls, for a target in the SecurityControls model.
    controls: Vec<Arc<SecurityControl>>,
    /// How often a change re-judged every object (see [`Incremental::fallbacks`]).
    fallbacks: u64,
    /// The failing verdicts' messages, each kept once (see [`Entry::message`]).
    messages: HashSet<Arc<str>>,
}

/// Messages kept before the ones no verdict holds any more are dropped.
const MESSAGES_KEPT: usize = 1 << 16;

impl Entry {
    fn verdict(&self) -> Verdict {
        let message = self.message.to_string();
        if self.error {
            Verdict::Error { message }
        } else {
            Verdict::NonCompliant { message }
        }
    }

    /// The verdict as far as a control's health reads it (not compliant), without copying
    /// the message.
    fn failing(&self) -> &'static Verdict {
        static FAILING: Verdict = Verdict::NonCompliant {
            message: String::new(),
        };
        &FAILING
    }
}

// `Key` hashes and orders by a Resource's identity fields, which never change; the lazily
// converted CEL value a Resource caches (its interior mutability) is not part of that.
#[allow(clippy::mutable_key_type)]
impl Incremental {
    /// Evaluate in full and keep the verdicts.
    pub fn new(
        target: SecureScoreTarget,
        actions: Vec<Arc<CompiledAction>>,
        inventory: Inventory,
        now: Timestamp,
        wide_scope_allowed: bool,
    ) -> Incremental {
        // The base keeps verdicts and Unknown actions; the controls score from the books.
        let base = evaluate::evaluate(&TargetInput {
            target: &target,
            actions: &actions,
            inventory: &inventory,
            now,
            previous: None,
            wide_scope_allowed,
        });
        let mut inc = Incremental {
            target,
            actions,
            inventory,
            now,
            wide_scope_allowed,
            base,
            judged: Vec::new(),
            books: Vec::new(),
            applicable_tops: Vec::new(),
            assessed: Vec::new(),
            covered: Vec::new(),
            namespaces: BTreeSet::new(),
            in_scope: 0,
            simple: true,
            controls: Vec::new(),
            fallbacks: 0,
            messages: HashSet::new(),
        };
        inc.rebuild_books();
        inc
    }

    /// The SecurityControls that score the target when it uses the SecurityControls model
    /// (verdicts do not depend on them: nothing is re-judged).
    pub fn with_controls(mut self, controls: Vec<Arc<SecurityControl>>) -> Incremental {
        self.set_controls(controls);
        self
    }

    /// Replace the SecurityControls (see [`Incremental::with_controls`]).
    pub fn set_controls(&mut self, controls: Vec<Arc<SecurityControl>>) {
        self.controls = controls;
    }

    /// How many changes re-judged every object since this state was built: one that may move
    /// the namespace scope or a product's detection, or with an action over its budget.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Re-derive the books from the last full evaluation's per-action results.
    fn rebuild_books(&mut self) {
        let (selected, _) = select_actions(&self.target, &self.actions);
        self.simple = matches!(self.base.outcome, Outcome::Evaluated | Outcome::Degraded);
        self.judged = self
            .base
            .actions
            .iter()
            .filter(|o| o.state != ActionState::Unknown)
            .map(|o| o.action.clone())
            .collect();
        self.judged.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name: HashMap<&str, &CompiledAction> = selected
            .iter()
            .map(|a| (a.name.as_str(), a.as_ref()))
            .collect();
        self.assessed = self
            .target
            .spec
            .exemptions
            .iter()
            .map(|e| exemptions::assess(e, by_name.get(e.action.as_str()).copied(), self.now))
            .collect();
        self.covered = vec![0; self.assessed.len()];
        self.namespaces = scope_namespaces(&self.target, &self.inventory);
        self.books = (0..self.judged.len())
            .map(|_| ActionBook::default())
            .collect();
        self.applicable_tops = vec![HashSet::new(); self.judged.len()];
        self.messages.clear();
        // The rows move into the books: the base keeps counts only (no second copy).
        let mut outcomes: HashMap<String, Vec<ResourceResult>> = HashMap::new();
        for o in &mut self.base.actions {
            outcomes.insert(o.action.name.clone(), std::mem::take(&mut o.results));
        }
        for i in 0..self.judged.len() {
            let results = outcomes.remove(&self.judged[i].name).unwrap_or_default();
            for r in results {
                self.add(i, r.resource, r.verdict);
            }
        }
        let cluster = self.target.spec.scope.cluster_resources;
        self.in_scope = self
            .inventory
            .iter()
            .filter(|r| in_scope(&self.namespaces, cluster, r))
            .count() as u64;
        // Tops where a pod-template action applied: objects with a verdict and no owner.
        for i in 0..self.judged.len() {
            if !self.judged[i].spec.check.pod_spec {
                continue;
            }
            let book = &self.books[i];
            let tops: Vec<Key> = book
                .compliant
                .iter()
                .chain(book.failing.keys())
                .filter(|k| Arc::ptr_eq(top_owner(&k.0, &self.inventory), &k.0))
                .cloned()
                .collect();
            self.applicable_tops[i].extend(tops);
        }
    }

    fn add(&mut self, i: usize, resource: Arc<Resource>, verdict: Verdict) {
        let key = Key(resource);
        let (error, message) = match &verdict {
            Verdict::Compliant => {
                let book = &mut self.books[i];
                book.tally.add(&verdict, None);
                let fresh = book.compliant.insert(key);
                // Two objects with one identity: keep the counts of both, as a full evaluation
                // does.
                debug_assert!(fresh, "duplicate identity");
                return;
            }
            Verdict::Error { message } => (true, message.as_str()),
            Verdict::NonCompliant { message } => (false, message.as_str()),
        };
        let action = self.judged[i].clone();
        let mut exemption = None;
        let state =
            exemptions::decide(&action, &key.0, &self.assessed, self.now).map(|(state, who)| {
                if let Declared::Exemption(e) = who {
                    self.covered[e] += 1;
                    exemption = Some(e as u32);
                }
                state
            });
        self.books[i].tally.add(&verdict, state);
        let message = self.share(message);
        let book = &mut self.books[i];
        if matches!(state, None | Some(ResolutionState::Planned)) {
            book.findings.insert(key.clone());
        }
        let entry = Entry {
            error,
            message,
            state,
            exemption,
        };
        let old = book.failing.insert(key, entry);
        debug_assert!(old.is_none(), "duplicate identity");
    }

    /// `message`, as the one copy every verdict saying it holds.
    fn share(&mut self, message: &str) -> Arc<str> {
        if let Some(kept) = self.messages.get(message) {
            return kept.clone();
        }
        if self.messages.len() >= MESSAGES_KEPT {
            self.messages.retain(|m| Arc::strong_count(m) > 1);
        }
        let shared: Arc<str> = message.into();
        self.messages.insert(shared.clone());
        shared
    }

    fn remove_entry(&mut self, i: usize, key: &Key) {
        let book = &mut self.books[i];
        if book.compliant.remove(key) {
            book.tally.remove(&Verdict::Compliant, None);
        } else if let Some(e) = book.failing.remove(key) {
            book.tally.remove(&e.verdict(), e.state);
            book.findings.remove(key);
            if let Some(x) = e.exemption {
                self.covered[x as usize] -= 1;
            }
        } else {
            return;
        }
        self.applicable_tops[i].remove(key);
    }

    /// Add or replace an object, then re-judge what it affects.
    pub fn upsert(&mut self, resource: Arc<Resource>) {
        let old = self.inventory.upsert(resource.clone());
        self.changed(&resource, old.as_ref());
    }

    /// Remove an object, then re-judge what it affected.
    pub fn remove(&mut self, group: &str, kind: &str, namespace: Option<&str>, name: &str) {
        if let Some(old) = self.inventory.remove(group, kind, namespace, name) {
            self.changed(&old, Some(&old));
        }
    }

    fn needs_full(&self, changed: &Resource) -> bool {
        if !self.simple
            || super::products::may_change_detection(
                &self.actions,
                &self.inventory,
                &changed.group,
                &changed.kind,
            )
        {
            return true;
        }
        let is_namespace = changed.kind == "Namespace" && changed.group.is_empty();
        is_namespace
            && self
                .target
                .spec
                .scope
                .namespaces
                .as_ref()
                .is_some_and(|n| n.selector.is_some())
    }

    fn full(&mut self) {
        self.fallbacks += 1;
        self.base = evaluate::evaluate_with_controls(
            &TargetInput {
                target: &self.target,
                actions: &self.actions,
                inventory: &self.inventory,
                now: self.now,
                previous: None,
                wide_scope_allowed: self.wide_scope_allowed,
            },
            &self.controls,
        );
        self.rebuild_books();
    }

    fn changed(&mut self, now: &Arc<Resource>, old: Option<&Arc<Resource>>) {
        if self.needs_full(now) {
            self.full();
            return;
        }
        let cluster = self.target.spec.scope.cluster_resources;
        let affected = self.affected(now);
        let keys: BTreeSet<Key> = affected.iter().map(key_of).collect();
        let mut removed_keys = keys.clone();
        removed_keys.insert(key_of(now));
        if let Some(o) = old {
            removed_keys.insert(key_of(o));
        }
        // Forget every verdict of the affected objects (a task's one verdict is on the target,
        // which no object change affects, even an object with the target's identity).
        for key in &removed_keys {
            for i in 0..self.judged.len() {
                if !self.judged[i].spec.check.is_task() {
                    self.remove_entry(i, key);
                }
            }
        }
        if let Some(o) = old
            && in_scope(&self.namespaces, cluster, o)
        {
            self.in_scope -= 1;
        }
        if self
            .inventory
            .find(&now.group, &now.kind, now.namespace.as_deref(), &now.name)
            .is_some()
            && in_scope(&self.namespaces, cluster, now)
        {
            self.in_scope += 1;
        }
        // Re-judge them as a full evaluation would: tops first, then the owned ones.
        let judged: Vec<&Arc<CompiledAction>> = self.judged.iter().collect();
        let mut kinds: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, a) in judged.iter().enumerate() {
            for (g, k) in &a.kinds {
                kinds.entry((g.as_str(), k.as_str())).or_default().push(i);
            }
        }
        let surroundings = Surroundings {
            inventory: &self.inventory,
            cluster_visible: cluster,
        };
        let present: Vec<Arc<Resource>> = affected
            .into_iter()
            .filter(|r| in_scope(&self.namespaces, cluster, r))
            .collect();
        let mut tops = Vec::new();
        let mut owned = Vec::new();
        for r in present {
            let top = top_owner(&r, &self.inventory).clone();
            if Arc::ptr_eq(&top, &r) {
                tops.push(r);
            } else {
                owned.push((r, top));
            }
        }
        let mut results: Vec<Judged> = Vec::new();
        for r in tops {
            let v = judge_object(&r, &kinds, &judged, &surroundings, |_| false);
            for (i, _) in &v {
                if judged[*i].spec.check.pod_spec {
                    self.applicable_tops[*i].insert(key_of(&r));
                }
            }
            results.push((r, v));
        }
        for (r, top) in owned {
            let top_key = key_of(&top);
            let tops = &self.applicable_tops;
            let skip = |i: usize| judged[i].spec.check.pod_spec && tops[i].contains(&top_key);
            let v = judge_object(&r, &kinds, &judged, &surroundings, skip);
            results.push((r, v));
        }
        for (r, verdicts) in results {
            for (i, verdict) in verdicts {
                self.add(i, r.clone(), verdict);
            }
        }
        if self.over_budget() {
            self.full();
        }
    }

    /// Whether a judged action has since crossed its evaluation budget repeatedly (here, or in
    /// another target's evaluation: actions are shared). The full evaluation makes it Unknown
    /// (`LimitExceeded`) and no longer judges it; the kept verdicts cannot say that.
    fn over_budget(&self) -> bool {
        self.judged.iter().any(|a| a.limit_exceeded().is_some())
    }

    /// Objects (present in the inventory) a change to `x` can affect, `x` included.
    fn affected(&self, x: &Resource) -> Vec<Arc<Resource>> {
        let inv = &self.inventory;
        let mut out: Vec<Arc<Resource>> = Vec::new();
        let mut seen: HashSet<Key> = HashSet::new();
        let mut push = |r: &Arc<Resource>, out: &mut Vec<Arc<Resource>>| {
            if seen.insert(key_of(r)) {
                out.push(r.clone());
            }
        };
        if let Some(r) = inv.find(&x.group, &x.kind, x.namespace.as_deref(), &x.name) {
            push(r, &mut out);
        }
        let is_namespace = x.kind == "Namespace" && x.group.is_empty();
        // Objects whose owner chain names x, and (for a Namespace) everything in it.
        if let Some(ns) = x
            .namespace
            .as_deref()
            .or(is_namespace.then_some(x.name.as_str()))
        {
            for (g, k, _) in super::check::POD_TEMPLATE_KINDS {
                for r in inv.of_kind_in(g, k, Some(ns)) {
                    if chain_refers_to(r, x, inv) {
                        push(r, &mut out);
                    }
                }
            }
        }
        if is_namespace {
            for r in inv
                .iter()
                .filter(|r| r.namespace.as_deref() == Some(&x.name))
            {
                push(r, &mut out);
            }
        }
        // Lookups that read x's kind.
        for a in &self.judged {
            if !a
                .spec
                .check
                .lookups
                .iter()
                .any(|l| l.api_group == x.group && l.kind == x.kind)
            {
                continue;
            }
            for (g, k) in &a.kinds {
                let seeing: Vec<&Arc<Resource>> = match x.namespace.as_deref() {
                    Some(ns) if g.is_empty() && k == "Namespace" => {
                        inv.namespace(ns).into_iter().collect()
                    }
                    Some(ns) => inv.of_kind_in(g, k, Some(ns)).iter().collect(),
                    None => inv.of_kind(g, k).iter().collect(),
                };
                for r in seeing {
                    push(r, &mut out);
                }
            }
        }
        out
    }

    /// The target's evaluation from the aggregates.
    pub fn evaluation(&self) -> TargetEvaluation {
        self.evaluation_at(None, self.now)
    }

    /// The target's evaluation from the aggregates, its status built against the persisted
    /// `previous` one (history, changes, condition transition times) at `now`. Verdicts and
    /// exemption states stay those of the time the state was built or last evaluated in full
    /// (the operator evaluates in full on every interval and when an exemption expires).
    pub fn evaluation_at(
        &self,
        previous: Option<&crate::api::SecureScoreTargetStatus>,
        now: Timestamp,
    ) -> TargetEvaluation {
        if !self.simple || self.over_budget() {
            return evaluate::evaluate_with_controls(
                &TargetInput {
                    target: &self.target,
                    actions: &self.actions,
                    inventory: &self.inventory,
                    now,
                    previous,
                    wide_scope_allowed: self.wide_scope_allowed,
                },
                &self.controls,
            );
        }
        let mut outcomes = Vec::new();
        for o in &self.base.actions {
            if o.state == ActionState::Unknown {
                outcomes.push(o.clone());
            }
        }
        for (i, action) in self.judged.iter().enumerate() {
            outcomes.push(self.outcome(action, &self.books[i]));
        }
        let mut assessed = self.assessed.clone();
        for (a, covered) in assessed.iter_mut().zip(&self.covered) {
            a.covered = *covered;
            if a.state == ExemptionState::Active && a.covered == 0 {
                a.state = ExemptionState::Unused;
                a.message = Some("covers no non-compliant resource".into());
            }
        }
        let excluded = select_actions(&self.target, &self.actions).1;
        // The controls judge resources across actions: they read every kept verdict, in place.
        let book_of: HashMap<&str, &ActionBook> = self
            .judged
            .iter()
            .zip(&self.books)
            .map(|(a, b)| (a.name.as_str(), b))
            .collect();
        let control_scores =
            super::controls::score(self.target.spec.model, &self.controls, &outcomes, |o| {
                book_of
                    .get(o.action.name.as_str())
                    .into_iter()
                    .flat_map(|b| {
                        let compliant = b
                            .compliant
                            .iter()
                            .map(|k| (k.identity(), super::controls::Health::Compliant));
                        let failing = b.failing.iter().map(|(k, e)| {
                            (k.identity(), super::controls::health(e.failing(), e.state))
                        });
                        compliant.chain(failing)
                    })
            });
        status::build(
            &TargetInput {
                target: &self.target,
                actions: &self.actions,
                inventory: &self.inventory,
                now,
                previous,
                wide_scope_allowed: self.wide_scope_allowed,
            },
            self.base.outcome,
            outcomes,
            assessed,
            excluded,
            self.in_scope,
            control_scores,
        )
    }

    fn outcome(&self, action: &Arc<CompiledAction>, book: &ActionBook) -> ActionOutcome {
        let mut outcome = super::evaluate::summarise(action, &book.tally, !action.spec.preview);
        // A task's facts depend on the target and the time of the full evaluation only.
        outcome.attestation = self
            .base
            .actions
            .iter()
            .find(|o| o.action.name == action.name)
            .and_then(|o| o.attestation.clone());
        // The status lists the first findings only: hand it just those.
        outcome.results = book
            .findings
            .iter()
            .take(MAX_FINDINGS)
            .filter_map(|k| Some((k, book.failing.get(k)?)))
            .map(|(k, e)| ResourceResult {
                resource: k.0.clone(),
                verdict: e.verdict(),
                resolution: e.state.map(|state| {
                    let exemption = e
                        .exemption
                        .map(|x| self.assessed[x as usize].exemption.name.clone());
                    (state, exemption)
                }),
            })
            .collect();
        outcome
    }
}
