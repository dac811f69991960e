//! Linking: `POST /users/{userId}/link` and `POST /assets/{assetId}/relink`.
//!
//! Both validate the body, store a single-use [`LinkSession`] valid for [`LINK_SESSION_TTL`]
//! and answer `{linkUrl, linkToken}`. The token is 256 random bits; the store keeps only its
//! hash ([`link_token_hash`]). What happens at `linkUrl` (the vendor's auth flow) is not this
//! crate's business: the gateway injects a [`Linker`] that knows the vendors that can be
//! linked and where the link page lives. Without a linker the routes answer 503.
//!
//! | route | success | failures |
//! |---|---|---|
//! | `POST /users/{userId}/link` `{vendor?, vendorType?, scopes, language, redirectUri, colorScheme?}` | 200 `{linkUrl, linkToken}` | 400 naming the field, 404 (user of another client), 503 |
//! | `POST /assets/{assetId}/relink` `{language, redirectUri, colorScheme?}` | 200 `{linkUrl, linkToken}` | 400 (unknown asset, asset whose credentials are still valid, bad field), 503 |
//!
//! Validation follows the reference's `LinkUserPayload`: no unknown fields; `scopes` a
//! non-empty list of known scopes that includes `<type>:read:data` for every asset type it
//! touches (and for `vendorType` when given); `language` one of the Link UI locales or
//! `browser`; `redirectUri` an absolute URI of at most 500 characters; `vendor` one this
//! deployment can link, offering `vendorType` (or one of the types the scopes name).
//!
//! 403 `ConnectionsLimitReached` is not produced: oemgate has no per-client connection limit.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oemgate_core::VendorType;
use oemgate_store::LinkSession;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::ApiState;
use crate::auth::ClientId;
use crate::openapi::{Op, Routes};
use crate::problem::Problem;

/// How long a link session stays usable.
pub const LINK_SESSION_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The scopes a link may ask for.
pub const SCOPES: [&str; 14] = [
    "battery:control:operation_mode",
    "battery:read:data",
    "battery:read:location",
    "charger:control:charging",
    "charger:read:data",
    "hvac:control:mode",
    "hvac:read:data",
    "inverter:read:data",
    "inverter:read:location",
    "meter:read:data",
    "meter:read:location",
    "vehicle:control:charging",
    "vehicle:read:data",
    "vehicle:read:location",
];

/// The link page's languages (`browser` follows the user's `Accept-Language`).
pub const LANGUAGES: [&str; 19] = [
    "browser", "da-DK", "de-DE", "en-US", "en-GB", "es-ES", "fi-FI", "fr-FR", "it-IT", "ja-JP",
    "lv-LV", "lt-LT", "nb-NO", "nl-NL", "nl-BE", "pl-PL", "pt-PT", "ro-RO", "sv-SE",
];

/// The color schemes of the link page.
pub const COLOR_SCHEMES: [&str; 3] = ["system", "light", "dark"];

/// The longest `redirectUri` accepted.
pub const MAX_REDIRECT_URI: usize = 500;

/// A vendor this deployment can link, with the asset types it offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkableVendor {
    /// The vendor as the API spells it ("TESLA").
    pub vendor: String,
    /// The asset types its accounts can hold.
    pub types: Vec<VendorType>,
}

/// The vendor-specific half of linking, implemented by the gateway.
pub trait Linker: Send + Sync {
    /// The vendors a user can link on this deployment.
    fn vendors(&self) -> Vec<LinkableVendor>;
    /// The URL of the link page for a session token.
    fn link_url(&self, token: &str) -> String;
}

/// The response of both routes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkResponse {
    /// Where to send the user.
    pub link_url: String,
    /// The session token (for SDKs; also the last path segment of `linkUrl`).
    pub link_token: String,
}

