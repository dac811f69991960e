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
