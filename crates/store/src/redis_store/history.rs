//! [`HistoryStore`] on Redis.
//!
//! `{p}:history:<device id>` (sorted set): score = observation time in epoch ms, member =
//! `<epoch ms>:<sequence>:<sample JSON>` (the sequence is random) so equal samples at equal
//! times stay distinct. An append adds and trims to the newest `keep` in one
//! transaction; a range read is `ZRANGEBYSCORE from (to`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RedisStore;
use crate::codec::{decode, encode, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::history::{HistoryStore, Sample};

impl RedisStore {
    fn history_key(&self, device_id: &str) -> String {
        format!("{}:history:{device_id}", self.keys.tag)
    }
}

fn corrupt(key: &str, raw: &[u8]) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: format!("history member without a sample: {}", String::from_utf8_lossy(raw)),
    }
}

#[async_trait]
impl HistoryStore for RedisStore {
    async fn append_sample(&self, device_id: &str, sample: Sample, keep: usize) -> StoreResult<()> {
        let key = self.history_key(device_id);
        let millis = to_millis(sample.at);
        let member =
            format!("{millis}:{}:{}", uuid::Uuid::new_v4().simple(), encode(&key, &sample)?);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("ZADD").arg(&key).arg(millis).arg(member).ignore();
        // Ranks 0 .. -(keep+1) are everything but the newest `keep`.
        pipe.cmd("ZREMRANGEBYRANK").arg(&key).arg(0).arg(-(keep.saturating_add(1))).ignore();
        let _: () = self.query_pipeline("append_sample", &pipe).await?;
        Ok(())
    }

    async fn samples(
        &self,
        device_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Sample>> {
        let key = self.history_key(device_id);
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(&key).arg(to_millis(from)).arg(format!("({}", to_millis(to)));
        let members: Vec<Vec<u8>> = self.query("samples", &cmd).await?;
        members
            .iter()
            .map(|raw| {
                // Skip "<ms>:<sequence>:" to the JSON.
                let mut parts = raw.splitn(3, |b| *b == b':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(_), Some(_), Some(json)) => decode::<Sample>(&key, json),
                    _ => Err(corrupt(&key, raw)),
                }
            })
            .collect()
    }

    async fn delete_history(&self, device_id: &str) -> StoreResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.history_key(device_id));
        let _: () = self.query("delete_history", &cmd).await?;
        Ok(())
    }
}
