//! The `Enode-Version` header: a request may pin a version; every response names the version
//! it was rendered in.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::SUPPORTED_VERSIONS;
use crate::problem::Problem;

/// The header name.
pub const HEADER: &str = "enode-version";

/// Rejects unknown versions with a 400 naming the header and echoes the version in force.
pub async fn echo_version(request: Request, next: Next) -> Response {
    let requested = match request.headers().get(HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if SUPPORTED_VERSIONS.contains(&v) => Some(v.to_string()),
        Some(Ok(v)) => {
            let problem = Problem::bad_request(format!(
                "\"Enode-Version\" {v:?} is not supported; supported: {}",
                SUPPORTED_VERSIONS.join(", ")
            ));
            return with_version(problem.into_response(), SUPPORTED_VERSIONS[0]);
        }
        Some(Err(_)) => {
            let problem = Problem::bad_request("\"Enode-Version\" is not valid text");
            return with_version(problem.into_response(), SUPPORTED_VERSIONS[0]);
        }
    };
    let response = next.run(request).await;
    with_version(response, requested.as_deref().unwrap_or(SUPPORTED_VERSIONS[0]))
}

/// Names the version a response is rendered in (a refusal of an unsupported version is
/// rendered in the default one).
fn with_version(mut response: Response, version: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(version) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
