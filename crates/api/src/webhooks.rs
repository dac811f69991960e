//! Webhooks: a client's subscriptions to change events (delivery is `oemgate-webhooks`).
//!
//! | route | success | failures |
//! |---|---|---|
//! | `POST /webhooks` `{url, secret, events?, apiVersion?, authentication?}` | 200 webhook | 400, 503 |
//! | `GET /webhooks` | 200 the client's webhooks, paginated | 400, 503 |
//! | `GET /webhooks/{webhookId}` | 200 webhook | 404, 503 |
//! | `PATCH /webhooks/{webhookId}` (any of the fields) | 200 webhook | 400, 404, 503 |
//! | `DELETE /webhooks/{webhookId}` | 204 | 404, 503 |
//! | `POST /webhooks/{webhookId}/test` | 200 `{status, description, response}` | 404, 503 |
//!
//! The served webhook is `{id, url, events, lastSuccess, isActive, createdAt, apiVersion,
//! authentication: {headerName}|null}`: the secret and the header value are never returned.
//! A URL another webhook of the client already uses answers 400 ("already exists"). URLs
//! follow the rules of [`oemgate_webhooks::url_rules`] under the injected sender's policy; the
//! routes answer 503 without a sender. A PATCH, and a test the receiver acknowledges,
//! reactivate the webhook. Another client's webhook answers 404 like an unknown one.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use oemgate_store::{PageRequest, ResourceOwner, ResourceRecord};
use oemgate_webhooks::model::{self, Authentication, KIND, Webhook};
use oemgate_webhooks::{Sender, outbox};
use serde_json::{Map, Value, json};

use crate::ApiState;
use crate::auth::ClientId;
use crate::body::{object, only_fields};
use crate::devices;
use crate::openapi::{Op, Routes};
use crate::pagination::{PageQuery, Paginated, PaginationCursors};
use crate::problem::Problem;
use crate::resources::put_retrying;

const FIELDS: [&str; 5] = ["url", "secret", "events", "apiVersion", "authentication"];

fn sender(state: &ApiState) -> Result<Arc<Sender>, Problem> {
    state
        .webhooks
        .clone()
        .ok_or_else(|| Problem::unavailable("Webhooks are not available on this server."))
}

fn invalid(field: &str, why: impl std::fmt::Display) -> Problem {
    Problem::bad_request(format!("Field \"{field}\" {why}."))
}

/// The fields present in a request body, validated.
#[derive(Default)]
struct Fields {
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    /// `Some(None)`: set to null (the client's version).
    api_version: Option<Option<String>>,
    /// `Some(None)`: removed.
    authentication: Option<Option<Authentication>>,
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>, Problem> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(field, format!("must be a string, got {other}"))),
    }
}

fn fields(sender: &Sender, body: &Bytes) -> Result<Fields, Problem> {
    let body = object(body)?;
    only_fields(&body, &FIELDS)?;
    let url = string_field(&body, "url")?;
    if let Some(url) = &url {
        sender.policy().check(url).map_err(|err| invalid("url", err))?;
    }
    let secret = string_field(&body, "secret")?;
    if let Some(secret) = &secret {
        model::check_secret(secret).map_err(|err| invalid("secret", err))?;
    }
    let events = match body.get("events") {
        None => None,
        Some(Value::Array(items)) => {
            let names = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| invalid("events", "must be an array of event names"))?;
            model::check_events(&names).map_err(|err| invalid("events", err))?;
            Some(names)
        }
        Some(other) => return Err(invalid("events", format!("must be an array, got {other}"))),
    };
    let api_version = match body.get("apiVersion") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(v)) if crate::SUPPORTED_VERSIONS.contains(&v.as_str()) => {
            Some(Some(v.clone()))
        }
        Some(other) => {
            return Err(invalid(
                "apiVersion",
                format!("must be null or one of {:?}, got {other}", crate::SUPPORTED_VERSIONS),
            ));
        }
    };
    let authentication = match body.get("authentication") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Object(auth)) => {
            if let Some(extra) =
                auth.keys().find(|k| !["headerName", "headerValue"].contains(&k.as_str()))
            {
                return Err(invalid("authentication", format!("has an unknown field {extra:?}")));
            }
            let part = |name: &str| {
                auth.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("authentication", format!("needs {name:?} as a string")))
            };
            let auth = Authentication {
                header_name: part("headerName")?,
                header_value: part("headerValue")?,
            };
            model::check_authentication(&auth).map_err(|err| invalid("authentication", err))?;
            Some(Some(auth))
        }
        Some(other) => {
            return Err(invalid(
                "authentication",
                format!("must be an object or null, got {other}"),
            ));
        }
    };
    Ok(Fields { url, secret, events, api_version, authentication })
}

