//! The OpenAPI 3.1 document, generated from the route registrations themselves.
//!
//! Every route is mounted through [`Routes`], which takes the handler and its [`Op`] (the
//! operation's documentation) in one call: a route cannot exist without its documentation, and
//! a documented operation cannot exist without its route. Schemas of the Enode-style model come
//! from the types the handlers serialize (`utoipa::ToSchema` derived on `oemgate_core`'s model);
//! resources the API stores as validated JSON (locations, schedules, tariffs, policies) carry
//! their schema next to their validator, in their module.
//!
//! What every operation gets without saying so:
//! - the optional `Enode-Version` request header (one of [`crate::SUPPORTED_VERSIONS`]) and the
//!   `Enode-Version` response header;
//! - a 400 problem (an unsupported `Enode-Version` is refused before any handler runs);
//! - unless the operation is public, the bearer security requirement and a 401 problem;
//! - a 404 problem when the path has parameters, and a 413 problem when it takes a body.
//!
//! `GET /openapi.json` serves the document; the test `openapi_document_is_in_sync` keeps the
//! committed copy `openapi/openapi.json` equal to what the code generates.

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::ApiState;

/// Where component schemas live in the document.
const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// A `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMA_PREFIX}{name}") })
}

/// Component schemas collected while operations are described.
#[derive(Clone, Debug, Default)]
pub struct Schemas(BTreeMap<String, Value>);

impl Schemas {
    /// Registers `T` (and every schema it refers to); returns a `$ref` to it.
    pub fn of<T: ToSchema>(&mut self) -> Value {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        for (name, schema) in nested {
            self.insert(&name, to_json(&schema));
        }
        let name = T::name();
        self.insert(&name, to_json(&T::schema()));
        schema_ref(&name)
    }

    /// Registers a hand-written schema under `name`; returns a `$ref` to it.
    pub fn named(&mut self, name: &str, schema: Value) -> Value {
        self.insert(name, schema);
        schema_ref(name)
    }

    fn insert(&mut self, name: &str, schema: Value) {
        self.0.entry(name.to_string()).or_insert(schema);
    }

    fn merge(&mut self, other: Schemas) {
        for (name, schema) in other.0 {
            self.insert(&name, schema);
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    // utoipa's schema objects are plain data; serializing them cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The documentation of one operation.
#[derive(Clone, Debug)]
pub struct Op {
    id: String,
    tag: String,
    summary: String,
    description: Option<String>,
    params: Vec<Value>,
    body: Option<Value>,
    responses: BTreeMap<u16, Value>,
    schemas: Schemas,
    public: bool,
}

impl Op {
    /// An operation with its `operationId`, tag and one-line summary.
    pub fn new(id: &str, tag: &str, summary: &str) -> Self {
        Self {
            id: id.to_string(),
            tag: tag.to_string(),
            summary: summary.to_string(),
            description: None,
            params: Vec::new(),
            body: None,
            responses: BTreeMap::new(),
            schemas: Schemas::default(),
            public: false,
        }
    }

    /// A longer description (CommonMark).
    pub fn describe(mut self, text: &str) -> Self {
        self.description = Some(text.to_string());
        self
    }

    /// Callable without a bearer token.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// A path parameter (every `{name}` of the path needs one).
    pub fn path(mut self, name: &str, description: &str) -> Self {
        self.params.push(json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": {"type": "string"}
        }));
        self
    }

    /// An optional query parameter.
    pub fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.params.push(json!({
            "name": name, "in": "query", "required": false, "description": description,
            "schema": schema
        }));
        self
    }

    /// A required query parameter.
    pub fn query_required(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.params.push(json!({
            "name": name, "in": "query", "required": true, "description": description,
            "schema": schema
        }));
        self
    }

    /// The pagination parameters of a list (`pageSize`, `after`, `before`).
    pub fn paged(self) -> Self {
        self.query(
            "pageSize",
            json!({"type": "integer", "minimum": 1, "maximum": crate::pagination::MAX_PAGE_SIZE,
                   "default": crate::pagination::DEFAULT_PAGE_SIZE}),
            "Number of items per page.",
        )
        .query("after", json!({"type": "string"}), "Cursor: the page after this one.")
        .query(
            "before",
            json!({"type": "string"}),
            "Cursor: the page before this one (not together with `after`).",
        )
    }

