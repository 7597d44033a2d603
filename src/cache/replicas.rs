//! The cache of one replica among several: a submit or cancel here is
//! announced to the others, and their announcements drop our mutable reads.
//! See `cluster::epoch` for why this is versioning, not pub/sub.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::l2::L2;
use super::stats::Counters;
use super::CachedBroker;
use crate::cluster::epoch::ClusterEpoch;
use crate::cluster::Redis;
use crate::throttle::ClusterBudget;

impl CachedBroker {
    /// Joins the replicas sharing `redis`: the broker budget, invalidations and
    /// reads (L2) are then shared with them.
    pub fn with_replicas(mut self, redis: Arc<Redis>) -> CachedBroker {
        self.throttle
            .share(ClusterBudget::new(redis.clone(), &self.account));
        self.replicas = Some(ClusterEpoch::new(redis.clone(), &self.account));
        self.l2 = Some(L2::new(redis, &self.account));
        self
    }

    /// Call before answering a request: if another replica changed the account
    /// since, what this one cached of it is dropped first. With Redis down there is
    /// nothing to learn; mutations are refused then, so reads stay as right as
    /// their TTLs make them.
    pub async fn sync_replicas(&self) {
        let Some(epoch) = &self.replicas else {
            return;
        };
        if let Err(e) = epoch.sync(|| self.forget_mutable()).await {
            tracing::debug!(error = %e, "could not check for other replicas' mutations");
        }
    }

    /// After our own submit or cancel (already invalidated here), before its answer
    /// goes out, so any query that follows it, on any replica, sees it.
    pub(super) async fn tell_replicas(&self) {
        let Some(epoch) = &self.replicas else {
            return;
        };
        if let Err(e) = epoch.bump().await {
            // The order stands; other replicas serve their cached lists until
            // their TTLs (seconds) run out.
            tracing::warn!(error = %e, "could not tell other replicas about a mutation");
        }
    }

    /// Another replica's mutation: every mutable value and every order by id may
    /// have changed (we do not know which order it touched).
    fn forget_mutable(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.store.order.values.invalidate_all();
        Counters::bump(&self.store.counters.invalidations);
        self.store.bump_generation();
    }
}