/// Every webhook of the client.
async fn all_of(state: &ApiState, client: &ClientId) -> Result<Vec<ResourceRecord>, Problem> {
    let owner = ResourceOwner::Client(client.0.clone());
    let mut request =
        PageRequest { page_size: oemgate_store::MAX_PAGE_SIZE, ..PageRequest::default() };
    let mut all = Vec::new();
    loop {
        let page = state.store.list_resources(KIND, &owner, &request).await?;
        all.extend(page.items);
        match page.after {
            Some(after) => request.after = Some(after),
            None => return Ok(all),
        }
    }
}

/// 400 when another of the client's webhooks (not `except`) already uses `url`.
async fn check_unique(
    state: &ApiState,
    client: &ClientId,
    url: &str,
    except: Option<&str>,
) -> Result<(), Problem> {
    let taken = all_of(state, client).await?.iter().any(|record| {
        Some(record.id.as_str()) != except
            && record.body.get("url").and_then(Value::as_str) == Some(url)
    });
    if taken {
        return Err(Problem::bad_request(format!(
            "Field \"url\": a webhook for {url:?} already exists."
        )));
    }
    Ok(())
}

fn decode(record: &ResourceRecord) -> Result<Webhook, Problem> {
    Webhook::from_record(record).map_err(|err| {
        tracing::error!(webhook = %record.id, error = %err, "undecodable webhook");
        Problem::internal("The webhook could not be read.")
    })
}

async fn served(state: &ApiState, webhook: &Webhook) -> Result<Value, Problem> {
    let delivery = state.store.get_webhook_state(&webhook.id).await?;
    Ok(webhook.to_api(delivery.as_ref()))
}

async fn webhook_for_client(
    state: &ApiState,
    client: &ClientId,
    id: &str,
) -> Result<(ResourceRecord, Webhook), Problem> {
    match state.store.get_resource(KIND, id).await? {
        Some(record) if record.client_id == client.0 => {
            let webhook = decode(&record)?;
            Ok((record, webhook))
        }
        _ => Err(Problem::not_found_titled(
            "Webhook not found",
            format!("Could not find webhook {id:?}."),
        )),
    }
}

async fn create(state: &ApiState, client: &ClientId, body: &Bytes) -> Result<Json<Value>, Problem> {
    let sender = sender(state)?;
    let fields = fields(&sender, body)?;
    let url = fields.url.ok_or_else(|| Problem::bad_request("Field \"url\" is required."))?;
    let secret =
        fields.secret.ok_or_else(|| Problem::bad_request("Field \"secret\" is required."))?;
    check_unique(state, client, &url, None).await?;
    let webhook = Webhook {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.0.clone(),
        url,
        secret,
        events: fields.events.unwrap_or_else(|| vec!["*".to_owned()]),
        api_version: fields.api_version.flatten(),
        authentication: fields.authentication.flatten(),
        created_at: state.clock.now(),
    };
    let record = webhook.to_record().map_err(|err| Problem::internal(err.to_string()))?;
    // The delivery state first: the dispatcher never sees a webhook without its cursor.
    outbox::create_state(state.store.as_ref(), &webhook.id).await?;
    state.store.put_resource(record, 0).await?;
    Ok(Json(served(state, &webhook).await?))
}

