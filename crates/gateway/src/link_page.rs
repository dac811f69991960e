//! The link page: the small server-rendered flow behind `linkUrl`.
//!
//! `POST /users/{userId}/link` (in oemgate-api) stores a session and hands out
//! `{public_url}/link/{token}`; this module serves that URL and walks the user through the
//! vendor's own auth flow against the configured vendor cloud (the simulators in the demo):
//!
//! | route | what |
//! |---|---|
//! | `GET /link/{token}` | brand selection, or straight on to the vendor when the session names one |
//! | `GET /link/{token}/{vendor}` | the vendor's step: consent for OAuth vendors (Tesla, Enphase, SMA, Google Nest), a login form (FusionSolar, Easee, Zaptec, Wallbox), an API key form (SolarEdge), or a code to confirm at the vendor (ecobee's PIN, tado's device code; the secret that collects the result rides in a hidden field) |
//! | `POST /link/{token}/{vendor}` | `action=continue`: OAuth vendors are redirected to the vendor's authorize page, logins and API keys are checked with the vendor, a confirmed code is collected (an unconfirmed one is shown again); `action=cancel` ends the flow |
//! | `POST /link/{token}/cancel` | ends the flow from brand selection |
//! | `GET /link/callback` | the OAuth redirect URI: `code` and `state` (`{VENDOR}.{token}`), or the vendor's `error` |
//!
//! The session is taken (spent) when the flow ends, whatever the outcome: success stores the
//! credentials, registers the discovered devices with the poller and redirects to the
//! session's `redirectUri`; a cancel or a vendor refusal redirects there with `error` and
//! `error_message`:
//!
//! | `error` | when |
//! |---|---|
//! | `user_cancelled` | the user left the flow on the link page |
//! | `access_denied` | the user denied access on the vendor's page |
//! | `invalid_credentials` | the vendor rejected the login, API key or code |
//! | `vendor_unavailable` | the vendor could not be reached or failed |
//! | `link_failed` | the account could not be stored or its devices not discovered |
//!
//! A spent session answers 410, an expired one 410, an unknown one 404 (HTML pages: a
//! browser shows them). Until it ends, the session can be reopened as often as needed (a
//! reload, a wrong password is shown again with 400 without spending it).
//!
//! Links and form actions are absolute, under `server.public_url`, so the page also works
//! behind a proxy that serves it under a path prefix. The page is English only; `language` is passed on as the document language. The
//! `state` carries the link token, so whoever completes the vendor's sign-in with it links
//! into that session's user; the token is as secret as the link itself.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use oemgate_api::link::{LinkableVendor, Linker, link_token_hash};
use oemgate_core::{AdapterError, Clock, Credentials, ErrorKind, VendorType};
use oemgate_scheduler::Poller;
use oemgate_store::{LinkSession, LinkSessionLookup, Store};

use crate::config::Config;
use crate::linking::{self, LinkMethod, PendingCode};
use crate::sim::LinkStep;

/// Everything the link page needs.
pub struct LinkPage {
    config: Config,
    clock: Arc<dyn Clock>,
    sim_base: Option<String>,
    store: Arc<dyn Store>,
    poller: Arc<Poller>,
    public_url: String,
}

impl std::fmt::Debug for LinkPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkPage").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl LinkPage {
    /// A link page served at `public_url` (how browsers reach this server, no trailing
    /// slash), linking against the configured vendor clouds or the simulators at `sim_base`.
    pub fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        sim_base: Option<String>,
        store: Arc<dyn Store>,
        poller: Arc<Poller>,
        public_url: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            clock,
            sim_base,
            store,
            poller,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// The OAuth redirect URI registered with the vendors.
    pub fn callback_url(&self) -> String {
        format!("{}/link/callback", self.public_url)
    }

    fn offered(&self) -> Vec<LinkableVendor> {
        self.poller
            .adapters()
            .iter()
            .filter(|(vendor, _)| linking::method(vendor).is_some())
            .map(|(vendor, adapter)| LinkableVendor {
                vendor: vendor.to_string(),
                types: adapter.info().device_types.to_vec(),
            })
            .collect()
    }

    /// The vendors this session may link: the one it names, else every offered vendor with
    /// an asset type the session asks for.
    fn choices(&self, session: &LinkSession) -> Vec<LinkableVendor> {
        let wanted: Vec<VendorType> = match session.vendor_type {
            Some(t) => vec![t],
            None => session
                .scopes
                .iter()
                .filter_map(|s| s.split(':').next())
                .filter_map(|t| t.parse().ok())
                .collect(),
        };
        self.offered()
            .into_iter()
            .filter(|v| session.vendor.as_ref().is_none_or(|chosen| *chosen == v.vendor))
            .filter(|v| session.vendor.is_some() || v.types.iter().any(|t| wanted.contains(t)))
            .collect()
    }
}

