//! Prometheus metrics (prefix `securescore_`). Per-target series are computed at scrape time
//! from the latest evaluations, so a deleted target or action leaves no stale series; only the
//! leader exports them (standbys export their own process metrics), so nothing double-counts.

use crate::engine::TargetEvaluation;
use crate::engine::score::UNIT;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// How many per-action series to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActionSeries {
    /// Every selected action of every target.
    All,
    /// Only actions with points to gain.
    Nonzero,
    /// No per-action series.
    None,
}

/// Label values of `securescore_evaluations_total{result}`.
pub const EVALUATION_RESULTS: [&str; 4] = ["success", "degraded", "suspended", "refused"];

/// Label values of `securescore_full_evaluations_total{reason}`: why a target was evaluated
/// in full rather than from its kept verdicts and the changes since (see
/// `controller::targets`).
pub const FULL_EVALUATION_REASONS: [&str; 10] = [
    "start", "interval", "expiry", "target", "actions", "kinds", "scope", "relist", "backlog",
    "fallback",
];

/// The `{kind, reason}` pairs `securescore_reconcile_errors_total` can carry (started at zero,
/// so that `increase()` sees the very first error).
pub const RECONCILE_ERRORS: [(&str, &str); 8] = [
    ("SecureScoreTarget", "ApiError"),
    ("SecureScoreTarget", "Conflict"),
    ("SecureScoreTarget", "EvaluationPanicked"),
    ("ImprovementAction", "ApiError"),
    ("ImprovementAction", "Conflict"),
    ("SecurityControl", "ApiError"),
    ("SecurityControl", "Conflict"),
    ("Lease", "ApiError"),
];

/// Label values of `securescore_action_resources{result}`: they partition the applicable
/// resources of an action.
pub const RESOURCE_RESULTS: [&str; 4] = ["compliant", "noncompliant", "error", "exempt"];

