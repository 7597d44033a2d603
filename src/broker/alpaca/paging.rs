//! Opaque page cursors over Alpaca lists that have none.
//!
//! `GET /v2/orders` pages by time only: newest first, `until` (exclusive) bounds the
//! submit time. Asking `until` the last time seen would skip the other orders
//! submitted at that same instant, and asking just past it would repeat them. So a
//! cursor is (time, id, how many orders at that time were already shown): the next
//! request reaches just past that time, and orders at exactly that time are ordered
//! by id and shown only below the last id. The cursor is adapter-internal; the
//! GraphQL layer signs and wraps it as an opaque string.
//!
//! Positions and assets come as one whole array; they are paged by symbol.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::wire::OrderDto;
use crate::broker::BrokerError;
use crate::domain::Page;

/// Alpaca's largest `limit` on `GET /v2/orders`.
pub(super) const MAX_ORDERS_LIMIT: u32 = 500;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub(super) struct OrdersCursor {
    /// Submit time of the last order shown.
    t: DateTime<Utc>,
    /// Its id: orders at `t` are shown in descending id order.
    id: String,
    /// Orders at `t` already shown (they come back in the next request).
    seen: u32,
}

impl OrdersCursor {
    pub(super) fn decode(raw: &str) -> Result<OrdersCursor, BrokerError> {
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| BrokerError::Rejected {
                status: 400,
                code: "invalid_cursor".into(),
                message: "the cursor is not one this adapter issued".into(),
                field: Some("cursor".into()),
            })
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    /// The `until` that includes `t` itself: Alpaca keeps microseconds.
    pub(super) fn until(&self) -> String {
        (self.t + Duration::microseconds(1)).to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// How many orders to ask for: the page, the ones at the cursor's time that come
/// back again, and one more to learn whether there is a next page.
pub(super) fn orders_request_limit(limit: u32, cursor: Option<&OrdersCursor>) -> u32 {
    let seen = cursor.map_or(0, |c| c.seen);
    limit
        .saturating_add(seen)
        .saturating_add(1)
        .min(MAX_ORDERS_LIMIT)
}

/// Whether an answer of `requested` orders may have been cut inside the one run of
/// equal timestamps that holds every order not shown yet: then none of them can be
/// placed among its peers, and the request must be repeated with a larger limit.
pub(super) fn orders_need_more(
    fetched: &[OrderDto],
    requested: u32,
    cursor: Option<&OrdersCursor>,
) -> bool {
    if (fetched.len() as u32) < requested || requested >= MAX_ORDERS_LIMIT {
        return false;
    }
    let mut unseen = fetched
        .iter()
        .filter(|o| unseen(o, cursor))
        .map(OrderDto::submitted_at);
    match unseen.next() {
        Some(first) => unseen.all(|t| t == first),
        None => true,
    }
}

/// Not shown on an earlier page: older than the cursor, or at its time below its id.
fn unseen(o: &OrderDto, cursor: Option<&OrdersCursor>) -> bool {
    let (t, id) = key(o);
    cursor.is_none_or(|c| t < c.t || (t == c.t && id < c.id.as_str()))
}

fn key(o: &OrderDto) -> (DateTime<Utc>, &str) {
    (o.submitted_at(), o.id.as_str())
}

/// Picks one page out of what Alpaca returned for `requested` orders.
pub(super) fn orders_page(
    mut fetched: Vec<OrderDto>,
    limit: u32,
    requested: u32,
    cursor: Option<&OrdersCursor>,
) -> (Vec<OrderDto>, Option<String>) {
    let full = fetched.len() as u32 >= requested;
    let oldest = fetched.iter().map(OrderDto::submitted_at).min();
    fetched.sort_by(|a, b| key(b).cmp(&key(a)));
    fetched.retain(|o| unseen(o, cursor));
    let mut more = false;
    if full {
        more = true;
        // Alpaca cut the answer somewhere among the orders at the oldest time: we
        // may not have all of them, so none are shown until the next request, which
        // asks from that time again. (If every order here is at that one time even
        // at Alpaca's largest limit, 500 orders in one microsecond, they are shown
        // in id order as far as they go: the one case this cannot page exactly.)
        if let Some(oldest) = oldest {
            if fetched.iter().any(|o| o.submitted_at() != oldest) {
                fetched.retain(|o| o.submitted_at() != oldest);
            }
        }
    }
    if fetched.len() > limit as usize {
        fetched.truncate(limit as usize);
        more = true;
    }
    let next = match fetched.last() {
        Some(last) if more => {
            let (t, id) = key(last);
            let here = fetched.iter().filter(|o| o.submitted_at() == t).count() as u32;
            let before = cursor.filter(|c| c.t == t).map_or(0, |c| c.seen);
            Some(
                OrdersCursor {
                    t,
                    id: id.to_owned(),
                    seen: here + before,
                }
                .encode(),
            )
        }
        _ => None,
    };
    (fetched, next)
}

/// One page of a whole-array list, in symbol order, after the cursor's symbol.
pub(super) fn by_symbol<T>(
    mut items: Vec<T>,
    symbol: impl Fn(&T) -> &str,
    limit: u32,
    cursor: Option<&str>,
) -> Page<T> {
    items.sort_by(|a, b| symbol(a).cmp(symbol(b)));
    if let Some(after) = cursor {
        items.retain(|i| symbol(i) > after);
    }
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|i| symbol(i).to_owned())
    } else {
        None
    };
    Page { items, next_cursor }
}