impl Linker for LinkPage {
    fn vendors(&self) -> Vec<LinkableVendor> {
        self.offered()
    }

    fn link_url(&self, token: &str) -> String {
        format!("{}/link/{token}", self.public_url)
    }
}

/// The link page's routes (public: the token is the credential).
pub fn router(page: Arc<LinkPage>) -> Router {
    Router::new()
        .route("/link/callback", get(callback))
        .route("/link/{token}", get(start))
        .route("/link/{token}/cancel", post(cancel))
        .route("/link/{token}/{vendor}", get(vendor_page).post(submit))
        .with_state(page)
}

// ---- pages ---------------------------------------------------------------------------------

fn escape(s: &str) -> String {
    oemgate_sim::http::html_escape(s)
}

fn page(status: StatusCode, language: &str, title: &str, body: &str) -> Response {
    let lang = if language == "browser" { "en" } else { language };
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\
         <body><main><h1>{}</h1>{body}</main></body></html>",
        escape(lang),
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, "en-US", "Linking is not possible", &format!("<p>{}</p>", escape(message)))
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_string())]).into_response()
}

/// The session behind a token, or the page saying why there is none.
async fn open(page: &LinkPage, token: &str, take: bool) -> Result<LinkSession, Response> {
    let hash = link_token_hash(token);
    let now = page.clock.now();
    let found = if take {
        page.store.take_link_session(&hash, now).await
    } else {
        page.store.get_link_session(&hash, now).await
    };
    match found {
        Ok(LinkSessionLookup::Open(session)) => Ok(*session),
        Ok(LinkSessionLookup::Used) => Err(error_page(
            StatusCode::GONE,
            "This link has already been used. Ask the app you came from for a new one.",
        )),
        Ok(LinkSessionLookup::Expired) => Err(error_page(
            StatusCode::GONE,
            "This link has expired. Ask the app you came from for a new one.",
        )),
        Ok(LinkSessionLookup::NotFound) => {
            Err(error_page(StatusCode::NOT_FOUND, "This link is not valid."))
        }
        Err(err) => {
            tracing::error!(error = %err, "link session lookup failed");
            Err(error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again in a moment."))
        }
    }
}

/// Where the flow ends: `redirect_uri` with `error` and `error_message` when it failed.
fn finish(session: &LinkSession, error: Option<(&str, &str)>) -> Response {
    let pairs: Vec<(&str, &str)> = match error {
        Some((code, message)) => vec![("error", code), ("error_message", message)],
        None => Vec::new(),
    };
    match oemgate_sim::http::redirect_with(&session.redirect_uri, &pairs) {
        Some(location) => see_other(&location),
        // redirectUri was validated as an absolute URI; a custom scheme without "//" lands
        // here and gets the query appended by hand.
        None => {
            let mut location = session.redirect_uri.clone();
            for (i, (k, v)) in pairs.iter().enumerate() {
                let sep = if i == 0 && !location.contains('?') { '?' } else { '&' };
                location.push(sep);
                location.push_str(&format!("{k}={}", oemgate_sim::http::url_encode(v)));
            }
            see_other(&location)
        }
    }
}

fn display_name(page: &LinkPage, vendor: &str) -> String {
    page.poller
        .adapters()
        .get(vendor)
        .map_or_else(|| vendor.to_string(), |a| a.info().display_name.to_string())
}

/// `GET /link/{token}`.
async fn start(State(page): State<Arc<LinkPage>>, Path(token): Path<String>) -> Response {
    let session = match open(&page, &token, false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let choices = page.choices(&session);
    if let (Some(vendor), [_]) = (&session.vendor, choices.as_slice()) {
        return see_other(&format!("{}/link/{token}/{vendor}", page.public_url));
    }
    let items: String = choices
        .iter()
        .map(|v| {
            format!(
                "<li><a href=\"{}/link/{}/{}\">{}</a></li>",
                escape(&page.public_url),
                escape(&token),
                escape(&v.vendor),
                escape(&display_name(&page, &v.vendor))
            )
        })
        .collect();
    let body = format!(
        "<p>Choose the brand of your device.</p><ul>{items}</ul>\
         <form method=\"post\" action=\"{}/link/{}/cancel\"><button>Cancel</button></form>",
        escape(&page.public_url),
        escape(&token)
    );
    page_for(&session, StatusCode::OK, "Link your device", &body)
}

fn page_for(session: &LinkSession, status: StatusCode, title: &str, body: &str) -> Response {
    page(status, &session.language, title, body)
}

/// The vendor named in the path, if this session may link it.
fn allowed(page: &LinkPage, session: &LinkSession, vendor: &str) -> Option<LinkMethod> {
    page.choices(session).iter().any(|v| v.vendor == vendor).then(|| linking::method(vendor))?
}

/// Where in the flow a page is: the session, its token and the vendor being linked.
#[derive(Clone, Copy)]
struct Flow<'a> {
    page: &'a LinkPage,
    session: &'a LinkSession,
    token: &'a str,
    vendor: &'a str,
}

fn vendor_form(
    flow: &Flow<'_>,
    method: LinkMethod,
    pending: Option<&PendingCode>,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let Flow { page, session, token, vendor } = *flow;
    let name = display_name(page, vendor);
    let scopes: String = session.scopes.iter().map(|s| format!("<li>{}</li>", escape(s))).collect();
    let fields = match method {
        LinkMethod::AuthorizationCode => {
            format!("<p>You will sign in with {} and come back here.</p>", escape(&name))
        }
        LinkMethod::Login { user_label, password_label } => format!(
            "<label>{} <input name=\"user_name\" autocomplete=\"username\" required></label>\
             <label>{} <input name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required></label>",
            escape(user_label),
            escape(password_label)
        ),
        LinkMethod::ApiKey => "<label>API key <input name=\"api_key\" required></label>".into(),
        LinkMethod::UserCode => match pending {
            Some(p) => {
                let url = p.verification_url.as_deref().unwrap_or_default();
                let whereto = if url.is_empty() {
                    format!("in your {} account (My Apps, Add application)", escape(&name))
                } else {
                    format!("at <a href=\"{}\" target=\"_blank\">{}</a>", escape(url), escape(url))
                };
                format!(
                    "<p>Your code: <strong class=\"user-code\">{code}</strong></p>\
                     <p>Confirm it {whereto}, then continue.</p>\
                     <input type=\"hidden\" name=\"pending\" value=\"{}\">\
                     <input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
                     <input type=\"hidden\" name=\"verification_url\" value=\"{}\">",
                    escape(&p.secret),
                    escape(url),
                    code = escape(&p.user_code),
                )
            }
            None => String::new(),
        },
    };
    let message =
        message.map(|m| format!("<p class=\"error\">{}</p>", escape(m))).unwrap_or_default();
    let body = format!(
        "{message}<p>The app asks for access to:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"{}/link/{}/{}\">{fields}\
         <button name=\"action\" value=\"continue\">Continue</button>\
         <button name=\"action\" value=\"cancel\" formnovalidate>Cancel</button></form>",
        escape(&page.public_url),
        escape(token),
        escape(vendor)
    );
    page_for(session, status, &format!("Link {name}"), &body)
}

/// `GET /link/{token}/{vendor}`.
async fn vendor_page(
    State(page): State<Arc<LinkPage>>,
    Path((token, vendor)): Path<(String, String)>,
) -> Response {
    let session = match open(&page, &token, false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let flow = Flow { page: &page, session: &session, token: &token, vendor: &vendor };
    match allowed(&page, &session, &vendor) {
        Some(LinkMethod::UserCode) => {
            let started = linking::start_code(
                &page.config,
                Arc::clone(&page.clock),
                page.sim_base.as_deref(),
                &vendor,
            )
            .await;
            match started {
                Ok(pending) => {
                    vendor_form(&flow, LinkMethod::UserCode, Some(&pending), StatusCode::OK, None)
                }
                Err(err) => {
                    let (code, message) = refusal(&vendor, &err);
                    match open(&page, &token, true).await {
                        Ok(session) => finish(&session, Some((code, &message))),
                        Err(response) => response,
                    }
                }
            }
        }
        Some(method) => vendor_form(&flow, method, None, StatusCode::OK, None),
        None => error_page(
            StatusCode::NOT_FOUND,
            &format!("{vendor} cannot be linked in this session."),
        ),
    }
}

/// `POST /link/{token}/cancel`.
async fn cancel(State(page): State<Arc<LinkPage>>, Path(token): Path<String>) -> Response {
    match open(&page, &token, true).await {
        Ok(session) => cancelled(&session),
        Err(response) => response,
    }
}

fn cancelled(session: &LinkSession) -> Response {
    finish(session, Some(("user_cancelled", "The user left the linking flow.")))
}

/// `POST /link/{token}/{vendor}`.
async fn submit(
    State(page): State<Arc<LinkPage>>,
    Path((token, vendor)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let session = match open(&page, &token, false).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let flow = Flow { page: &page, session: &session, token: &token, vendor: &vendor };
    let Some(method) = allowed(&page, &session, &vendor) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("{vendor} cannot be linked in this session."),
        );
    };
    let field = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    if field("action") == "cancel" {
        return match open(&page, &token, true).await {
            Ok(session) => cancelled(&session),
            Err(response) => response,
        };
    }
    let step = match method {
        LinkMethod::AuthorizationCode => {
            let state = format!("{vendor}.{token}");
            let url = linking::authorize_url(
                &page.config,
                Arc::clone(&page.clock),
                page.sim_base.as_deref(),
                &vendor,
                &page.callback_url(),
                &state,
            );
            return match url {
                Some(url) => see_other(&url),
                None => error_page(StatusCode::NOT_FOUND, "This vendor has no sign-in page."),
            };
        }
        LinkMethod::Login { user_label, password_label } => {
            let (user_name, password) = (field("user_name"), field("password"));
            if user_name.is_empty() || password.is_empty() {
                let missing = if user_name.is_empty() { user_label } else { password_label };
                let message = format!("{missing} is required.");
                return vendor_form(&flow, method, None, StatusCode::BAD_REQUEST, Some(&message));
            }
            LinkStep::Login { user_name: user_name.to_string(), password: password.to_string() }
        }
        LinkMethod::ApiKey => {
            let key = field("api_key");
            if key.is_empty() {
                return vendor_form(
                    &flow,
                    method,
                    None,
                    StatusCode::BAD_REQUEST,
                    Some("API key is required."),
                );
            }
            LinkStep::ApiKey(key.to_string())
        }
        LinkMethod::UserCode => {
            let pending = PendingCode {
                user_code: field("user_code").to_string(),
                verification_url: Some(field("verification_url").to_string())
                    .filter(|u| !u.is_empty()),
                secret: field("pending").to_string(),
            };
            let step = linking::collect_step(&vendor, &pending.secret)
                .filter(|_| !pending.secret.is_empty());
            let Some(step) = step else {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "The code is missing; open the link again to get a new one.",
                );
            };
            // Not terminal until the vendor answers: "not confirmed yet" shows the same code
            // again without spending the link.
            let credentials = linking::credentials(
                &page.config,
                Arc::clone(&page.clock),
                page.sim_base.as_deref(),
                &vendor,
                &step,
            )
            .await;
            return match credentials {
                Err(err)
                    if matches!(
                        err.kind(),
                        ErrorKind::PreconditionFailed | ErrorKind::RateLimited
                    ) =>
                {
                    let message =
                        format!("{} has not confirmed the code yet.", display_name(&page, &vendor));
                    vendor_form(&flow, method, Some(&pending), StatusCode::OK, Some(&message))
                }
                outcome => match open(&page, &token, true).await {
                    Ok(session) => store_linked(&page, &session, &vendor, outcome).await,
                    Err(response) => response,
                },
            };
        }
    };
    complete(&page, &token, &vendor, step).await
}

