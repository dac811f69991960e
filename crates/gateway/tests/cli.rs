//! The `oemgate` binary's command line: config errors are one clear line and a non-zero exit.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn oemgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oemgate"));
    command.args(args).env("RUST_LOG", "warn");
    // Start from a clean slate: no OEMGATE_* from the caller's environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("OEMGATE_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

/// The error output: exactly one line, returned for further checks.
fn one_line_error(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure, got {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn default_config_checks_out() {
    let output = oemgate(&["check-config"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("configuration ok"));
}

#[test]
fn unknown_key_is_named() {
    let file = write_config("[scheduler]\nchargin = \"2m\"\n");
    let output = oemgate(&["check-config", "--config", file.path().to_str().unwrap()], &[]);
    let line = one_line_error(&output);
    assert!(line.contains("chargin"), "{line}");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn malformed_duration_is_named_from_file_and_environment() {
    let file = write_config("[scheduler.delays]\nsleeping = \"twenty minutes\"\n");
    let line =
        one_line_error(&oemgate(&["check-config", "--config", file.path().to_str().unwrap()], &[]));
    assert!(line.contains("scheduler.delays.sleeping"), "{line}");

    let line = one_line_error(&oemgate(
        &["check-config"],
        &[("OEMGATE_SCHEDULER__DELAYS__CHARGING", "2x")],
    ));
    assert!(line.contains("scheduler.delays.charging"), "{line}");
}

#[test]
fn unreachable_redis_is_named() {
    let output = oemgate(
        &["check-config"],
        &[
            ("OEMGATE_STORE__BACKEND", "redis"),
            ("OEMGATE_STORE__REDIS_URL", "redis://127.0.0.1:1"),
            ("OEMGATE_STORE__ENCRYPTION_KEY", KEY),
        ],
    );
    let line = one_line_error(&output);
    assert!(line.contains("redis://127.0.0.1:1"), "{line}");
}

/// A test key (base64 of the bytes 0..32).
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn redis_needs_a_valid_encryption_key() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    for (key, expected) in [("", "is required"), ("c2hvcnQ=", "5 bytes"), ("%%", "base64")] {
        let output = oemgate(
            &["check-config"],
            &[
                ("OEMGATE_STORE__BACKEND", "redis"),
                ("OEMGATE_STORE__REDIS_URL", &url),
                ("OEMGATE_STORE__ENCRYPTION_KEY", key),
            ],
        );
        let line = one_line_error(&output);
        assert!(line.contains("store.encryption_key") && line.contains(expected), "{key}: {line}");
        assert!(!line.contains(KEY));
    }
}

#[test]
fn missing_config_file_is_named() {
    let line =
        one_line_error(&oemgate(&["check-config", "--config", "/nonexistent/oemgate.toml"], &[]));
    assert!(line.contains("/nonexistent/oemgate.toml"), "{line}");
}

#[test]
fn reachable_redis_checks_out() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let output = oemgate(
        &["check-config"],
        &[
            ("OEMGATE_STORE__BACKEND", "redis"),
            ("OEMGATE_STORE__REDIS_URL", &url),
            ("OEMGATE_STORE__ENCRYPTION_KEY", KEY),
        ],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("store: redis"));
}

/// `oemgate clients ...` against Redis under a fresh key prefix, checked through the token
/// endpoint of an API on the same store.
mod clients {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use oemgate_api::{ApiConfig, ApiState, router};
    use oemgate_store::{RedisConfig, RedisStore, Store};
    use tower::ServiceExt;

    use super::{Output, oemgate, one_line_error};

    fn redis_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    /// Runs `oemgate clients ARGS` on Redis under `prefix`.
    fn clients(prefix: &str, args: &[&str]) -> Output {
        let url = redis_url();
        let mut all = vec!["clients"];
        all.extend_from_slice(args);
        oemgate(
            &all,
            &[
                ("OEMGATE_STORE__BACKEND", "redis"),
                ("OEMGATE_STORE__REDIS_URL", &url),
                ("OEMGATE_STORE__KEY_PREFIX", prefix),
                // A Redis deployment always has a credentials key, whatever the command.
                ("OEMGATE_STORE__ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
            ],
        )
    }

    fn stdout_of(output: &Output) -> String {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    /// The value after `key: ` in the command's output.
    fn field(stdout: &str, key: &str) -> String {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_string()
    }

    async fn cleanup(prefix: &str) {
        let config = oemgate_store::RedisConfig::new(redis_url(), prefix);
        if let Ok(store) = oemgate_store::RedisStore::connect(config).await {
            let _ = store.purge().await;
        }
    }

    struct Api(axum::Router);

    impl Api {
        async fn new(prefix: &str) -> Self {
            let store: Arc<dyn Store> =
                Arc::new(RedisStore::connect(RedisConfig::new(redis_url(), prefix)).await.unwrap());
            Self(router(ApiState::new(
                store,
                Arc::new(oemgate_core::SystemClock),
                ApiConfig::default(),
            )))
        }

        /// The token response's status and access token (if any).
        async fn token(&self, id: &str, secret: &str) -> (StatusCode, Option<String>) {
            let body = format!(
                "grant_type=client_credentials&client_id={id}&client_secret={}",
                secret.replace('-', "%2D")
            );
            let request = Request::post("/oauth2/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            let response = self.0.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            (status, json["access_token"].as_str().map(str::to_string))
        }

        async fn users_status(&self, token: &str) -> StatusCode {
            let request = Request::get("/users")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            self.0.clone().oneshot(request).await.unwrap().status()
        }
    }

    async fn lifecycle(prefix: &str) {
        let created = stdout_of(&clients(prefix, &["create", "--name", "Acme Energy"]));
        let id = field(&created, "client_id");
        let secret = field(&created, "client_secret");
        assert!(secret.len() >= 40, "a long random secret: {secret}");

        let listed = stdout_of(&clients(prefix, &["list"]));
        let line = listed.lines().find(|l| l.starts_with(&id)).expect("listed");
        assert!(line.contains("Acme Energy") && line.ends_with("active"), "{line}");
        assert!(!listed.contains(&secret), "list never shows a secret");

        // The store keeps only an Argon2 hash of the secret.
        let store = RedisStore::connect(RedisConfig::new(redis_url(), prefix)).await.unwrap();
        let stored = oemgate_store::ClientStore::get_client(&store, &id).await.unwrap().unwrap();
        assert!(stored.secret_hash.starts_with("$argon2id$"), "{}", stored.secret_hash);
        assert!(!stored.secret_hash.contains(&secret));

        let api = Api::new(prefix).await;
        let (status, old_token) = api.token(&id, &secret).await;
        assert_eq!(status, StatusCode::OK);
        let old_token = old_token.unwrap();
        assert_eq!(api.users_status(&old_token).await, StatusCode::OK);

        // Rotation: a new secret; the old one and its token stop working.
        let rotated = stdout_of(&clients(prefix, &["rotate", "--id", &id]));
        assert_eq!(field(&rotated, "client_id"), id);
        let new_secret = field(&rotated, "client_secret");
        assert_ne!(new_secret, secret);
        assert_eq!(api.token(&id, &secret).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(api.users_status(&old_token).await, StatusCode::UNAUTHORIZED);
        let (status, token) = api.token(&id, &new_secret).await;
        assert_eq!(status, StatusCode::OK);
        let token = token.unwrap();
        assert_eq!(api.users_status(&token).await, StatusCode::OK);

        // Revocation: the live token fails at once and no new token is issued.
        let revoked = stdout_of(&clients(prefix, &["revoke", "--id", &id]));
        assert!(revoked.contains(&format!("revoked {id}")), "{revoked}");
        assert_eq!(api.users_status(&token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(api.token(&id, &new_secret).await.0, StatusCode::UNAUTHORIZED);
        let listed = stdout_of(&clients(prefix, &["list"]));
        let line = listed.lines().find(|l| l.starts_with(&id)).expect("listed");
        assert!(line.contains("revoked"), "{line}");

        // Unknown ids are one clear line.
        for command in ["rotate", "revoke"] {
            let line = one_line_error(&clients(prefix, &[command, "--id", "nope"]));
            assert!(line.contains("nope"), "{line}");
        }
        let line = one_line_error(&clients(prefix, &["create", "--name", " "]));
        assert!(line.contains("--name"), "{line}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn create_rotate_revoke_and_list_through_the_cli() {
        let prefix = format!("oemgate-cli-{}", uuid::Uuid::new_v4().simple());
        let outcome = tokio::spawn({
            let prefix = prefix.clone();
            async move { lifecycle(&prefix).await }
        })
        .await;
        cleanup(&prefix).await;
        if let Err(err) = outcome {
            std::panic::resume_unwind(err.into_panic());
        }
    }

    #[test]
    fn the_memory_store_is_refused_with_a_clear_message() {
        let line = one_line_error(&oemgate(&["clients", "list"], &[]));
        assert!(line.contains("store.backend = \"redis\""), "{line}");
        assert!(line.contains("memory"), "{line}");
    }
}
