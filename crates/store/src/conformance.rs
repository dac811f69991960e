//! The behaviour every [`Store`] must show, as a test kit any backend can run.
//!
//! [`run_all`] runs every check; each check is also public so a failing one can be run alone.
//! The checks panic on the first deviation (this is a test kit, not production code).
//!
//! They are written to run again and again against one shared backend: every id and user is
//! fresh per run (uuid v4), lists are checked through filters on those fresh users, and no
//! check sleeps: expiry and leases are driven by explicit `now` values. The schedule check uses
//! due times in 1971 and removes its entries at the end; it assumes nothing else in the store
//! is due that early and that nobody else changes the schedule's size while it runs.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use oemgate_core::{AccountRef, Credentials, DeviceRef, VendorType};
use serde_json::json;

use crate::error::StoreError;
use crate::traits::*;

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn Store>) {
    let store = &*store;
    ping(store).await;
    devices(store).await;
    device_filters(store).await;
    device_pagination(store).await;
    invalid_cursors(store).await;
    snapshots(store).await;
    delete_device(store).await;
    actions(store).await;
    schedule(store).await;
    hints(store).await;
    clients_and_tokens(store).await;
    client_list(store).await;
    accounts(store).await;
    account_deletion(store).await;
    users(store).await;
    devices_by_client(store).await;
    resources(store).await;
    events(store).await;
    link_sessions(store).await;
    history(store).await;
    webhook_states(store).await;
}

/// Page size used when walking a whole list.
const MAX_WALK_PAGE: usize = 500;

/// Fresh ids for one check.
struct Run(String);

impl Run {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.0)
    }

    fn device(
        &self,
        name: &str,
        user: &str,
        kind: VendorType,
        created_at: DateTime<Utc>,
    ) -> DeviceRecord {
        DeviceRecord {
            device: DeviceRef {
                id: self.id(name),
                user_id: self.id(user),
                device_type: kind,
                vendor_id: format!("VIN-{name}"),
                site_id: None,
            },
            vendor: "TESLA".to_owned(),
            account_id: self.id("account"),
            created_at,
        }
    }
}

/// A millisecond-exact time `seconds` after 2024-01-01T00:00:00Z.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("valid date")
        + Duration::seconds(seconds)
}

fn snapshot(device: &DeviceRecord, observed_at: DateTime<Utc>, charge: u32) -> Snapshot {
    Snapshot {
        device_id: device.device.id.clone(),
        user_id: device.device.user_id.clone(),
        device_type: device.device.device_type,
        version: 0,
        observed_at,
        resource: json!({ "id": device.device.id, "chargeState": { "batteryLevel": charge } }),
    }
}

fn ids<'a>(items: impl IntoIterator<Item = &'a DeviceRecord>) -> Vec<String> {
    items.into_iter().map(|d| d.device.id.clone()).collect()
}

fn by_user(user: &str) -> DeviceFilter {
    DeviceFilter { user_id: Some(user.to_owned()), device_type: None, client_id: None }
}

fn page(size: usize) -> PageRequest {
    PageRequest { after: None, before: None, page_size: size }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: u64, actual: u64) {
    match result {
        Err(StoreError::Conflict { expected: e, actual: a, .. }) => {
            assert_eq!((e, a), (expected, actual), "conflict versions");
        }
        other => panic!("expected a conflict ({expected} vs {actual}), got {other:?}"),
    }
}

/// `ping` succeeds and the backend names itself.
pub async fn ping(store: &dyn Store) {
    store.ping().await.expect("ping");
    assert!(!store.backend().is_empty());
}

/// Register, read, replace (keeping `created_at`) and move a device between users.
pub async fn devices(store: &dyn Store) {
    let run = Run::new();
    let device = run.device("car", "alice", VendorType::Vehicle, at(100));
    assert_eq!(store.get_device(&device.device.id).await.expect("get"), None);
    store.put_device(device.clone()).await.expect("put");
    assert_eq!(store.get_device(&device.device.id).await.expect("get"), Some(device.clone()));

    // A replacement keeps the first created_at, whatever the caller sends.
    let mut moved = device.clone();
    moved.device.user_id = run.id("bob");
    moved.vendor = "OTHER".to_owned();
    moved.created_at = at(999);
    store.put_device(moved.clone()).await.expect("replace");
    let stored = store.get_device(&device.device.id).await.expect("get").expect("stored");
    assert_eq!(stored.created_at, device.created_at, "created_at is kept");
    assert_eq!(stored.vendor, "OTHER");
    assert_eq!(stored.device.user_id, run.id("bob"));

    // The user indexes follow the owner.
    let alice = store.list_devices(&by_user(&run.id("alice")), &page(10)).await.expect("list");
    assert!(alice.items.is_empty(), "moved away from alice: {alice:?}");
    let bob = store.list_devices(&by_user(&run.id("bob")), &page(10)).await.expect("list");
    assert_eq!(ids(&bob.items), ids([&device]));
    assert_eq!(bob.items[0].created_at, device.created_at);
    assert_eq!((bob.after, bob.before), (None, None));

    assert!(store.delete_device(&device.device.id).await.expect("delete"));
}

