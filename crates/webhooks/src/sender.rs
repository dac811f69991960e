//! Sending one signed POST to a webhook: shared by the dispatcher and the test route.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::model::Webhook;
use crate::render;
use crate::signing::{DELIVERY_HEADER, SIGNATURE_HEADER, sign};
use crate::url_rules::{UrlError, UrlPolicy};

/// How long a receiver has to answer (Enode: 2xx within 5 s or the delivery failed).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a receiver's answer body is kept for the test route.
const MAX_KEPT_BODY: usize = 2048;

/// What a receiver answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverResponse {
    /// The HTTP status.
    pub code: u16,
    /// The body (its first 2 KiB, lossily decoded).
    pub body: String,
    /// The headers as `name: value` lines.
    pub headers: Vec<String>,
}

impl ReceiverResponse {
    /// Whether the answer acknowledges the delivery.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Why no answer came back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The stored URL no longer passes the URL rules (the policy changed since).
    #[error("the webhook URL is not allowed: {0}")]
    Url(#[from] UrlError),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connection refused, reset, TLS failure ...
    #[error("could not deliver: {0}")]
    Transport(String),
}

/// One POST and how it went.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The `x-enode-delivery` id it carried.
    pub delivery_id: String,
    /// The answer, or why there was none.
    pub result: Result<ReceiverResponse, SendError>,
}

impl Sent {
    /// Whether the receiver acknowledged it (2xx in time).
    pub fn acknowledged(&self) -> bool {
        self.result.as_ref().is_ok_and(ReceiverResponse::is_success)
    }

    /// A short description for logs and the test route.
    pub fn describe(&self) -> String {
        match &self.result {
            Ok(response) if response.is_success() => {
                format!("The receiver answered {}.", response.code)
            }
            Ok(response) => format!("The receiver answered {}, not 2xx.", response.code),
            Err(err) => format!("{}.", capitalize(&err.to_string())),
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Sends signed deliveries over HTTP. Redirects are not followed (a redirect could lead
/// anywhere the URL rules forbid); a 3xx answer is a failure.
#[derive(Clone, Debug)]
pub struct Sender {
    http: reqwest::Client,
    policy: UrlPolicy,
    timeout: Duration,
}

impl Sender {
    /// A sender applying `policy` to every URL, giving receivers `timeout` to answer.
    pub fn new(policy: UrlPolicy, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .user_agent(concat!("oemgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, policy, timeout })
    }

    /// The URL rules it applies.
    pub fn policy(&self) -> &UrlPolicy {
        &self.policy
    }

    /// POSTs `body` (a JSON array of events) to the webhook, signed with its secret.
    pub async fn send(&self, webhook: &Webhook, body: Vec<u8>) -> Sent {
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let result = self.post(webhook, &delivery_id, body).await;
        Sent { delivery_id, result }
    }

    async fn post(
        &self,
        webhook: &Webhook,
        delivery_id: &str,
        body: Vec<u8>,
    ) -> Result<ReceiverResponse, SendError> {
        let url = self.policy.check(&webhook.url)?;
        let signature = sign(webhook.secret.as_bytes(), &body);
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery_id)
            .header(SIGNATURE_HEADER, signature);
        if let Some(auth) = &webhook.authentication {
            request = request.header(auth.header_name.to_ascii_lowercase(), &auth.header_value);
        }
        let exchange = async {
            let response = request.body(body).send().await?;
            let code = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
                })
                .collect();
            let bytes = response.bytes().await?;
            let kept = &bytes[..bytes.len().min(MAX_KEPT_BODY)];
            Ok::<_, reqwest::Error>(ReceiverResponse {
                code,
                body: String::from_utf8_lossy(kept).into_owned(),
                headers,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(SendError::Timeout(self.timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) if err.is_timeout() => Err(SendError::Timeout(self.timeout)),
            // Without the URL: it may carry a token in its query.
            Ok(Err(err)) => Err(SendError::Transport(err.without_url().to_string())),
        }
    }

    /// Sends one `enode:webhook:test` event rendered in `version` and returns the test
    /// route's answer: `{status: SUCCESS|FAILURE, description, response: {code, body,
    /// headers}|null}` together with whether it succeeded.
    pub async fn test(
        &self,
        webhook: &Webhook,
        version: &str,
        now: DateTime<Utc>,
    ) -> (bool, Value) {
        let event = render::test_event(now, version);
        let body = serde_json::to_vec(&json!([event])).unwrap_or_default();
        let sent = self.send(webhook, body).await;
        let ok = sent.acknowledged();
        let response = match &sent.result {
            Ok(r) => json!({"code": r.code, "body": r.body, "headers": r.headers}),
            Err(_) => Value::Null,
        };
        let answer = json!({
            "status": if ok { "SUCCESS" } else { "FAILURE" },
            "description": sent.describe(),
            "response": response,
        });
        (ok, answer)
    }
}
