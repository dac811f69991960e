//! Vendor-level resources: `GET /health/{vehicles|chargers|batteries|hvacs|meters|inverters}`,
//! `GET /integrations`, `GET /interventions` and `GET /interventions/{interventionId}`.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `GET /health/{type}` | 200 the vendors serving that device type, with status | 404 (unknown type), 503 |
//! | `GET /integrations?assetTypes=` | 200 supported vendors with asset types and scopes | 400, 503 |
//! | `GET /interventions?language=&vendorType=&vendor=` | 200 the catalogue | 400, 503 |
//! | `GET /interventions/{id}` | 200 one intervention | 404, 400, 503 |
//!
//! This crate knows no vendor: the gateway injects a [`VendorHealth`] built over the
//! scheduler's registered adapters and vendor gates. Without one the routes answer 503
//! rather than pretending every vendor is healthy.
//!
//! Status of a vendor (decided by the injected implementation, see the gateway): `OUTAGE` while
//! its circuit breaker is open or half-open, `ELEVATED_ERROR_RATE` while its recent failed
//! share is elevated (the scheduler's `error_rate` module documents window and threshold),
//! else `READY`. `linkingStatus` equals `status` because linking talks to the same vendor
//! cloud, and `portalName` is the vendor's display name (we know no separate app name).
//!
//! Intervention texts (`resolution.title` and `resolution.description`) are served in the
//! `language` asked for when the injected [`VendorHealth`] has them in it
//! ([`VendorHealth::languages`]; the gateway's table holds en-US, de-DE, nb-NO, fr-FR, sv-SE
//! and es-ES). The parameter takes the document's BCP 47 codes ([`LANGUAGES`], matched
//! without regard to case): a code without translations, or no `language` at all, falls back
//! to `en-US` as the document says. A value that is not one of those codes is outside the
//! parameter's schema and answers 400 naming `language`, like the other enumerated query
//! parameters here (`vendorType`). `Content-Language` names the language served.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use oemgate_core::{Intervention, VendorType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiState;
use crate::link::SCOPES;
use crate::openapi::{Op, Routes};
use crate::problem::Problem;

/// How a vendor is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VendorStatus {
    /// Operating normally.
    Ready,
    /// More calls than usual fail.
    ElevatedErrorRate,
    /// The vendor is unreachable (its breaker is open).
    Outage,
}

/// One registered vendor and its current status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorReport {
    /// The vendor as the API spells it ("TESLA").
    pub vendor: String,
    /// A name for humans ("Tesla").
    pub display_name: String,
    /// The device classes it serves.
    pub device_types: Vec<VendorType>,
    /// Its status now.
    pub status: VendorStatus,
}

/// What the API needs to know about vendors, injected by the gateway.
pub trait VendorHealth: Send + Sync {
    /// Every registered vendor with its status now, in a stable order.
    fn vendors(&self) -> Vec<VendorReport>;
    /// The interventions the registered adapters can name (en-US texts).
    fn interventions(&self) -> Vec<Intervention>;
    /// The languages [`VendorHealth::interventions_in`] has texts in, [`FALLBACK_LANGUAGE`]
    /// included (only that one by default).
    fn languages(&self) -> Vec<&'static str> {
        vec![FALLBACK_LANGUAGE]
    }
    /// The interventions with their texts in `language`, one of
    /// [`VendorHealth::languages`] (the en-US texts by default).
    fn interventions_in(&self, language: &str) -> Vec<Intervention> {
        let _ = language;
        self.interventions()
    }
}

/// The language interventions are served in when no other applies.
pub const FALLBACK_LANGUAGE: &str = "en-US";

/// The values the document allows for `language` on the intervention routes.
pub const LANGUAGES: [&str; 17] = [
    "en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-PT", "lv-LV", "lt-LT", "nl-NL",
    "nl-BE", "nb-NO", "pl-PL", "sv-SE", "da-DK", "fi-FI", "ro-RO",
];