/// Filters by user, by type and both; snapshots follow the same filters.
pub async fn device_filters(store: &dyn Store) {
    let run = Run::new();
    let car1 = run.device("car1", "u1", VendorType::Vehicle, at(10));
    let car2 = run.device("car2", "u1", VendorType::Vehicle, at(20));
    let charger = run.device("charger", "u1", VendorType::Charger, at(30));
    let other = run.device("car3", "u2", VendorType::Vehicle, at(40));
    for device in [&car1, &car2, &charger, &other] {
        store.put_device(device.clone()).await.expect("put");
    }
    let u1 = run.id("u1");
    let list = |filter: DeviceFilter| async move {
        store.list_devices(&filter, &page(100)).await.expect("list")
    };

    let all_u1 = list(by_user(&u1)).await;
    assert_eq!(ids(&all_u1.items), ids([&charger, &car2, &car1]), "newest first");
    let u1_cars = list(DeviceFilter {
        user_id: Some(u1.clone()),
        device_type: Some(VendorType::Vehicle),
        client_id: None,
    })
    .await;
    assert_eq!(ids(&u1_cars.items), ids([&car2, &car1]));
    let u1_chargers = list(DeviceFilter {
        user_id: Some(u1.clone()),
        device_type: Some(VendorType::Charger),
        client_id: None,
    })
    .await;
    assert_eq!(ids(&u1_chargers.items), ids([&charger]));
    let u2 = list(by_user(&run.id("u2"))).await;
    assert_eq!(ids(&u2.items), ids([&other]));

    // By type alone the list spans users (and whatever else the store holds): walk it all.
    let mut seen = Vec::new();
    let mut request = page(MAX_WALK_PAGE);
    loop {
        let filter =
            DeviceFilter { user_id: None, device_type: Some(VendorType::Vehicle), client_id: None };
        let vehicles = store.list_devices(&filter, &request).await.expect("list");
        assert!(vehicles.items.iter().all(|d| d.device.device_type == VendorType::Vehicle));
        seen.extend(ids(&vehicles.items));
        match vehicles.after {
            Some(after) => request = PageRequest { after: Some(after), ..page(MAX_WALK_PAGE) },
            None => break,
        }
    }
    for car in [&car1, &car2, &other] {
        assert!(seen.contains(&car.device.id), "type filter lists {}", car.device.id);
    }
    assert!(!seen.contains(&charger.device.id));

    // Snapshot lists use the same filters and leave out devices without a snapshot.
    for device in [&car1, &charger] {
        store.put_snapshot(snapshot(device, at(50), 60), 0).await.expect("snapshot");
    }
    let snaps = store.list_snapshots(&by_user(&u1), &page(100)).await.expect("list");
    let snap_ids: Vec<_> = snaps.items.iter().map(|s| s.device_id.clone()).collect();
    assert_eq!(snap_ids, ids([&charger, &car1]));
    assert!(snaps.items.iter().all(|s| s.version == 1));
    let filter = DeviceFilter {
        user_id: Some(u1.clone()),
        device_type: Some(VendorType::Vehicle),
        client_id: None,
    };
    let car_snaps = store.list_snapshots(&filter, &page(100)).await.expect("list");
    assert_eq!(car_snaps.items.len(), 1);
    assert_eq!(car_snaps.items[0].device_id, car1.device.id);

    for device in [&car1, &car2, &charger, &other] {
        store.delete_device(&device.device.id).await.expect("delete");
    }
}

/// Three pages forward with `after`, back with `before`, ties broken by id, clamped sizes.
pub async fn device_pagination(store: &dyn Store) {
    let run = Run::new();
    // d0 (oldest) .. d6 (newest); d3 and d4 share a millisecond, so the id breaks the tie and
    // d4 ("...-d4" > "...-d3") lists first.
    let times = [0, 10, 20, 30, 30, 40, 50];
    let devices: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| run.device(&format!("d{i}"), "pager", VendorType::Vehicle, at(t)))
        .collect();
    for device in &devices {
        store.put_device(device.clone()).await.expect("put");
    }
    let filter = by_user(&run.id("pager"));
    let newest_first: Vec<String> = devices.iter().rev().map(|d| d.device.id.clone()).collect();

    let first = store.list_devices(&filter, &page(3)).await.expect("page 1");
    assert_eq!(ids(&first.items), newest_first[0..3]);
    assert_eq!(first.before, None, "nothing newer than the first page");
    let after = first.after.clone().expect("page 1 has a next page");

    let second = store
        .list_devices(&filter, &PageRequest { after: Some(after), ..page(3) })
        .await
        .expect("page 2");
    assert_eq!(ids(&second.items), newest_first[3..6]);
    let (after, back) = (second.after.clone(), second.before.clone());

    let third =
        store.list_devices(&filter, &PageRequest { after, ..page(3) }).await.expect("page 3");
    assert_eq!(ids(&third.items), newest_first[6..7]);
    assert_eq!(third.after, None, "nothing older than the last page");

    // And back again.
    let second_again = store
        .list_devices(&filter, &PageRequest { before: third.before.clone(), ..page(3) })
        .await
        .expect("back to page 2");
    assert_eq!(second_again, second);
    let first_again =
        store.list_devices(&filter, &PageRequest { before: back, ..page(3) }).await.expect("back");
    assert_eq!(first_again, first);

    // `before` takes the items right before the cursor, not the first page.
    let near = store
        .list_devices(&filter, &PageRequest { before: third.before.clone(), ..page(2) })
        .await
        .expect("before with a small page");
    assert_eq!(ids(&near.items), newest_first[4..6]);
    assert!(near.before.is_some() && near.after.is_some());

    // A cursor stays usable when its item is deleted.
    store.delete_device(&newest_first[2]).await.expect("delete");
    let resumed = store
        .list_devices(&filter, &PageRequest { after: first.after.clone(), ..page(3) })
        .await
        .expect("resume");
    assert_eq!(ids(&resumed.items), newest_first[3..6]);

    // Sizes are clamped to 1..=1000.
    let one = store.list_devices(&filter, &page(0)).await.expect("size 0");
    assert_eq!(one.items.len(), 1);
    let all = store.list_devices(&filter, &page(1_000_000)).await.expect("huge size");
    assert_eq!(all.items.len(), devices.len() - 1);
    assert_eq!((all.after, all.before), (None, None));

    for device in &devices {
        store.delete_device(&device.device.id).await.expect("delete");
    }
}

/// Cursors the store did not hand out, and `after` with `before`, are `InvalidCursor`.
pub async fn invalid_cursors(store: &dyn Store) {
    let filter = by_user(&Run::new().id("nobody"));
    let bad = |after: Option<&str>, before: Option<&str>| PageRequest {
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        page_size: 10,
    };
    for request in [bad(Some("garbage!"), None), bad(None, Some("Zm9vYmFy")), bad(Some(""), None)] {
        let result = store.list_devices(&filter, &request).await;
        assert!(matches!(result, Err(StoreError::InvalidCursor(_))), "{request:?}: {result:?}");
        let result = store.list_snapshots(&filter, &request).await;
        assert!(matches!(result, Err(StoreError::InvalidCursor(_))), "{request:?}: {result:?}");
    }

    // Two valid cursors at once are refused too.
    let run = Run::new();
    let devices: Vec<_> =
        (0..3).map(|i| run.device(&format!("d{i}"), "u", VendorType::Vehicle, at(i))).collect();
    for device in &devices {
        store.put_device(device.clone()).await.expect("put");
    }
    let filter = by_user(&run.id("u"));
    let first = store.list_devices(&filter, &page(1)).await.expect("list");
    let cursor = first.after.expect("more pages");
    let both = PageRequest { after: Some(cursor.clone()), before: Some(cursor), page_size: 1 };
    let result = store.list_devices(&filter, &both).await;
    assert!(matches!(result, Err(StoreError::InvalidCursor(_))), "{result:?}");
    for device in &devices {
        store.delete_device(&device.device.id).await.expect("delete");
    }
}

