//! The Lua scripts behind every multi-key write of the Redis backend.
//!
//! Why Lua: a write such as "replace a device and move it between indexes" reads state (the
//! stored version, the indexes the record is in now) and then writes several keys. A script
//! runs atomically on the server, so no other client sees a half-applied write and no two
//! instances both win a compare-and-set, without WATCH/MULTI retry loops, in one round trip.
//!
//! Key names are built only in Rust ([`super::Keys`]). A record remembers the index keys it was
//! added to (a JSON list in its hash), so a later script can leave exactly those indexes even
//! after the owner or type changed, and never has to construct a key name itself. Those keys
//! are not passed as `KEYS`, which Redis Cluster tolerates only because every key of a store
//! shares one hash tag and so one slot.
//!
//! Scripts report stored data they cannot read with a `CORRUPT <key>: ...` error reply, which
//! the backend turns into `StoreError::Corrupt`.

use redis::Script;

/// Helpers prepended to every script.
const PRELUDE: &str = r#"
-- A JSON list of key names kept in a hash field (absent = empty); nil when undecodable.
local function key_list(hash, field)
  local raw = redis.call('HGET', hash, field)
  if not raw then return {} end
  local ok, list = pcall(cjson.decode, raw)
  if ok and type(list) == 'table' then return list end
  return nil
end

-- A record's version (absent = 0); nil when undecodable.
local function version_of(hash)
  local raw = redis.call('HGET', hash, 'version')
  if not raw then return 0 end
  return tonumber(raw)
end

local function corrupt(key, what)
  return redis.error_reply('CORRUPT ' .. key .. ': undecodable ' .. what)
end

