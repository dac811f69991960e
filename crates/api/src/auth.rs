//! OAuth2 client credentials: API clients, `POST /oauth2/token` and the bearer check.
//!
//! Client secrets are stored only as Argon2id hashes (PHC strings). We generate them as
//! 256-bit random values, so a fast hash would resist guessing too; the slow hash is for the
//! day a stored hash leaks together with a secret that an operator replaced by hand or that a
//! weaker generator produced: a memory-hard hash keeps offline guessing expensive either way,
//! and it costs one verification per token request only. The `argon2` crate (RustCrypto) is
//! maintained, pure Rust and the reference implementation of the winner of the Password
//! Hashing Competition. Bearer tokens are checked on every request, so they stay SHA-256:
//! they are random 256-bit values that live an hour, nothing to stretch.
//!
//! A client can be rotated (new secret; the old secret and every token issued under it stop
//! working) and revoked (no new tokens; its tokens fail at once). Both are checked on every
//! request through the client record, so no token index is needed.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oemgate_store::{AccessToken, ApiClient, Store, StoreError, StoreResult};
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
///
/// Handlers take it as an extractor; behind [`require_bearer`] it is always there, and a
/// route wired without the middleware answers 401 instead of serving anyone's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientId {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientId>()
            .cloned()
            .ok_or_else(|| Problem::unauthorized("The request was not authenticated."))
    }
}

/// Creates (or replaces) an API client with these credentials, pinned to `api_version`.
pub async fn create_client(
    store: &dyn Store,
    credentials: &ClientCredentials,
    api_version: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<()> {
    create_named_client(store, credentials, "", api_version, now).await
}

/// Creates (or replaces) an API client with these credentials and a display name.
pub async fn create_named_client(
    store: &dyn Store,
    credentials: &ClientCredentials,
    name: &str,
    api_version: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<()> {
    store
        .put_client(ApiClient {
            client_id: credentials.client_id.clone(),
            secret_hash: hash_secret(&credentials.client_secret).await?,
            api_version: api_version.to_string(),
            created_at: now,
            name: name.to_string(),
            generation: 0,
            revoked_at: None,
        })
        .await
}

/// Gives a client a new random secret; the old secret and every token issued under it stop
/// working. `None` when there is no such client; a revoked client stays revoked.
pub async fn rotate_client_secret(
    store: &dyn Store,
    client_id: &str,
) -> StoreResult<Option<ClientCredentials>> {
    let Some(mut client) = store.get_client(client_id).await? else {
        return Ok(None);
    };
    let secret = random_token();
    client.secret_hash = hash_secret(&secret).await?;
    client.generation += 1;
    store.put_client(client).await?;
    Ok(Some(ClientCredentials { client_id: client_id.to_string(), client_secret: secret }))
}

/// Revokes a client at `now`: it gets no new tokens and its tokens fail at once. Returns the
/// client as stored, `None` when there is no such client. Revoking twice keeps the first time.
pub async fn revoke_client(
    store: &dyn Store,
    client_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<Option<ApiClient>> {
    let Some(mut client) = store.get_client(client_id).await? else {
        return Ok(None);
    };
    if client.revoked_at.is_none() {
        client.revoked_at = Some(now);
        store.put_client(client.clone()).await?;
    }
    Ok(Some(client))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a bearer token, hex.
fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Argon2id PHC string of a client secret (default parameters, random salt). Hashing is
/// deliberately slow, so it runs off the async worker threads.
async fn hash_secret(secret: &str) -> StoreResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let secret = secret.to_string();
    let hashed = tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| err.to_string())
    })
    .await
    .map_err(|err| err.to_string())
    .and_then(|hashed| hashed);
    hashed.map_err(|message| StoreError::Unavailable {
        backend: "argon2",
        message: format!("hashing a client secret failed: {message}"),
        source: None,
    })
}

/// A hash to verify against when the client id is unknown (computed once).
async fn unknown_client_hash() -> &'static str {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_init(|| async {
        hash_secret(&random_token()).await.unwrap_or_else(|_| String::from("unusable"))
    })
    .await
}

/// Whether `secret` matches a stored PHC string (false for anything undecodable).
async fn verify_secret(secret: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let (secret, stored) = (secret.to_string(), stored.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| {
            argon2::Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
        })
    })
    .await
    .unwrap_or(false)
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
    let valid = match &client {
        Some(c) => c.revoked_at.is_none() && verify_secret(&secret, &c.secret_hash).await,
        None => {
            // Spend the same time as a real check, so response times do not tell which
            // client ids exist.
            let _ = verify_secret(&secret, unknown_client_hash().await).await;
            false
        }
    };
    let Some(client) = client.filter(|_| valid) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown or revoked client, or wrong secret",
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
        client_generation: client.generation,
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
    let stored = match state.store.get_token(&hash(token), state.clock.now()).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return Problem::unauthorized("The request contained an invalid or expired token.")
                .into_response();
        }
        Err(err) => return Problem::from(err).into_response(),
    };
    // The client record decides whether its tokens still count: a revoked client's tokens
    // and tokens issued before a secret rotation fail at once.
    match state.store.get_client(&stored.client_id).await {
        Ok(Some(client))
            if client.revoked_at.is_none() && client.generation == stored.client_generation =>
        {
            request.extensions_mut().insert(ClientId(stored.client_id));
            next.run(request).await
        }
        Ok(_) => Problem::unauthorized("The token's client was revoked or its secret rotated.")
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

    #[tokio::test]
    async fn secrets_are_stored_as_salted_argon2_hashes() {
        let first = hash_secret("s3cret").await.unwrap();
        let second = hash_secret("s3cret").await.unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "salted");
        assert!(!first.contains("s3cret"));
        assert!(verify_secret("s3cret", &first).await);
        assert!(!verify_secret("s3cre", &first).await);
        assert!(!verify_secret("s3cret", &hash("s3cret")).await, "a SHA-256 is not accepted");
        assert!(!verify_secret("s3cret", "garbage").await);
    }
}