    /// A JSON request body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        let schema = self.schemas.of::<T>();
        self.body_schema(schema)
    }

    /// A JSON request body with this schema.
    pub fn body_schema(mut self, schema: Value) -> Self {
        self.body = Some(json!({
            "required": true,
            "content": {"application/json": {"schema": schema}}
        }));
        self
    }

    /// A form-encoded request body with this schema.
    pub fn form_body(mut self, schema: Value) -> Self {
        self.body = Some(json!({
            "required": true,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}}
        }));
        self
    }

    /// A JSON response of type `T`.
    pub fn ok<T: ToSchema>(mut self, status: u16, description: &str) -> Self {
        let schema = self.schemas.of::<T>();
        self.ok_schema(status, description, schema)
    }

    /// Registers `T` with this operation's schemas; returns a `$ref` to it (for composed
    /// schemas).
    pub fn schema_of<T: ToSchema>(&mut self) -> Value {
        self.schemas.of::<T>()
    }

    /// A JSON response with this schema.
    pub fn ok_schema(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status,
            json!({
                "description": description,
                "content": {"application/json": {"schema": schema}}
            }),
        );
        self
    }

    /// A JSON array of `T` (not paginated).
    pub fn ok_list_plain<T: ToSchema>(mut self, description: &str) -> Self {
        let item = self.schemas.of::<T>();
        self.ok_schema(200, description, json!({"type": "array", "items": item}))
    }

    /// A paginated list of `T`: `{data: [T], pagination: {after, before}}`.
    pub fn ok_list<T: ToSchema>(mut self, description: &str) -> Self {
        let item = self.schemas.of::<T>();
        self.ok_list_of(description, item)
    }

    /// A paginated list of items with this schema.
    pub fn ok_list_of(mut self, description: &str, item: Value) -> Self {
        let pagination = self.schemas.named(
            "Pagination",
            json!({
                "type": "object",
                "description": "Cursors to the neighbouring pages; `null` where there is none.",
                "required": ["after", "before"],
                "properties": {
                    "after": {"type": ["string", "null"]},
                    "before": {"type": ["string", "null"]}
                }
            }),
        );
        self.ok_schema(
            200,
            description,
            json!({
                "type": "object",
                "required": ["data", "pagination"],
                "properties": {"data": {"type": "array", "items": item}, "pagination": pagination}
            }),
        )
    }

    /// An OpenAPI link from the 200 response: `operation_id`'s `parameter` is the value at
    /// `pointer` in this response's body (lets clients and fuzzers follow real ids).
    pub fn link(mut self, operation_id: &str, parameter: &str, pointer: &str) -> Self {
        let response = self.responses.entry(200).or_insert_with(|| json!({"description": "OK"}));
        response["links"][operation_id] = json!({
            "operationId": operation_id,
            "parameters": {parameter: format!("$response.body#{pointer}")}
        });
        self
    }

    /// A response object written out in full.
    pub fn response(mut self, status: u16, response: Value) -> Self {
        self.responses.insert(status, response);
        self
    }

    /// A response without a body.
    pub fn empty(mut self, status: u16, description: &str) -> Self {
        self.responses.insert(status, json!({"description": description}));
        self
    }

    /// A plain-text response.
    pub fn text(mut self, status: u16, description: &str) -> Self {
        self.responses.insert(
            status,
            json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}),
        );
        self
    }

    /// Problem responses with these statuses (beyond the ones every operation gets).
    pub fn problems(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            self.responses.insert(*status, problem_response(*status));
        }
        self
    }

    /// Registers a schema this operation's hand-written schemas refer to.
    pub fn with_schema(mut self, name: &str, schema: Value) -> Self {
        self.schemas.named(name, schema);
        self
    }

    /// The operation object for `path`, with the conventions every operation gets.
    fn build(mut self, path: &str) -> (Value, Schemas) {
        self.params.push(json!({"$ref": "#/components/parameters/EnodeVersion"}));
        self.responses.entry(400).or_insert_with(|| problem_response(400));
        if !self.public {
            self.responses.entry(401).or_insert_with(|| problem_response(401));
        }
        if path.contains('{') {
            self.responses.entry(404).or_insert_with(|| problem_response(404));
        }
        if self.body.is_some() {
            self.responses.entry(413).or_insert_with(|| problem_response(413));
        }
        self.schemas.named("Problem", problem_schema());
        let mut responses = Map::new();
        for (status, mut response) in self.responses {
            if response.get("$ref").is_some() {
                responses.insert(status.to_string(), response);
                continue;
            }
            response["headers"] =
                json!({"Enode-Version": {"$ref": "#/components/headers/EnodeVersion"}});
            responses.insert(status.to_string(), response);
        }
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "parameters": self.params,
            "responses": responses,
        });
        if let Some(description) = self.description {
            op["description"] = json!(description);
        }
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        op["security"] = if self.public { json!([]) } else { json!([{"bearerAuth": []}]) };
        (op, self.schemas)
    }
}

/// A problem response: a `$ref` to the shared one of its status.
fn problem_response(status: u16) -> Value {
    json!({"$ref": format!("#/components/responses/Problem{status}")})
}

/// The shared problem responses, one per status any operation uses.
fn problem_responses(statuses: &std::collections::BTreeSet<u16>) -> Map<String, Value> {
    statuses
        .iter()
        .map(|status| (format!("Problem{status}"), problem_response_body(*status)))
        .collect()
}

