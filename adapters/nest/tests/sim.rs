//! The simulated SDM API's behaviour beyond the conformance suite, through the adapter and
//! raw HTTP: mode preconditions, Eco, offline thermostats, heat-only systems, the Sandbox rate
//! limits, Google's token rules, and the shapes of its answers.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use oemgate_core::{
    AccountRef, AdapterResult, Clock, Command, CommandReceipt, DeviceRef, DeviceState, ErrorKind,
    Hvac, HvacApi, HvacMode, ManualClock, VendorAdapter, VendorType,
};
use oemgate_nest::map::ECO_MODE_INTERVENTION_ID;
use oemgate_nest::sim::{FAULT_VENDOR, NestSim, PREFIX, WORLD_VENDOR};
use oemgate_nest::{NestAdapter, NestConfig, api_error_of};
use oemgate_sim::{
    DeviceId, Fault, HvacHold, HvacMode as WorldMode, HvacSpec, LatencyProfile, RequestLog,
    SimHost, SiteId, SiteSpec, World, WorldConfig,
};
use serde_json::{Value, json};

const LATENCY: Duration = Duration::from_secs(5);

struct Setup {
    clock: Arc<ManualClock>,
    world: World,
    sim: NestSim,
    adapter: NestAdapter,
    account: AccountRef,
    base: String,
    log: RequestLog,
    hvacs: Vec<DeviceId>,
    sites: Vec<SiteId>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self._server.abort();
    }
}

