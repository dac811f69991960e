//! Both backends against the conformance kit, plus the Redis failure paths: an unreachable
//! server and corrupt stored data.
//!
//! The Redis tests need a server at `REDIS_URL` (default `redis://127.0.0.1:6379`) and fail,
//! never skip, without one. Each run works under its own key prefix and deletes it afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oemgate_core::{DeviceRef, VendorType};
use oemgate_store::conformance::run_all;
use oemgate_store::{
    AccountStore, ClientStore, DeviceRecord, DeviceStore, EventLog, MemoryStore, RedisConfig,
    RedisStore, ResourceStore, StoreError, UserStore,
};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn unique_prefix() -> String {
    format!("oemgate-test-{}", uuid::Uuid::new_v4().simple())
}

async fn connect(prefix: &str) -> RedisStore {
    let url = redis_url();
    RedisStore::connect(RedisConfig::new(&url, prefix)).await.unwrap_or_else(|err| {
        panic!("these tests need Redis at {url} (set REDIS_URL to point elsewhere): {err}")
    })
}

/// A raw connection for writing around the store and cleaning up.
async fn raw_connection() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).expect("valid REDIS_URL");
    client.get_multiplexed_async_connection().await.expect("raw connection to Redis")
}

/// Deletes every key of a test prefix (best effort: a failure only leaves keys behind).
async fn cleanup(prefix: &str) {
    if let Ok(store) = RedisStore::connect(RedisConfig::new(redis_url(), prefix)).await {
        let _ = store.purge().await;
    }
}

/// Runs `test` against a fresh prefix and deletes the prefix's keys even when it panics.
async fn with_prefix<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let prefix = unique_prefix();
    let outcome = tokio::spawn(test(prefix.clone())).await;
    cleanup(&prefix).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