/// Snapshot compare-and-set and the registered-device requirement.
pub async fn snapshots(store: &dyn Store) {
    let run = Run::new();
    let device = run.device("car", "u", VendorType::Vehicle, at(0));
    let id = device.device.id.clone();

    let unregistered = store.put_snapshot(snapshot(&device, at(1), 50), 0).await;
    assert!(matches!(unregistered, Err(StoreError::NotFound(_))), "{unregistered:?}");
    store.put_device(device.clone()).await.expect("put");
    assert_eq!(store.get_snapshot(&id).await.expect("get"), None);

    assert_eq!(store.put_snapshot(snapshot(&device, at(1), 50), 0).await.expect("first"), 1);
    assert_conflict(store.put_snapshot(snapshot(&device, at(2), 51), 0).await, 0, 1);
    assert_eq!(store.put_snapshot(snapshot(&device, at(2), 52), 1).await.expect("second"), 2);
    assert_conflict(store.put_snapshot(snapshot(&device, at(3), 53), 1).await, 1, 2);
    assert_conflict(store.put_snapshot(snapshot(&device, at(3), 53), 7).await, 7, 2);

    let stored = store.get_snapshot(&id).await.expect("get").expect("stored");
    let expected = Snapshot { version: 2, ..snapshot(&device, at(2), 52) };
    assert_eq!(stored, expected, "the winning write, with its version");

    // Replacing the device keeps its snapshot, and snapshot lists follow a new owner.
    let mut moved = device.clone();
    moved.device.user_id = run.id("u2");
    store.put_device(moved).await.expect("replace");
    assert_eq!(store.get_snapshot(&id).await.expect("get"), Some(expected.clone()));
    let old_owner = store.list_snapshots(&by_user(&run.id("u")), &page(10)).await.expect("list");
    assert!(old_owner.items.is_empty(), "{old_owner:?}");
    let new_owner = store.list_snapshots(&by_user(&run.id("u2")), &page(10)).await.expect("list");
    assert_eq!(new_owner.items, [expected]);
    store.delete_device(&id).await.expect("delete");
}

/// Deleting a device removes it, its snapshot, its list entries and its schedule entry.
pub async fn delete_device(store: &dyn Store) {
    let run = Run::new();
    let device = run.device("car", "u", VendorType::Vehicle, at(0));
    let id = device.device.id.clone();
    let filter = by_user(&run.id("u"));
    store.put_device(device.clone()).await.expect("put");
    store.put_snapshot(snapshot(&device, at(1), 40), 0).await.expect("snapshot");
    store.schedule(&id, at(100)).await.expect("schedule");

    assert!(store.delete_device(&id).await.expect("delete"), "it existed");
    assert_eq!(store.get_device(&id).await.expect("get"), None);
    assert_eq!(store.get_snapshot(&id).await.expect("get"), None);
    assert_eq!(store.due_at(&id).await.expect("due"), None);
    assert!(store.list_devices(&filter, &page(10)).await.expect("list").items.is_empty());
    assert!(store.list_snapshots(&filter, &page(10)).await.expect("list").items.is_empty());
    assert!(!store.delete_device(&id).await.expect("delete again"), "gone already");

    let orphan = store.put_snapshot(snapshot(&device, at(2), 41), 1).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");

    // Registering it again starts from scratch.
    store.put_device(device.clone()).await.expect("put again");
    assert_eq!(store.put_snapshot(snapshot(&device, at(3), 42), 0).await.expect("fresh"), 1);
    store.delete_device(&id).await.expect("delete");
}

/// Action compare-and-set and the pending indexes.
pub async fn actions(store: &dyn Store) {
    let run = Run::new();
    let target = run.id("car");
    let action = |name: &str, pending: bool| {
        let state = if pending { "PENDING" } else { "CONFIRMED" };
        ActionRecord {
            id: run.id(name),
            target_id: target.clone(),
            pending,
            version: 0,
            body: json!({ "id": run.id(name), "kind": "START_CHARGING", "state": state }),
        }
    };
    let pending_ids = |actions: Vec<ActionRecord>| -> Vec<String> {
        actions.into_iter().map(|a| a.id).filter(|id| id.starts_with(&run.0)).collect()
    };

    assert_eq!(store.get_action(&run.id("a1")).await.expect("get"), None);
    assert_eq!(store.put_action(action("a2", true), 0).await.expect("put"), 1);
    assert_eq!(store.put_action(action("a1", true), 0).await.expect("put"), 1);
    assert_conflict(store.put_action(action("a1", true), 0).await, 0, 1);
    assert_eq!(
        pending_ids(store.pending_actions_for(&target).await.expect("pending")),
        [run.id("a1"), run.id("a2")],
        "id order"
    );
    assert_eq!(
        pending_ids(store.pending_actions().await.expect("pending")),
        [run.id("a1"), run.id("a2")]
    );
    assert!(store.pending_actions_for(&run.id("other")).await.expect("pending").is_empty());

    // Settling an action takes it out of the pending indexes.
    assert_eq!(store.put_action(action("a1", false), 1).await.expect("settle"), 2);
    assert_conflict(store.put_action(action("a1", true), 1).await, 1, 2);
    let stored = store.get_action(&run.id("a1")).await.expect("get").expect("stored");
    assert_eq!(stored, ActionRecord { version: 2, ..action("a1", false) });
    assert_eq!(
        pending_ids(store.pending_actions_for(&target).await.expect("pending")),
        [run.id("a2")]
    );
    assert_eq!(pending_ids(store.pending_actions().await.expect("pending")), [run.id("a2")]);

    assert_eq!(store.put_action(action("a2", false), 1).await.expect("settle"), 2);
    assert!(pending_ids(store.pending_actions().await.expect("pending")).is_empty());
}

/// Due times, moving only earlier, claims with leases, and removal.
/// Refresh hints: the first is taken, repeats within the interval are not, and one after
/// the interval is taken again; devices are independent.
pub async fn hints(store: &dyn Store) {
    let run = Run::new();
    let base = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().expect("valid date");
    let interval = std::time::Duration::from_secs(30);
    let (d1, d2) = (run.id("h1"), run.id("h2"));
    assert!(store.take_hint(&d1, base, interval).await.expect("hint"));
    assert!(!store.take_hint(&d1, base + Duration::seconds(10), interval).await.expect("hint"));
    assert!(
        !store.take_hint(&d1, base + Duration::milliseconds(29_999), interval).await.expect("hint")
    );
    assert!(store.take_hint(&d2, base + Duration::seconds(10), interval).await.expect("hint"));
    assert!(store.take_hint(&d1, base + Duration::seconds(30), interval).await.expect("hint"));
    assert!(!store.take_hint(&d1, base + Duration::seconds(31), interval).await.expect("hint"));
}

