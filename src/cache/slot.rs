//! One resource's cache: the values, the broker calls in flight for them, and the
//! keys whose last refresh failed a moment ago.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::Op;
use moka::Expiry;

use super::keys::{Key, Weigh};
use crate::config::CacheSettings;

/// How long a failed refresh keeps later reads of the key on the stale value
/// without asking again, so a down broker is not hit by every poll.
const COOL_DOWN: Duration = Duration::from_secs(1);
/// Flights are removed when they land; this only bounds a leak if one is not.
const FLIGHT_TTL: Duration = Duration::from_secs(30);

/// A value as read from the broker, and when.
pub(crate) struct Entry<V> {
    pub value: V,
    pub fetched_at: Instant,
    /// Unique per read: tells a reader whether the entry changed since it looked.
    pub seq: u64,
    /// The account's mutation epoch when the read started (0 for resources a
    /// mutation does not change): an older epoch is never fresh.
    pub epoch: u64,
    /// How long moka keeps it: the longer of its TTL and the stale window.
    pub keep: Duration,
    pub weight: u32,
}

impl<V> Entry<V> {
    pub(super) fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.fetched_at)
    }

    /// Newer means a later epoch, then a later read: what a racing insert keeps.
    fn newer_than(&self, other: &Entry<V>) -> bool {
        (self.epoch, self.fetched_at) >= (other.epoch, other.fetched_at)
    }
}

struct KeepFor;

impl<K, V> Expiry<K, Arc<Entry<V>>> for KeepFor {
    fn expire_after_create(&self, _: &K, e: &Arc<Entry<V>>, _: Instant) -> Option<Duration> {
        Some(e.keep)
    }

    fn expire_after_update(
        &self,
        _: &K,
        e: &Arc<Entry<V>>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.keep)
    }
}

/// The key of one refresh: readers that saw the same entry (`seq`, 0 for none) in
/// the same epoch share one broker call; a reader after a mutation never joins a
/// call that started before it.
pub(crate) type FlightKey<Q> = (Key<Q>, u64, u64);

pub(crate) struct Slot<Q, V> {
    /// Named in `extensions.stale`.
    pub name: &'static str,
    pub values: Cache<Key<Q>, Arc<Entry<V>>>,
    pub flights: Cache<FlightKey<Q>, Arc<Entry<V>>>,
    pub cooling: moka::sync::Cache<Key<Q>, ()>,
    /// Every entry weighs at least this, so `max_bytes` also bounds the entry count.
    floor: u32,
    /// The store's generation, bumped whenever a value is put or leaves the cache.
    generation: Arc<AtomicU64>,
}

impl<Q, V> Slot<Q, V>
where
    Q: Clone + Eq + Hash + Send + Sync + 'static,
    V: Weigh + Send + Sync + 'static,
{
    pub(super) fn new(
        name: &'static str,
        settings: &CacheSettings,
        generation: Arc<AtomicU64>,
    ) -> Self {
        let evicted = generation.clone();
        let floor = (settings.max_bytes / settings.max_entries.max(1)).clamp(1, u32::MAX.into());
        Slot {
            name,
            values: Cache::builder()
                .name(name)
                .max_capacity(settings.max_bytes)
                .weigher(|_, e: &Arc<Entry<V>>| e.weight)
                .expire_after(KeepFor)
                // A value gone (evicted, expired, invalidated) would be read again from
                // the broker: no whole response built on it may be reused.
                .eviction_listener(move |_, _, _| {
                    evicted.fetch_add(1, Ordering::AcqRel);
                })
                .build(),
            flights: Cache::builder()
                .max_capacity(settings.max_entries)
                .time_to_live(FLIGHT_TTL)
                .build(),
            cooling: moka::sync::Cache::builder()
                .max_capacity(settings.max_entries)
                .time_to_live(COOL_DOWN)
                .build(),
            floor: floor as u32,
            generation,
        }
    }

    pub(super) fn entry(
        &self,
        value: V,
        fetched_at: Instant,
        seq: u64,
        epoch: u64,
        keep: Duration,
    ) -> Entry<V> {
        let weight = value.weigh().min(u32::MAX as usize) as u32;
        Entry {
            value,
            fetched_at,
            seq,
            epoch,
            keep,
            weight: weight.max(self.floor),
        }
    }

    /// Inserts unless a newer read of the same key got there first.
    pub(super) async fn put(&self, key: Key<Q>, entry: Arc<Entry<V>>) {
        self.values
            .entry(key)
            .and_compute_with(|old| async move {
                match old {
                    Some(old) if !entry.newer_than(old.value()) => Op::Nop,
                    _ => Op::Put(entry),
                }
            })
            .await;
        // After the put, so a response that read the old value is never stored
        // with the new generation (see `graphql::responses`).
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
