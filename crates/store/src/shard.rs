//! Schedule shards: how the poll schedule is split so that instances can own parts of it.
//!
//! Every device belongs to one of [`SCHEDULE_SHARDS`] shards, picked by a stable hash of its
//! id. [`crate::ScheduleStore::claim_due`] claims from one shard at a time, so an instance
//! polls exactly the shards it owns: all of them when it runs alone, a share of them when
//! lease-based ownership splits the shards between instances. Because the hash never changes,
//! the number of shards is part of the stored layout: changing it needs a re-schedule of
//! every device (which a restart of the poller performs anyway, see the poller's docs).

/// How many shards the schedule has. 32 leaves room for a few dozen instances while a
/// single instance's tick (one claim per shard) stays cheap.
pub const SCHEDULE_SHARDS: u16 = 32;

/// The shard of a device: FNV-1a of its id, modulo [`SCHEDULE_SHARDS`]. Stable across
/// versions and platforms (it decides where a device lives in the store).
pub fn shard_of(device_id: &str) -> u16 {
    (stable_hash(device_id) % u64::from(SCHEDULE_SHARDS)) as u16
}

/// FNV-1a of a string: the same on every platform and version, for anything that must
/// place or spread ids the same way in every instance.
pub fn stable_hash(s: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in s.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Every shard, in order.
pub fn all_shards() -> impl Iterator<Item = u16> {
    0..SCHEDULE_SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned values: a change here would move stored devices between shards.
        assert_eq!(shard_of(""), (0xcbf2_9ce4_8422_2325u64 % 32) as u16);
        assert_eq!(shard_of("device-1"), shard_of("device-1"));
        let mut counts = [0u32; SCHEDULE_SHARDS as usize];
        for i in 0..32_000 {
            counts[usize::from(shard_of(&format!("dev-{i}")))] += 1;
        }
        // Roughly even: every shard within 20% of the mean (1000).
        assert!(counts.iter().all(|&n| (800..1200).contains(&n)), "{counts:?}");
    }
}