pub async fn schedule(store: &dyn Store) {
    let run = Run::new();
    // Due times in 1971, so no real schedule entry is ever due at these `now` values.
    let base = Utc.with_ymd_and_hms(1971, 1, 1, 0, 0, 0).single().expect("valid date");
    let t = |seconds: i64| base + Duration::seconds(seconds);
    // Three devices of one shard (the claims below are per shard) and one of another.
    let mut ids = (0..).map(|i| run.id(&format!("d{i}")));
    let d1 = ids.next().expect("id");
    let shard = crate::shard_of(&d1);
    let mut same = ids.by_ref().filter(|id| crate::shard_of(id) == shard);
    let (d2, d3) = (same.next().expect("id"), same.next().expect("id"));
    let other = (0..).map(|i| run.id(&format!("o{i}"))).find(|id| crate::shard_of(id) != shard);
    let other = other.expect("id");
    let other_shard = crate::shard_of(&other);
    let len_before = store.schedule_len().await.expect("len");

    store.schedule(&d1, t(10)).await.expect("schedule");
    store.schedule(&d2, t(5)).await.expect("schedule");
    assert_eq!(store.due_at(&d1).await.expect("due"), Some(t(10)));
    assert_eq!(store.due_at(&d3).await.expect("due"), None);

    // schedule_earlier never moves later, moves earlier, and inserts when absent.
    assert_eq!(store.schedule_earlier(&d1, t(20)).await.expect("earlier"), t(10));
    assert_eq!(store.due_at(&d1).await.expect("due"), Some(t(10)));
    assert_eq!(store.schedule_earlier(&d1, t(1)).await.expect("earlier"), t(1));
    assert_eq!(store.due_at(&d1).await.expect("due"), Some(t(1)));
    assert_eq!(store.schedule_earlier(&d3, t(30)).await.expect("insert"), t(30));
    assert_eq!(store.schedule_len().await.expect("len"), len_before + 3);

    // Nothing is due before the earliest entry; limit 0 takes nothing; a claim takes only
    // its own shard; a shard out of range holds nothing.
    assert!(store.claim_due(shard, t(0), 10, t(60)).await.expect("claim").is_empty());
    assert!(store.claim_due(shard, t(100), 0, t(200)).await.expect("claim").is_empty());
    store.schedule(&other, t(2)).await.expect("schedule");
    let claimed = store.claim_due(other_shard, t(2), 10, t(3)).await.expect("claim");
    assert_eq!(claimed, [(other.clone(), t(2))]);
    store.unschedule(&other).await.expect("unschedule");
    let out_of_range = crate::SCHEDULE_SHARDS;
    assert!(store.claim_due(out_of_range, t(100), 10, t(200)).await.expect("claim").is_empty());

    // Claims come earliest first with their due times, and lease the devices.
    let claimed = store.claim_due(shard, t(5), 10, t(60)).await.expect("claim");
    assert_eq!(claimed, [(d1.clone(), t(1)), (d2.clone(), t(5))]);
    assert_eq!(store.due_at(&d1).await.expect("due"), Some(t(60)));
    assert!(
        store.claim_due(shard, t(5), 10, t(60)).await.expect("claim again").is_empty(),
        "leased"
    );
    let claimed = store.claim_due(shard, t(59), 10, t(90)).await.expect("claim");
    assert_eq!(claimed, [(d3.clone(), t(30))], "leased devices stay out until the lease ends");

    // When the lease runs out they are due again; ties go by id, and limit holds.
    let claimed = store.claim_due(shard, t(60), 1, t(120)).await.expect("claim");
    assert_eq!(claimed, [(d1.clone(), t(60))]);
    let claimed = store.claim_due(shard, t(60), 10, t(120)).await.expect("claim");
    assert_eq!(claimed, [(d2.clone(), t(60))]);

    // schedule() may move later; unschedule removes.
    store.schedule(&d3, t(1000)).await.expect("schedule");
    assert_eq!(store.due_at(&d3).await.expect("due"), Some(t(1000)));
    for device in [&d1, &d2, &d3] {
        store.unschedule(device).await.expect("unschedule");
        assert_eq!(store.due_at(device).await.expect("due"), None);
    }
    store.unschedule(&d1).await.expect("unschedule twice");
    assert_eq!(store.schedule_len().await.expect("len"), len_before);
}

/// API clients, and tokens that expire relative to `now`.
pub async fn clients_and_tokens(store: &dyn Store) {
    let run = Run::new();
    let client = ApiClient {
        client_id: run.id("client"),
        secret_hash: "hash-1".to_owned(),
        api_version: "2024-10-01".to_owned(),
        created_at: at(0),
        name: "Acme".to_owned(),
        generation: 0,
        revoked_at: None,
    };
    assert_eq!(store.get_client(&client.client_id).await.expect("get"), None);
    store.put_client(client.clone()).await.expect("put");
    assert_eq!(store.get_client(&client.client_id).await.expect("get"), Some(client.clone()));
    let rotated = ApiClient { secret_hash: "hash-2".to_owned(), ..client.clone() };
    store.put_client(rotated.clone()).await.expect("replace");
    assert_eq!(store.get_client(&client.client_id).await.expect("get"), Some(rotated));

    // Expiry comes from the wall clock's future so a backend that expires keys by itself keeps
    // the token for the test; `now` decides what callers see.
    let expires_at = Utc::now() + Duration::hours(1);
    let token = AccessToken {
        token_hash: run.id("token"),
        client_id: client.client_id.clone(),
        expires_at,
        client_generation: 3,
    };
    store.put_token(token.clone()).await.expect("put token");
    let get = |now| store.get_token(&token.token_hash, now);
    assert_eq!(get(expires_at - Duration::hours(2)).await.expect("get"), Some(token.clone()));
    assert_eq!(
        get(expires_at - Duration::milliseconds(1)).await.expect("get"),
        Some(token.clone())
    );
    assert_eq!(get(expires_at).await.expect("get"), None, "expired at expires_at");
    assert_eq!(get(expires_at + Duration::days(1)).await.expect("get"), None);
    assert_eq!(store.get_token(&run.id("unknown"), at(0)).await.expect("get"), None);
}

