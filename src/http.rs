//! `/metrics`, `/healthz` (process up) and `/readyz` (caches synced; leader or standby) on one
//! port. The server reads a narrow state: the scoreboard and whether the caches have synced,
//! never the controller's internals.

use crate::inventory::cluster::Caches;
use crate::metrics::Scoreboard;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// What the endpoints read.
#[derive(Clone)]
pub struct Observed {
    pub scoreboard: Arc<Scoreboard>,
    pub caches: Arc<Caches>,
}

pub async fn serve(
    observed: Observed,
    addr: std::net::SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(observed);
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

async fn readyz(State(observed): State<Observed>) -> impl IntoResponse {
    if observed.caches.initial_sync_done() {
        let role = if observed.scoreboard.is_leader() {
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

async fn metrics(State(observed): State<Observed>) -> impl IntoResponse {
    // A standby exports its process metrics only (see Metrics::render).
    let body = observed.scoreboard.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