/// The hash a link token is stored under.
pub fn link_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The linking routes (behind the bearer check).
pub fn routes() -> Routes {
    let presentation = json!({
        "language": {"type": "string", "enum": LANGUAGES,
                     "description": "Language of the link page (`browser`: the user's own)."},
        "redirectUri": {"type": "string", "maxLength": MAX_REDIRECT_URI,
                        "description": "Where the flow ends (http or https)."},
        "colorScheme": {"type": "string", "enum": COLOR_SCHEMES}
    });
    let mut link_props = presentation.clone();
    link_props["vendor"] = json!({"type": "string", "description": "Skip the vendor choice."});
    link_props["vendorType"] = json!({"type": "string",
        "enum": VendorType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()});
    link_props["scopes"] =
        json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": SCOPES}});
    let response = json!({
        "type": "object",
        "required": ["linkUrl", "linkToken"],
        "properties": {
            "linkUrl": {"type": "string", "description": "The link page; single use, valid 24 hours."},
            "linkToken": {"type": "string"}
        }
    });
    Routes::new()
        .post(
            "/users/{userId}/link",
            Op::new("linkUser", "Users", "Start linking a vendor account")
                .describe("Creates the user when the id is new.")
                .path("userId", "ID of the user.")
                .body_schema(json!({
                    "type": "object",
                    "required": ["scopes", "language", "redirectUri"],
                    "additionalProperties": false,
                    "properties": link_props
                }))
                .with_schema("LinkResponse", response)
                .ok_schema(
                    200,
                    "Where to send the user.",
                    crate::openapi::schema_ref("LinkResponse"),
                )
                .problems(&[403, 503]),
            link_user,
        )
        .post(
            "/assets/{assetId}/relink",
            Op::new("relinkAsset", "Users", "Relink the account of an asset")
                .path("assetId", "ID of a device whose account needs new credentials.")
                .body_schema(json!({
                    "type": "object",
                    "required": ["language", "redirectUri"],
                    "additionalProperties": false,
                    "properties": presentation
                }))
                .ok_schema(
                    200,
                    "Where to send the user.",
                    crate::openapi::schema_ref("LinkResponse"),
                )
                .problems(&[503]),
            relink_asset,
        )
}

fn linker(state: &ApiState) -> Result<&Arc<dyn Linker>, Problem> {
    state.linker.as_ref().ok_or_else(|| {
        Problem::unavailable("Linking is not available on this deployment (no link page).")
    })
}

/// The fields common to link and relink.
struct Presentation {
    language: String,
    redirect_uri: String,
    color_scheme: String,
}

fn object(body: &Bytes) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request("The request body must be a JSON object.")),
        Err(err) => Err(Problem::bad_request(format!("The request body is not valid JSON: {err}"))),
    }
}

fn reject_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Problem> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => Err(Problem::bad_request(format!(
            "Field \"{field}\" is not allowed (allowed: {}).",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn string<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Problem> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(Problem::bad_request(format!("Field \"{field}\" must be a string, got {other}.")))
        }
    }
}

fn required<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, Problem> {
    string(body, field)?
        .ok_or_else(|| Problem::bad_request(format!("Field \"{field}\" is required.")))
}

fn one_of<'a>(field: &str, value: &'a str, allowed: &[&str]) -> Result<&'a str, Problem> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(Problem::bad_request(format!(
            "Field \"{field}\" must be one of {}, got {value:?}.",
            allowed.join(", ")
        )))
    }
}

/// An absolute URI: a scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`), a
/// colon and a non-empty rest without whitespace or control characters. Custom schemes
/// (`myapp://done`) are allowed: mobile apps are redirected that way.
fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let rest_ok = !rest.is_empty()
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
        && (!matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            || rest.strip_prefix("//").is_some_and(|r| {
                !r.is_empty() && !r.starts_with('/') && !r.starts_with('?') && !r.starts_with('#')
            }));
    scheme_ok && rest_ok
}

fn presentation(body: &Map<String, Value>) -> Result<Presentation, Problem> {
    let language = one_of("language", required(body, "language")?, &LANGUAGES)?.to_string();
    let redirect_uri = required(body, "redirectUri")?;
    if redirect_uri.chars().count() > MAX_REDIRECT_URI {
        return Err(Problem::bad_request(format!(
            "Field \"redirectUri\" must be at most {MAX_REDIRECT_URI} characters long."
        )));
    }
    if !is_absolute_uri(redirect_uri) {
        return Err(Problem::bad_request(format!(
            "Field \"redirectUri\" must be an absolute URI, got {redirect_uri:?}."
        )));
    }
    let color_scheme = match string(body, "colorScheme")? {
        Some(value) => one_of("colorScheme", value, &COLOR_SCHEMES)?,
        None => "system",
    }
    .to_string();
    Ok(Presentation { language, redirect_uri: redirect_uri.to_string(), color_scheme })
}