/// Account compare-and-set and the per-user index.
pub async fn accounts(store: &dyn Store) {
    let run = Run::new();
    let account = |id: &str, user: &str, token: &str| AccountRef {
        user_id: run.id(user),
        vendor: "TESLA".to_owned(),
        account_id: run.id(id),
        credentials: Credentials {
            access_token: token.to_owned(),
            refresh_token: Some(format!("refresh-{token}")),
            expires_at: Some(at(3600)),
            ..Credentials::default()
        },
    };
    let account_ids = |records: Vec<AccountRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.account.account_id).collect()
    };

    assert_eq!(store.get_account(&run.id("acc1")).await.expect("get"), None);
    assert_eq!(store.put_account(account("acc2", "u", "t0"), 0).await.expect("put"), 1);
    assert_eq!(store.put_account(account("acc1", "u", "t1"), 0).await.expect("put"), 1);
    assert_conflict(store.put_account(account("acc1", "u", "t1"), 0).await, 0, 1);

    // A credential refresh: exactly one of two writers holding version 1 wins.
    assert_eq!(store.put_account(account("acc1", "u", "t2"), 1).await.expect("refresh"), 2);
    assert_conflict(store.put_account(account("acc1", "u", "t2-lost"), 1).await, 1, 2);
    let stored = store.get_account(&run.id("acc1")).await.expect("get").expect("stored");
    assert_eq!(
        stored,
        AccountRecord { account: account("acc1", "u", "t2"), version: 2, invalid_since: None }
    );

    // Invalidation: once, bumping the version (a racing refresh loses), cleared by a put.
    let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().expect("time");
    assert!(store.invalidate_account(&run.id("acc1"), at).await.expect("invalidate"));
    let later = at + chrono::Duration::minutes(1);
    assert!(!store.invalidate_account(&run.id("acc1"), later).await.expect("again"));
    assert!(!store.invalidate_account(&run.id("nope"), at).await.expect("absent"));
    let stored = store.get_account(&run.id("acc1")).await.expect("get").expect("stored");
    assert_eq!((stored.version, stored.invalid_since), (3, Some(at)));
    assert_conflict(store.put_account(account("acc1", "u", "t3-lost"), 2).await, 2, 3);
    let of_user = store.accounts_of_user(&run.id("u")).await.expect("of user");
    assert_eq!(of_user.iter().find(|r| r.version == 3).and_then(|r| r.invalid_since), Some(at));
    assert_eq!(store.put_account(account("acc1", "u", "t4"), 3).await.expect("relink"), 4);
    let stored = store.get_account(&run.id("acc1")).await.expect("get").expect("stored");
    assert_eq!((stored.version, stored.invalid_since), (4, None));

    let of_user = store.accounts_of_user(&run.id("u")).await.expect("of user");
    assert_eq!(account_ids(of_user.clone()), [run.id("acc1"), run.id("acc2")], "id order");
    assert_eq!(of_user[0].version, 4);
    assert!(store.accounts_of_user(&run.id("nobody")).await.expect("of user").is_empty());

    // Moving an account to another user moves it between the user lists.
    assert_eq!(store.put_account(account("acc2", "v", "t0"), 1).await.expect("move"), 2);
    assert_eq!(
        account_ids(store.accounts_of_user(&run.id("u")).await.expect("u")),
        [run.id("acc1")]
    );
    assert_eq!(
        account_ids(store.accounts_of_user(&run.id("v")).await.expect("v")),
        [run.id("acc2")]
    );
}

/// Appending assigns increasing ids; reading is oldest first, strictly after `after`.
pub async fn events(store: &dyn Store) {
    let run = Run::new();
    let event = |n: u32| Event {
        id: "ignored".to_owned(),
        event: "user:vehicle:updated".to_owned(),
        user_id: run.id("u"),
        created_at: at(i64::from(n)),
        payload: json!({ "n": n, "run": run.0 }),
    };
    let mut appended = Vec::new();
    for n in 0..3 {
        let id = store.append_event(event(n)).await.expect("append");
        assert_ne!(id, "ignored", "the log assigns ids");
        appended.push(id);
    }
    let mine = |events: Vec<Event>| -> Vec<Event> {
        events.into_iter().filter(|e| e.user_id == run.id("u")).collect()
    };

    let after_first = mine(store.read_events(Some(&appended[0]), 10).await.expect("read"));
    let expected: Vec<Event> =
        (1..3).map(|n| Event { id: appended[n as usize].clone(), ..event(n) }).collect();
    assert_eq!(after_first, expected, "oldest first, strictly after the id");
    let limited = store.read_events(Some(&appended[0]), 1).await.expect("read");
    assert_eq!(limited, expected[..1]);
    assert!(mine(store.read_events(Some(&appended[2]), 10).await.expect("read")).is_empty());
    assert!(store.read_events(Some(&appended[0]), 0).await.expect("limit 0").is_empty());

    // From the start, ids only grow: each event read after the previous one's id.
    let from_start = store.read_events(None, 1).await.expect("read");
    assert_eq!(from_start.len(), 1, "the log is not empty");
    let next = store.read_events(Some(&from_start[0].id), 1).await.expect("read");
    assert!(next.first().is_some_and(|e| e.id != from_start[0].id));

    let bad = store.read_events(Some("not-an-event-id"), 10).await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor(_))), "{bad:?}");
}

/// Every client is listed, oldest first, and a replacement is listed once.
pub async fn client_list(store: &dyn Store) {
    let run = Run::new();
    let client = |name: &str, created: i64| ApiClient {
        client_id: run.id(name),
        secret_hash: "h".to_owned(),
        api_version: "2024-10-01".to_owned(),
        created_at: at(created),
        name: name.to_owned(),
        generation: 0,
        revoked_at: None,
    };
    store.put_client(client("b", 5)).await.expect("put");
    store.put_client(client("a", 7)).await.expect("put");
    let revoked = ApiClient { revoked_at: Some(at(9)), generation: 1, ..client("b", 5) };
    store.put_client(revoked.clone()).await.expect("replace");
    let mine: Vec<ApiClient> = store
        .list_clients()
        .await
        .expect("list")
        .into_iter()
        .filter(|c| c.client_id.starts_with(&run.0))
        .collect();
    assert_eq!(mine, [revoked, client("a", 7)], "oldest first, replaced in place");
}

/// Deleting accounts (with their validity mark).
pub async fn account_deletion(store: &dyn Store) {
    let run = Run::new();
    let account = |id: &str, token: &str| AccountRef {
        user_id: run.id("u"),
        vendor: "ENPHASE".to_owned(),
        account_id: run.id(id),
        credentials: Credentials { access_token: token.to_owned(), ..Credentials::default() },
    };
    store.put_account(account("a1", "t1"), 0).await.expect("put");
    store.put_account(account("a2", "t1"), 0).await.expect("put");
    assert!(store.invalidate_account(&run.id("a1"), at(60)).await.expect("invalidate"));

    assert!(store.delete_account(&run.id("a1")).await.expect("delete"));
    assert!(!store.delete_account(&run.id("a1")).await.expect("delete twice"));
    assert_eq!(store.get_account(&run.id("a1")).await.expect("get"), None);
    let left: Vec<String> = store
        .accounts_of_user(&run.id("u"))
        .await
        .expect("of user")
        .into_iter()
        .map(|a| a.account.account_id)
        .collect();
    assert_eq!(left, [run.id("a2")], "gone from the user's list");
    // A deleted account starts again from scratch: version 1, valid.
    assert_eq!(store.put_account(account("a1", "t3"), 0).await.expect("recreate"), 1);
    let again = store.get_account(&run.id("a1")).await.expect("get").expect("a1");
    assert_eq!((again.version, again.invalid_since), (1, None));
}

