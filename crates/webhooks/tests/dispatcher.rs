//! The dispatcher against a local receiver, on the memory store and a manual clock.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use oemgate_core::{Clock, ManualClock};
use oemgate_store::{ApiClient, Event, MemoryStore, Store, UserRecord};
use oemgate_webhooks::{
    Authentication, Dispatcher, DispatcherConfig, Sender, UrlPolicy, Webhook, outbox, verify,
};
use serde_json::{Value, json};

/// A receiver recording every request; answers `status`.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        receiver.status.store(200, Ordering::SeqCst);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let receiver = receiver.clone();
                move |headers: HeaderMap, body: Bytes| async move {
                    receiver.requests.lock().unwrap().push((headers, body));
                    receiver.arrived.notify_one();
                    StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn bodies(&self) -> Vec<Vec<Value>> {
        let requests = self.requests.lock().unwrap();
        requests.iter().map(|(_, body)| serde_json::from_slice(body).unwrap()).collect()
    }

    fn ids(&self) -> Vec<String> {
        self.bodies().iter().flatten().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
    }
}

struct World {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    dispatcher: Dispatcher,
}

fn start() -> DateTime<Utc> {
    "2026-06-01T07:00:00Z".parse().unwrap()
}

async fn world(config: DispatcherConfig) -> World {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(start()));
    for client in ["c1", "c2"] {
        store
            .put_client(ApiClient {
                client_id: client.into(),
                secret_hash: String::new(),
                api_version: "2024-10-01".into(),
                created_at: start(),
                name: String::new(),
                generation: 0,
                revoked_at: None,
            })
            .await
            .unwrap();
        store
            .put_user(UserRecord {
                id: format!("user-of-{client}"),
                client_id: client.into(),
                created_at: start(),
            })
            .await
            .unwrap();
    }
    let sender = Arc::new(
        Sender::new(
            UrlPolicy { allow_insecure_loopback: true, allowed_hosts: Vec::new() },
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let dispatcher =
        Dispatcher::new(Arc::clone(&store), clock.clone() as Arc<dyn Clock>, sender, config, 1);
    World { store, clock, dispatcher }
}

async fn add_webhook(world: &World, client: &str, url: &str, events: &[&str]) -> Webhook {
    let webhook = Webhook {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client.into(),
        url: url.into(),
        secret: "a-webhook-secret".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        api_version: None,
        authentication: Some(Authentication {
            header_name: "x-api-key".into(),
            header_value: "key-value".into(),
        }),
        created_at: world.clock.now(),
    };
    world.store.put_resource(webhook.to_record().unwrap(), 0).await.unwrap();
    outbox::create_state(world.store.as_ref(), &webhook.id).await.unwrap();
    webhook
}

async fn append(world: &World, user: &str, name: &str, n: usize) -> String {
    world
        .store
        .append_event(Event {
            id: String::new(),
            event: name.into(),
            user_id: user.into(),
            created_at: world.clock.now(),
            payload: json!({"vehicle": {"id": format!("v{n}")}, "updatedFields": ["odometer"]}),
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn delivers_signed_batches_in_order_only_to_the_owner_and_filter() {
    let w = world(DispatcherConfig::default()).await;
    let (receiver, url) = Receiver::start().await;
    let (other, other_url) = Receiver::start().await;
    append(&w, "user-of-c1", "user:vehicle:updated", 0).await; // before the webhook: not sent
    let hook = add_webhook(&w, "c1", &url, &["user:vehicle:updated"]).await;
    add_webhook(&w, "c2", &other_url, &["*"]).await;
    let mut expected = Vec::new();
    for n in 0..250 {
        expected.push(append(&w, "user-of-c1", "user:vehicle:updated", n).await);
        append(&w, "user-of-c1", "user:charger:updated", n).await; // filtered out
    }
    w.dispatcher.tick().await.unwrap();

    let bodies = receiver.bodies();
    assert_eq!(bodies.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
    assert_eq!(receiver.ids(), expected, "every event once, in creation order");
    assert!(other.requests.lock().unwrap().is_empty(), "another client's webhook gets nothing");
    let requests = receiver.requests.lock().unwrap().clone();
    let mut deliveries = std::collections::HashSet::new();
    for (headers, body) in &requests {
        let signature = headers["x-enode-signature"].to_str().unwrap();
        assert!(verify(hook.secret.as_bytes(), body, signature), "signature verifies");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-api-key"], "key-value");
        assert!(deliveries.insert(headers["x-enode-delivery"].to_str().unwrap().to_owned()));
    }
    let first = &bodies[0][0];
    assert_eq!(first["event"], "user:vehicle:updated");
    assert_eq!(first["version"], "2024-10-01");
    assert_eq!(first["user"]["id"], "user-of-c1");
    assert_eq!(first["updatedFields"], json!(["odometer"]));

    // Nothing pending: no empty POSTs; the cursor sits past the skipped events too.
    w.dispatcher.tick().await.unwrap();
    assert_eq!(receiver.requests.lock().unwrap().len(), 3);
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!(state.cursor, w.store.latest_event_id().await.unwrap());
    assert_eq!(state.last_success, Some(start()));
}

#[tokio::test]
async fn failures_back_off_keep_events_and_a_success_resets() {
    let w = world(DispatcherConfig::default()).await;
    let (receiver, url) = Receiver::start().await;
    let hook = add_webhook(&w, "c1", &url, &["*"]).await;
    receiver.status.store(503, Ordering::SeqCst);
    let first = append(&w, "user-of-c1", "user:vehicle:updated", 1).await;
    w.dispatcher.tick().await.unwrap();
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!((state.attempts, state.failing_since), (1, Some(start())));
    let retry = state.next_attempt_at.unwrap() - start();
    assert!((22..=30).contains(&retry.num_seconds()), "first retry after 22.5-30 s: {retry}");
    // Not due yet: no request.
    w.clock.advance(Duration::from_secs(20));
    w.dispatcher.tick().await.unwrap();
    assert_eq!(receiver.requests.lock().unwrap().len(), 1);
    // Due: fails again, the delay doubles.
    w.clock.advance(Duration::from_secs(11));
    w.dispatcher.tick().await.unwrap();
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!(state.attempts, 2);
    let retry = state.next_attempt_at.unwrap() - w.clock.now();
    assert!((45..=60).contains(&retry.num_seconds()), "{retry}");

    let second = append(&w, "user-of-c1", "user:vehicle:updated", 2).await;
    receiver.status.store(204, Ordering::SeqCst);
    w.clock.advance(Duration::from_secs(61));
    w.dispatcher.tick().await.unwrap();
    let bodies = receiver.bodies();
    let last: Vec<&str> =
        bodies.last().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(last, [first.as_str(), second.as_str()], "the failed event first, then the new");
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!((state.attempts, state.failing_since, state.next_attempt_at), (0, None, None));
    assert!(state.active);
}

#[tokio::test]
async fn past_the_retry_window_events_are_dropped_and_the_webhook_deactivated() {
    let config = DispatcherConfig { retry_window: Duration::from_secs(3600), ..Default::default() };
    let w = world(config).await;
    let (receiver, url) = Receiver::start().await;
    let hook = add_webhook(&w, "c1", &url, &["*"]).await;
    receiver.status.store(500, Ordering::SeqCst);
    for n in 0..3 {
        append(&w, "user-of-c1", "user:vehicle:updated", n).await;
    }
    append(&w, "user-of-c2", "user:vehicle:updated", 9).await; // not c1's: not counted
    for _ in 0..100 {
        w.clock.advance(Duration::from_secs(60));
        w.dispatcher.tick().await.unwrap();
    }
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert!(!state.active);
    assert_eq!(state.cursor, w.store.latest_event_id().await.unwrap());
    let stats = w.dispatcher.stats();
    assert_eq!(stats.events_dropped.load(Ordering::Relaxed), 3);
    assert_eq!(stats.deactivated.load(Ordering::Relaxed), 1);

    // Inactive: nothing more is sent, even when the receiver is back.
    receiver.status.store(200, Ordering::SeqCst);
    let sent = receiver.requests.lock().unwrap().len();
    append(&w, "user-of-c1", "user:vehicle:updated", 4).await;
    w.clock.advance(Duration::from_secs(7200));
    w.dispatcher.tick().await.unwrap();
    assert_eq!(receiver.requests.lock().unwrap().len(), sent);

    // Reactivated (PATCH or a successful test): events from now on arrive.
    outbox::reactivate(w.store.as_ref(), &hook.id, None).await.unwrap();
    let fresh = append(&w, "user-of-c1", "user:vehicle:updated", 5).await;
    w.dispatcher.tick().await.unwrap();
    assert_eq!(receiver.ids().last(), Some(&fresh));
    assert_eq!(receiver.requests.lock().unwrap().len(), sent + 1);
}

#[tokio::test]
async fn a_webhook_leased_by_another_instance_is_left_alone_until_the_lease_ends() {
    let w = world(DispatcherConfig::default()).await;
    let (receiver, url) = Receiver::start().await;
    let hook = add_webhook(&w, "c1", &url, &["*"]).await;
    append(&w, "user-of-c1", "user:vehicle:updated", 1).await;
    let until = w.clock.now() + chrono::TimeDelta::seconds(60);
    assert!(
        w.store.lease_webhook(&hook.id, "crashed-instance", w.clock.now(), until).await.unwrap()
    );
    w.dispatcher.tick().await.unwrap();
    assert!(receiver.requests.lock().unwrap().is_empty());
    w.clock.advance(Duration::from_secs(60));
    w.dispatcher.tick().await.unwrap();
    assert_eq!(receiver.ids().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_does_not_answer_in_time_fails_the_delivery() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    // Accepts connections and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let sender = Sender::new(
        UrlPolicy { allow_insecure_loopback: true, allowed_hosts: Vec::new() },
        Duration::from_secs(5),
    )
    .unwrap();
    let webhook = Webhook {
        id: "w".into(),
        client_id: "c".into(),
        url,
        secret: "secret".into(),
        events: vec!["*".into()],
        api_version: None,
        authentication: None,
        created_at: start(),
    };
    let sent = sender.send(&webhook, b"[]".to_vec()).await;
    assert_eq!(sent.result, Err(oemgate_webhooks::SendError::Timeout(Duration::from_secs(5))));
    assert!(!sent.acknowledged());

    // A URL the policy refuses is never called.
    let strict = Sender::new(UrlPolicy::default(), Duration::from_secs(5)).unwrap();
    let sent = strict.send(&webhook, b"[]".to_vec()).await;
    assert!(matches!(sent.result, Err(oemgate_webhooks::SendError::Url(_))), "{:?}", sent.result);
}

#[tokio::test]
async fn a_receiver_that_hangs_does_not_hold_up_other_webhooks() {
    let w = world(DispatcherConfig::default()).await;
    // A receiver that takes requests in and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let hung = Arc::new(tokio::sync::Notify::new());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let hung = hung.clone();
            move || async move {
                hung.notify_one();
                std::future::pending::<StatusCode>().await
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (healthy, healthy_url) = Receiver::start().await;
    // Listed (and started) first: client c1's webhook hangs.
    add_webhook(&w, "c1", &hanging_url, &["*"]).await;
    add_webhook(&w, "c2", &healthy_url, &["*"]).await;
    append(&w, "user-of-c1", "user:vehicle:updated", 1).await;
    let for_healthy = append(&w, "user-of-c2", "user:vehicle:updated", 2).await;

    let sender = Arc::new(
        Sender::new(
            UrlPolicy { allow_insecure_loopback: true, allowed_hosts: Vec::new() },
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::clone(&w.store),
        w.clock.clone() as Arc<dyn Clock>,
        sender,
        DispatcherConfig::default(),
        0,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&dispatcher).run(async move {
        let _ = stopped.await;
    }));
    // The first pass starts both turns at once: the healthy receiver gets its event while
    // the hanging one still holds its request open (its 5 s are far from over). With a
    // concurrency of 1 this fails: the healthy turn waits for the hanging one's timeout.
    hung.notified().await;
    tokio::time::timeout(Duration::from_secs(4), healthy.arrived.notified())
        .await
        .expect("the healthy webhook was held up by the hanging one");
    assert_eq!(healthy.ids(), [for_healthy]);
    let _ = stop.send(());
    running.await.unwrap();
}

/// A receiver that, while the delivery is in flight, writes the webhook's state the way
/// `change` does (a PATCH, another instance), then answers 200.
async fn interfering_receiver(
    store: Arc<dyn Store>,
    change: fn(&mut oemgate_store::WebhookState),
) -> (String, Arc<Mutex<Option<String>>>, Arc<AtomicU16>) {
    let hook_id: Arc<Mutex<Option<String>>> = Arc::default();
    let posts = Arc::new(AtomicU16::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (hook_id, posts) = (hook_id.clone(), posts.clone());
            move || async move {
                posts.fetch_add(1, Ordering::SeqCst);
                let id = hook_id.lock().unwrap().clone().unwrap();
                outbox::update_state(store.as_ref(), &id, |state| {
                    change(state);
                    Ok(())
                })
                .await
                .unwrap();
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hook_id, posts)
}

#[tokio::test]
async fn an_acknowledgement_merges_with_writes_that_leave_the_cursor_alone() {
    let w = world(DispatcherConfig::default()).await;
    // Like a PATCH on an active webhook: the failure bookkeeping is reset, the cursor kept.
    let (url, hook_id, posts) = interfering_receiver(Arc::clone(&w.store), |state| {
        state.attempts = 0;
        state.next_attempt_at = None;
    })
    .await;
    let hook = add_webhook(&w, "c1", &url, &["*"]).await;
    *hook_id.lock().unwrap() = Some(hook.id.clone());
    let last = append(&w, "user-of-c1", "user:vehicle:updated", 1).await;
    w.dispatcher.tick().await.unwrap();
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!(state.cursor.as_deref(), Some(last.as_str()), "the cursor moved despite the write");
    w.dispatcher.tick().await.unwrap();
    assert_eq!(posts.load(Ordering::SeqCst), 1, "nothing sent twice");
}

#[tokio::test]
async fn an_acknowledgement_never_moves_a_cursor_someone_else_moved() {
    let w = world(DispatcherConfig::default()).await;
    // Like another instance that delivered further meanwhile: the cursor is at the log's
    // (test-chosen) far end, which the slower instance must not move back.
    let (url, hook_id, _) = interfering_receiver(Arc::clone(&w.store), |state| {
        state.cursor = Some("999999".into());
    })
    .await;
    let hook = add_webhook(&w, "c1", &url, &["*"]).await;
    *hook_id.lock().unwrap() = Some(hook.id.clone());
    append(&w, "user-of-c1", "user:vehicle:updated", 1).await;
    w.dispatcher.tick().await.unwrap();
    let state = w.store.get_webhook_state(&hook.id).await.unwrap().unwrap();
    assert_eq!(state.cursor.as_deref(), Some("999999"));
}
