//! `/metrics`, `/healthz` (process up) and `/readyz` (caches synced; leader or standby) on one port.

use crate::controller::{Shared, unpoison};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

pub async fn serve(
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen for /metrics, /healthz and /readyz");
            return;
        }
    };
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics, /healthz, /readyz");
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.caches.initial_sync_done() {
        let role = if shared.is_leader() {
            "leader"
        } else {
            "standby"
        };
        (StatusCode::OK, format!("ready ({role})"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "caches are syncing".to_string(),
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let leader = shared.is_leader();
    // A standby exports its process metrics only (see Metrics::render).
    let latest = if leader {
        shared.latest.read().unwrap_or_else(unpoison).clone()
    } else {
        Default::default()
    };
    let series: Vec<crate::metrics::TargetSeries> = latest
        .iter()
        .map(|((ns, name), l)| crate::metrics::TargetSeries {
            namespace: ns,
            name,
            evaluation: &l.evaluation,
            goal: l.goal,
            interval_seconds: l.interval.as_secs_f64(),
            evaluated_at: l.evaluated_at,
        })
        .collect();
    let body = shared
        .metrics
        .render(leader, &series, shared.settings.metrics_actions);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
