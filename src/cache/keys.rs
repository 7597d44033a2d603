//! Cache keys and value weights.
//!
//! Every key carries the broker account it was read with, so even caches shared by
//! several accounts (`CacheStore` can be) can never hand one account's data to
//! another. List pages are keyed by everything that selects them: filter, broker
//! cursor and page size.

use std::mem::size_of;
use std::sync::Arc;

use crate::domain::{Account, Instrument, Order, OrderQuery, Page, PageRequest, Position, Quote};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key<Q> {
    /// An opaque, non-secret identity of the broker account (a hash of URL and key).
    pub account: Arc<str>,
    pub query: Q,
}

pub(crate) type OrdersQuery = (OrderQuery, PageRequest);

/// Approximate heap and inline bytes of a cached value, so capacity can be stated
/// in bytes. Overestimating a little is fine; a ceiling is what it is for.
pub(crate) trait Weigh {
    fn weigh(&self) -> usize;
}

impl Weigh for Account {
    fn weigh(&self) -> usize {
        size_of::<Self>() + self.id.len() + self.account_number.len() + self.currency.len()
    }
}

impl Weigh for Instrument {
    fn weigh(&self) -> usize {
        let hours = self
            .trading_hours
            .as_ref()
            .map_or(0, |h| h.timezone.len() + h.open.len() + h.close.len());
        size_of::<Self>() + self.symbol.len() + self.name.len() + self.currency.len() + hours
    }
}

impl Weigh for Position {
    fn weigh(&self) -> usize {
        size_of::<Self>() + self.symbol.len()
    }
}

impl Weigh for Quote {
    fn weigh(&self) -> usize {
        size_of::<Self>() + self.symbol.len()
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    fn weigh(&self) -> usize {
        size_of::<Self>() + self.iter().map(Weigh::weigh).sum::<usize>()
    }
}

impl Weigh for Order {
    fn weigh(&self) -> usize {
        // Optional strings some dialects add are covered by the per-entry floor weight.
        size_of::<Self>() + self.id.len() + self.symbol.len()
    }
}

impl<T: Weigh> Weigh for Page<T> {
    fn weigh(&self) -> usize {
        size_of::<Self>()
            + self.items.iter().map(Weigh::weigh).sum::<usize>()
            + self.next_cursor.as_ref().map_or(0, String::len)
    }
}
