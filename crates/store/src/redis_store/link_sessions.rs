//! [`LinkSessionStore`] on Redis.
//!
//! `{p}:link:<token hash>` (hash): `body` (session JSON), `expires` (epoch ms) and, once
//! taken, `used` (epoch ms). The key lives [`LINK_SESSION_GRACE`] beyond the session's
//! lifetime, set as a relative TTL from the session's own times so a simulated clock far from
//! the server's wall clock does not make Redis drop it early. Taking runs as one Lua script:
//! check, compare with `now` and mark in one atomic step.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::Script;

use super::RedisStore;
use crate::codec::{decode, encode, to_millis};
use crate::error::{StoreError, StoreResult};
use crate::link_sessions::{LinkSession, LinkSessionLookup, LinkSessionStore, grace};

/// KEYS: the session hash. ARGV: now (epoch ms).
/// Returns {status, body}: 0 not found, 1 used, 2 expired, 3 taken now (with the body).
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local body = redis.call('HGET', KEYS[1], 'body')
if not body then return {0, ''} end
if redis.call('HEXISTS', KEYS[1], 'used') == 1 then return {1, ''} end
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires'))
if not expires then
  return redis.error_reply('CORRUPT ' .. KEYS[1] .. ': undecodable expires')
end
if tonumber(ARGV[1]) >= expires then return {2, ''} end
redis.call('HSET', KEYS[1], 'used', ARGV[1])
return {3, body}
"#,
    )
});

impl RedisStore {
    fn link_key(&self, token_hash: &str) -> String {
        format!("{}:link:{token_hash}", self.keys.tag)
    }
}

#[async_trait]
impl LinkSessionStore for RedisStore {
    async fn put_link_session(&self, session: LinkSession) -> StoreResult<()> {
        let key = self.link_key(&session.token_hash);
        let keep = (session.expires_at - session.created_at) + grace();
        let ttl_ms = keep.num_milliseconds().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .cmd("HSET")
            .arg(&key)
            .arg("body")
            .arg(encode(&key, &session)?)
            .arg("expires")
            .arg(to_millis(session.expires_at))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .ignore();
        let _: () = self.query_pipeline("put_link_session", &pipe).await?;
        Ok(())
    }

    async fn get_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup> {
        let key = self.link_key(token_hash);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg("body").arg("used");
        let (body, used): (Option<Vec<u8>>, Option<Vec<u8>>) =
            self.query("get_link_session", &cmd).await?;
        let Some(body) = body else { return Ok(LinkSessionLookup::NotFound) };
        if used.is_some() {
            return Ok(LinkSessionLookup::Used);
        }
        let session: LinkSession = decode(&key, &body)?;
        if now >= session.expires_at {
            return Ok(LinkSessionLookup::Expired);
        }
        Ok(LinkSessionLookup::Open(Box::new(session)))
    }

    async fn take_link_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LinkSessionLookup> {
        let key = self.link_key(token_hash);
        let mut invocation = TAKE.key(&key);
        invocation.arg(to_millis(now));
        let (status, body): (i64, Vec<u8>) = self.invoke("take_link_session", invocation).await?;
        match status {
            0 => Ok(LinkSessionLookup::NotFound),
            1 => Ok(LinkSessionLookup::Used),
            2 => Ok(LinkSessionLookup::Expired),
            3 => Ok(LinkSessionLookup::Open(Box::new(decode(&key, &body)?))),
            other => Err(StoreError::corrupt(&key, format!("take returned status {other}"))),
        }
    }
}
