#![allow(clippy::unwrap_used)]
//! Fault timing on the simulated clock, and fault config.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use oemgate_core::{Clock, ManualClock, ScaledClock};
use oemgate_sim::*;

fn setup() -> (Arc<ManualClock>, World) {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()));
    let world = World::new(1, clock.clone(), WorldConfig::default());
    (clock, world)
}

#[test]
fn faults_expire_on_the_simulated_clock() {
    let (clock, world) = setup();
    let faults = world.faults();
    assert_eq!(faults.active("tesla"), None);
    let rate = Fault::RateLimit { retry_after: Duration::from_secs(30) };
    faults.set("tesla", rate.clone(), Some(Duration::from_secs(60)));
    assert_eq!(faults.active("tesla"), Some(rate.clone()));
    assert_eq!(faults.active("enphase"), None);
    // Clones share the same faults.
    let other = world.faults();
    clock.advance(Duration::from_secs(59));
    assert_eq!(other.active("tesla"), Some(rate.clone()));
    clock.advance(Duration::from_secs(1));
    assert_eq!(other.active("tesla"), None);

    // Until cleared; a later set wins while both are active.
    faults.set("tesla", Fault::ServerError { status: 502 }, None);
    faults.set("tesla", Fault::Malformed, Some(Duration::from_secs(10)));
    assert_eq!(faults.active("tesla"), Some(Fault::Malformed));
    clock.advance(Duration::from_secs(10));
    assert_eq!(faults.active("tesla"), Some(Fault::ServerError { status: 502 }));
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(faults.active("tesla"), Some(Fault::ServerError { status: 502 }));
    faults.clear("tesla");
    assert_eq!(faults.active("tesla"), None);

    // A scheduled outage.
    let start = clock.now() + chrono::Duration::minutes(10);
    faults.schedule_outage("enphase", start, Duration::from_secs(300));
    assert_eq!(faults.active("enphase"), None);
    clock.set(start);
    assert_eq!(faults.active("enphase"), Some(Fault::Outage));
    clock.set(start + chrono::Duration::seconds(299));
    assert_eq!(faults.active("enphase"), Some(Fault::Outage));
    clock.set(start + chrono::Duration::seconds(300));
    assert_eq!(faults.active("enphase"), None);
}

#[test]
fn token_revocation_is_one_shot() {
    let (clock, world) = setup();
    let faults = world.faults();
    assert!(!faults.take_revocation("tesla"));
    faults.set("tesla", Fault::RevokeTokens, None);
    // Not a standing fault.
    assert_eq!(faults.active("tesla"), None);
    assert!(faults.take_revocation("tesla"));
    assert!(!faults.take_revocation("tesla"));
    // Scheduled revocations become takeable at their start.
    let at = clock.now() + chrono::Duration::hours(1);
    faults.schedule("tesla", Fault::RevokeTokens, at, None);
    assert!(!faults.take_revocation("tesla"));
    clock.set(at);
    assert!(faults.take_revocation("tesla"));
    assert!(faults.list("tesla").is_empty());
}

#[test]
fn hang_converts_clock_time_to_real_time() {
    let scaled = ScaledClock::new(Utc::now(), 60.0);
    let hang = Fault::Hang { duration: Duration::from_secs(120) };
    assert_eq!(hang.hang_real(&scaled), Some(Duration::from_secs(2)));
    assert_eq!(Fault::Timeout.hang_real(&scaled), Some(TIMEOUT_HANG));
    assert_eq!(Fault::Outage.hang_real(&scaled), None);
}

#[test]
fn fault_config_from_toml_schedules_relative_to_the_start() {
    let text = r#"
        tesla = [
          { fault = "rate_limit", retry_after = "30s", start_after = "10m", duration = "2m" },
          { fault = "hang", hang = "20s", start_after = "30m", duration = "10m" },
          { fault = "server_error", start_after = "50m", duration = "1m" },
          { fault = "revoke_tokens", start_after = "2h" },
        ]
        enphase = [{ fault = "outage", duration = "5m" }]
    "#;
    let faults: FaultConfig = toml::from_str(text).unwrap();
    assert_eq!(faults.0["tesla"].len(), 4);
    assert_eq!(faults.0["tesla"][2].fault, Fault::ServerError { status: 500 });
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()));
    let world = World::new(1, clock.clone(), WorldConfig { faults, ..WorldConfig::default() });
    let f = world.faults();
    assert_eq!(f.active("enphase"), Some(Fault::Outage));
    assert_eq!(f.active("tesla"), None);
    clock.advance(Duration::from_secs(600));
    assert_eq!(f.active("tesla"), Some(Fault::RateLimit { retry_after: Duration::from_secs(30) }));
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(f.active("tesla"), Some(Fault::Hang { duration: Duration::from_secs(20) }));
    assert_eq!(f.active("enphase"), None);
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(f.active("tesla"), Some(Fault::ServerError { status: 500 }));
    assert!(!f.take_revocation("tesla"));
    clock.advance(Duration::from_secs(70 * 60));
    assert!(f.take_revocation("tesla"));

    // The whole world config deserializes too (as the gateway would embed it).
    let config: WorldConfig = toml::from_str(
        r#"
        sleep_after = "10m"
        [latency.tesla]
        median_secs = 5.0
        loss_share = 0.1
        [faults]
        tesla = [{ fault = "timeout", start_after = "1m", duration = "1m" }]
        "#,
    )
    .unwrap();
    assert_eq!(config.sleep_after, Duration::from_secs(600));
    assert_eq!(config.latency_for("tesla").median_secs, 5.0);
    assert_eq!(config.latency_for("tesla").max_secs, 300.0);
    assert_eq!(config.latency_for("other"), LatencyProfile::default());
    assert!(toml::from_str::<FaultConfig>(r#"x = [{ fault = "nope" }]"#).is_err());
}
