//! The API's view of vendors ([`oemgate_api::vendors::VendorHealth`]) over the poller: which
//! adapters are registered, how each vendor is doing according to its scheduler gate, and the
//! interventions the adapters can name, with their texts translated from
//! [`crate::intervention_texts`]. Lives in the gateway because only the gateway knows the
//! vendor crates.

use std::sync::Arc;

use oemgate_api::vendors::{VendorHealth, VendorReport, VendorStatus};
use oemgate_core::Intervention;
use oemgate_scheduler::Poller;
use oemgate_scheduler::breaker::BreakerState;

/// The status a vendor shows: an outage while its breaker is not closed (open, or half-open
/// waiting for its probe to succeed), an elevated error rate while its recent failed share is
/// above the scheduler's threshold, else ready.
pub fn status(breaker: BreakerState, error_rate_elevated: bool) -> VendorStatus {
    match breaker {
        BreakerState::Open | BreakerState::HalfOpen => VendorStatus::Outage,
        BreakerState::Closed if error_rate_elevated => VendorStatus::ElevatedErrorRate,
        BreakerState::Closed => VendorStatus::Ready,
    }
}

/// Every intervention an adapter in this build names.
pub fn intervention_catalogue() -> Vec<Intervention> {
    [
        oemgate_enphase::map::interventions(),
        oemgate_solaredge::map::interventions(),
        oemgate_zaptec::map::interventions(),
        oemgate_ecobee::map::interventions(),
        oemgate_nest::map::interventions(),
        oemgate_tesla::map::battery_interventions(),
        oemgate_sma::map::battery_interventions(),
        oemgate_huawei::map::battery_interventions(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// [`VendorHealth`] over a running poller.
#[derive(Debug)]
pub struct PollerHealth {
    poller: Arc<Poller>,
}

impl PollerHealth {
    /// Reports on `poller`'s vendors.
    pub fn new(poller: Arc<Poller>) -> Self {
        Self { poller }
    }
}

impl VendorHealth for PollerHealth {
    fn vendors(&self) -> Vec<VendorReport> {
        let mut out: Vec<VendorReport> = self
            .poller
            .adapters()
            .iter()
            .map(|(name, adapter)| {
                let info = adapter.info();
                let status = match self.poller.vendor_gate(name) {
                    Some(gate) => status(gate.breaker_state(), gate.error_rate_elevated()),
                    None => VendorStatus::Ready,
                };
                VendorReport {
                    vendor: info.name.to_string(),
                    display_name: info.display_name.to_string(),
                    device_types: info.device_types.to_vec(),
                    status,
                }
            })
            .collect();
        out.sort_by(|a, b| a.vendor.cmp(&b.vendor));
        out
    }

    fn interventions(&self) -> Vec<Intervention> {
        let registered: Vec<String> =
            self.poller.adapters().vendors().map(str::to_string).collect();
        intervention_catalogue()
            .into_iter()
            .filter(|i| i.vendor.is_none_or(|v| registered.iter().any(|r| r == v.as_str())))
            .collect()
    }

    fn languages(&self) -> Vec<&'static str> {
        crate::intervention_texts::languages()
    }

    fn interventions_in(&self, language: &str) -> Vec<Intervention> {
        let mut all = self.interventions();
        for intervention in &mut all {
            crate::intervention_texts::translate(intervention, language);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_decides_before_the_error_rate() {
        assert_eq!(status(BreakerState::Open, false), VendorStatus::Outage);
        assert_eq!(status(BreakerState::HalfOpen, true), VendorStatus::Outage);
        assert_eq!(status(BreakerState::Closed, true), VendorStatus::ElevatedErrorRate);
        assert_eq!(status(BreakerState::Closed, false), VendorStatus::Ready);
    }

    /// Over the gateway's real adapters and poller: every registered vendor is listed with
    /// its classes, READY at first, OUTAGE once its breaker opens; the interventions are
    /// those of registered vendors.
    #[test]
    fn reports_the_pollers_vendors_and_their_breakers() {
        let config = crate::config::Config::defaults().expect("defaults");
        let clock: Arc<dyn oemgate_core::Clock> = Arc::new(oemgate_core::ManualClock::new(
            "2030-01-01T00:00:00Z".parse().unwrap_or_default(),
        ));
        let adapters = crate::app::adapters(&config, Arc::clone(&clock), None);
        let store: Arc<dyn oemgate_store::Store> = Arc::new(oemgate_store::MemoryStore::new());
        let poller = Arc::new(Poller::new(
            store,
            adapters,
            Arc::clone(&clock),
            config.scheduler.poller(),
            1,
        ));
        let health = PollerHealth::new(Arc::clone(&poller));
        let vendors = health.vendors();
        let names: Vec<&str> = vendors.iter().map(|v| v.vendor.as_str()).collect();
        assert!(names.contains(&"TESLA") && names.contains(&"EASEE"), "{names:?}");
        assert!(vendors.iter().all(|v| v.status == VendorStatus::Ready));
        let tesla = vendors.iter().find(|v| v.vendor == "TESLA").map(|v| &v.device_types);
        assert!(tesla.is_some_and(|t| t.contains(&oemgate_core::VendorType::Vehicle)));

        let gate = poller.vendor_gate("TESLA").expect("gate");
        for _ in 0..10 {
            gate.record("k", Some((oemgate_core::ErrorKind::Transient, None)));
        }
        let status_of =
            |name: &str| health.vendors().into_iter().find(|v| v.vendor == name).map(|v| v.status);
        assert_eq!(status_of("TESLA"), Some(VendorStatus::Outage));
        assert_eq!(status_of("EASEE"), Some(VendorStatus::Ready));
        assert!(!health.interventions().is_empty());
    }

    /// `GET /interventions` through the API router over the gateway's real catalogue: a
    /// translated language, a documented language without translations (en-US), an invalid
    /// value (400).
    #[tokio::test]
    async fn interventions_are_served_translated_through_the_api() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode, header};
        use tower::ServiceExt;

        let config = crate::config::Config::defaults().expect("defaults");
        let now = "2030-01-01T00:00:00Z".parse().unwrap_or_default();
        let clock: Arc<dyn oemgate_core::Clock> = Arc::new(oemgate_core::ManualClock::new(now));
        let adapters = crate::app::adapters(&config, Arc::clone(&clock), None);
        let store: Arc<dyn oemgate_store::Store> = Arc::new(oemgate_store::MemoryStore::new());
        let poller = Arc::new(Poller::new(
            Arc::clone(&store),
            adapters,
            Arc::clone(&clock),
            config.scheduler.poller(),
            1,
        ));
        let credentials =
            oemgate_api::ClientCredentials { client_id: "c".into(), client_secret: "s".into() };
        oemgate_api::create_client(store.as_ref(), &credentials, "2024-10-01", now)
            .await
            .expect("client");
        let app = oemgate_api::router(
            oemgate_api::ApiState::new(store, clock, oemgate_api::ApiConfig::default())
                .with_vendor_health(Arc::new(PollerHealth::new(poller))),
        );
        let call = |request: Request<Body>| {
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await.expect("response");
                let status = response.status();
                let language = response.headers().get(header::CONTENT_LANGUAGE).cloned();
                let bytes =
                    axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
                let body: serde_json::Value =
                    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                (status, language, body)
            }
        };
        let token_request = Request::post("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=client_credentials&client_id=c&client_secret=s"))
            .expect("request");
        let (_, _, token) = call(token_request).await;
        let token = token["access_token"].as_str().unwrap_or_default().to_string();
        let get = |path: String| {
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request")
        };

        let id = oemgate_tesla::map::IDLE_INTERVENTION_ID;
        let table = crate::intervention_texts::TABLES.iter().find(|t| t.id == id).expect("table");
        for (language, text) in [("nb-NO", table.nb), ("de-DE", table.de), ("es-ES", table.es)] {
            let (status, served, body) =
                call(get(format!("/interventions/{id}?language={language}"))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(served.as_ref().and_then(|v| v.to_str().ok()), Some(language));
            assert_eq!(body["resolution"]["title"], text.title);
            assert_eq!(body["resolution"]["description"], text.description);
        }
        // The whole list in Swedish: every entry's title is the table's.
        let (status, served, body) = call(get("/interventions?language=sv-SE".into())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(served.as_ref().and_then(|v| v.to_str().ok()), Some("sv-SE"));
        let list = body.as_array().cloned().unwrap_or_default();
        assert!(!list.is_empty());
        for item in &list {
            let table = crate::intervention_texts::TABLES.iter().find(|t| t.id == item["id"]);
            assert_eq!(item["resolution"]["title"], table.expect("table").sv.title, "{item}");
        }
        // Polish is a documented code without translations: en-US.
        let english = oemgate_tesla::map::battery_interventions()
            .into_iter()
            .find(|i| i.id == id)
            .expect("english");
        let (status, served, body) = call(get(format!("/interventions/{id}?language=pl-PL"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(served.as_ref().and_then(|v| v.to_str().ok()), Some("en-US"));
        assert_eq!(body["resolution"]["title"], english.resolution.title.as_str());
        // Not a documented code at all: 400.
        let (status, _, body) = call(get("/interventions?language=klingon".into())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[test]
    fn catalogue_ids_are_unique() {
        let mut ids: Vec<String> = intervention_catalogue().into_iter().map(|i| i.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n >= 5);
    }

    /// Every intervention id an adapter puts on a capability resolves in the catalogue.
    #[test]
    fn catalogue_covers_the_ids_adapters_name() {
        let ids: Vec<String> = intervention_catalogue().into_iter().map(|i| i.id).collect();
        for named in [
            oemgate_tesla::map::EXPORT_FOCUS_INTERVENTION_ID,
            oemgate_tesla::map::IDLE_INTERVENTION_ID,
            oemgate_sma::map::READ_ONLY_INTERVENTION_ID,
            oemgate_huawei::map::BATTERY_CONTROL_INTERVENTION_ID,
            oemgate_enphase::map::IDLE_INTERVENTION_ID,
            oemgate_ecobee::map::WRITE_SCOPE_INTERVENTION_ID,
        ] {
            assert!(ids.iter().any(|id| id == named), "{named} missing");
        }
    }
}