async fn update(
    state: &ApiState,
    client: &ClientId,
    id: &str,
    body: &Bytes,
) -> Result<Json<Value>, Problem> {
    let sender = sender(state)?;
    let fields = &fields(&sender, body)?;
    let stored = put_retrying(state, "Webhook", id, || async move {
        let (record, mut webhook) = webhook_for_client(state, client, id).await?;
        if let Some(url) = &fields.url {
            check_unique(state, client, url, Some(id)).await?;
            webhook.url.clone_from(url);
        }
        if let Some(secret) = &fields.secret {
            webhook.secret.clone_from(secret);
        }
        if let Some(events) = &fields.events {
            webhook.events.clone_from(events);
        }
        if let Some(version) = &fields.api_version {
            webhook.api_version.clone_from(version);
        }
        if let Some(auth) = &fields.authentication {
            webhook.authentication.clone_from(auth);
        }
        let mut updated = webhook.to_record().map_err(|err| Problem::internal(err.to_string()))?;
        updated.version = record.version;
        Ok((updated, record.version))
    })
    .await?;
    // The webhook just stored, read back from its record.
    let webhook = decode(&stored)?;
    outbox::reactivate(state.store.as_ref(), id, None).await?;
    Ok(Json(served(state, &webhook).await?))
}

async fn delete(state: &ApiState, client: &ClientId, id: &str) -> Result<StatusCode, Problem> {
    sender(state)?;
    webhook_for_client(state, client, id).await?;
    state.store.delete_resource(KIND, id).await?;
    state.store.delete_webhook_state(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test(state: &ApiState, client: &ClientId, id: &str) -> Result<Json<Value>, Problem> {
    let sender = sender(state)?;
    let (_, webhook) = webhook_for_client(state, client, id).await?;
    let version = match &webhook.api_version {
        Some(version) => version.clone(),
        None => state
            .store
            .get_client(&client.0)
            .await?
            .map(|c| c.api_version)
            .unwrap_or_else(|| crate::SUPPORTED_VERSIONS[0].to_owned()),
    };
    let now = state.clock.now();
    let (ok, answer) = sender.test(&webhook, &version, now).await;
    if ok {
        outbox::reactivate(state.store.as_ref(), id, Some(now)).await?;
    }
    Ok(Json(answer))
}

async fn list(
    state: &ApiState,
    client: &ClientId,
    request: PageRequest,
) -> Result<Json<Paginated<Value>>, Problem> {
    sender(state)?;
    let owner = ResourceOwner::Client(client.0.clone());
    let page = state.store.list_resources(KIND, &owner, &request).await?;
    let mut data = Vec::with_capacity(page.items.len());
    for record in &page.items {
        data.push(served(state, &decode(record)?).await?);
    }
    Ok(Json(Paginated {
        data,
        pagination: PaginationCursors { after: page.after, before: page.before },
    }))
}

/// The six webhook routes.
pub fn routes() -> Routes {
    let events = json!({"type": "array", "items": {"type": "string", "enum": model::EVENTS}});
    let authentication = json!({
        "type": ["object", "null"],
        "required": ["headerName", "headerValue"],
        "additionalProperties": false,
        "properties": {
            "headerName": {"type": "string", "pattern": "^[a-z0-9-_]+$", "maxLength": 128},
            "headerValue": {"type": "string", "maxLength": 256}
        },
        "description": "A header sent with every delivery; null removes it."
    });
    let body = |required: bool| {
        let mut schema = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "url": {"type": "string", "minLength": 8, "maxLength": 200,
                        "description": "HTTPS; no user information, no internal IP literals."},
                "secret": {"type": "string", "minLength": 6, "maxLength": 256,
                           "description": "The HMAC-SHA1 key of x-enode-signature; never returned."},
                "events": events.clone(),
                "apiVersion": {"type": ["string", "null"], "enum": [crate::SUPPORTED_VERSIONS[0], null]},
                "authentication": authentication.clone()
            }
        });
        if required {
            schema["required"] = json!(["url", "secret"]);
        }
        schema
    };
    let webhook = json!({"$ref": "#/components/schemas/Webhook"});
    let webhook_schema = json!({
        "type": "object",
        "required": ["id", "url", "events", "lastSuccess", "isActive", "createdAt", "apiVersion", "authentication"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "lastSuccess": {"type": ["string", "null"], "format": "date-time"},
            "isActive": {"type": "boolean"},
            "createdAt": {"type": "string", "format": "date-time"},
            "apiVersion": {"type": ["string", "null"]},
            "authentication": {
                "type": ["object", "null"],
                "required": ["headerName"],
                "properties": {"headerName": {"type": "string"}}
            }
        }
    });
    let test_result = json!({
        "type": "object",
        "required": ["status", "description", "response"],
        "properties": {
            "status": {"type": "string", "enum": ["SUCCESS", "FAILURE"]},
            "description": {"type": "string"},
            "response": {
                "type": ["object", "null"],
                "required": ["code", "body", "headers"],
                "properties": {
                    "code": {"type": "integer"},
                    "body": {"type": "string"},
                    "headers": {"type": "array", "items": {"type": "string"}}
                },
                "description": "What the receiver answered; null when it did not answer."
            }
        }
    });
    let webhook_id = ("webhookId", "ID of the webhook.");
    Routes::new()
        .post(
            "/webhooks",
            Op::new("createWebhook", "Webhooks", "Create a webhook")
                .describe(
                    "Deliveries start with the events appended after creation. 400 also when \
                     the client already has a webhook for the URL.",
                )
                .with_schema("Webhook", webhook_schema)
                .body_schema(body(true))
                .ok_schema(200, "The new webhook.", webhook.clone())
                .problems(&[503]),
            |State(state): State<ApiState>, client: ClientId, body: Bytes| async move {
                create(&state, &client, &body).await
            },
        )
        .get(
            "/webhooks",
            Op::new("listWebhooks", "Webhooks", "List webhooks")
                .paged()
                .ok_list_of("A page of the client's webhooks.", webhook.clone())
                .problems(&[503]),
            |State(state): State<ApiState>,
             client: ClientId,
             q: Result<Query<PageQuery>, QueryRejection>| async move {
                let request = devices::query(q)?.to_request()?;
                list(&state, &client, request).await
            },
        )
        .get(
            "/webhooks/{webhookId}",
            Op::new("getWebhook", "Webhooks", "Get a webhook")
                .path(webhook_id.0, webhook_id.1)
                .ok_schema(200, "The webhook.", webhook.clone())
                .problems(&[503]),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                sender(&state)?;
                let (_, webhook) = webhook_for_client(&state, &client, &id).await?;
                served(&state, &webhook).await.map(Json)
            },
        )
        .patch(
            "/webhooks/{webhookId}",
            Op::new("updateWebhook", "Webhooks", "Update a webhook")
                .describe("Any of the creation fields; reactivates an inactive webhook.")
                .path(webhook_id.0, webhook_id.1)
                .body_schema(body(false))
                .ok_schema(200, "The updated webhook.", webhook)
                .problems(&[409, 503]),
            |State(state): State<ApiState>,
             client: ClientId,
             Path(id): Path<String>,
             body: Bytes| async move { update(&state, &client, &id, &body).await },
        )
        .delete(
            "/webhooks/{webhookId}",
            Op::new("deleteWebhook", "Webhooks", "Delete a webhook")
                .path(webhook_id.0, webhook_id.1)
                .empty(204, "Deleted; its pending events are not delivered.")
                .problems(&[503]),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                delete(&state, &client, &id).await
            },
        )
        .post(
            "/webhooks/{webhookId}/test",
            Op::new("testWebhook", "Webhooks", "Test a webhook")
                .describe(
                    "Sends one `enode:webhook:test` event, signed like every delivery, and \
                     reports the answer. A 2xx within 5 s reactivates an inactive webhook.",
                )
                .path(webhook_id.0, webhook_id.1)
                .ok_schema(200, "How the test delivery went.", test_result)
                .problems(&[503]),
            |State(state): State<ApiState>, client: ClientId, Path(id): Path<String>| async move {
                test(&state, &client, &id).await
            },
        )
}
