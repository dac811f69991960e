//! The webhook as stored, the subscription events, and the field rules of the API.

use chrono::{DateTime, Utc};
use oemgate_store::sealing::SECRETS_FIELD;
use oemgate_store::{ResourceRecord, WebhookState};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The store resource kind webhooks are kept under (owned by the client, no user).
pub const KIND: &str = "webhook";

/// The event a test delivery carries.
pub const TEST_EVENT: &str = "enode:webhook:test";

/// Every event name a webhook may subscribe to (`*` is every one of them).
pub const EVENTS: &[&str] = &[
    "*",
    "user:vehicle:discovered",
    "user:vehicle:updated",
    "user:vehicle:deleted",
    "user:vehicle:smart-charging-status-updated",
    "user:charge-action:updated",
    "user:vendor-action:updated",
    "user:schedule:execution-updated",
    "user:charger:discovered",
    "user:charger:updated",
    "user:charger:deleted",
    "user:hvac:discovered",
    "user:hvac:updated",
    "user:hvac:deleted",
    "user:inverter:discovered",
    "user:inverter:updated",
    "user:inverter:deleted",
    "user:inverter:statistics-updated",
    "user:battery:discovered",
    "user:battery:updated",
    "user:battery:deleted",
    "user:meter:discovered",
    "user:meter:updated",
    "user:meter:deleted",
    "user:credentials:invalidated",
    TEST_EVENT,
];

/// Secrets are 6 to 256 characters.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 6..=256;
/// Authentication header names: at most 128 characters of `[a-z0-9-_]`.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// Authentication header values: at most 256 characters.
pub const MAX_HEADER_VALUE_LEN: usize = 256;

/// A header sent with every delivery.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// Lowercase name.
    pub header_name: String,
    /// The value; never returned by the API nor logged.
    pub header_value: String,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authentication")
            .field("header_name", &self.header_name)
            .field("header_value", &"<redacted>")
            .finish()
    }
}

/// A webhook as stored (the body of its store resource).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id (a uuid).
    pub id: String,
    /// The API client owning it.
    pub client_id: String,
    /// Where deliveries go.
    pub url: String,
    /// The HMAC key; never returned by the API nor logged.
    pub secret: String,
    /// Subscribed event names (`["*"]` = all).
    pub events: Vec<String>,
    /// The API version events are rendered in; `None` = the client's version.
    pub api_version: Option<String>,
    /// An optional header sent with every delivery.
    pub authentication: Option<Authentication>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("api_version", &self.api_version)
            .field("authentication", &self.authentication)
            .finish()
    }
}

impl Webhook {
    /// Whether the webhook subscribes to `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }

    /// The store resource holding it (version 0: fill in the stored one to update).
    pub fn to_record(&self) -> Result<ResourceRecord, serde_json::Error> {
        Ok(ResourceRecord {
            kind: KIND.to_owned(),
            id: self.id.clone(),
            // Webhooks belong to the client, not to one of its users.
            user_id: String::new(),
            client_id: self.client_id.clone(),
            created_at: self.created_at,
            version: 0,
            body: secrets_apart(serde_json::to_value(self)?),
        })
    }

    /// The webhook a store resource holds.
    pub fn from_record(record: &ResourceRecord) -> Result<Self, serde_json::Error> {
        let mut webhook: Webhook = serde_json::from_value(secrets_back(record.body.clone()))?;
        webhook.created_at = record.created_at;
        webhook.client_id.clone_from(&record.client_id);
        Ok(webhook)
    }

    /// The webhook as the API serves it, with its delivery state: no secret, no header value.
    pub fn to_api(&self, state: Option<&WebhookState>) -> Value {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "lastSuccess": state.and_then(|s| s.last_success).map(time),
            "isActive": state.is_none_or(|s| s.active),
            "createdAt": time(self.created_at),
            "apiVersion": self.api_version,
            "authentication": self.authentication.as_ref().map(|a| json!({"headerName": a.header_name})),
        })
    }
}

/// Moves the secret and the authentication header's value under the body's `secrets`
/// member, which stores with an encryption key seal at rest
/// ([`oemgate_store::sealing::SECRETS_FIELD`]).
fn secrets_apart(mut body: Value) -> Value {
    let secret = body.as_object_mut().and_then(|b| b.remove("secret"));
    let header_value = body
        .get_mut("authentication")
        .and_then(Value::as_object_mut)
        .and_then(|a| a.remove("headerValue"));
    body[SECRETS_FIELD] = json!({ "secret": secret, "headerValue": header_value });
    body
}

/// Puts what [`secrets_apart`] moved back in place (bodies written before it are left as
/// they are).
fn secrets_back(mut body: Value) -> Value {
    let Some(mut secrets) = body.as_object_mut().and_then(|b| b.remove(SECRETS_FIELD)) else {
        return body;
    };
    if let Some(secret) = secrets.get_mut("secret").map(Value::take) {
        body["secret"] = secret;
    }
    let header_value = secrets.get_mut("headerValue").map(Value::take).unwrap_or(Value::Null);
    if let Some(authentication) = body.get_mut("authentication").filter(|a| a.is_object()) {
        authentication["headerValue"] = header_value;
    }
    body
}