fn problem_response_body(status: u16) -> Value {
    let description = match status {
        400 => "The request is invalid; `detail` names the field.",
        401 => "No valid bearer token.",
        403 => "The client may not do this.",
        404 => "No such entity for this client.",
        405 => "The route does not take this method.",
        409 => "The request conflicts with the entity's state.",
        413 => "The request body is too large.",
        422 => "The request is well-formed but cannot be carried out.",
        503 => "A dependency is unavailable.",
        _ => "A problem.",
    };
    json!({
        "description": description,
        "headers": {"Enode-Version": {"$ref": "#/components/headers/EnodeVersion"}},
        "content": {"application/problem+json": {"schema": schema_ref("Problem")}}
    })
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem.",
        "required": ["type", "title", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "Names the problem type."},
            "title": {"type": "string", "description": "A short summary."},
            "detail": {"type": "string", "description": "What exactly went wrong."},
            "issues": {"type": "array", "items": {"type": "object"},
                       "description": "Validation issues, where there are several."}
        }
    })
}

/// Routes with their documentation: the only way routes are added to the API.
#[derive(Default)]
pub struct Routes {
    router: Router<ApiState>,
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: Schemas,
}

impl Routes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// `GET path`.
    pub fn get<H, T>(self, path: &str, op: Op, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add("get", path, op, axum::routing::get(handler))
    }

    /// `POST path`.
    pub fn post<H, T>(self, path: &str, op: Op, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add("post", path, op, axum::routing::post(handler))
    }

    /// `PUT path`.
    pub fn put<H, T>(self, path: &str, op: Op, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add("put", path, op, axum::routing::put(handler))
    }

    /// `PATCH path`.
    pub fn patch<H, T>(self, path: &str, op: Op, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add("patch", path, op, axum::routing::patch(handler))
    }

    /// `DELETE path`.
    pub fn delete<H, T>(self, path: &str, op: Op, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.add("delete", path, op, axum::routing::delete(handler))
    }

    fn add(mut self, method: &str, path: &str, op: Op, route: MethodRouter<ApiState>) -> Self {
        // The OpenAPI path template (`/vehicles/{vehicleId}`) is also axum's route syntax, so
        // one string serves both and they cannot disagree.
        self.router = self.router.route(path, route);
        let (operation, schemas) = op.build(path);
        self.schemas.merge(schemas);
        let previous =
            self.paths.entry(path.to_string()).or_default().insert(method.into(), operation);
        // Two registrations of one method and path are a programming error axum rejects too.
        assert!(previous.is_none(), "{method} {path} is registered twice");
        self
    }

    /// Both sets of routes.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        for (path, methods) in other.paths {
            let entry = self.paths.entry(path.clone()).or_default();
            for (method, operation) in methods {
                let previous = entry.insert(method.clone(), operation);
                assert!(previous.is_none(), "{method} {path} is registered twice");
            }
        }
        self.schemas.merge(other.schemas);
        self
    }

    /// The router and the document's paths and schemas.
    pub fn into_parts(self) -> (Router<ApiState>, Document) {
        (self.router, Document { paths: self.paths, schemas: self.schemas })
    }
}

/// The documented paths and schemas, ready to render.
#[derive(Clone, Debug, Default)]
pub struct Document {
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: Schemas,
}

impl Document {
    /// Both documents' paths and schemas.
    pub fn merge(mut self, other: Document) -> Self {
        for (path, methods) in other.paths {
            self.paths.entry(path).or_default().extend(methods);
        }
        self.schemas.merge(other.schemas);
        self
    }

    /// The OpenAPI 3.1 document.
    pub fn render(&self) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "oemgate",
                "version": crate::SUPPORTED_VERSIONS[0],
                "description": "The Enode-style API of oemgate: devices, users, linking, \
                    actions, schedules, tariffs, statistics and vendor health. Authenticate with \
                    OAuth2 client credentials at `/oauth2/token` and send the token as a bearer \
                    token. Errors are `application/problem+json`.",
                "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"}
            },
            "servers": [{"url": "/"}],
            "paths": self.paths,
            "components": {
                "schemas": self.schemas.0,
                "responses": problem_responses(&self.problem_statuses()),
                "parameters": {
                    "EnodeVersion": {
                        "name": "Enode-Version", "in": "header", "required": false,
                        "description": "The API version to render the response in (default: \
                            the newest).",
                        "schema": {"type": "string", "enum": crate::SUPPORTED_VERSIONS}
                    }
                },
                "headers": {
                    "EnodeVersion": {
                        "description": "The API version the response is rendered in.",
                        "required": true,
                        "schema": {"type": "string"}
                    }
                },
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An access token from `POST /oauth2/token`."
                    }
                }
            },
            "security": [{"bearerAuth": []}]
        })
    }

    /// The statuses of the problem responses the operations refer to.
    fn problem_statuses(&self) -> std::collections::BTreeSet<u16> {
        let prefix = "#/components/responses/Problem";
        self.paths
            .values()
            .flat_map(|methods| methods.values())
            .filter_map(|op| op["responses"].as_object())
            .flat_map(|responses| responses.values())
            .filter_map(|r| r["$ref"].as_str()?.strip_prefix(prefix)?.parse().ok())
            .collect()
    }

    /// Every `(METHOD, path)` documented, sorted.
    pub fn operations(&self) -> Vec<(String, String)> {
        self.paths
            .iter()
            .flat_map(|(path, methods)| {
                methods.keys().map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect()
    }
}