/// Users: first owner wins, newest-first paging per client, deletion.
pub async fn users(store: &dyn Store) {
    let run = Run::new();
    let user = |name: &str, client: &str, created: i64| UserRecord {
        id: run.id(name),
        client_id: run.id(client),
        created_at: at(created),
    };
    assert_eq!(store.get_user(&run.id("u1")).await.expect("get"), None);
    assert_eq!(store.put_user(user("u1", "c1", 1)).await.expect("put"), user("u1", "c1", 1));
    // Another client asking for the same id gets the owner's record back, unchanged.
    assert_eq!(store.put_user(user("u1", "c2", 9)).await.expect("put"), user("u1", "c1", 1));
    assert_eq!(store.get_user(&run.id("u1")).await.expect("get"), Some(user("u1", "c1", 1)));
    for (name, created) in [("u2", 2), ("u3", 3), ("u4", 3)] {
        store.put_user(user(name, "c1", created)).await.expect("put");
    }
    store.put_user(user("u5", "c2", 4)).await.expect("put");

    let names = |page: &Page<UserRecord>| -> Vec<String> {
        page.items.iter().map(|u| u.id.clone()).collect()
    };
    let first = store.list_users(&run.id("c1"), &page(3)).await.expect("list");
    assert_eq!(names(&first), [run.id("u4"), run.id("u3"), run.id("u2")], "newest first");
    assert!(first.before.is_none());
    let next = PageRequest { after: first.after.clone(), ..page(3) };
    let second = store.list_users(&run.id("c1"), &next).await.expect("list");
    assert_eq!(names(&second), [run.id("u1")]);
    assert!(second.after.is_none());
    let back = PageRequest { before: second.before.clone(), ..page(3) };
    assert_eq!(names(&store.list_users(&run.id("c1"), &back).await.expect("list")), names(&first));
    let other = store.list_users(&run.id("c2"), &page(10)).await.expect("list");
    assert_eq!(names(&other), [run.id("u5")], "only the client's own users");
    let bad = PageRequest { after: Some("garbage".to_owned()), ..page(3) };
    assert!(matches!(
        store.list_users(&run.id("c1"), &bad).await,
        Err(StoreError::InvalidCursor(_))
    ));

    assert!(store.delete_user(&run.id("u3")).await.expect("delete"));
    assert!(!store.delete_user(&run.id("u3")).await.expect("delete twice"));
    assert_eq!(store.get_user(&run.id("u3")).await.expect("get"), None);
    let after_delete = store.list_users(&run.id("c1"), &page(10)).await.expect("list");
    assert_eq!(names(&after_delete), [run.id("u4"), run.id("u2"), run.id("u1")]);
    // A deleted id is free again, for any client.
    assert_eq!(store.put_user(user("u3", "c2", 8)).await.expect("put"), user("u3", "c2", 8));
}

/// Devices listed by API client: a device belongs to the client of its user.
pub async fn devices_by_client(store: &dyn Store) {
    let run = Run::new();
    for (user, client) in [("u1", "c1"), ("u2", "c1"), ("u3", "c2")] {
        store
            .put_user(UserRecord { id: run.id(user), client_id: run.id(client), created_at: at(0) })
            .await
            .expect("user");
    }
    let devices = [
        run.device("v1", "u1", VendorType::Vehicle, at(1)),
        run.device("c1", "u2", VendorType::Charger, at(2)),
        run.device("v2", "u2", VendorType::Vehicle, at(3)),
        run.device("v3", "u3", VendorType::Vehicle, at(4)),
        // A device whose user has no record is nobody's.
        run.device("v4", "nobody", VendorType::Vehicle, at(5)),
    ];
    for device in &devices {
        store.put_device(device.clone()).await.expect("put");
        store.put_snapshot(snapshot(device, at(10), 50), 0).await.expect("snapshot");
    }
    let filter = |client: &str, user: Option<&str>, kind: Option<VendorType>| DeviceFilter {
        user_id: user.map(|u| run.id(u)),
        device_type: kind,
        client_id: Some(run.id(client)),
    };
    let list = async |filter: DeviceFilter| {
        ids(&store.list_devices(&filter, &page(MAX_WALK_PAGE)).await.expect("list").items)
    };
    let snapshot_ids = async |filter: DeviceFilter| -> Vec<String> {
        let page = store.list_snapshots(&filter, &page(MAX_WALK_PAGE)).await.expect("list");
        page.items.into_iter().map(|s| s.device_id).collect()
    };
    assert_eq!(list(filter("c1", None, None)).await, [run.id("v2"), run.id("c1"), run.id("v1")]);
    assert_eq!(
        list(filter("c1", None, Some(VendorType::Vehicle))).await,
        [run.id("v2"), run.id("v1")]
    );
    assert_eq!(list(filter("c2", None, None)).await, [run.id("v3")]);
    assert_eq!(list(filter("c1", Some("u2"), None)).await, [run.id("v2"), run.id("c1")]);
    assert_eq!(list(filter("c1", Some("u2"), Some(VendorType::Charger))).await, [run.id("c1")]);
    assert!(list(filter("c2", Some("u2"), None)).await.is_empty(), "another client's user");
    assert_eq!(
        snapshot_ids(filter("c1", None, Some(VendorType::Vehicle))).await,
        [run.id("v2"), run.id("v1")]
    );
    assert!(snapshot_ids(filter("c2", Some("u1"), None)).await.is_empty());

    // Paging through a client's devices.
    let first = store.list_devices(&filter("c1", None, None), &page(2)).await.expect("list");
    assert_eq!(ids(&first.items), [run.id("v2"), run.id("c1")]);
    let next = PageRequest { after: first.after.clone(), ..page(2) };
    let second = store.list_devices(&filter("c1", None, None), &next).await.expect("list");
    assert_eq!(ids(&second.items), [run.id("v1")]);

    // Deleting takes a device out of its client's lists.
    assert!(store.delete_device(&run.id("v2")).await.expect("delete"));
    assert_eq!(list(filter("c1", None, None)).await, [run.id("c1"), run.id("v1")]);
    assert_eq!(snapshot_ids(filter("c1", None, None)).await, [run.id("c1"), run.id("v1")]);
}

