//! Readiness and metrics: unauthenticated, for load balancers and Prometheus scrapers.
//! Neither reveals any device or user data.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::problem::Problem;

/// `GET /health/ready`: 204 when the store answers, 503 problem+json otherwise.
pub async fn ready(State(state): State<ApiState>) -> Response {
    match state.store.ping().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Problem::unavailable("The data store is unavailable.").into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    match &state.metrics {
        Some(render) => {
            let body = render();
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                .into_response()
        }
        None => Problem::not_found("Metrics are not enabled.").into_response(),
    }
}
