//! Mutations (submits, cancels, replaces, closes, cancels of every open order) pass
//! through uncached (their answers are kept by the idempotency store, never here),
//! with the whole rate-limit budget available to them, and invalidate what they may
//! have changed.

use std::future::Future;
use std::sync::atomic::Ordering;

use super::keys::Key;
use super::stats::Counters;
use super::CachedBroker;
use crate::broker::BrokerError;
use crate::broker::Route;
use crate::domain::Order;
use crate::throttle::Priority;

impl CachedBroker {
    /// Makes one mutation call. `target` is the order a cancel or replace names;
    /// `orders_of` finds the orders a successful answer shows (a replace: the new
    /// order and the replaced one), which are cached as the broker returned them.
    pub(super) async fn write<T, F, Fut>(
        &self,
        route: Route,
        target: Option<&str>,
        call: F,
        orders_of: fn(&T) -> Vec<Order>,
    ) -> Result<T, BrokerError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, BrokerError>> + Send,
        T: Send,
    {
        self.throttle.acquire(Priority::Mutation, true).await?;
        self.store.counters.call(route);
        let result = call().await;
        self.throttle
            .observe(self.inner.rate_limit(), &result)
            .await;
        match &result {
            Ok(answer) => self.invalidate(target, Some(&orders_of(answer))).await,
            // It may have happened: treat the account as changed.
            Err(e) if e.outcome_unknown() => self.invalidate(target, None).await,
            Err(_) => {}
        }
        if result.is_ok() || result.as_ref().is_err_and(|e| e.outcome_unknown()) {
            self.tell_replicas().await;
        }
        result
    }

    /// The broker told us (on its stream) that `order` changed: the same
    /// invalidation as after our own mutation, so a query sent after a subscriber
    /// received the event cannot answer the state before it. With replicas, the
    /// holder has already made L2 stale ([`CachedBroker::order_event_ahead`]).
    pub(crate) async fn order_changed(&self, order: &Order) {
        self.invalidate(None, Some(std::slice::from_ref(order)))
            .await;
    }

    /// The stream's holder, before it appends an event every replica will read:
    /// what L2 holds of the account predates the event, so it stops being fresh
    /// on every replica before any of them delivers the event. Once per event,
    /// by one replica: each bump makes every replica forget its mutable values.
    pub(crate) async fn order_event_ahead(&self) {
        if self.l2.is_some() {
            self.tell_replicas().await;
        }
    }

    /// Every account, positions and order-list value read before now stops being
    /// fresh (a read already in flight is stamped with the old epoch, so it cannot
    /// bring pre-mutation data back as fresh). The orders the broker returned are
    /// cached as it returned them; the target, when its state is not among them, is
    /// forgotten.
    async fn invalidate(&self, target: Option<&str>, orders: Option<&[Order]>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Counters::bump(&self.store.counters.invalidations);
        if let Some(orders) = orders {
            self.remember_orders(orders, std::time::Instant::now())
                .await;
        }
        let known = |id: &str| orders.is_some_and(|o| o.iter().any(|o| o.id == id));
        if let Some(id) = target.filter(|id| !known(id)) {
            let key = Key {
                account: self.account.clone(),
                query: id.to_string(),
            };
            self.store.order.values.invalidate(&key).await;
        }
        // The epoch made mutable values stale: whole responses built on them too.
        self.store.bump_generation();
    }
}
