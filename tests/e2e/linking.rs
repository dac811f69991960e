//! Linking end to end: `POST /users/{userId}/link`, then the link page driven like a browser
//! (following redirects by hand, signing in on the simulated vendor's authorize page or
//! posting the login / API key form), landing on the app's `redirectUri`, and the user's
//! devices served by the API after a poller tick. Plus the failure paths: bad fields, spent
//! and expired links, cancel, a vendor refusing the login or the user denying access.

use std::collections::BTreeMap;
use std::time::Duration;

use oemgate::demo::Demo;
use oemgate::sim::{LinkStep, SimAccount};
use oemgate_core::ManualClock;
use oemgate_sim::DeviceKind;
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::support::{token, unlinked_demo, unlinked_demo_at};

const APP: &str = "https://app.example/linked";

/// A client that does not follow redirects, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

fn location(response: &reqwest::Response) -> Url {
    let raw = response.headers()[reqwest::header::LOCATION].to_str().unwrap();
    response.url().join(raw).unwrap()
}

async fn link(
    http: &reqwest::Client,
    demo: &Demo,
    bearer: &str,
    user: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{}/users/{user}/link", demo.api_url))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn body_for(vendor: &str, scopes: &[&str]) -> Value {
    json!({ "vendor": vendor, "scopes": scopes, "language": "en-US", "redirectUri": APP })
}

fn scopes_of(vendor: &str) -> &'static [&'static str] {
    match vendor {
        "TESLA" => &["vehicle:read:data", "vehicle:control:charging", "battery:read:data"],
        "NEST" | "ECOBEE" | "TADO" => &["hvac:read:data", "hvac:control:mode"],
        _ => &["inverter:read:data", "battery:read:data", "meter:read:data"],
    }
}

fn first_account<'a>(demo: &'a Demo, vendor: &str) -> &'a SimAccount {
    demo.accounts
        .iter()
        .find(|a| a.vendor == vendor)
        .unwrap_or_else(|| panic!("the fleet has no {vendor} account"))
}

/// Opens the link and walks to the vendor's own step: returns the vendor page's URL.
async fn open_vendor_page(b: &reqwest::Client, link_url: &str, vendor: &str) -> Url {
    let response = b.get(link_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a chosen vendor skips brand selection");
    let page = location(&response);
    assert!(page.path().ends_with(&format!("/{vendor}")), "{page}");
    let response = b.get(page.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<form"), "{html}");
    page
}

/// Plays the user through the vendor's flow for `account`; returns where the flow ended.
async fn walk(b: &reqwest::Client, link_url: &str, account: &SimAccount) -> Url {
    let page = open_vendor_page(b, link_url, account.vendor).await;
    let form: Vec<(&str, String)> = match &account.link {
        LinkStep::AuthorizationCode { .. } => {
            // OAuth: continue to the vendor's sign-in page, sign in there, come back.
            let response = b.post(page).form(&[("action", "continue")]).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            let authorize = location(&response);
            let sign_in = b.get(authorize.clone()).send().await.unwrap();
            assert_eq!(sign_in.status(), StatusCode::OK, "{authorize}");
            assert!(sign_in.text().await.unwrap().contains("login_hint"));
            let mut signed_in = authorize.clone();
            let login = account.login.as_deref().expect("OAuth accounts have a login");
            signed_in.query_pairs_mut().append_pair("login_hint", login);
            let response = b.get(signed_in).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FOUND, "{authorize}");
            let callback = location(&response);
            assert!(callback.path().ends_with("/link/callback"), "{callback}");
            let response = b.get(callback).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            return location(&response);
        }
        LinkStep::Login { user_name, password } => vec![
            ("action", "continue".into()),
            ("user_name", user_name.clone()),
            ("password", password.clone()),
        ],
        LinkStep::ApiKey(key) => vec![("action", "continue".into()), ("api_key", key.clone())],
        other => panic!("not linkable on the page: {other:?}"),
    };
    let response = b.post(page).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response)
}

