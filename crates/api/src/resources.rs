//! The read-modify-write of one store resource through compare-and-set, retried when another
//! writer got in between, which the resource handlers (locations, schedules, tariffs, smart
//! charging policies, webhooks) share.

use oemgate_store::{ResourceRecord, StoreError};

use crate::ApiState;
use crate::problem::Problem;

/// How often a read-modify-write is tried before giving up with 409.
const WRITE_ATTEMPTS: usize = 5;

/// Stores the record `next` builds, expecting the version `next` read, and returns it with
/// the version it was stored at.
///
/// `next` loads the current state and returns the record to store and the version it read
/// (0 for a resource that does not exist yet); its errors are returned as they are. When
/// another writer changed the resource in between, `next` runs again, up to
/// [`WRITE_ATTEMPTS`] times in all; then the answer is a 409 problem "`{name} {id:?}` kept
/// changing; retry the request." (`name` and `id` only name the resource in that text).
///
/// `next` is a closure returning a future (`|| async move { .. }` over borrowed values)
/// rather than an `AsyncFnMut`: rustc cannot yet prove the handler's future `Send` when an
/// async closure that captures references is called through a generic bound
/// (rust-lang/rust#139475), and axum needs `Send` handlers.
pub(crate) async fn put_retrying<Next>(
    state: &ApiState,
    name: &str,
    id: &str,
    mut next: impl FnMut() -> Next,
) -> Result<ResourceRecord, Problem>
where
    Next: Future<Output = Result<(ResourceRecord, u64), Problem>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let (mut record, expected) = next().await?;
        match state.store.put_resource(record.clone(), expected).await {
            Ok(version) => {
                record.version = version;
                return Ok(record);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(Problem::conflict(format!("{name} {id:?} kept changing; retry the request.")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;
    use oemgate_core::ManualClock;
    use oemgate_store::MemoryStore;

    use super::*;
    use crate::ApiConfig;

    fn state() -> ApiState {
        let now = "2030-03-01T08:00:00Z".parse().unwrap();
        ApiState::new(
            Arc::new(MemoryStore::new()),
            Arc::new(ManualClock::new(now)),
            ApiConfig::default(),
        )
    }

    fn record(state: &ApiState, body: serde_json::Value) -> ResourceRecord {
        ResourceRecord {
            kind: "thing".into(),
            id: "t1".into(),
            user_id: "u1".into(),
            client_id: "c1".into(),
            created_at: state.clock.now(),
            version: 0,
            body,
        }
    }

    #[tokio::test]
    async fn stores_the_record_at_the_next_version() {
        let state = state();
        let mut calls = 0;
        let stored = put_retrying(&state, "Thing", "t1", || {
            calls += 1;
            let state = &state;
            async move {
                let current = state.store.get_resource("thing", "t1").await?;
                Ok((record(state, serde_json::json!(1)), current.map_or(0, |c| c.version)))
            }
        })
        .await
        .unwrap();
        assert_eq!((calls, stored.version), (1, 1));
        let read = state.store.get_resource("thing", "t1").await.unwrap().unwrap();
        assert_eq!((read.version, read.body), (1, serde_json::json!(1)));
    }

    #[tokio::test]
    async fn a_conflict_reloads_and_the_last_gives_409() {
        let state = state();
        state.store.put_resource(record(&state, serde_json::json!(0)), 0).await.unwrap();
        // Expecting a version that never comes conflicts every time.
        let mut calls = 0;
        let problem = put_retrying(&state, "Thing", "t1", || {
            calls += 1;
            let record = record(&state, serde_json::json!(calls));
            async move { Ok((record, 7)) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, WRITE_ATTEMPTS);
        assert_eq!(problem.status, StatusCode::CONFLICT);
        assert_eq!(problem.detail, "Thing \"t1\" kept changing; retry the request.");
        let read = state.store.get_resource("thing", "t1").await.unwrap().unwrap();
        assert_eq!((read.version, read.body), (1, serde_json::json!(0)));
    }

    #[tokio::test]
    async fn errors_of_the_load_are_returned_at_once() {
        let state = state();
        let mut calls = 0;
        let problem = put_retrying(&state, "Thing", "t1", || {
            calls += 1;
            async { Err(Problem::not_found("no thing")) }
        })
        .await
        .unwrap_err();
        assert_eq!((calls, problem.status), (1, StatusCode::NOT_FOUND));
    }
}
