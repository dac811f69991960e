//! [`HistoryStore`] in memory: a bounded, time-ordered deque per device.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::codec::{from_millis, to_millis};
use crate::error::StoreResult;
use crate::history::{HistoryStore, Sample};

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn append_sample(
        &self,
        device_id: &str,
        mut sample: Sample,
        keep: usize,
    ) -> StoreResult<()> {
        // Whole milliseconds, as Redis keeps them.
        sample.at = from_millis(to_millis(sample.at)).unwrap_or(sample.at);
        let mut inner = self.lock();
        let samples: &mut VecDeque<Sample> =
            inner.history.entry(device_id.to_string()).or_default();
        // Usually the newest; a late sample is inserted in time order after its equals.
        let at = samples.partition_point(|s| s.at <= sample.at);
        samples.insert(at, sample);
        while samples.len() > keep {
            samples.pop_front();
        }
        Ok(())
    }

    async fn samples(
        &self,
        device_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Sample>> {
        let inner = self.lock();
        Ok(inner
            .history
            .get(device_id)
            .map(|s| s.iter().filter(|s| s.at >= from && s.at < to).cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_history(&self, device_id: &str) -> StoreResult<()> {
        self.lock().history.remove(device_id);
        Ok(())
    }
}