/// The language to serve for a `language` parameter: the code asked for when `available`
/// has it, else [`FALLBACK_LANGUAGE`]; 400 for a value that is no documented code.
pub fn served_language(
    requested: Option<&str>,
    available: &[&'static str],
) -> Result<&'static str, Problem> {
    let Some(requested) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(FALLBACK_LANGUAGE);
    };
    let Some(code) = LANGUAGES.iter().find(|code| code.eq_ignore_ascii_case(requested)) else {
        return Err(Problem::bad_request(format!(
            "\"language\" must be one of {}; got {requested:?}.",
            LANGUAGES.join(", ")
        )));
    };
    Ok(available.iter().copied().find(|a| a == code).unwrap_or(FALLBACK_LANGUAGE))
}

fn injected(state: &ApiState) -> Result<&Arc<dyn VendorHealth>, Problem> {
    state
        .vendor_health
        .as_ref()
        .ok_or_else(|| Problem::unavailable("Vendor health is not available on this server."))
}

fn entry(report: &VendorReport) -> serde_json::Map<String, Value> {
    let status = json!(report.status);
    let mut map = serde_json::Map::new();
    map.insert("vendor".into(), json!(report.vendor));
    map.insert("displayName".into(), json!(report.display_name));
    map.insert("portalName".into(), json!(report.display_name));
    map.insert("status".into(), status.clone());
    map.insert("linkingStatus".into(), status);
    map
}