/// The validated body of `POST /users/{userId}/link`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRequest {
    /// The chosen vendor.
    pub vendor: Option<String>,
    /// The chosen asset type.
    pub vendor_type: Option<VendorType>,
    /// The scopes, deduplicated, in request order.
    pub scopes: Vec<String>,
    /// The language.
    pub language: String,
    /// Where the flow ends.
    pub redirect_uri: String,
    /// The color scheme.
    pub color_scheme: String,
}

/// Parses and validates a link body against the vendors this deployment can link.
pub fn parse_link(body: &Bytes, vendors: &[LinkableVendor]) -> Result<LinkRequest, Problem> {
    let body = object(body)?;
    reject_unknown(
        &body,
        &["vendor", "vendorType", "scopes", "language", "redirectUri", "colorScheme"],
    )?;
    let scopes = match body.get("scopes") {
        None => return Err(Problem::bad_request("Field \"scopes\" is required.")),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(Problem::bad_request("Field \"scopes\" must list at least one scope."));
        }
        Some(Value::Array(items)) => {
            let mut scopes: Vec<String> = Vec::new();
            for item in items {
                let scope = item.as_str().filter(|s| SCOPES.contains(s)).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "Field \"scopes\" contains {item}, which is not one of {}.",
                        SCOPES.join(", ")
                    ))
                })?;
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_string());
                }
            }
            scopes
        }
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "Field \"scopes\" must be an array of scopes, got {other}."
            )));
        }
    };
    let vendor_type = match string(&body, "vendorType")? {
        Some(value) => {
            let names: Vec<&str> = VENDOR_TYPES.iter().map(VendorType::as_str).collect();
            let value = one_of("vendorType", value, &names)?;
            VENDOR_TYPES.iter().copied().find(|t| t.as_str() == value)
        }
        None => None,
    };
    // Every asset type the request touches needs its read:data scope.
    let mut types: Vec<VendorType> = VENDOR_TYPES
        .iter()
        .copied()
        .filter(|t| scopes.iter().any(|s| s.split(':').next() == Some(t.as_str())))
        .collect();
    if let Some(t) = vendor_type
        && !types.contains(&t)
    {
        types.push(t);
    }
    for t in &types {
        let needed = format!("{}:read:data", t.as_str());
        if !scopes.contains(&needed) {
            return Err(Problem::bad_request(format!(
                "Field \"scopes\" must include \"{needed}\" to link a {}.",
                t.as_str()
            )));
        }
    }
    let wanted: Vec<VendorType> = match vendor_type {
        Some(t) => vec![t],
        None => types.clone(),
    };
    let vendor = match string(&body, "vendor")? {
        None => {
            if !vendors.iter().any(|v| v.types.iter().any(|t| wanted.contains(t))) {
                return Err(Problem::bad_request(
                    "Field \"scopes\" names no asset type any vendor of this deployment offers.",
                ));
            }
            None
        }
        Some(name) => {
            let Some(found) = vendors.iter().find(|v| v.vendor == name) else {
                let names: Vec<&str> = vendors.iter().map(|v| v.vendor.as_str()).collect();
                return Err(Problem::bad_request(format!(
                    "Field \"vendor\" must be one of {}, got {name:?}.",
                    names.join(", ")
                )));
            };
            if !found.types.iter().any(|t| wanted.contains(t)) {
                let offered: Vec<&str> = found.types.iter().map(VendorType::as_str).collect();
                let field = if vendor_type.is_some() { "vendorType" } else { "scopes" };
                return Err(Problem::bad_request(format!(
                    "Field \"{field}\" asks for {} but {name} offers only {}.",
                    wanted.iter().map(VendorType::as_str).collect::<Vec<_>>().join(", "),
                    offered.join(", ")
                )));
            }
            Some(name.to_string())
        }
    };
    let p = presentation(&body)?;
    Ok(LinkRequest {
        vendor,
        vendor_type,
        scopes,
        language: p.language,
        redirect_uri: p.redirect_uri,
        color_scheme: p.color_scheme,
    })
}

