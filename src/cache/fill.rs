//! Lists carry whole objects: every order and instrument a list page brings is also
//! cached by id or symbol, so `order(id:)`, `node(id:)` and the instrument
//! DataLoader after a list cost no broker call. Quote snapshots are cached by
//! symbol the same way.

use std::sync::Arc;
use std::time::Instant;

use super::keys::Key;
use super::CachedBroker;
use crate::domain::{Instrument, Order, Quote};

impl CachedBroker {
    /// Orders as a list page or a mutation returned them, read at `at` (the
    /// broker's answer, also when the page came from L2). A racing, newer read of
    /// the same order wins (`Slot::put`): an order event handled after the page's
    /// answer is not overwritten by it.
    pub(super) async fn remember_orders(&self, orders: &[Order], at: Instant) {
        let store = &*self.store;
        for order in orders {
            let keep = CachedBroker::order_ttl(store, order).max(store.stale_ttl);
            let entry = store
                .order
                .entry(order.clone(), at, store.next_seq(), 0, keep);
            store
                .order
                .put(self.key(order.id.clone()), Arc::new(entry))
                .await;
        }
    }

    pub(super) async fn remember_instruments(&self, instruments: &[Instrument], at: Instant) {
        let store = &*self.store;
        let keep = store.settings.instruments_ttl.max(store.stale_ttl);
        for instrument in instruments {
            let entry = store
                .instrument
                .entry(instrument.clone(), at, store.next_seq(), 0, keep);
            let key = self.key(instrument.symbol.clone());
            store.instrument.put(key, Arc::new(entry)).await;
        }
    }

    /// Quotes a snapshot brought, so the next snapshot asks only for what is not
    /// fresh, whatever set of symbols it is for.
    pub(super) async fn remember_quotes(&self, quotes: &[Quote], at: Instant) {
        let store = &*self.store;
        let keep = store.settings.quote_ttl.max(store.stale_ttl);
        for quote in quotes {
            let entry = store
                .quote
                .entry(quote.clone(), at, store.next_seq(), 0, keep);
            let key = self.key(quote.symbol.clone());
            store.quote.put(key, Arc::new(entry)).await;
        }
    }

    pub(super) fn key<Q>(&self, query: Q) -> Key<Q> {
        Key {
            account: self.account.clone(),
            query,
        }
    }
}