/// `GET /link/callback`: the vendor sends the user back with a code or an error.
async fn callback(
    State(page): State<Arc<LinkPage>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let Some((vendor, token)) = field("state").split_once('.') else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in answer has no valid state.");
    };
    if !field("error").is_empty() {
        let session = match open(&page, token, true).await {
            Ok(session) => session,
            Err(response) => return response,
        };
        let code = if field("error") == "access_denied" { "access_denied" } else { "vendor_error" };
        let description = field("error_description");
        let message = if description.is_empty() {
            format!("{vendor} answered {}.", field("error"))
        } else {
            format!("{vendor}: {description}")
        };
        tracing::info!(vendor, error = field("error"), "vendor sign-in ended with an error");
        return finish(&session, Some((code, &message)));
    }
    if field("code").is_empty() {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in answer has no code.");
    }
    let step = LinkStep::AuthorizationCode {
        code: field("code").to_string(),
        redirect_uri: page.callback_url(),
    };
    complete(&page, token, vendor, step).await
}

/// Ends the flow: spends the session, turns the step into credentials, stores the account
/// and registers its devices, then redirects to the session's `redirectUri`.
async fn complete(page: &LinkPage, token: &str, vendor: &str, step: LinkStep) -> Response {
    let session = match open(page, token, true).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if allowed(page, &session, vendor).is_none() {
        return finish(
            &session,
            Some(("link_failed", &format!("{vendor} cannot be linked in this session."))),
        );
    }
    let credentials = linking::credentials(
        &page.config,
        Arc::clone(&page.clock),
        page.sim_base.as_deref(),
        vendor,
        &step,
    )
    .await;
    store_linked(page, &session, vendor, credentials).await
}

