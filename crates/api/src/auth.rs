//! OAuth2 client credentials: API clients, `POST /oauth2/token` and the bearer check.
//!
//! Secrets and tokens are stored only as SHA-256 hashes. Both are 256-bit random values we
//! generate, so a fast hash is enough (there is no low-entropy password to stretch).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oemgate_store::{AccessToken, ApiClient, Store, StoreResult};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ApiState;
use crate::problem::Problem;

/// The scope every token carries for now: full access to the client's data.
const SCOPE: &str = "all";

/// A client id and secret, as handed to an API user.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Fresh random credentials.
    pub fn generate() -> Self {
        Self { client_id: uuid::Uuid::new_v4().to_string(), client_secret: random_token() }
    }
}

/// The authenticated API client of a request, put into the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(pub String);

/// Creates (or replaces) an API client with these credentials, pinned to `api_version`.
pub async fn create_client(
    store: &dyn Store,
    credentials: &ClientCredentials,
    api_version: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<()> {
    store
        .put_client(ApiClient {
            client_id: credentials.client_id.clone(),
            secret_hash: hash(&credentials.client_secret),
            api_version: api_version.to_string(),
            created_at: now,
        })
        .await
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without leaking where the first difference is.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token request form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The token response.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Always "bearer".
    pub token_type: String,
    /// The granted scope.
    pub scope: String,
}

/// An OAuth2 error (RFC 6749 section 5.2): token endpoint clients parse this shape, not
/// problem+json.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic"));
    }
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `POST /oauth2/token`: client credentials by HTTP Basic (or form fields), form-encoded
/// `grant_type=client_credentials`.
pub async fn token(
    State(state): State<ApiState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body",
        );
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    }
    let credentials =
        basic_credentials(&headers).or_else(|| Some((form.client_id?, form.client_secret?)));
    let Some((client_id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication is required",
        );
    };
    let client = match state.store.get_client(&client_id).await {
        Ok(client) => client,
        Err(err) => return Problem::from(err).into_response(),
    };
    let Some(client) = client.filter(|c| constant_time_eq(&c.secret_hash, &hash(&secret))) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let access_token = random_token();
    let now = state.clock.now();
    let ttl =
        chrono::Duration::from_std(state.config.token_ttl).unwrap_or(chrono::Duration::hours(1));
    let stored = AccessToken {
        token_hash: hash(&access_token),
        client_id: client.client_id,
        expires_at: now + ttl,
    };
    if let Err(err) = state.store.put_token(stored).await {
        return Problem::from(err).into_response();
    }
    axum::Json(TokenResponse {
        access_token,
        expires_in: state.config.token_ttl.as_secs(),
        token_type: "bearer".to_string(),
        scope: SCOPE.to_string(),
    })
    .into_response()
}

/// Middleware: lets the request through only with a valid, unexpired bearer token.
pub async fn require_bearer(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Problem::unauthorized("The request contained no bearer token.").into_response();
    };
    match state.store.get_token(&hash(token), state.clock.now()).await {
        Ok(Some(stored)) => {
            request.extensions_mut().insert(ClientId(stored.client_id));
            next.run(request).await
        }
        Ok(None) => Problem::unauthorized("The request contained an invalid or expired token.")
            .into_response(),
        Err(err) => Problem::from(err).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_parses_and_rejects_garbage() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("id:se:cret")).parse().unwrap(),
        );
        assert_eq!(basic_credentials(&headers), Some(("id".into(), "se:cret".into())));
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
    }

    #[test]
    fn hashes_compare_in_constant_time() {
        assert!(constant_time_eq(&hash("a"), &hash("a")));
        assert!(!constant_time_eq(&hash("a"), &hash("b")));
        assert!(!constant_time_eq("ab", "abc"));
    }
}
