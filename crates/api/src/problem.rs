//! RFC 9457 problem details, as the Enode-style API returns them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem+json error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary.
    pub title: String,
    /// What exactly went wrong.
    pub detail: String,
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
}

const BASE: &str = "https://docs.enode.io/problems/";

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{BASE}{slug}"),
            title: title.to_string(),
            detail: detail.into(),
            status,
        }
    }

    /// 400: the request was malformed; `detail` names the field.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Payload validation failed", detail)
    }

    /// 400: a precondition of an action failed that is unlikely to change within the
    /// action's window (the device cannot do it, is unplugged, fully charged, or already in
    /// the desired state).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Precondition failed", detail)
    }

    /// 401: missing, invalid or expired credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail)
    }

    /// 404: the entity does not exist (for this client).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not Found", detail)
    }

    /// 404 with a specific title ("User does not exist").
    pub fn not_found_titled(title: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", title, detail)
    }

    /// 409: the request conflicts with the state of the resource (concurrent writers).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            detail,
        )
    }

    /// 413: the request body is larger than the API accepts.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload Too Large", detail)
    }

    /// 503: a dependency (the store) is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Service Unavailable",
            detail,
        )
    }

    /// 500: something that should not happen.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server-error", "Server Error", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<oemgate_store::StoreError> for Problem {
    fn from(err: oemgate_store::StoreError) -> Self {
        use oemgate_store::StoreError;
        match err {
            StoreError::InvalidCursor(cursor) => {
                Problem::bad_request(format!("\"after\"/\"before\" cursor {cursor:?} is invalid"))
            }
            StoreError::NotFound(what) => Problem::not_found(what),
            StoreError::Unavailable { .. } => {
                tracing::error!(error = %err, "store unavailable");
                Problem::unavailable(
                    "The data store is unavailable; retry with a randomized backoff.",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                Problem::internal("A critical error has occurred.")
            }
        }
    }
}

/// The fallback for unknown routes.
pub async fn not_found_route() -> Problem {
    Problem::not_found("No such route.")
}

/// Middleware keeping the error conventions for responses the router makes itself: a body
/// over [`crate::body::MAX_BODY_BYTES`] announced by `Content-Length` is refused before any
/// handler runs, and the plain-text errors that axum produces (405 for a wrong method, 413
/// for a streamed body over the limit, 400 for an undecodable path or query) become
/// problem+json with the same status. The `Allow` header of a 405 is kept. JSON error bodies
/// (the OAuth2 token endpoint's) are left alone.
pub async fn conventions(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = crate::body::MAX_BODY_BYTES;
    let too_large = format!("The request body exceeds the limit of {limit} bytes.");
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Problem::payload_too_large(too_large).into_response();
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"application/problem+json")
    });
    if is_json || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = response.headers().get(header::ALLOW).cloned();
            let mut problem = Problem::method_not_allowed(format!(
                "{method} is not allowed on this route{}.",
                allow
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .map(|v| format!("; allowed: {v}"))
                    .unwrap_or_default()
            ))
            .into_response();
            if let Some(allow) = allow {
                problem.headers_mut().insert(header::ALLOW, allow);
            }
            problem
        }
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(too_large).into_response(),
        status => {
            // The rejection's own text says what was wrong (which path or query parameter).
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let detail = String::from_utf8_lossy(&text).trim().to_string();
            let reason = status.canonical_reason().unwrap_or("Error");
            let slug = reason.to_ascii_lowercase().replace(' ', "-");
            let detail = if detail.is_empty() { reason.to_string() } else { detail };
            let mut problem = Problem::new(status, &slug, reason, detail).into_response();
            if let Some(allow) = parts.headers.get(header::ALLOW) {
                problem.headers_mut().insert(header::ALLOW, allow.clone());
            }
            problem
        }
    }
}