/// Generic resources: compare-and-set, first `created_at` kept, lists per client and user.
pub async fn resources(store: &dyn Store) {
    let run = Run::new();
    let kind = "location";
    let resource = |id: &str, user: &str, client: &str, created: i64, name: &str| ResourceRecord {
        kind: kind.to_owned(),
        id: run.id(id),
        user_id: run.id(user),
        client_id: run.id(client),
        created_at: at(created),
        version: 0,
        body: json!({ "name": name }),
    };
    assert_eq!(store.get_resource(kind, &run.id("r1")).await.expect("get"), None);
    assert_eq!(store.put_resource(resource("r1", "u1", "c1", 1, "home"), 0).await.expect("put"), 1);
    assert_conflict(store.put_resource(resource("r1", "u1", "c1", 1, "x"), 0).await, 0, 1);
    let stored = store.get_resource(kind, &run.id("r1")).await.expect("get").expect("stored");
    assert_eq!(stored, ResourceRecord { version: 1, ..resource("r1", "u1", "c1", 1, "home") });
    // Another kind with the same id is another resource.
    assert_eq!(store.get_resource("schedule", &run.id("r1")).await.expect("get"), None);
    // Several at once, in the order asked, absent ones as None.
    let (r1, nope) = (run.id("r1"), run.id("nope"));
    let many = store.get_resources(kind, &[&nope, &r1, &r1]).await.expect("get many");
    assert_eq!(many, [None, Some(stored.clone()), Some(stored.clone())]);
    assert!(store.get_resources(kind, &[]).await.expect("none").is_empty());

    // An update keeps the first created_at whatever the caller sends.
    assert_eq!(
        store.put_resource(resource("r1", "u1", "c1", 99, "cabin"), 1).await.expect("put"),
        2
    );
    let updated = store.get_resource(kind, &run.id("r1")).await.expect("get").expect("stored");
    assert_eq!(updated.created_at, at(1));
    assert_eq!(updated.version, 2);
    assert_eq!(updated.body, json!({ "name": "cabin" }));

    store.put_resource(resource("r2", "u2", "c1", 2, "office"), 0).await.expect("put");
    store.put_resource(resource("r3", "u1", "c1", 3, "garage"), 0).await.expect("put");
    store.put_resource(resource("r4", "u3", "c2", 4, "other"), 0).await.expect("put");
    let listed = async |owner: ResourceOwner, request: PageRequest| {
        store.list_resources(kind, &owner, &request).await.expect("list")
    };
    let names = |page: &Page<ResourceRecord>| -> Vec<String> {
        page.items.iter().map(|r| r.id.clone()).collect()
    };
    let c1 = ResourceOwner::Client(run.id("c1"));
    let all = listed(c1.clone(), page(10)).await;
    assert_eq!(names(&all), [run.id("r3"), run.id("r2"), run.id("r1")]);
    assert_eq!(all.items[2].version, 2, "lists carry the version");
    let first = listed(c1.clone(), page(2)).await;
    assert_eq!(names(&first), [run.id("r3"), run.id("r2")]);
    let second = listed(c1.clone(), PageRequest { after: first.after.clone(), ..page(2) }).await;
    assert_eq!(names(&second), [run.id("r1")]);
    assert_eq!(
        names(&listed(ResourceOwner::User(run.id("u1")), page(10)).await),
        [run.id("r3"), run.id("r1")]
    );
    assert_eq!(names(&listed(ResourceOwner::Client(run.id("c2")), page(10)).await), [run.id("r4")]);
    assert!(
        listed(ResourceOwner::User(run.id("u1")), page(10))
            .await
            .items
            .iter()
            .all(|r| r.kind == kind)
    );
    assert!(
        store.list_resources("schedule", &c1, &page(10)).await.expect("list").items.is_empty(),
        "lists are per kind"
    );

    // Moving a resource to another user moves it between the user lists.
    store.put_resource(resource("r3", "u2", "c1", 3, "garage"), 1).await.expect("move");
    assert_eq!(names(&listed(ResourceOwner::User(run.id("u1")), page(10)).await), [run.id("r1")]);
    assert_eq!(
        names(&listed(ResourceOwner::User(run.id("u2")), page(10)).await),
        [run.id("r3"), run.id("r2")]
    );

    assert!(store.delete_resource(kind, &run.id("r2")).await.expect("delete"));
    assert!(!store.delete_resource(kind, &run.id("r2")).await.expect("delete twice"));
    assert_eq!(store.get_resource(kind, &run.id("r2")).await.expect("get"), None);
    assert_eq!(names(&listed(c1.clone(), page(10)).await), [run.id("r3"), run.id("r1")]);
    // A cursor stays valid when its item is deleted.
    assert!(store.delete_resource(kind, &run.id("r3")).await.expect("delete"));
    let after_deleted = listed(c1, PageRequest { after: first.after.clone(), ..page(2) }).await;
    assert_eq!(names(&after_deleted), [run.id("r1")]);
    // A deleted resource can be created again.
    assert_eq!(store.put_resource(resource("r2", "u2", "c1", 5, "new"), 0).await.expect("put"), 1);
}

fn link_session(run: &Run, name: &str, created_at: DateTime<Utc>) -> crate::LinkSession {
    crate::LinkSession {
        token_hash: run.id(name),
        client_id: run.id("client"),
        user_id: run.id("user"),
        vendor: Some("TESLA".to_owned()),
        vendor_type: Some(VendorType::Vehicle),
        scopes: vec!["vehicle:read:data".to_owned()],
        language: "en-US".to_owned(),
        redirect_uri: "https://app.example/done".to_owned(),
        color_scheme: "system".to_owned(),
        relink_account_id: None,
        created_at,
        expires_at: created_at + Duration::hours(24),
    }
}

/// Link sessions: readable until taken, taken exactly once (also under concurrent takes),
/// expired at `expires_at` and then neither readable nor takeable; unknown hashes are
/// `NotFound`.
pub async fn link_sessions(store: &dyn Store) {
    use crate::LinkSessionLookup::{Expired, NotFound, Open, Used};
    let run = Run::new();
    let session = link_session(&run, "s1", at(0));
    store.put_link_session(session.clone()).await.expect("put session");
    assert_eq!(store.get_link_session(&run.id("nope"), at(1)).await.expect("get"), NotFound);
    assert_eq!(store.take_link_session(&run.id("nope"), at(1)).await.expect("take"), NotFound);
    // Reading does not spend it.
    for _ in 0..2 {
        assert_eq!(
            store.get_link_session(&session.token_hash, at(10)).await.expect("get"),
            Open(Box::new(session.clone()))
        );
    }
    assert_eq!(
        store.take_link_session(&session.token_hash, at(20)).await.expect("take"),
        Open(Box::new(session.clone()))
    );
    assert_eq!(store.take_link_session(&session.token_hash, at(21)).await.expect("take"), Used);
    assert_eq!(store.get_link_session(&session.token_hash, at(21)).await.expect("get"), Used);

    // Expiry: the last usable instant is just before expires_at.
    let expiring = link_session(&run, "s2", at(0));
    store.put_link_session(expiring.clone()).await.expect("put session");
    let last = 24 * 3600 - 1;
    assert_eq!(
        store.get_link_session(&expiring.token_hash, at(last)).await.expect("get"),
        Open(Box::new(expiring.clone()))
    );
    let end = 24 * 3600;
    assert_eq!(store.get_link_session(&expiring.token_hash, at(end)).await.expect("get"), Expired);
    assert_eq!(
        store.take_link_session(&expiring.token_hash, at(end)).await.expect("take"),
        Expired
    );
    // An expired session was not spent by the failed take.
    assert_eq!(store.get_link_session(&expiring.token_hash, at(end)).await.expect("get"), Expired);

    // Concurrent takes: exactly one wins.
    let raced = link_session(&run, "s3", at(0));
    store.put_link_session(raced.clone()).await.expect("put session");
    let takes = (0..8).map(|_| store.take_link_session(&raced.token_hash, at(5)));
    let outcomes = futures_join_all(takes).await;
    let won = outcomes.iter().filter(|o| matches!(o, Ok(Open(_)))).count();
    let lost = outcomes.iter().filter(|o| matches!(o, Ok(Used))).count();
    assert_eq!((won, lost), (1, 7), "one take wins, the rest see Used: {outcomes:?}");
}

