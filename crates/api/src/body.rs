//! Request bodies: JSON objects parsed by hand so every failure is a 400 problem naming the
//! issue (axum's own JSON rejections are plain text), and the body size limit.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::problem::Problem;

/// The largest request body accepted, in bytes; larger ones answer 413. Every documented
/// request body is a small JSON object, so 64 KiB leaves ample room.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body as a JSON object; empty, malformed or non-object bodies are 400.
pub fn object(body: &Bytes) -> Result<Map<String, Value>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("The request body must be a JSON object; it was empty."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request("The request body must be a JSON object.")),
        Err(err) => Err(Problem::bad_request(format!("The request body is not valid JSON: {err}"))),
    }
}

/// Rejects fields outside `allowed` (the documented bodies allow no others).
pub fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Problem> {
    match body.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(Problem::bad_request(format!(
            "Field \"{key}\" is not allowed; allowed fields: {}.",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}