impl Setup {
    async fn new() -> Self {
        let clock =
            Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 15, 7, 30, 0).unwrap()));
        let config = WorldConfig {
            latency: HashMap::from([(
                WORLD_VENDOR.to_owned(),
                LatencyProfile::fixed(LATENCY.as_secs_f64()),
            )]),
            ..WorldConfig::default()
        };
        let world = World::new(7, clock.clone(), config);
        let home = world.add_site(SiteSpec { name: "Home".into(), ..SiteSpec::default() });
        let spec = |name: &str| HvacSpec {
            vendor: WORLD_VENDOR.into(),
            name: name.into(),
            hold: HvacHold::Permanent,
            mode: WorldMode::Heat,
            heat_setpoint: 21.0,
            cool_setpoint: 25.0,
            indoor_c: 20.0,
            ..HvacSpec::default()
        };
        let a = world.add_hvac(&home, spec("Hall")).unwrap();
        let b = world.add_hvac(&home, spec("Office")).unwrap();
        let empty = world.add_site(SiteSpec { name: "Flat".into(), ..SiteSpec::default() });

        let sim = NestSim::new(world.clone());
        let mut host = SimHost::new(clock.clone());
        host.mount(PREFIX, sim.router()).unwrap();
        let log = host.request_log();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}{PREFIX}", listener.local_addr().unwrap());
        let server = tokio::spawn(host.serve(listener));
        let app = sim.config();
        let config =
            NestConfig::new(app.project_id, app.client_id, app.client_secret).for_base_url(&base);
        let adapter = NestAdapter::new(config, clock.clone());
        let link = sim.create_account(std::slice::from_ref(&home));
        let credentials = adapter.exchange_code(&link.code, &link.redirect_uri).await.unwrap();
        let account = AccountRef {
            user_id: "u".into(),
            vendor: "NEST".into(),
            account_id: link.user,
            credentials,
        };
        Self {
            clock,
            world,
            sim,
            adapter,
            account,
            base,
            log,
            hvacs: vec![a, b],
            sites: vec![home, empty],
            _server: server,
        }
    }

    fn device(&self, i: usize) -> DeviceRef {
        DeviceRef {
            id: format!("hvac-{i}"),
            user_id: "u".into(),
            device_type: VendorType::Hvac,
            vendor_id: self.sim.sdm_device_id(&self.hvacs[i]),
            site_id: None,
        }
    }

    async fn read(&self, i: usize) -> Hvac {
        let obs = self.adapter.poll(&self.account, &self.device(i)).await.unwrap();
        match obs.state {
            DeviceState::Hvac(h) => *h,
            other => panic!("not an HVAC: {other:?}"),
        }
    }

    async fn hold(
        &self,
        i: usize,
        mode: HvacMode,
        heat: Option<f64>,
        cool: Option<f64>,
    ) -> AdapterResult<CommandReceipt> {
        self.adapter.set_permanent_hold(&self.account, &self.device(i), mode, heat, cool).await
    }

    fn settle(&self) {
        self.clock.advance(LATENCY * 2);
    }

    async fn raw(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1/enterprises/{}{path}", self.base, self.sim.project_id());
        let mut request = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(&self.account.credentials.access_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn command(&self, i: usize, command: &str, params: Value) -> (u16, Value) {
        let path = format!("/devices/{}:executeCommand", self.sim.sdm_device_id(&self.hvacs[i]));
        self.raw(
            reqwest::Method::POST,
            &path,
            Some(json!({ "command": command, "params": params })),
        )
        .await
    }
}

#[tokio::test]
async fn a_setpoint_command_needs_its_mode_and_the_hold_sends_the_mode_first() {
    let s = Setup::new().await;
    // Raw: SetCool while the thermostat heats is refused in SDM's words.
    let (status, body) = s
        .command(
            0,
            "sdm.devices.commands.ThermostatTemperatureSetpoint.SetCool",
            json!({"coolCelsius": 24.0}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "FAILED_PRECONDITION");
    assert_eq!(
        body["error"]["message"],
        "sdm.devices.commands.ThermostatTemperatureSetpoint.SetCool command not allowed in current thermostat mode."
    );
    // The adapter's hold: SetMode COOL, then SetCool, accepted while the mode is in flight.
    let receipt = s.hold(0, HvacMode::Cool, None, Some(24.0)).await.unwrap();
    assert_eq!(receipt.requests, 2);
    // The receipt is no confirmation: the world still heats until the latency passed.
    assert_eq!(s.read(0).await.thermostat_state.mode, HvacMode::Heat);
    s.settle();
    let h = s.read(0).await;
    assert_eq!(h.thermostat_state.mode, HvacMode::Cool);
    assert_eq!(h.thermostat_state.cool_setpoint, Some(24.0));
    assert_eq!(h.thermostat_state.heat_setpoint, None);
    let w = s.world.hvac(&s.hvacs[0]).unwrap();
    assert_eq!((w.mode, w.hold, w.cool_setpoint), (WorldMode::Cool, HvacHold::Permanent, 24.0));
    // Sending the same again changes nothing and is still accepted ({}).
    let receipt = s.hold(0, HvacMode::Cool, None, Some(24.0)).await.unwrap();
    assert_eq!(receipt.requests, 2);
    // OFF is the mode alone.
    assert_eq!(s.hold(0, HvacMode::Off, None, None).await.unwrap().requests, 1);
    s.settle();
    let h = s.read(0).await;
    assert_eq!((h.thermostat_state.heat_setpoint, h.thermostat_state.cool_setpoint), (None, None));
}

#[tokio::test]
async fn out_of_range_values_are_refused_by_sdm_too() {
    let s = Setup::new().await;
    let (status, body) = s
        .command(
            0,
            "sdm.devices.commands.ThermostatTemperatureSetpoint.SetHeat",
            json!({"heatCelsius": 35.0}),
        )
        .await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let (status, body) =
        s.command(0, "sdm.devices.commands.ThermostatMode.SetMode", json!({"mode": "ECO"})).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let (status, body) = s.command(0, "sdm.devices.commands.Nope.Nothing", json!({})).await;
    assert_eq!((status, body["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
    // HEATCOOL: heat and cool at least 1.5 °C apart (the adapter refuses it before sending).
    s.command(0, "sdm.devices.commands.ThermostatMode.SetMode", json!({"mode": "HEATCOOL"})).await;
    let (status, _) = s
        .command(
            0,
            "sdm.devices.commands.ThermostatTemperatureSetpoint.SetRange",
            json!({"heatCelsius": 21.0, "coolCelsius": 22.0}),
        )
        .await;
    assert_eq!(status, 400);
    let before = s.log.count(PREFIX);
    let e = s.hold(0, HvacMode::Auto, Some(21.0), Some(22.0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(s.log.count(PREFIX), before, "refused locally");
}

#[tokio::test]
async fn eco_blocks_setpoints() {
    let s = Setup::new().await;
    s.sim.set_eco_temperatures(&s.hvacs[0], 15.5, 27.0);
    s.sim.set_eco(&s.hvacs[0], true);
    let h = s.read(0).await;
    assert_eq!(h.thermostat_state.mode, HvacMode::Heat);
    assert_eq!(h.thermostat_state.heat_setpoint, Some(15.5), "Eco's temperature is in effect");
    assert!(!h.capabilities.set_permanent_hold.is_capable);
    assert_eq!(h.capabilities.set_permanent_hold.intervention_ids, vec![ECO_MODE_INTERVENTION_ID]);
    let e = s.hold(0, HvacMode::Heat, Some(22.0), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(
        api_error_of(&e).unwrap().message,
        "Command not allowed when thermostat in MANUAL_ECO mode."
    );
    // Eco off (as the user would in the app, here through SDM) and the hold works.
    let (status, _) =
        s.command(0, "sdm.devices.commands.ThermostatEco.SetMode", json!({"mode": "OFF"})).await;
    assert_eq!(status, 200);
    let (status, body) =
        s.command(0, "sdm.devices.commands.ThermostatEco.SetMode", json!({"mode": "OFF"})).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (400, Some("FAILED_PRECONDITION")),
        "already off"
    );
    s.hold(0, HvacMode::Heat, Some(22.0), None).await.unwrap();
    s.settle();
    assert_eq!(s.read(0).await.thermostat_state.heat_setpoint, Some(22.0));
}

#[tokio::test]
async fn an_offline_thermostat_shows_its_last_values_and_refuses_commands() {
    let s = Setup::new().await;
    let online = s.read(0).await;
    assert!(online.is_reachable);
    s.world.set_device_online(&s.hvacs[0], false).unwrap();
    s.clock.advance(Duration::from_secs(1800));
    let h = s.read(0).await;
    assert!(!h.is_reachable);
    assert_eq!(h.temperature_state.last_updated, None);
    assert_eq!(
        h.temperature_state.current_temperature, online.temperature_state.current_temperature,
        "the value last seen online"
    );
    let e = s.hold(0, HvacMode::Heat, Some(22.0), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeviceOffline);
}

#[tokio::test]
async fn a_heat_only_system_refuses_cooling() {
    let s = Setup::new().await;
    s.sim.set_available_modes(&s.hvacs[1], &[WorldMode::Heat, WorldMode::Off]);
    s.sim.set_fahrenheit(&s.hvacs[1], true);
    let h = s.read(1).await;
    assert_eq!(h.capabilities.capable_modes, Some(vec![HvacMode::Heat, HvacMode::Off]));
    assert_eq!(h.thermostat_state.heat_setpoint, Some(21.0), "°C whatever the display scale");
    let e = s.hold(1, HvacMode::Cool, None, Some(24.0)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
}

#[tokio::test]
async fn sandbox_limits_are_enforced_per_user() {
    let s = Setup::new().await;
    // devices.get: 10 per minute per user.
    for _ in 0..10 {
        s.adapter.poll(&s.account, &s.device(0)).await.unwrap();
    }
    let e = s.adapter.poll(&s.account, &s.device(1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), None, "SDM gives no hint");
    assert_eq!(
        api_error_of(&e).unwrap().message,
        "Rate limited for the GetDevice API for the user."
    );
    // devices.list is counted on its own (5 per minute).
    for _ in 0..5 {
        s.adapter.discover(&s.account).await.unwrap();
    }
    assert_eq!(s.adapter.discover(&s.account).await.unwrap_err().kind(), ErrorKind::RateLimited);
    s.clock.advance(Duration::from_secs(61));
    s.adapter.poll(&s.account, &s.device(0)).await.unwrap();
    // A trait command: 5 per minute per device.
    for i in 0..5 {
        let (status, _) = s
            .command(0, "sdm.devices.commands.ThermostatMode.SetMode", json!({"mode": "HEAT"}))
            .await;
        assert_eq!(status, 200, "command {i}");
    }
    let (status, body) =
        s.command(0, "sdm.devices.commands.ThermostatMode.SetMode", json!({"mode": "HEAT"})).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["errors"][0]["reason"], "rateLimitExceeded");
    // ... the other thermostat is not affected.
    let (status, _) =
        s.command(1, "sdm.devices.commands.ThermostatMode.SetMode", json!({"mode": "HEAT"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_batch_reads_every_thermostat_with_one_list() {
    let s = Setup::new().await;
    let before = s.log.count(PREFIX);
    let results = s.adapter.poll_batch(&s.account, &[s.device(0), s.device(1)]).await;
    assert_eq!(s.log.count(PREFIX) - before, 1);
    let requests: Vec<u32> = results.iter().map(|r| r.as_ref().unwrap().requests).collect();
    assert_eq!(requests, vec![1, 0]);
    assert_eq!(
        s.log.records(PREFIX).last().unwrap().path,
        format!("/v1/enterprises/{}/devices", s.sim.project_id())
    );
    // A device that is not shared fails on its own.
    let mut stranger = s.device(1);
    stranger.vendor_id = "AVPHwEuNotMine".into();
    let results = s.adapter.poll_batch(&s.account, &[s.device(0), stranger]).await;
    assert!(results[0].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    let e =
        s.adapter.poll(&s.account, &s.device(0).clone_with_id("AVPHwEuNotMine")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

trait WithId {
    fn clone_with_id(&self, id: &str) -> Self;
}

impl WithId for DeviceRef {
    fn clone_with_id(&self, id: &str) -> Self {
        DeviceRef { vendor_id: id.into(), ..self.clone() }
    }
}

#[tokio::test]
async fn google_tokens_refresh_without_rotation_until_revoked() {
    let s = Setup::new().await;
    let first = s.adapter.refresh_credentials(&s.account).await.unwrap();
    let second = s.adapter.refresh_credentials(&s.account).await.unwrap();
    assert_eq!(first.refresh_token, s.account.credentials.refresh_token, "kept");
    assert_ne!(first.access_token, second.access_token, "the same refresh token works again");
    let mut account = s.account.clone();
    account.credentials = second;
    s.adapter.discover(&account).await.unwrap();
    // The user removes the project in the Partner Connections Manager: 403.
    s.sim.remove_access(&account.account_id);
    let e = s.adapter.discover(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    // They revoke the app in their Google account: 401, then invalid_grant.
    s.sim.revoke_user(&account.account_id);
    assert_eq!(s.adapter.discover(&account).await.unwrap_err().kind(), ErrorKind::AuthExpired);
    let e = s.adapter.refresh_credentials(&account).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(api_error_of(&e).unwrap().rpc_status, "invalid_grant");
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_the_redirect() {
    let s = Setup::new().await;
    let link = s.sim.create_account(&s.sites[1..]);
    let e = s.adapter.exchange_code(&link.code, "https://elsewhere.example/cb").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let e = s.adapter.exchange_code(&link.code, &link.redirect_uri).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "the code was spent by the failed attempt");
    let code = s.sim.new_authorization_code(&link.user).unwrap();
    let credentials = s.adapter.exchange_code(&code, &link.redirect_uri).await.unwrap();
    assert!(credentials.expires_at.unwrap() > s.clock.now());
    assert!(credentials.refresh_token.is_some());
    // A home without Nest thermostats: SDM answers {} and discovery finds nothing.
    let account = AccountRef { credentials, ..s.account.clone() };
    assert!(s.adapter.discover(&account).await.unwrap().is_empty());
    let (_, body) = {
        let url = format!("{}/v1/enterprises/{}/devices", s.base, s.sim.project_id());
        let r = reqwest::Client::new()
            .get(url)
            .bearer_auth(&account.credentials.access_token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn answers_have_googles_shapes() {
    let s = Setup::new().await;
    let (status, body) = s.raw(reqwest::Method::GET, "/devices", None).await;
    assert_eq!(status, 200);
    let devices = body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let d = &devices[0];
    assert_eq!(d["type"], "sdm.devices.types.THERMOSTAT");
    assert!(d["name"].as_str().unwrap().starts_with("enterprises/"));
    assert_eq!(d["traits"]["sdm.devices.traits.ThermostatMode"]["mode"], "HEAT");
    assert_eq!(
        d["traits"]["sdm.devices.traits.ThermostatTemperatureSetpoint"],
        json!({"heatCelsius": 21.0})
    );
    assert!(d["parentRelations"][0]["parent"].as_str().unwrap().contains("/structures/"));
    let (status, body) = s.raw(reqwest::Method::GET, "/structures", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["structures"][0]["traits"]["sdm.structures.traits.Info"]["customName"], "Home");
    // Unknown device, unknown project, no token.
    let (status, body) = s.raw(reqwest::Method::GET, "/devices/AVPHwEuNope", None).await;
    assert_eq!((status, body["error"]["status"].as_str()), (404, Some("NOT_FOUND")));
    let r = reqwest::Client::new()
        .get(format!("{}/v1/enterprises/{}/devices", s.base, s.sim.project_id()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    // The injected rate limit carries Google's RetryInfo.
    s.world.faults().set(
        FAULT_VENDOR,
        Fault::RateLimit { retry_after: Duration::from_secs(37) },
        None,
    );
    let (status, body) = s.raw(reqwest::Method::GET, "/devices", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["details"][0]["retryDelay"], "37s");
    let e = s.adapter.discover(&s.account).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(37)));
    s.world.faults().clear(FAULT_VENDOR);
}

#[tokio::test]
async fn follow_schedule_never_reaches_google() {
    let s = Setup::new().await;
    let before = s.log.count(PREFIX);
    let e =
        s.adapter.execute(&s.account, &s.device(0), &Command::FollowSchedule).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(s.log.count(PREFIX), before);
    let h = s.read(0).await;
    assert!(!h.capabilities.set_follow_schedule.is_capable);
}
