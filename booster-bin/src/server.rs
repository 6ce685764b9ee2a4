//! The HTTP server: `/metrics` (OpenMetrics), `/healthz` and `/readyz` (see [`Health`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::health::Health;
use crate::metrics::Metrics;

/// Serves on `addr` in the background; a server that stops is logged, not fatal.
pub fn spawn(addr: SocketAddr, metrics: Arc<Mutex<Metrics>>, health: Arc<Health>) {
    tokio::spawn(async move {
        if let Err(e) = serve(addr, metrics, health).await {
            tracing::error!(error = %format!("{e:#}"), "metrics server stopped");
        }
    });
}

async fn serve(addr: SocketAddr, metrics: Arc<Mutex<Metrics>>, health: Arc<Health>) -> Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let m = metrics.clone();
    let answer = |r: Result<String, String>| match r {
        Ok(body) => (StatusCode::OK, body),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let (live, ready) = (health.clone(), health);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = m.lock().map(|m| m.encode()).unwrap_or_default();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let r = answer(live.live());
                async move { r }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let r = answer(ready.ready());
                async move { r }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-host/--metrics-port: cannot listen on {addr}"))?;
    axum::serve(listener, app).await.context("metrics server")
}
