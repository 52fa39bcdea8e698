//! Prometheus metrics (prefix `securescore_`). Per-target series are computed at scrape time
//! from the latest evaluations, so a deleted target or action leaves no stale series; only the
//! leader exports them (standbys export their own process metrics), so nothing double-counts.

use crate::api::ActionState;
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

/// Process-level metrics (kept between scrapes).
pub struct Metrics {
    registry: Registry,
    evaluations: IntCounterVec,
    errors: IntCounterVec,
    duration: Histogram,
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
                "Target evaluations by result.",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new(
                "securescore_reconcile_errors_total",
                "Reconcile errors by kind and reason.",
            ),
            &["kind", "reason"],
        )
        .expect("static metric definition");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "securescore_evaluation_duration_seconds",
                "Time to evaluate one target.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("static metric definition");
        let build = IntGaugeVec::new(
            Opts::new("securescore_build_info", "Build information."),
            &["version"],
        )
        .expect("static metric definition");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for c in [
            Box::new(evaluations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(build),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        // Known label values start at zero so rate() works from the first scrape.
        for r in ["success", "degraded", "suspended", "refused"] {
            evaluations.with_label_values(&[r]);
        }
        Metrics {
            registry,
            evaluations,
            errors,
            duration,
        }
    }

    pub fn evaluation(&self, result: &str, seconds: f64) {
        self.evaluations.with_label_values(&[result]).inc();
        self.duration.observe(seconds);
    }

    pub fn reconcile_error(&self, kind: &str, reason: &str) {
        self.errors.with_label_values(&[kind, reason]).inc();
    }

    /// The text exposition: process metrics, plus per-target series when `targets` is given.
    pub fn render(&self, targets: &[TargetSeries], actions: ActionSeries) -> String {
        let mut families = self.registry.gather();
        families.extend(target_families(targets, actions));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One target's latest evaluation and the spec values its series carry.
pub struct TargetSeries<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub evaluation: &'a TargetEvaluation,
    pub goal: Option<u32>,
    pub interval_seconds: f64,
    pub evaluated_at: jiff::Timestamp,
}

fn units(u: u64) -> f64 {
    u as f64 / UNIT as f64
}

/// The per-target families (also used by `securescore scan --format prometheus`).
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
    let score = gauge("securescore_score", "Points achieved.", &t);
    let max = gauge(
        "securescore_max_score",
        "Points available from applicable actions.",
        &t,
    );
    let ratio = gauge(
        "securescore_ratio",
        "Score divided by max score (0-1); absent when nothing is applicable.",
        &t,
    );
    let goal = gauge(
        "securescore_goal_ratio",
        "The target's goal as a ratio (0-1).",
        &t,
    );
    let projected = gauge(
        "securescore_projected_score",
        "Score plus the points of planned fixes.",
        &t,
    );
    let achievable = gauge(
        "securescore_achievable_score",
        "Max score minus points forgone by accepted risks.",
        &t,
    );
    let resources = gauge(
        "securescore_evaluated_resources",
        "Objects the evaluation read.",
        &t,
    );
    let interval = gauge(
        "securescore_interval_seconds",
        "The target's evaluation interval.",
        &t,
    );
    let last = gauge(
        "securescore_last_evaluation_timestamp_seconds",
        "When the target was last evaluated (Unix time).",
        &t,
    );
    let degraded = gauge(
        "securescore_degraded",
        "1 when the last evaluation lacked some kind's inventory.",
        &t,
    );
    let cat_score = gauge(
        "securescore_category_score",
        "Points achieved per category.",
        &["namespace", "target", "category"],
    );
    let cat_max = gauge(
        "securescore_category_max_score",
        "Points available per category.",
        &["namespace", "target", "category"],
    );
    let a_labels = ["namespace", "target", "action", "category"];
    let a_score = gauge(
        "securescore_action_score",
        "Points achieved per action.",
        &a_labels,
    );
    let a_max = gauge(
        "securescore_action_max_score",
        "Points available per action.",
        &a_labels,
    );
    let a_res = gauge(
        "securescore_action_resources",
        "Applicable resources per action by result.",
        &["namespace", "target", "action", "category", "result"],
    );
    let a_state = gauge(
        "securescore_action_state",
        "1 for the action's current state.",
        &["namespace", "target", "action", "category", "state"],
    );
    let exp = gauge(
        "securescore_exemption_expiry_timestamp_seconds",
        "When a declared exemption expires (Unix time).",
        &["namespace", "target", "exemption", "action", "resolution"],
    );
    for s in targets {
        let e = s.evaluation;
        let l = [s.namespace, s.name];
        score.with_label_values(&l).set(units(e.points.score()));
        max.with_label_values(&l).set(units(e.points.max()));
        if let Some(r) = e.ratio() {
            ratio.with_label_values(&l).set(r);
        }
        if let Some(g) = s.goal {
            goal.with_label_values(&l).set(f64::from(g) / 100.0);
        }
        projected
            .with_label_values(&l)
            .set(units(e.points.score() + e.points.planned));
        achievable
            .with_label_values(&l)
            .set(units(e.points.max() - e.points.accepted));
        resources
            .with_label_values(&l)
            .set(e.status.evaluated_resources as f64);
        interval.with_label_values(&l).set(s.interval_seconds);
        last.with_label_values(&l)
            .set(s.evaluated_at.as_millisecond() as f64 / 1000.0);
        degraded.with_label_values(&l).set(f64::from(u8::from(
            e.outcome == crate::engine::Outcome::Degraded,
        )));
        let mut cats: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
        for o in e.actions.iter().filter(|o| o.scored) {
            let c = cats.entry(o.action.spec.category.as_str()).or_default();
            c.0 += o.points.score();
            c.1 += o.points.max();
        }
        for (c, (sc, mx)) in cats {
            cat_score
                .with_label_values(&[s.namespace, s.name, c])
                .set(units(sc));
            cat_max
                .with_label_values(&[s.namespace, s.name, c])
                .set(units(mx));
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
            a_score.with_label_values(&al).set(units(o.points.score()));
            a_max
                .with_label_values(&al)
                .set(if o.state == ActionState::NotApplicable {
                    0.0
                } else {
                    f64::from(o.action.spec.max_score)
                });
            for (result, n) in [
                ("compliant", o.counts.compliant),
                (
                    "noncompliant",
                    o.counts.unresolved + o.counts.planned
                        - o.errors.min(o.counts.unresolved + o.counts.planned),
                ),
                ("error", o.errors),
                ("exempt", o.counts.accepted + o.counts.mitigated),
            ] {
                a_res
                    .with_label_values(&[al[0], al[1], al[2], al[3], result])
                    .set(n as f64);
            }
            a_state
                .with_label_values(&[al[0], al[1], al[2], al[3], o.state.as_str()])
                .set(1.0);
        }
        for x in &e.exemptions {
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
    }
    registry.gather()
}
