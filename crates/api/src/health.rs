//! Readiness.

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