-- KEYS[from..to] as a Lua list.
local function keys_between(from, to)
  local list = {}
  for i = from, to do list[#list + 1] = KEYS[i] end
  return list
end
"#;

/// Registers or replaces a device, keeping its first `created` time and list position.
///
/// KEYS: device hash, snapshot hash, N device indexes (all, user, type, type+user and, when
/// its user has a client, client and type+client), the N matching snapshot indexes. ARGV:
/// record JSON, created JSON, sort key (index member), N.
const PUT_DEVICE: &str = r#"
local device, snapshot = KEYS[1], KEYS[2]
local member = redis.call('HGET', device, 'member')
if member then
  -- A replacement may change the owner or type: leave the indexes of the old record first.
  for _, field in ipairs({'indexes', 'snapshot_indexes'}) do
    local old = key_list(device, field)
    if not old then return corrupt(device, field) end
    for _, index in ipairs(old) do redis.call('ZREM', index, member) end
  end
else
  member = ARGV[3]
  redis.call('HSET', device, 'member', member, 'created', ARGV[2])
end
local n = tonumber(ARGV[4])
local indexes, snapshot_indexes = keys_between(3, 2 + n), keys_between(3 + n, 2 + 2 * n)
redis.call('HSET', device, 'record', ARGV[1],
  'indexes', cjson.encode(indexes), 'snapshot_indexes', cjson.encode(snapshot_indexes))
for _, index in ipairs(indexes) do redis.call('ZADD', index, 0, member) end
if redis.call('EXISTS', snapshot) == 1 then
  for _, index in ipairs(snapshot_indexes) do redis.call('ZADD', index, 0, member) end
end
return 1
"#;

/// Removes a device, its snapshot, its index entries and its schedule entry; returns 1 when
/// the device existed. Lenient with undecodable index lists: deleting is how such a record
/// gets cleaned up (list reads skip index entries whose record is gone).
///
/// KEYS: device hash, snapshot hash, schedule. ARGV: device id.
const DELETE_DEVICE: &str = r#"
local device = KEYS[1]
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
local member = redis.call('HGET', device, 'member')
if member then
  for _, field in ipairs({'indexes', 'snapshot_indexes'}) do
    for _, index in ipairs(key_list(device, field) or {}) do
      redis.call('ZREM', index, member)
    end
  end
end
return redis.call('DEL', device)
"#;

/// Compare-and-set of a snapshot; the device must be registered.
///
/// KEYS: device hash, snapshot hash. ARGV: expected version, snapshot JSON (already carrying
/// the new version). Returns {1, new version}, {0, stored version} on conflict, {-1, 0} when
/// the device is not registered.
const PUT_SNAPSHOT: &str = r#"
local device, snapshot = KEYS[1], KEYS[2]
local member = redis.call('HGET', device, 'member')
if not member then return {-1, 0} end
local actual = version_of(snapshot)
if not actual then return corrupt(snapshot, 'version') end
if actual ~= tonumber(ARGV[1]) then return {0, actual} end
local indexes = key_list(device, 'snapshot_indexes')
if not indexes then return corrupt(device, 'snapshot_indexes') end
redis.call('HSET', snapshot, 'version', actual + 1, 'body', ARGV[2])
for _, index in ipairs(indexes) do redis.call('ZADD', index, 0, member) end
return {1, actual + 1}
"#;

/// Compare-and-set of a versioned record (action, account) that belongs to some set indexes.
///
/// KEYS: record hash, then the sets the new version belongs to. ARGV: expected version,
/// record JSON, index member. Returns {1, new version} or {0, stored version}.
const PUT_VERSIONED: &str = r#"
local record = KEYS[1]
local actual = version_of(record)
if not actual then return corrupt(record, 'version') end
if actual ~= tonumber(ARGV[1]) then return {0, actual} end
local old = key_list(record, 'indexes')
if not old then return corrupt(record, 'indexes') end
for _, index in ipairs(old) do redis.call('SREM', index, ARGV[3]) end
local indexes = keys_between(2, #KEYS)
for _, index in ipairs(indexes) do redis.call('SADD', index, ARGV[3]) end
-- cjson encodes an empty table as {}, which key_list reads back as an empty list too.
redis.call('HSET', record, 'version', actual + 1, 'body', ARGV[2],
  'indexes', cjson.encode(indexes))
return {1, actual + 1}
"#;

/// Removes a versioned record from the sets it is in and deletes it; returns 1 when it
/// existed. Lenient with undecodable index lists, like DELETE_DEVICE.
///
/// KEYS: record hash. ARGV: index member.
const DELETE_VERSIONED: &str = r#"
for _, index in ipairs(key_list(KEYS[1], 'indexes') or {}) do
  redis.call('SREM', index, ARGV[1])
end
return redis.call('DEL', KEYS[1])
"#;

/// Creates a record in sorted-set indexes unless it exists; returns the stored record JSON
/// (the existing one when it existed).
///
/// KEYS: record hash, then its indexes. ARGV: record JSON, sort key (index member).
const CREATE_INDEXED: &str = r#"
local existing = redis.call('HGET', KEYS[1], 'record')
if existing then return existing end
local indexes = keys_between(2, #KEYS)
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'member', ARGV[2],
  'indexes', cjson.encode(indexes))
for _, index in ipairs(indexes) do redis.call('ZADD', index, 0, ARGV[2]) end
return ARGV[1]
"#;

/// Compare-and-set of a record listed in sorted-set indexes (generic resources), keeping its
/// first `created` time and sort key and moving it between indexes when its owner changed.
///
/// KEYS: record hash, then the indexes the new version belongs to. ARGV: expected version,
/// record JSON, sort key, created JSON. Returns {1, new version} or {0, stored version}.
const PUT_INDEXED: &str = r#"
local record = KEYS[1]
local actual = version_of(record)
if not actual then return corrupt(record, 'version') end
if actual ~= tonumber(ARGV[1]) then return {0, actual} end
local member = redis.call('HGET', record, 'member')
if member then
  local old = key_list(record, 'indexes')
  if not old then return corrupt(record, 'indexes') end
  for _, index in ipairs(old) do redis.call('ZREM', index, member) end
else
  member = ARGV[3]
  redis.call('HSET', record, 'member', member, 'created', ARGV[4])
end
local indexes = keys_between(2, #KEYS)
for _, index in ipairs(indexes) do redis.call('ZADD', index, 0, member) end
redis.call('HSET', record, 'version', actual + 1, 'body', ARGV[2],
  'indexes', cjson.encode(indexes))
return {1, actual + 1}
"#;

/// Removes a record from the sorted-set indexes it is in and deletes it; returns 1 when it
/// existed. Lenient with undecodable index lists.
///
/// KEYS: record hash.
const DELETE_INDEXED: &str = r#"
local member = redis.call('HGET', KEYS[1], 'member')
if member then
  for _, index in ipairs(key_list(KEYS[1], 'indexes') or {}) do
    redis.call('ZREM', index, member)
  end
end
return redis.call('DEL', KEYS[1])
"#;

/// Moves a device's due time earlier only (ZADD LT also inserts when absent) and returns the
/// score in force.
///
/// KEYS: schedule. ARGV: due (epoch ms), device id.
const SCHEDULE_EARLIER: &str = r#"
redis.call('ZADD', KEYS[1], 'LT', ARGV[1], ARGV[2])
return redis.call('ZSCORE', KEYS[1], ARGV[2])
"#;

/// Takes up to `limit` devices due by `now` and moves them to the lease time in one step, so
/// two instances never claim the same device.
///
/// KEYS: schedule. ARGV: now (epoch ms), limit, lease until (epoch ms). Returns the flat list
/// member, due, member, due ...
const CLAIM_DUE: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], ARGV[3], due[i]) end
return due
"#;

/// Takes a refresh hint unless one was taken less than the interval ago. Times are the
/// caller's clock (which may run faster than Redis's), so the comparison happens here; the
/// key's TTL only garbage-collects it.
///
/// KEYS: hint. ARGV: now (epoch ms), min interval (ms), TTL (ms). Returns 1 when taken.
const TAKE_HINT: &str = r#"
local last = redis.call('GET', KEYS[1])
if last and (tonumber(ARGV[1]) - tonumber(last)) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"#;

/// The loaded scripts; `Script` sends EVALSHA and loads the body once on NOSCRIPT.
pub(super) struct Scripts {
    pub(super) put_device: Script,
    pub(super) delete_device: Script,
    pub(super) put_snapshot: Script,
    pub(super) put_versioned: Script,
    pub(super) delete_versioned: Script,
    pub(super) create_indexed: Script,
    pub(super) put_indexed: Script,
    pub(super) delete_indexed: Script,
    pub(super) schedule_earlier: Script,
    pub(super) claim_due: Script,
    pub(super) take_hint: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Self {
            put_device: with_prelude(PUT_DEVICE),
            delete_device: with_prelude(DELETE_DEVICE),
            put_snapshot: with_prelude(PUT_SNAPSHOT),
            put_versioned: with_prelude(PUT_VERSIONED),
            delete_versioned: with_prelude(DELETE_VERSIONED),
            create_indexed: with_prelude(CREATE_INDEXED),
            put_indexed: with_prelude(PUT_INDEXED),
            delete_indexed: with_prelude(DELETE_INDEXED),
            schedule_earlier: Script::new(SCHEDULE_EARLIER),
            claim_due: Script::new(CLAIM_DUE),
            take_hint: Script::new(TAKE_HINT),
        }
    }
}