/// Polls all futures concurrently on the current task (no extra dependency for `join_all`).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn sample(at_secs: i64, kw: f64) -> crate::Sample {
    crate::Sample { at: at(at_secs), kw: Some(kw), kwh: Some(kw * 10.0), active: Some(kw > 0.0) }
}

/// History: samples come back oldest first within `from <= at < to` whatever the append
/// order, each device keeps only the newest `keep`, devices do not see each other's samples,
/// and deleting a device's history empties it.
pub async fn history(store: &dyn Store) {
    let run = Run::new();
    let (a, b) = (run.id("a"), run.id("b"));
    for (secs, kw) in [(10, 1.0), (30, 3.0), (20, 2.0), (40, 0.0)] {
        store.append_sample(&a, sample(secs, kw), 10).await.expect("append");
    }
    store.append_sample(&b, sample(15, 9.0), 10).await.expect("append");
    let all = store.samples(&a, at(0), at(100)).await.expect("samples");
    assert_eq!(all, [sample(10, 1.0), sample(20, 2.0), sample(30, 3.0), sample(40, 0.0)]);
    // `to` is exclusive, `from` inclusive.
    let some = store.samples(&a, at(20), at(40)).await.expect("samples");
    assert_eq!(some, [sample(20, 2.0), sample(30, 3.0)]);
    assert_eq!(store.samples(&b, at(0), at(100)).await.expect("samples"), [sample(15, 9.0)]);
    assert_eq!(store.samples(&run.id("none"), at(0), at(100)).await.expect("samples"), []);
    // Retention: the newest `keep` survive.
    store.append_sample(&a, sample(50, 5.0), 3).await.expect("append");
    let kept = store.samples(&a, at(0), at(100)).await.expect("samples");
    assert_eq!(kept, [sample(30, 3.0), sample(40, 0.0), sample(50, 5.0)]);
    store.delete_history(&a).await.expect("delete");
    assert_eq!(store.samples(&a, at(0), at(100)).await.expect("samples"), []);
    assert_eq!(store.samples(&b, at(0), at(100)).await.expect("samples").len(), 1);
}

/// Webhook delivery state: compare-and-set on its version (so a cursor read before another
/// writer moved it cannot be written back), deletion, and leases that exclude other owners
/// until they end and that only their holder releases. The event log names its newest event.
pub async fn webhook_states(store: &dyn Store) {
    use crate::webhooks::WebhookState;
    let run = Run::new();
    let id = run.id("hook");
    assert_eq!(store.get_webhook_state(&id).await.expect("get"), None);

    let appended = store
        .append_event(Event {
            id: String::new(),
            event: "user:vehicle:updated".to_owned(),
            user_id: run.id("u"),
            created_at: at(0),
            payload: json!({}),
        })
        .await
        .expect("append");
    let latest = store.latest_event_id().await.expect("latest").expect("the log is not empty");
    assert!(
        store.read_events(Some(&latest), 10).await.expect("read").is_empty(),
        "nothing after the newest event"
    );
    // Others may append concurrently on a shared backend; ours is at or before the newest.
    if latest != appended {
        let after_ours = store.read_events(Some(&appended), 100_000).await.expect("read");
        assert!(after_ours.iter().any(|e| e.id == latest), "newest is after ours");
    }

    let mut state = WebhookState::new(&id, Some(appended.clone()));
    assert_eq!(store.put_webhook_state(state.clone(), 0).await.expect("create"), 1);
    assert_conflict(store.put_webhook_state(state.clone(), 0).await, 0, 1);
    state.version = 1;
    assert_eq!(store.get_webhook_state(&id).await.expect("get"), Some(state.clone()));

    // Two writers read version 1; the first moves the cursor, the second (with the old
    // cursor) loses.
    let mut first = state.clone();
    first.cursor = Some(latest.clone());
    first.last_success = Some(at(10));
    first.failing_since = None;
    assert_eq!(store.put_webhook_state(first.clone(), 1).await.expect("advance"), 2);
    let mut second = state.clone();
    second.attempts = 3;
    second.failing_since = Some(at(5));
    second.next_attempt_at = Some(at(65));
    assert_conflict(store.put_webhook_state(second, 1).await, 1, 2);
    let stored = store.get_webhook_state(&id).await.expect("get").expect("stored");
    assert_eq!(stored, WebhookState { version: 2, ..first });

    // Leases: exclusive until they end, renewable by their holder, released only by it.
    let (a, b) = (run.id("instance-a"), run.id("instance-b"));
    assert!(store.lease_webhook(&id, &a, at(0), at(30)).await.expect("lease"));
    assert!(!store.lease_webhook(&id, &b, at(29), at(59)).await.expect("lease"));
    assert!(store.lease_webhook(&id, &a, at(29), at(60)).await.expect("renew"));
    assert!(!store.lease_webhook(&id, &b, at(59), at(89)).await.expect("lease"));
    store.release_webhook(&id, &b).await.expect("release by another");
    assert!(!store.lease_webhook(&id, &b, at(59), at(89)).await.expect("still held"));
    assert!(store.lease_webhook(&id, &b, at(60), at(90)).await.expect("expired lease"));
    assert!(!store.lease_webhook(&id, &a, at(61), at(91)).await.expect("taken over"));
    store.release_webhook(&id, &b).await.expect("release");
    assert!(store.lease_webhook(&id, &a, at(62), at(92)).await.expect("released"));
    // Leases of different webhooks are independent.
    assert!(store.lease_webhook(&run.id("other"), &b, at(62), at(92)).await.expect("lease"));

    assert!(store.delete_webhook_state(&id).await.expect("delete"));
    assert!(!store.delete_webhook_state(&id).await.expect("delete again"));
    assert_eq!(store.get_webhook_state(&id).await.expect("get"), None);
    assert!(store.lease_webhook(&id, &b, at(63), at(93)).await.expect("lease gone with it"));
    assert_eq!(store.put_webhook_state(WebhookState::new(&id, None), 0).await.expect("new"), 1);
    store.delete_webhook_state(&id).await.expect("cleanup");
    store.release_webhook(&run.id("other"), &b).await.expect("cleanup");
}