/// The end of a spent session: the vendor's answer becomes a stored account with registered
/// devices, or the redirect with the error.
async fn store_linked(
    page: &LinkPage,
    session: &LinkSession,
    vendor: &str,
    credentials: Result<Credentials, AdapterError>,
) -> Response {
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(err) => {
            let (code, message) = refusal(vendor, &err);
            tracing::info!(vendor, kind = err.kind().as_str(), "linking refused by the vendor");
            return finish(session, Some((code, &message)));
        }
    };
    let Some(adapter) = page.poller.adapters().get(vendor) else {
        return finish(session, Some(("link_failed", "This vendor is not enabled.")));
    };
    let account_id = session
        .relink_account_id
        .clone()
        .unwrap_or_else(|| format!("{}:{}", vendor.to_lowercase(), uuid::Uuid::new_v4()));
    let linked = linking::link_account(
        page.store.as_ref(),
        &page.poller,
        adapter.as_ref(),
        &session.user_id,
        &account_id,
        credentials,
        page.clock.now(),
    )
    .await;
    match linked {
        Ok(devices) => {
            tracing::info!(user = %session.user_id, vendor, devices, "account linked");
            finish(session, None)
        }
        Err(err) => {
            tracing::warn!(user = %session.user_id, vendor, error = %format!("{err:#}"), "linking failed");
            finish(
                session,
                Some((
                    "link_failed",
                    "The account was accepted but its devices could not be read.",
                )),
            )
        }
    }
}

/// The `error` and `error_message` for a vendor's refusal. The vendor's own text is left
/// out: it may echo what the user typed.
fn refusal(vendor: &str, err: &AdapterError) -> (&'static str, String) {
    match err.kind() {
        ErrorKind::Unauthorized | ErrorKind::AuthExpired | ErrorKind::Rejected => {
            ("invalid_credentials", format!("{vendor} did not accept the credentials."))
        }
        _ => ("vendor_unavailable", format!("{vendor} could not be reached; try again later.")),
    }
}