#[tokio::test]
async fn memory_backend_conforms() {
    run_all(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn purge_removes_a_prefix_and_nothing_else() {
    let (mine, theirs) = (unique_prefix(), unique_prefix());
    let (store, other) = (connect(&mine).await, connect(&theirs).await);
    for s in [&store, &other] {
        let user = oemgate_store::UserRecord {
            id: "purged-user".into(),
            client_id: "c".into(),
            created_at: chrono::Utc::now(),
        };
        s.put_user(user).await.unwrap();
    }
    assert!(store.purge().await.unwrap() > 0);
    assert!(store.get_user("purged-user").await.unwrap().is_none());
    assert!(other.get_user("purged-user").await.unwrap().is_some(), "another prefix is untouched");
    assert_eq!(store.purge().await.unwrap(), 0);
    cleanup(&theirs).await;
}

#[tokio::test]
async fn redis_backend_conforms() {
    with_prefix(|prefix| async move {
        let store = Arc::new(connect(&prefix).await);
        run_all(store.clone()).await;
        // Running again on the same keys must pass too (fresh ids per run).
        run_all(store).await;
    })
    .await;
}

#[tokio::test]
async fn unreachable_redis_fails_fast_naming_the_address() {
    let url = "redis://127.0.0.1:1";
    let started = Instant::now();
    let err = RedisStore::connect(RedisConfig::new(url, RedisConfig::DEFAULT_PREFIX))
        .await
        .expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(err, StoreError::Unavailable { backend: "redis", .. }), "{err:?}");
    assert!(err.to_string().contains(url), "{err}");

    // The same through the configuration entry point.
    let err = oemgate_store::connect(Some(url), "oemgate").await.err().expect("fails");
    assert!(err.to_string().contains(url), "{err}");
}

#[tokio::test]
async fn memory_is_the_default() {
    let store = oemgate_store::connect(None, "ignored").await.unwrap();
    assert_eq!(store.backend(), "memory");
}

/// The key a `Corrupt` error names.
fn corrupt_key<T>(result: &Result<T, StoreError>) -> Option<&str> {
    match result {
        Err(StoreError::Corrupt { key, .. }) => Some(key),
        _ => None,
    }
}

/// Sends a raw command, around the store.
async fn raw(conn: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let _: redis::Value =
        redis::cmd(args[0]).arg(&args[1..]).query_async(conn).await.expect("raw command");
}

#[tokio::test]
async fn corrupt_redis_records_are_reported_not_panicked_on() {
    with_prefix(|prefix| async move {
        let store = connect(&prefix).await;
        let mut conn = raw_connection().await;
        let key = |rest: &str| format!("{{{prefix}}}:{rest}");

        let client = key("client:c1");
        raw(&mut conn, &["SET", &client, "not json"]).await;
        let result = store.get_client("c1").await;
        assert_eq!(corrupt_key(&result), Some(client.as_str()), "{result:?}");

        let snapshot = key("snapshot:d1");
        raw(&mut conn, &["HSET", &snapshot, "version", "1", "body", "{"]).await;
        let result = store.get_snapshot("d1").await;
        assert_eq!(corrupt_key(&result), Some(snapshot.as_str()), "{result:?}");
        raw(&mut conn, &["HSET", &snapshot, "version", "x", "body", "{}"]).await;
        let result = store.get_snapshot("d1").await;
        assert_eq!(corrupt_key(&result), Some(snapshot.as_str()), "{result:?}");

        // Undecodable bookkeeping read inside a script comes back as Corrupt as well.
        let device = key("device:d2");
        raw(&mut conn, &["HSET", &device, "member", "x", "indexes", "[oops", "record", "{}"]).await;
        let record = DeviceRecord {
            device: DeviceRef {
                id: "d2".to_owned(),
                user_id: "u".to_owned(),
                device_type: VendorType::Vehicle,
                vendor_id: "VIN".to_owned(),
                site_id: None,
            },
            vendor: "TESLA".to_owned(),
            account_id: "a".to_owned(),
            created_at: chrono::Utc::now(),
        };
        let result = store.put_device(record).await;
        assert_eq!(corrupt_key(&result), Some(device.as_str()), "{result:?}");
        let result = store.get_device("d2").await;
        assert_eq!(corrupt_key(&result), Some(device.as_str()), "{result:?}");

        raw(&mut conn, &["XADD", &key("events"), "*", "event", "[]"]).await;
        let result = store.read_events(None, 10).await;
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{result:?}");
    })
    .await;
}

/// A token once read is served from memory (no round trip) until it expires: deleting its
/// key behind the store's back does not drop it, `now` still decides, and rewriting it
/// through the store is seen at once.
#[tokio::test]
async fn redis_keeps_tokens_it_read_until_they_expire() {
    use chrono::{Duration as Span, Utc};
    use oemgate_store::AccessToken;
    with_prefix(|prefix| async move {
        let store = connect(&prefix).await;
        let mut conn = raw_connection().await;
        let expires_at = Utc::now() + Span::hours(1);
        let token = AccessToken {
            token_hash: "h1".to_owned(),
            client_id: "c1".to_owned(),
            expires_at,
            client_generation: 0,
        };
        store.put_token(token.clone()).await.expect("put");
        let now = Utc::now();
        assert_eq!(store.get_token("h1", now).await.expect("get"), Some(token.clone()));
        raw(&mut conn, &["DEL", &format!("{{{prefix}}}:token:h1")]).await;
        assert_eq!(store.get_token("h1", now).await.expect("cached"), Some(token.clone()));
        assert_eq!(store.get_token("h1", expires_at).await.expect("expired"), None);
        // Rewritten through the store: the new record, not the cached one.
        let rewritten = AccessToken { client_generation: 1, ..token.clone() };
        store.put_token(rewritten.clone()).await.expect("put again");
        assert_eq!(store.get_token("h1", now).await.expect("get"), Some(rewritten));
        // A token never read is not invented: deleted before its first read, it is gone.
        let other = AccessToken { token_hash: "h2".to_owned(), ..token };
        store.put_token(other).await.expect("put");
        raw(&mut conn, &["DEL", &format!("{{{prefix}}}:token:h2")]).await;
        assert_eq!(store.get_token("h2", now).await.expect("get"), None);
    })
    .await;
}

/// With a credential key, Redis conforms as before, its account records hold no token in
/// the clear, and they do not open without the key or with another one.
#[tokio::test]
async fn redis_seals_credentials_at_rest() {
    with_prefix(|prefix| async move {
        let url = redis_url();
        let key = oemgate_store::CredentialKey::generate();
        let sealed = Arc::new(
            RedisStore::connect(RedisConfig::new(&url, &prefix).with_credential_key(key.clone()))
                .await
                .unwrap(),
        );
        run_all(sealed.clone()).await;

        let account = oemgate_core::AccountRef {
            user_id: "sealed-user".into(),
            vendor: "TESLA".into(),
            account_id: "sealed-account".into(),
            credentials: oemgate_core::Credentials {
                access_token: "access-token-in-the-clear?".into(),
                refresh_token: Some("refresh-token-in-the-clear?".into()),
                ..Default::default()
            },
        };
        assert_eq!(sealed.put_account(account.clone(), 0).await.unwrap(), 1);
        assert_eq!(sealed.get_account("sealed-account").await.unwrap().unwrap().account, account);
        assert_eq!(sealed.accounts_of_user("sealed-user").await.unwrap()[0].account, account);

        // Every byte Redis holds for the account, read around the store.
        let mut conn = raw_connection().await;
        let record_key = format!("{{{prefix}}}:account:sealed-account");
        let fields: Vec<Vec<u8>> =
            redis::cmd("HVALS").arg(&record_key).query_async(&mut conn).await.unwrap();
        assert!(!fields.is_empty());
        let stored = String::from_utf8_lossy(&fields.concat()).into_owned();
        assert!(stored.contains("sealed-account"), "ids stay readable: {stored}");
        for secret in ["access-token-in-the-clear?", "refresh-token-in-the-clear?"] {
            assert!(!stored.contains(secret), "{secret} stored in the clear: {stored}");
        }

        // Without the key, or with another one, the record is reported, never guessed.
        let keyless = connect(&prefix).await;
        let read = keyless.get_account("sealed-account").await;
        assert_eq!(corrupt_key(&read), Some(record_key.as_str()), "{read:?}");
        let other = RedisStore::connect(
            RedisConfig::new(&url, &prefix)
                .with_credential_key(oemgate_store::CredentialKey::generate()),
        )
        .await
        .unwrap();
        assert!(corrupt_key(&other.get_account("sealed-account").await).is_some());
        assert!(other.accounts_of_user("sealed-user").await.is_err());

        // A resource's `secrets` member is sealed too; the rest of the body stays readable.
        let resource = oemgate_store::ResourceRecord {
            kind: "webhook".into(),
            id: "sealed-hook".into(),
            user_id: String::new(),
            client_id: "sealed-client".into(),
            created_at: chrono::Utc::now(),
            version: 0,
            body: serde_json::json!({
                "url": "https://hooks.example.com/in",
                "secrets": {"secret": "hmac-key-in-the-clear?"}
            }),
        };
        assert_eq!(sealed.put_resource(resource.clone(), 0).await.unwrap(), 1);
        let read = sealed.get_resource("webhook", "sealed-hook").await.unwrap().unwrap();
        assert_eq!(read.body, resource.body);
        let record_key = format!("{{{prefix}}}:res:webhook:sealed-hook");
        let fields: Vec<Vec<u8>> =
            redis::cmd("HVALS").arg(&record_key).query_async(&mut conn).await.unwrap();
        let stored = String::from_utf8_lossy(&fields.concat()).into_owned();
        assert!(stored.contains("hooks.example.com"), "the rest stays readable: {stored}");
        assert!(!stored.contains("hmac-key-in-the-clear?"), "secret in the clear: {stored}");
        let read = keyless.get_resource("webhook", "sealed-hook").await;
        assert_eq!(corrupt_key(&read), Some(record_key.as_str()), "{read:?}");
        assert!(other.get_resource("webhook", "sealed-hook").await.is_err());
    })
    .await;
}