/// `GET /health/{plural}`: the vendors of one device class with their status.
async fn health(state: &ApiState, device_type: VendorType) -> Result<Json<Vec<Value>>, Problem> {
    let vendors = injected(state)?.vendors();
    Ok(Json(
        vendors
            .iter()
            .filter(|v| v.device_types.contains(&device_type))
            .map(|v| Value::Object(entry(v)))
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationsQuery {
    asset_types: Option<String>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(q)| q).map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
}

fn vendor_type(field: &str, value: &str) -> Result<VendorType, Problem> {
    value.trim().parse::<VendorType>().map_err(|_| {
        Problem::bad_request(format!(
            "\"{field}\" must be one of vehicle, charger, hvac, inverter, battery, meter; got {value:?}."
        ))
    })
}

/// `GET /integrations`.
async fn integrations(
    State(state): State<ApiState>,
    q: Result<Query<IntegrationsQuery>, QueryRejection>,
) -> Result<Json<Vec<Value>>, Problem> {
    let q = query(q)?;
    let wanted: Option<Vec<VendorType>> = match q.asset_types.as_deref() {
        None | Some("") => None,
        Some(list) => {
            Some(list.split(',').map(|t| vendor_type("assetTypes", t)).collect::<Result<_, _>>()?)
        }
    };
    let vendors = injected(&state)?.vendors();
    let mut out = Vec::new();
    for report in &vendors {
        let types: Vec<VendorType> = report
            .device_types
            .iter()
            .copied()
            .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(t)))
            .collect();
        if types.is_empty() {
            continue;
        }
        let mut names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        // The scopes a link may ask for that concern the vendor's asset types.
        let scopes: Vec<&str> = SCOPES
            .iter()
            .copied()
            .filter(|s| names.iter().any(|n| s.split(':').next() == Some(n)))
            .collect();
        let mut map = entry(report);
        map.insert("assetTypes".into(), json!(names));
        map.insert("scopes".into(), json!(scopes));
        out.push(Value::Object(map));
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InterventionQuery {
    language: Option<String>,
    vendor_type: Option<String>,
    vendor: Option<String>,
}

fn localized(body: Value, language: &'static str) -> Response {
    ([(header::CONTENT_LANGUAGE, language)], Json(body)).into_response()
}

/// The interventions the query selects, in the language served (named too).
fn filtered(
    state: &ApiState,
    q: &InterventionQuery,
) -> Result<(Vec<Intervention>, &'static str), Problem> {
    let vendor_type = q.vendor_type.as_deref().map(|t| vendor_type("vendorType", t)).transpose()?;
    let health = injected(state)?;
    let language = served_language(q.language.as_deref(), &health.languages())?;
    let all = health.interventions_in(language);
    let selected = all
        .into_iter()
        .filter(|i| vendor_type.is_none_or(|t| i.vendor_type == Some(t)))
        .filter(|i| q.vendor.as_deref().is_none_or(|v| i.vendor.is_some_and(|iv| iv.as_str() == v)))
        .collect();
    Ok((selected, language))
}

/// `GET /interventions`.
async fn list_interventions(
    State(state): State<ApiState>,
    q: Result<Query<InterventionQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = query(q)?;
    let (list, language) = filtered(&state, &q)?;
    Ok(localized(json!(list), language))
}

/// `GET /interventions/{interventionId}`.
async fn get_intervention(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<InterventionQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let q = query(q)?;
    let (list, language) = filtered(&state, &q)?;
    match list.into_iter().find(|i| i.id == id) {
        Some(found) => Ok(localized(json!(found), language)),
        None => Err(Problem::not_found(format!("No intervention with id {id:?} was found."))),
    }
}

/// The routes (behind the bearer check).
pub fn routes() -> Routes {
    let status = json!({"type": "string", "enum": ["READY", "ELEVATED_ERROR_RATE", "OUTAGE"]});
    let vendor = json!({
        "type": "object",
        "required": ["vendor", "displayName", "portalName", "status", "linkingStatus"],
        "properties": {
            "vendor": {"type": "string"},
            "displayName": {"type": "string"},
            "portalName": {"type": "string"},
            "status": status,
            "linkingStatus": status
        }
    });
    let mut integration = vendor.clone();
    integration["required"] = json!([
        "vendor",
        "displayName",
        "portalName",
        "status",
        "linkingStatus",
        "assetTypes",
        "scopes"
    ]);
    integration["properties"]["assetTypes"] = json!({"type": "array", "items": {"type": "string"}});
    integration["properties"]["scopes"] = json!({"type": "array", "items": {"type": "string"}});
    let language = "The texts' language; one without translations falls back to en-US \
        (`Content-Language` names the one served).";
    let mut routes = Routes::new();
    for c in crate::devices::NAMED_COLLECTIONS {
        let device_type = c.device_type;
        routes = routes.get(
            &format!("/health/{}", c.plural),
            Op::new(
                &format!("health{}", c.title),
                "Health",
                &format!("Vendors of {} and their status", c.plural),
            )
            .describe(
                "READY, ELEVATED_ERROR_RATE (many recent vendor calls failed) or OUTAGE (the \
                     vendor's circuit breaker is open).",
            )
            .ok_schema(200, "The vendors.", json!({"type": "array", "items": vendor}))
            .problems(&[503]),
            move |State(state): State<ApiState>| async move { health(&state, device_type).await },
        );
    }
    routes
        .get(
            "/integrations",
            Op::new("listIntegrations", "Health", "Supported vendors per asset type")
                .query(
                    "assetTypes",
                    json!({"type": "string"}),
                    "Comma-separated asset types (vehicle, charger, hvac, inverter, battery, meter).",
                )
                .ok_schema(200, "The integrations.", json!({"type": "array", "items": integration}))
                .problems(&[503]),
            |State(state): State<ApiState>, q: Result<Query<IntegrationsQuery>, QueryRejection>| {
                integrations(State(state), q)
            },
        )
        .get(
            "/interventions",
            Op::new("listInterventions", "Interventions", "List interventions")
                .query("language", json!({"type": "string", "enum": LANGUAGES}), language)
                .query("vendorType", json!({"type": "string"}), "Only those of this device type.")
                .query("vendor", json!({"type": "string"}), "Only those of this vendor.")
                .ok_list_plain::<Intervention>("The interventions.")
                .problems(&[503]),
            |State(state): State<ApiState>, q: Result<Query<InterventionQuery>, QueryRejection>| {
                list_interventions(State(state), q)
            },
        )
        .get(
            "/interventions/{interventionId}",
            Op::new("getIntervention", "Interventions", "Get an intervention")
                .path("interventionId", "ID of the intervention.")
                .query("language", json!({"type": "string", "enum": LANGUAGES}), language)
                .ok::<Intervention>(200, "The intervention.")
                .problems(&[503]),
            |State(state): State<ApiState>,
             path: Path<String>,
             q: Result<Query<InterventionQuery>, QueryRejection>| {
                get_intervention(State(state), path, q)
            },
        )
}