fn query(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Six simulated minutes of polling: FusionSolar allows one call a minute per account, and
/// linking already spent discovery's calls, so its three devices take a few minutes.
async fn poll_a_while(demo: &Demo, clock: &ManualClock) {
    crate::support::poll_for(demo, clock, 6).await;
}

async fn user_devices(
    http: &reqwest::Client,
    demo: &Demo,
    bearer: &str,
    user: &str,
    plural: &str,
) -> Vec<Value> {
    let response = http
        .get(format!("{}/users/{user}/{plural}?pageSize=1000", demo.api_url))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

const COLLECTIONS: [(&str, DeviceKind); 6] = [
    ("vehicles", DeviceKind::Vehicle),
    ("batteries", DeviceKind::Battery),
    ("meters", DeviceKind::Meter),
    ("inverters", DeviceKind::Inverter),
    ("chargers", DeviceKind::Charger),
    ("hvacs", DeviceKind::Hvac),
];

#[tokio::test]
async fn each_vendor_links_through_the_link_page_and_its_devices_are_served() {
    let (demo, clock) = unlinked_demo(12, None).await;
    assert_eq!(demo.devices, 0, "nothing is linked before the users link");
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();
    for vendor in ["TESLA", "ENPHASE", "HUAWEI", "SOLAREDGE", "SMA", "NEST"] {
        let account = first_account(&demo, vendor);
        let user = format!("user-{}", vendor.to_lowercase());
        let (status, created) =
            link(&http, &demo, &bearer, &user, body_for(vendor, scopes_of(vendor))).await;
        assert_eq!(status, StatusCode::OK, "{vendor}: {created}");
        let link_url = created["linkUrl"].as_str().unwrap();
        assert!(link_url.starts_with(&demo.api_url), "{link_url}");
        assert!(link_url.ends_with(created["linkToken"].as_str().unwrap()));

        let landed = walk(&b, link_url, account).await;
        assert_eq!(
            format!("{}://{}{}", landed.scheme(), landed.host_str().unwrap(), landed.path()),
            APP,
            "{vendor}"
        );
        assert!(query(&landed).is_empty(), "{vendor} ended without error: {landed}");

        poll_a_while(&demo, &clock).await;
        let mut total = 0;
        for (plural, kind) in COLLECTIONS {
            let served = user_devices(&http, &demo, &bearer, &user, plural).await;
            let expected = account
                .devices
                .iter()
                .filter(|d| demo.sim.world.device_info(d).is_some_and(|i| i.kind == kind))
                .count();
            assert_eq!(served.len(), expected, "{vendor} {plural}");
            for device in &served {
                assert_eq!(device["userId"], user.as_str());
                assert_eq!(device["vendor"], vendor);
            }
            total += served.len();
        }
        assert!(total > 0, "{vendor}: the account's devices are served");

        // The link was spent by the flow.
        let again = b.get(link_url).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::GONE, "{vendor}");
        assert!(again.text().await.unwrap().contains("already been used"));
    }
    demo.stop().await;
}

#[tokio::test]
async fn brand_selection_lists_the_vendors_for_the_scopes() {
    let (demo, _clock) = unlinked_demo(4, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let body = json!({"scopes": ["inverter:read:data"], "language": "de-DE", "redirectUri": APP});
    let (status, created) = link(&http, &demo, &bearer, "u1", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let response = browser().get(created["linkUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("lang=\"de-DE\""));
    for offered in ["/ENPHASE\"", "/HUAWEI\"", "/SOLAREDGE\"", "/SMA\""] {
        assert!(html.contains(offered), "{offered} in {html}");
    }
    assert!(!html.contains("/TESLA\""), "Tesla has no inverters: {html}");
    demo.stop().await;
}

#[tokio::test]
async fn link_requests_are_validated_against_the_gateways_vendors() {
    let mut config = oemgate::config::Config::defaults().unwrap();
    config.vendors.ecobee.enabled = false;
    let (demo, _clock) = crate::support::demo_with(config, 2, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    for (body, field) in [
        // ecobee is a known vendor, but disabled on this gateway.
        (body_for("ECOBEE", &["hvac:read:data"]), "vendor"),
        (body_for("VOLKSWAGEN", &["vehicle:read:data"]), "vendor"),
        (body_for("TESLA", &["vehicle:read:everything"]), "scopes"),
        (
            json!({"vendor": "TESLA", "scopes": ["vehicle:read:data"], "language": "tlh",
                "redirectUri": APP}),
            "language",
        ),
        (
            json!({"vendor": "TESLA", "scopes": ["vehicle:read:data"], "language": "en-US",
                "redirectUri": "linked"}),
            "redirectUri",
        ),
    ] {
        let (status, problem) = link(&http, &demo, &bearer, "u1", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(&format!("\"{field}\"")), "{problem}");
    }
    let response = http
        .post(format!("{}/users/u1/link", demo.api_url))
        .json(&body_for("TESLA", &["vehicle:read:data"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    demo.stop().await;
}

#[tokio::test]
async fn links_expire_after_24_hours_and_unknown_ones_are_404() {
    let (demo, clock) = unlinked_demo(2, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let (_, created) =
        link(&http, &demo, &bearer, "u1", body_for("SOLAREDGE", scopes_of("SOLAREDGE"))).await;
    let link_url = created["linkUrl"].as_str().unwrap();
    let b = browser();
    clock.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    clock.advance(Duration::from_secs(1));
    let response = b.get(link_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response.text().await.unwrap().contains("expired"));
    let page = format!("{link_url}/SOLAREDGE");
    let response =
        b.post(&page).form(&[("action", "continue"), ("api_key", "x")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);

    let unknown = format!("{}/link/not-a-token", demo.api_url);
    assert_eq!(b.get(&unknown).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    demo.stop().await;
}

#[tokio::test]
async fn refusals_and_cancels_redirect_with_error_and_spend_the_link() {
    let (demo, clock) = unlinked_demo(12, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();

    // FusionSolar rejects a wrong system code.
    let huawei = first_account(&demo, "HUAWEI");
    let LinkStep::Login { user_name, .. } = &huawei.link else { panic!("login") };
    let (_, created) =
        link(&http, &demo, &bearer, "u-refused", body_for("HUAWEI", scopes_of("HUAWEI"))).await;
    let link_url = created["linkUrl"].as_str().unwrap();
    let page = open_vendor_page(&b, link_url, "HUAWEI").await;
    // A missing field is asked again without spending the link.
    let response = b
        .post(page.clone())
        .form(&[("action", "continue"), ("user_name", user_name.as_str()), ("password", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let form = [
        ("action", "continue"),
        ("user_name", user_name.as_str()),
        ("password", "not-the-system-code"),
    ];
    let response = b.post(page.clone()).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let landed = location(&response);
    assert!(landed.as_str().starts_with(APP), "{landed}");
    let q = query(&landed);
    assert_eq!(q["error"], "invalid_credentials", "{landed}");
    assert!(!q["error_message"].is_empty());
    assert!(!landed.as_str().contains("not-the-system-code"));
    assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::GONE);
    poll_a_while(&demo, &clock).await;
    assert!(user_devices(&http, &demo, &bearer, "u-refused", "inverters").await.is_empty());

    // The user cancels on the vendor step.
    let (_, created) =
        link(&http, &demo, &bearer, "u-cancel", body_for("SOLAREDGE", scopes_of("SOLAREDGE")))
            .await;
    let link_url = created["linkUrl"].as_str().unwrap();
    let page = open_vendor_page(&b, link_url, "SOLAREDGE").await;
    let response = b.post(page).form(&[("action", "cancel")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(query(&location(&response))["error"], "user_cancelled");
    assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::GONE);

    // The user denies access on Tesla's sign-in page.
    let (_, created) =
        link(&http, &demo, &bearer, "u-deny", body_for("TESLA", scopes_of("TESLA"))).await;
    let link_url = created["linkUrl"].as_str().unwrap();
    let page = open_vendor_page(&b, link_url, "TESLA").await;
    let response = b.post(page).form(&[("action", "continue")]).send().await.unwrap();
    let mut authorize = location(&response);
    authorize.query_pairs_mut().append_pair("decision", "deny");
    let response = b.get(authorize).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let response = b.get(location(&response)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let landed = location(&response);
    assert_eq!(query(&landed)["error"], "access_denied", "{landed}");
    // The vendor's redirect cannot be replayed into the spent link.
    assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::GONE);
    demo.stop().await;
}

#[tokio::test]
async fn relink_is_refused_for_valid_credentials_and_unknown_assets() {
    let (demo, clock) = unlinked_demo(12, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();
    let account = first_account(&demo, "SOLAREDGE");
    let (_, created) =
        link(&http, &demo, &bearer, "u-re", body_for("SOLAREDGE", scopes_of("SOLAREDGE"))).await;
    walk(&b, created["linkUrl"].as_str().unwrap(), account).await;
    poll_a_while(&demo, &clock).await;
    let inverters = user_devices(&http, &demo, &bearer, "u-re", "inverters").await;
    assert!(!inverters.is_empty());
    let asset = inverters[0]["id"].as_str().unwrap();
    for (asset, detail) in [(asset, "already linked"), ("unknown", "not found")] {
        let response = http
            .post(format!("{}/assets/{asset}/relink", demo.api_url))
            .bearer_auth(&bearer)
            .json(&json!({"language": "en-US", "redirectUri": APP}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{asset}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{problem}");
    }
    demo.stop().await;
}

#[tokio::test]
async fn linked_credentials_are_sealed_in_redis() {
    use oemgate_store::{CredentialKey, RedisConfig, RedisStore, Store};
    use std::sync::Arc;

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("oemgate-e2e-{}", uuid::Uuid::new_v4().simple());
    let redis_config =
        RedisConfig::new(&url, &prefix).with_credential_key(CredentialKey::generate());
    let redis = Arc::new(RedisStore::connect(redis_config).await.unwrap());
    let store: Arc<dyn Store> = redis.clone();
    let (demo, clock) = unlinked_demo_at(12, Some(store.clone()), chrono::Utc::now()).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();
    for vendor in ["TESLA", "SOLAREDGE"] {
        let user = format!("sealed-{}", vendor.to_lowercase());
        let (_, created) =
            link(&http, &demo, &bearer, &user, body_for(vendor, scopes_of(vendor))).await;
        let landed =
            walk(&b, created["linkUrl"].as_str().unwrap(), first_account(&demo, vendor)).await;
        assert!(query(&landed).is_empty(), "{vendor}: {landed}");
    }
    poll_a_while(&demo, &clock).await;
    assert!(!user_devices(&http, &demo, &bearer, "sealed-tesla", "vehicles").await.is_empty());

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for user in ["sealed-tesla", "sealed-solaredge"] {
        let accounts = store.accounts_of_user(user).await.unwrap();
        assert_eq!(accounts.len(), 1, "{user}");
        let account = &accounts[0].account;
        let secret = account.credentials.access_token.clone();
        assert!(secret.len() >= 8, "{user}: a real token or API key");
        let key = format!("{{{prefix}}}:account:{}", account.account_id);
        let fields: Vec<Vec<u8>> =
            redis::cmd("HVALS").arg(&key).query_async(&mut conn).await.unwrap();
        let stored = String::from_utf8_lossy(&fields.concat()).into_owned();
        assert!(stored.contains(&account.account_id), "{key} is the account record: {stored}");
        assert!(!stored.contains(&secret), "{user}: token stored in the clear: {stored}");
        if let Some(refresh) = &account.credentials.refresh_token {
            assert!(!stored.contains(refresh.as_str()), "{user}: refresh token in the clear");
        }
    }
    demo.stop().await;
    redis.purge().await.unwrap();
}

#[tokio::test]
async fn link_urls_use_the_configured_public_url() {
    let mut config = oemgate::config::Config::defaults().unwrap();
    config.server.public_url = "https://gateway.example/oemgate/".into();
    let (demo, _clock) = crate::support::demo_with(config, 1, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let (status, created) =
        link(&http, &demo, &bearer, "u1", body_for("SOLAREDGE", scopes_of("SOLAREDGE"))).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["linkToken"].as_str().unwrap();
    assert_eq!(created["linkUrl"], format!("https://gateway.example/oemgate/link/{token}"));
    // The page itself answers on this server, its links under the public URL.
    let page = format!("{}/link/{token}/SOLAREDGE", demo.api_url);
    let html = browser().get(&page).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains(&format!(
            "action=\"https://gateway.example/oemgate/link/{token}/SOLAREDGE\""
        )),
        "{html}"
    );
    demo.stop().await;
}

/// The value of the hidden form field `name` in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn ecobee_pins_and_tado_device_codes_link_once_the_user_confirms() {
    let (demo, clock) = unlinked_demo(12, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();
    for vendor in ["ECOBEE", "TADO"] {
        let account = first_account(&demo, vendor);
        let user = format!("user-{}", vendor.to_lowercase());
        let (status, created) =
            link(&http, &demo, &bearer, &user, body_for(vendor, scopes_of(vendor))).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let link_url = created["linkUrl"].as_str().unwrap();
        let page = open_vendor_page(&b, link_url, vendor).await;
        // open_vendor_page fetched it once; fetch again to read the code it shows.
        let html = b.get(page.clone()).send().await.unwrap().text().await.unwrap();
        let form = |html: &str| {
            vec![
                ("action", "continue".to_string()),
                ("pending", hidden(html, "pending")),
                ("user_code", hidden(html, "user_code")),
                ("verification_url", hidden(html, "verification_url")),
            ]
        };
        let user_code = hidden(&html, "user_code");
        assert!(html.contains(&user_code) && !user_code.is_empty());

        // Not confirmed yet: the same code is shown again and the link stays usable.
        let response = b.post(page.clone()).form(&form(&html)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{vendor}");
        let again = response.text().await.unwrap();
        assert!(again.contains("not confirmed the code yet"), "{again}");
        assert_eq!(hidden(&again, "user_code"), user_code);
        assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::SEE_OTHER);

        // The user confirms at the vendor (the simulator plays the vendor's page).
        let confirmed = match (&account.link, vendor) {
            (_, "ECOBEE") => {
                demo.sim.ecobee.authorize_pin(account.login.as_deref().unwrap(), &user_code)
            }
            (LinkStep::Login { user_name, password }, _) => {
                demo.sim.approve_device_code(&user_code, user_name, password)
            }
            (other, _) => panic!("{other:?}"),
        };
        assert!(confirmed, "{vendor} accepted the code");
        clock.advance(Duration::from_secs(30));
        let response = b.post(page).form(&form(&again)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{vendor}");
        let landed = location(&response);
        assert!(landed.as_str().starts_with(APP) && query(&landed).is_empty(), "{landed}");
        poll_a_while(&demo, &clock).await;
        let hvacs = user_devices(&http, &demo, &bearer, &user, "hvacs").await;
        let expected = account
            .devices
            .iter()
            .filter(|d| demo.sim.world.device_info(d).is_some_and(|i| i.kind == DeviceKind::Hvac))
            .count();
        assert!(expected > 0);
        assert_eq!(hvacs.len(), expected, "{vendor}");
        assert_eq!(b.get(link_url).send().await.unwrap().status(), StatusCode::GONE);
    }
    demo.stop().await;
}

#[tokio::test]
async fn relinking_an_invalidated_account_puts_its_devices_back_on_the_schedule() {
    let (demo, clock) = unlinked_demo(12, None).await;
    let http = reqwest::Client::new();
    let bearer = token(&http, &demo).await;
    let b = browser();
    let account = first_account(&demo, "TESLA");
    let (_, created) =
        link(&http, &demo, &bearer, "u-inv", body_for("TESLA", scopes_of("TESLA"))).await;
    walk(&b, created["linkUrl"].as_str().unwrap(), account).await;
    poll_a_while(&demo, &clock).await;
    let vehicles = user_devices(&http, &demo, &bearer, "u-inv", "vehicles").await;
    let vehicle = vehicles[0]["id"].as_str().unwrap().to_string();
    let accounts = demo.store.accounts_of_user("u-inv").await.unwrap();
    assert_eq!(accounts.len(), 1);
    let account_id = accounts[0].account.account_id.clone();

    // Tesla revokes every token: the poller invalidates the account and stops polling it.
    demo.sim.world.faults().set("tesla", oemgate_sim::Fault::RevokeTokens, None);
    for _ in 0..5 {
        // Idle devices are polled every few minutes.
        poll_a_while(&demo, &clock).await;
    }
    let stored = demo.store.get_account(&account_id).await.unwrap().unwrap();
    assert!(stored.invalid_since.is_some(), "the account is invalidated");
    assert_eq!(demo.store.due_at(&vehicle).await.unwrap(), None, "off the schedule");

    // The user relinks through the asset.
    let response = http
        .post(format!("{}/assets/{vehicle}/relink", demo.api_url))
        .bearer_auth(&bearer)
        .json(&json!({"language": "en-US", "redirectUri": APP}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    let landed = walk(&b, created["linkUrl"].as_str().unwrap(), account).await;
    assert!(query(&landed).is_empty(), "{landed}");
    let stored = demo.store.get_account(&account_id).await.unwrap().unwrap();
    assert_eq!(stored.invalid_since, None, "the relink cleared the invalidation");
    assert!(demo.store.due_at(&vehicle).await.unwrap().is_some(), "back on the schedule");
    assert_eq!(demo.store.accounts_of_user("u-inv").await.unwrap().len(), 1, "same account");
    let before = demo.stats.polls_ok.load(std::sync::atomic::Ordering::Relaxed);
    poll_a_while(&demo, &clock).await;
    assert!(demo.stats.polls_ok.load(std::sync::atomic::Ordering::Relaxed) > before);
    let after = user_devices(&http, &demo, &bearer, "u-inv", "vehicles").await;
    assert_eq!(after.len(), vehicles.len(), "no device registered twice");
    demo.stop().await;
}
