//! Pure JSON helpers: what changed between two snapshots, and how a partial read merges.

use serde_json::Value;

/// Fields that change on every read without the device changing; they never count as an
/// update on their own.
const VOLATILE: &[&str] = &["lastSeen", "lastUpdated"];

/// The dotted paths of leaf fields whose values differ between `old` and `new`
/// ("chargeState.batteryLevel"), sorted. Arrays compare as a whole.
pub fn updated_fields(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(old, new, &mut String::new(), &mut out);
    out.sort();
    out
}

fn walk(old: &Value, new: &Value, path: &mut String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                if VOLATILE.contains(&key.as_str()) {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    path,
                    out,
                );
                path.truncate(len);
            }
        }
        (a, b) if !same(a, b) => out.push(path.clone()),
        _ => {}
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Merges a read of a sleeping device into its last known state: a null in `partial` keeps
/// the known value (the vendor just did not say), anything else replaces it.
pub fn merge_known(known: &Value, partial: &Value) -> Value {
    match (known, partial) {
        (Value::Object(a), Value::Object(b)) => {
            let mut merged = a.clone();
            for (key, value) in b {
                let next = match a.get(key) {
                    Some(old) => merge_known(old, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        (old, Value::Null) => old.clone(),
        (_, new) => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_changed_leaves_and_ignores_timestamps() {
        let old = json!({"chargeState": {"batteryLevel": 50, "isCharging": false, "lastUpdated": "a"}, "lastSeen": "x"});
        let new = json!({"chargeState": {"batteryLevel": 51.0, "isCharging": false, "lastUpdated": "b"}, "lastSeen": "y"});
        assert_eq!(updated_fields(&old, &new), vec!["chargeState.batteryLevel"]);
        assert!(updated_fields(&old, &old).is_empty());
        let same_number = json!({"chargeState": {"batteryLevel": 50.0, "isCharging": false}});
        assert!(updated_fields(&old, &same_number).is_empty());
    }

    #[test]
    fn merge_keeps_known_values_where_the_read_is_null() {
        let known = json!({"isReachable": true, "chargeState": {"batteryLevel": 80, "range": 300}});
        let partial =
            json!({"isReachable": false, "chargeState": {"batteryLevel": null, "range": null}});
        assert_eq!(
            merge_known(&known, &partial),
            json!({"isReachable": false, "chargeState": {"batteryLevel": 80, "range": 300}})
        );
    }
}