/// Checks a secret's length.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let length = secret.chars().count();
    if SECRET_LEN.contains(&length) {
        Ok(())
    } else {
        Err(format!(
            "must be {} to {} characters long, got {length}",
            SECRET_LEN.start(),
            SECRET_LEN.end()
        ))
    }
}

/// Checks an event list: names from [`EVENTS`], at least one.
pub fn check_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("must name at least one event (or \"*\")".to_owned());
    }
    match events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        Some(unknown) => Err(format!("{unknown:?} is not a webhook event")),
        None => Ok(()),
    }
}

/// Checks an authentication header: name `^[a-z0-9-_]+$` up to 128, value up to 256.
pub fn check_authentication(auth: &Authentication) -> Result<(), String> {
    let name = &auth.header_name;
    let valid_name = !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(format!(
            "headerName must be 1 to {MAX_HEADER_NAME_LEN} characters of a-z, 0-9, '-' and '_'"
        ));
    }
    // The header names the gateway sets itself cannot be overridden.
    if ["content-type", "content-length", "host", "x-enode-delivery", "x-enode-signature"]
        .contains(&name.as_str())
    {
        return Err(format!("headerName {name:?} is set by the gateway itself"));
    }
    let value = &auth.header_value;
    if value.chars().count() > MAX_HEADER_VALUE_LEN
        || reqwest::header::HeaderValue::from_str(value).is_err()
    {
        return Err(format!(
            "headerValue must be at most {MAX_HEADER_VALUE_LEN} visible characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        Webhook {
            id: "w1".into(),
            client_id: "c1".into(),
            url: "https://example.com/h".into(),
            secret: "very-secret-value".into(),
            events: vec!["user:vehicle:updated".into()],
            api_version: None,
            authentication: Some(Authentication {
                header_name: "x-api-key".into(),
                header_value: "header-secret".into(),
            }),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap_or_default(),
        }
    }

    #[test]
    fn secrets_never_show() {
        let hook = webhook();
        let debug = format!("{hook:?}");
        let served = hook.to_api(None).to_string();
        for text in [debug, served] {
            assert!(!text.contains("very-secret-value"), "{text}");
            assert!(!text.contains("header-secret"), "{text}");
            assert!(text.contains("x-api-key"), "{text}");
        }
    }

    #[test]
    fn stored_secrets_sit_where_the_store_seals_them() {
        let hook = webhook();
        let record = hook.to_record().unwrap();
        assert_eq!(record.body["secrets"]["secret"], "very-secret-value");
        assert_eq!(record.body["secrets"]["headerValue"], "header-secret");
        assert!(record.body.get("secret").is_none(), "{}", record.body);
        assert!(record.body["authentication"].get("headerValue").is_none(), "{}", record.body);
        assert_eq!(Webhook::from_record(&record).unwrap(), hook);

        let mut plain = webhook();
        plain.authentication = None;
        assert_eq!(Webhook::from_record(&plain.to_record().unwrap()).unwrap(), plain);
        // A body written before secrets moved still reads.
        let mut old = record.clone();
        old.body = serde_json::to_value(&hook).unwrap();
        assert_eq!(Webhook::from_record(&old).unwrap(), hook);
    }

    #[test]
    fn filters_match_names_or_everything() {
        let mut hook = webhook();
        assert!(hook.wants("user:vehicle:updated"));
        assert!(!hook.wants("user:charger:updated"));
        hook.events = vec!["*".into()];
        assert!(hook.wants("user:charger:updated"));
    }

    #[test]
    fn record_round_trip() {
        let hook = webhook();
        let record = hook.to_record().expect("serializes");
        assert_eq!(record.user_id, "");
        assert_eq!(Webhook::from_record(&record).expect("parses"), hook);
    }

    #[test]
    fn field_rules() {
        assert!(check_secret("12345").is_err());
        assert!(check_secret("123456").is_ok());
        assert!(check_secret(&"x".repeat(257)).is_err());
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["user:nothing".into()]).is_err());
        assert!(check_events(&["*".into(), "user:battery:deleted".into()]).is_ok());
        let auth = |name: &str, value: &str| Authentication {
            header_name: name.into(),
            header_value: value.into(),
        };
        assert!(check_authentication(&auth("x-key_1", "v")).is_ok());
        assert!(check_authentication(&auth("X-Key", "v")).is_err());
        assert!(check_authentication(&auth("", "v")).is_err());
        assert!(check_authentication(&auth("x-enode-signature", "v")).is_err());
        assert!(check_authentication(&auth("x", &"v".repeat(257))).is_err());
        assert!(check_authentication(&auth("x", "line\nbreak")).is_err());
    }
}