const VENDOR_TYPES: [VendorType; 6] = [
    VendorType::Vehicle,
    VendorType::Charger,
    VendorType::Hvac,
    VendorType::Inverter,
    VendorType::Battery,
    VendorType::Meter,
];

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn open_session(
    state: &ApiState,
    linker: &dyn Linker,
    session: impl FnOnce(String) -> LinkSession,
) -> Result<Json<LinkResponse>, Problem> {
    let token = new_token();
    state.store.put_link_session(session(link_token_hash(&token))).await?;
    Ok(Json(LinkResponse { link_url: linker.link_url(&token), link_token: token }))
}

/// `POST /users/{userId}/link`.
async fn link_user(
    State(state): State<ApiState>,
    Extension(client): Extension<ClientId>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<LinkResponse>, Problem> {
    let linker = Arc::clone(linker(&state)?);
    let request = parse_link(&body, &linker.vendors())?;
    if user_id.trim().is_empty() {
        return Err(Problem::bad_request("Path parameter \"userId\" must not be empty."));
    }
    crate::access::ensure_user(&state, &client, &user_id).await?;
    let now = state.clock.now();
    open_session(&state, linker.as_ref(), |token_hash| LinkSession {
        token_hash,
        client_id: client.0.clone(),
        user_id,
        vendor: request.vendor,
        vendor_type: request.vendor_type,
        scopes: request.scopes,
        language: request.language,
        redirect_uri: request.redirect_uri,
        color_scheme: request.color_scheme,
        relink_account_id: None,
        created_at: now,
        expires_at: now + LINK_SESSION_TTL,
    })
    .await
}

/// `POST /assets/{assetId}/relink`: a session bound to the asset's vendor account, whose
/// credentials were invalidated (or removed); the flow replaces them.
async fn relink_asset(
    State(state): State<ApiState>,
    Extension(client): Extension<ClientId>,
    Path(asset_id): Path<String>,
    body: Bytes,
) -> Result<Json<LinkResponse>, Problem> {
    let linker = Arc::clone(linker(&state)?);
    let body = object(&body)?;
    reject_unknown(&body, &["language", "redirectUri", "colorScheme"])?;
    let p = presentation(&body)?;
    // The reference answers 400 (not 404) for an asset that cannot be relinked.
    let not_found = || Problem::bad_request(format!("Asset {asset_id:?} was not found."));
    let Some(record) = state.store.get_device(&asset_id).await? else {
        return Err(not_found());
    };
    let record =
        crate::access::device_for_client(&state, &client, record.device.device_type, &asset_id)
            .await
            .map_err(|_| not_found())?;
    // Relinking is for accounts whose credentials stopped working (or were removed).
    if let Some(account) = state.store.get_account(&record.account_id).await?
        && account.invalid_since.is_none()
    {
        return Err(Problem::bad_request(format!(
            "Asset {asset_id:?} is already linked: its vendor credentials are valid."
        )));
    }
    let now = state.clock.now();
    open_session(&state, linker.as_ref(), |token_hash| LinkSession {
        token_hash,
        client_id: client.0.clone(),
        user_id: record.device.user_id.clone(),
        vendor: Some(record.vendor.clone()),
        vendor_type: Some(record.device.device_type),
        scopes: vec![format!("{}:read:data", record.device.device_type.as_str())],
        language: p.language,
        redirect_uri: p.redirect_uri,
        color_scheme: p.color_scheme,
        relink_account_id: Some(record.account_id.clone()),
        created_at: now,
        expires_at: now + LINK_SESSION_TTL,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris() {
        for ok in ["https://app.example/cb", "http://127.0.0.1:9/x?y=1", "myapp://done", "urn:x"] {
            assert!(is_absolute_uri(ok), "{ok}");
        }
        for bad in
            ["/relative", "app.example/cb", "https:///x", "https://", "1http://x", "", "http://a b"]
        {
            assert!(!is_absolute_uri(bad), "{bad}");
        }
    }
}