/// Process-level metrics (kept between scrapes; exported by every replica).
pub struct Metrics {
    registry: Registry,
    evaluations: IntCounterVec,
    full_evaluations: IntCounterVec,
    errors: IntCounterVec,
    duration: Histogram,
    leader: prometheus::IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let evaluations = IntCounterVec::new(
            Opts::new(
                "securescore_evaluations_total",
                "Target evaluations by result (success, degraded, suspended, refused).",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let full_evaluations = IntCounterVec::new(
            Opts::new(
                "securescore_full_evaluations_total",
                "Target evaluations that re-judged every object, by reason (start, interval, expiry, target, actions, kinds, scope, relist, backlog, fallback); the others re-judged only what changed.",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "securescore_reconcile_errors_total",
                "Failed reconciles by object kind and a fixed reason (ApiError, Conflict, EvaluationPanicked).",
            ),
            &["kind", "reason"],
        )
        .expect("static metric definition");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "securescore_evaluation_duration_seconds",
                "Time to evaluate one target (the engine only, not the status write).",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("static metric definition");
        let build = IntGaugeVec::new(
            Opts::new(
                "securescore_build_info",
                "Always 1; the labels say which securescore version runs.",
            ),
            &["version"],
        )
        .expect("static metric definition");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let leader = prometheus::IntGauge::with_opts(Opts::new(
            "securescore_leader",
            "1 when this replica holds the leader lease (only the leader evaluates and exports per-target series).",
        ))
        .expect("static metric definition");
        for c in [
            Box::new(evaluations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(full_evaluations.clone()),
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(build),
            Box::new(leader.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        for r in EVALUATION_RESULTS {
            evaluations.with_label_values(&[r]);
        }
        for r in FULL_EVALUATION_REASONS {
            full_evaluations.with_label_values(&[r]);
        }
        for (kind, reason) in RECONCILE_ERRORS {
            errors.with_label_values(&[kind, reason]);
        }
        Metrics {
            registry,
            evaluations,
            full_evaluations,
            errors,
            duration,
            leader,
        }
    }

    /// One evaluation of a target; `result` is one of [`EVALUATION_RESULTS`].
    pub fn evaluation(&self, result: &str, seconds: f64) {
        self.evaluations.with_label_values(&[result]).inc();
        self.duration.observe(seconds);
    }

    /// One full evaluation of a target; `reason` is one of [`FULL_EVALUATION_REASONS`].
    pub fn full_evaluation(&self, reason: &str) {
        self.full_evaluations.with_label_values(&[reason]).inc();
    }

    /// One failed reconcile; `kind` and `reason` come from [`RECONCILE_ERRORS`] (fixed strings,
    /// never an error message).
    pub fn reconcile_error(&self, kind: &str, reason: &str) {
        self.errors.with_label_values(&[kind, reason]).inc();
    }

    /// The text exposition: process metrics, plus per-target series when this replica leads.
    /// A standby exports no per-target series at all (its evaluations may be stale, and two
    /// replicas exporting the same target would double-count in sums).
    pub fn render(&self, leader: bool, targets: &[TargetSeries], actions: ActionSeries) -> String {
        self.leader.set(i64::from(leader));
        let mut families = self.registry.gather();
        if leader {
            families.extend(target_families(targets, actions));
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `(namespace, name)` of a target.
pub type TargetKey = (String, String);

/// The latest evaluation of a target (Evaluated or Degraded), for metrics and cross-target
/// totals. It holds counts and sample findings only, not one row per resource.
#[derive(Debug, Clone)]
pub struct Latest {
    pub evaluation: std::sync::Arc<TargetEvaluation>,
    pub goal: Option<u32>,
    pub interval: std::time::Duration,
    pub evaluated_at: jiff::Timestamp,
}

/// What `/metrics` reads: the process metrics, this replica's role and every target's latest
/// evaluation. The controller writes it; the HTTP server only reads it.
pub struct Scoreboard {
    pub metrics: Metrics,
    pub action_series: ActionSeries,
    leader: std::sync::atomic::AtomicBool,
    latest: std::sync::RwLock<std::collections::HashMap<TargetKey, Latest>>,
}

impl Scoreboard {
    pub fn new(leader: bool, action_series: ActionSeries) -> Scoreboard {
        Scoreboard {
            metrics: Metrics::new(),
            action_series,
            leader: leader.into(),
            latest: Default::default(),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader
            .store(leader, std::sync::atomic::Ordering::SeqCst);
    }

    /// Keep a target's latest evaluation (replacing the previous one).
    pub fn record(&self, key: TargetKey, latest: Latest) {
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, latest);
    }

    /// Forget a target (deleted, suspended or refused): its series disappear.
    pub fn forget(&self, key: &TargetKey) {
        self.latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// A copy of every target's latest evaluation (cheap: the evaluations are shared).
    pub fn latest(&self) -> std::collections::HashMap<TargetKey, Latest> {
        self.latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The exposition: per-target series only while this replica leads.
    pub fn render(&self) -> String {
        let leader = self.is_leader();
        let latest = if leader {
            self.latest()
        } else {
            Default::default()
        };
        let series: Vec<TargetSeries> = latest
            .iter()
            .map(|((ns, name), l)| TargetSeries {
                namespace: ns,
                name,
                evaluation: &l.evaluation,
                goal: l.goal,
                interval_seconds: l.interval.as_secs_f64(),
                evaluated_at: l.evaluated_at,
            })
            .collect();
        self.metrics.render(leader, &series, self.action_series)
    }
}

/// One target's latest evaluation and the spec values its series carry.
pub struct TargetSeries<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub evaluation: &'a TargetEvaluation,
    /// `spec.goal` (a percentage).
    pub goal: Option<u32>,
    pub interval_seconds: f64,
    /// When the evaluation ran (Evaluated or Degraded; suspended and refused targets have no
    /// per-target series).
    pub evaluated_at: jiff::Timestamp,
}

/// Ten-thousandths of a point → points, full precision.
fn points(units: u64) -> f64 {
    units as f64 / UNIT as f64
}

/// How many applicable resources of one action fall in each of [`RESOURCE_RESULTS`]: the
/// engine's partition (kept by its tally), never re-derived from per-resource rows, which an
/// evaluation kept for scraping no longer holds.
pub fn resource_results(o: &crate::engine::evaluate::ActionOutcome) -> [u64; 4] {
    o.resources.as_array()
}

/// The per-target families (also usable by `securescore scan --format prometheus`).
pub fn target_families(
    targets: &[TargetSeries],
    actions: ActionSeries,
) -> Vec<prometheus::proto::MetricFamily> {
    let registry = Registry::new();
    let t = ["namespace", "target"];
    let gauge = |name: &str, help: &str, labels: &[&str]| {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
        registry
            .register(Box::new(g.clone()))
            .expect("metric names are unique");
        g
    };
    let score = gauge(
        "securescore_score",
        "Points achieved (full precision; status shows 2 decimals).",
        &t,
    );
    let max = gauge(
        "securescore_max_score",
        "Points available from the applicable (and Unknown) actions.",
        &t,
    );
    let ratio = gauge(
        "securescore_ratio",
        "Score divided by max score (0-1); absent when nothing is applicable.",
        &t,
    );
    let goal = gauge(
        "securescore_goal_ratio",
        "The target's goal as a ratio (0-1); absent when no goal is set.",
        &t,
    );
    let projected = gauge(
        "securescore_projected_score",
        "Score plus the points of Planned fixes.",
        &t,
    );
    let achievable = gauge(
        "securescore_achievable_score",
        "Max score minus the points forgone by RiskAccepted.",
        &t,
    );
    let resources = gauge(
        "securescore_evaluated_resources",
        "Objects in scope that the last evaluation read.",
        &t,
    );
    let interval = gauge(
        "securescore_interval_seconds",
        "The target's evaluation interval (spec.interval).",
        &t,
    );
    let last = gauge(
        "securescore_last_evaluation_timestamp_seconds",
        "When the target was last evaluated (Unix time).",
        &t,
    );
    let degraded = gauge(
        "securescore_degraded",
        "1 when the last evaluation lacked some kind's inventory (Degraded=True), else 0.",
        &t,
    );
    let c_labels = ["namespace", "target", "category"];
    let cat_score = gauge(
        "securescore_category_score",
        "Points achieved per category.",
        &c_labels,
    );
    let cat_max = gauge(
        "securescore_category_max_score",
        "Points available per category.",
        &c_labels,
    );
    let a_labels = ["namespace", "target", "action", "category"];
    let a_score = gauge(
        "securescore_action_score",
        "Points achieved per action (preview actions included; they never count in the target score).",
        &a_labels,
    );
    let a_max = gauge(
        "securescore_action_max_score",
        "Points available per action (0 when NotApplicable).",
        &a_labels,
    );
    let a_res = gauge(
        "securescore_action_resources",
        "Applicable resources per action by result (compliant, noncompliant, error, exempt).",
        &["namespace", "target", "action", "category", "result"],
    );
    let a_state = gauge(
        "securescore_action_state",
        "1 for the action's current state (only the current state is exported).",
        &["namespace", "target", "action", "category", "state"],
    );
    let fw_labels = ["namespace", "target", "framework", "result"];
    let fw_controls = gauge(
        "securescore_framework_controls",
        "Framework controls by result (passed, failed) over the controls an applicable action covers.",
        &fw_labels,
    );
    let fw_ratio = gauge(
        "securescore_framework_ratio",
        "Passed controls divided by counted controls per framework (0-1); absent when none is counted.",
        &fw_labels[..3],
    );
    let c_labels = ["namespace", "target", "control"];
    let c_score = gauge(
        "securescore_control_score",
        "Points achieved per security control (targets in the SecurityControls model only).",
        &c_labels,
    );
    let c_max = gauge(
        "securescore_control_max_score",
        "Points available per security control (0 when NotApplicable; SecurityControls model only).",
        &c_labels,
    );
    let exp = gauge(
        "securescore_exemption_expiry_timestamp_seconds",
        "When a declared exemption expires (Unix time); invalid and open-ended exemptions have none.",
        &["namespace", "target", "exemption", "action", "resolution"],
    );
    let due = gauge(
        "securescore_attestation_due_timestamp_seconds",
        "When a task's latest attestation goes stale (Unix time; also once stale); tasks never attested have none.",
        &["namespace", "target", "action"],
    );
    for s in targets {
        let e = s.evaluation;
        let l = [s.namespace, s.name];
        score.with_label_values(&l).set(points(e.points.score()));
        max.with_label_values(&l).set(points(e.points.max()));
        if let Some(r) = e.ratio() {
            ratio.with_label_values(&l).set(r);
        }
        if let Some(g) = s.goal {
            goal.with_label_values(&l).set(f64::from(g) / 100.0);
        }
        projected
            .with_label_values(&l)
            .set(points(e.points.score() + e.points.planned));
        achievable
            .with_label_values(&l)
            .set(points(e.points.max() - e.points.accepted));
        resources
            .with_label_values(&l)
            .set(e.status.evaluated_resources as f64);
        interval.with_label_values(&l).set(s.interval_seconds);
        last.with_label_values(&l)
            .set(s.evaluated_at.as_millisecond() as f64 / 1000.0);
        degraded.with_label_values(&l).set(f64::from(u8::from(
            e.outcome == crate::engine::Outcome::Degraded,
        )));
        let mut cats: std::collections::BTreeMap<&str, crate::engine::score::Points> =
            Default::default();
        // In the SecurityControls model the categories (sums of the actions' own points) do
        // not add up to the score: the status has none, and neither have the metrics.
        for o in e
            .actions
            .iter()
            .filter(|o| o.scored && e.controls.is_none())
        {
            cats.entry(o.action.spec.category.as_str())
                .or_default()
                .add(&o.points);
        }
        for (c, p) in cats {
            let cl = [s.namespace, s.name, c];
            cat_score.with_label_values(&cl).set(points(p.score()));
            cat_max.with_label_values(&cl).set(points(p.max()));
        }
        for o in &e.actions {
            let export = match actions {
                ActionSeries::All => true,
                ActionSeries::Nonzero => o.points.to_address() > 0,
                ActionSeries::None => false,
            };
            if !export {
                continue;
            }
            let al = [
                s.namespace,
                s.name,
                o.action.name.as_str(),
                o.action.spec.category.as_str(),
            ];
            a_score.with_label_values(&al).set(points(o.points.score()));
            a_max.with_label_values(&al).set(points(o.points.max()));
            for (result, n) in RESOURCE_RESULTS.iter().zip(resource_results(o)) {
                a_res
                    .with_label_values(&[al[0], al[1], al[2], al[3], result])
                    .set(n as f64);
            }
            a_state
                .with_label_values(&[al[0], al[1], al[2], al[3], o.state.as_str()])
                .set(1.0);
        }
        for f in &e.status.frameworks {
            let fl = [s.namespace, s.name, f.framework.as_str()];
            for (result, n) in [("passed", f.passed), ("failed", f.failed)] {
                fw_controls
                    .with_label_values(&[fl[0], fl[1], fl[2], result])
                    .set(n as f64);
            }
            if f.total > 0 {
                fw_ratio
                    .with_label_values(&fl)
                    .set(f.passed as f64 / f.total as f64);
            }
        }
        for c in e.controls.iter().flat_map(|c| &c.controls) {
            let cl = [s.namespace, s.name, c.name.as_str()];
            c_score.with_label_values(&cl).set(points(c.points.score()));
            c_max.with_label_values(&cl).set(points(c.points.max()));
        }
        for x in &e.exemptions {
            if x.state == crate::api::ExemptionState::Invalid {
                continue;
            }
            if let Some(t) = x
                .exemption
                .expires_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            {
                exp.with_label_values(&[
                    s.namespace,
                    s.name,
                    x.exemption.name.as_str(),
                    x.exemption.action.as_str(),
                    x.exemption.resolution.as_str(),
                ])
                .set(t.as_second() as f64);
            }
        }
        for o in &e.actions {
            if let Some(t) = o.attestation.as_ref().and_then(|f| f.due_at) {
                due.with_label_values(&[s.namespace, s.name, o.action.name.as_str()])
                    .set(t.as_second() as f64);
            }
        }
    }
    let mut families = registry.gather();
    // Label values are user-chosen (target, action, control, framework and exemption names).
    // The text format escapes only `\`, `"` and newline and has no escape for the other control
    // characters, which would reach a scraper and any terminal showing the scrape raw (ESC
    // recolours, CR overwrites a line, NUL cuts a C string): they are shown escaped, as in the
    // scan table, with a backslash doubled so that two different names stay two series.
    for family in &mut families {
        for metric in family.mut_metric() {
            for label in metric.mut_label() {
                if let std::borrow::Cow::Owned(shown) = crate::text::label_value(label.value()) {
                    label.set_value(shown);
                }
            }
        }
    }
    families
}
