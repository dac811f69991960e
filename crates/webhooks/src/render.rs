//! Events as receivers get them, per API version.
//!
//! The event log keeps what happened (`Event { id, event, user_id, created_at, payload }`);
//! a delivery renders each event in the webhook's API version. Version `2024-10-01` (the only
//! one so far) gives `{id, createdAt, version, event, user: {id}, ...payload}`: the asset under
//! its type key (`vehicle`, `charger` ...), `updatedFields` on `:updated` events (dotted paths
//! such as `chargeState.isPluggedIn`), `vendorAction` on action events, `vendor` on
//! `user:credentials:invalidated`. `id` is the event log's id: stable across redeliveries, so
//! receivers can de-duplicate on it.

use chrono::{DateTime, SecondsFormat, Utc};
use oemgate_store::Event;
use serde_json::{Map, Value, json};

use crate::model::TEST_EVENT;

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One event rendered in `version`.
pub fn render(event: &Event, version: &str) -> Value {
    // Every version so far renders the same shape; a future version gets its own arm.
    render_2024_10_01(event, version)
}

fn render_2024_10_01(event: &Event, version: &str) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(event.id.clone()));
    out.insert("createdAt".into(), Value::String(timestamp(event.created_at)));
    out.insert("version".into(), Value::String(version.to_owned()));
    out.insert("event".into(), Value::String(event.event.clone()));
    out.insert("user".into(), json!({ "id": event.user_id }));
    if let Value::Object(payload) = &event.payload {
        for (key, value) in payload {
            if matches!(key.as_str(), "id" | "createdAt" | "version" | "event") {
                continue;
            }
            out.insert(key.clone(), value.clone());
        }
    }
    // Only `:updated` events name changed fields.
    let updated = event.event.ends_with(":updated") || event.event.ends_with("-updated");
    if !updated {
        out.remove("updatedFields");
    } else if !out.contains_key("updatedFields") {
        out.insert("updatedFields".into(), json!([]));
    }
    Value::Object(out)
}

/// The `enode:webhook:test` event: base fields only, with a fresh id.
pub fn test_event(now: DateTime<Utc>, version: &str) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "createdAt": timestamp(now),
        "version": version,
        "event": TEST_EVENT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, payload: Value) -> Event {
        Event {
            id: "1700000000000-3".into(),
            event: name.into(),
            user_id: "u1".into(),
            created_at: "2026-06-01T07:00:00.250Z".parse().unwrap_or_default(),
            payload,
        }
    }

    #[test]
    fn updated_assets_carry_user_asset_and_fields() {
        let rendered = render(
            &event(
                "user:vehicle:updated",
                json!({"vehicle": {"id": "v1"}, "updatedFields": ["chargeState.isPluggedIn"]}),
            ),
            "2024-10-01",
        );
        assert_eq!(
            rendered,
            json!({
                "id": "1700000000000-3",
                "createdAt": "2026-06-01T07:00:00.250Z",
                "version": "2024-10-01",
                "event": "user:vehicle:updated",
                "user": {"id": "u1"},
                "vehicle": {"id": "v1"},
                "updatedFields": ["chargeState.isPluggedIn"],
            })
        );
    }

    #[test]
    fn discovered_has_no_updated_fields_and_payload_cannot_override_base_fields() {
        let rendered = render(
            &event(
                "user:charger:discovered",
                json!({"charger": {"id": "c"}, "updatedFields": [], "event": "spoof", "id": "x"}),
            ),
            "2024-10-01",
        );
        assert_eq!(rendered["event"], "user:charger:discovered");
        assert_eq!(rendered["id"], "1700000000000-3");
        assert!(rendered.get("updatedFields").is_none());
        assert_eq!(rendered["charger"]["id"], "c");
    }

    #[test]
    fn test_event_has_base_fields() {
        let now = "2026-06-01T07:00:00Z".parse().unwrap_or_default();
        let rendered = test_event(now, "2024-10-01");
        assert_eq!(rendered["event"], TEST_EVENT);
        assert_eq!(rendered["createdAt"], "2026-06-01T07:00:00.000Z");
        assert!(rendered["id"].as_str().is_some_and(|id| id.len() == 36));
    }
}
