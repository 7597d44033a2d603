//! What subscribers were last told of each order, so that the feed never shows an
//! order going back to a state it already left. A broker stream repeats itself
//! (a duplicated message, a replay overlapping a REST reconcile) and a REST read
//! may be newer than an event still in flight: both must be dropped, not shown.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::domain::{Order, OrderEvent, OrderStatus};

/// At most this many orders are remembered; beyond it the oldest finished ones are
/// forgotten (they can no longer change, so only a duplicate could surprise us).
const MAX_ORDERS: usize = 10_000;

struct Seen {
    status: OrderStatus,
    filled: Decimal,
    updated_at: DateTime<Utc>,
    /// `(broker event, execution id)` already delivered for this order.
    events: Vec<(String, Option<String>)>,
}

#[derive(Default)]
pub(super) struct Known {
    orders: HashMap<String, Seen>,
}

/// What to do with an event or a REST read of an order.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// New information: deliver it.
    Deliver,
    /// Already delivered, or older than what was delivered.
    Drop,
}

impl Seen {
    fn of(order: &Order) -> Seen {
        Seen {
            status: order.status,
            filled: order.filled_quantity,
            updated_at: order.updated_at,
            events: Vec::new(),
        }
    }

    /// Whether `order` is behind what subscribers saw: less filled, no longer
    /// finished, or last updated earlier.
    fn is_ahead_of(&self, order: &Order) -> bool {
        order.filled_quantity < self.filled
            || (self.status.is_terminal() && !order.status.is_terminal())
            || order.updated_at < self.updated_at
    }

    /// Takes the order's new state; the events already delivered stay known.
    fn advance(&mut self, order: &Order) {
        self.status = order.status;
        self.filled = order.filled_quantity;
        self.updated_at = order.updated_at;
    }

    fn same_state(&self, order: &Order) -> bool {
        self.status == order.status
            && self.filled == order.filled_quantity
            && self.updated_at == order.updated_at
    }
}

impl Known {
    /// Judges a stream event and, when it is delivered, remembers it.
    pub(super) fn event(&mut self, event: &OrderEvent) -> Verdict {
        let id = (
            event.broker_event.clone(),
            event.fill.as_ref().map(|f| f.execution_id.clone()),
        );
        match self.orders.get_mut(&event.order.id) {
            Some(seen) if seen.events.contains(&id) || seen.is_ahead_of(&event.order) => {
                Verdict::Drop
            }
            Some(seen) => {
                seen.advance(&event.order);
                seen.events.push(id);
                Verdict::Deliver
            }
            None => {
                let mut seen = Seen::of(&event.order);
                seen.events.push(id);
                self.insert(event.order.id.clone(), seen);
                Verdict::Deliver
            }
        }
    }

    /// Judges an order read over REST: delivered (as `RECONCILED`) only when it
    /// differs from, and is not behind, what subscribers saw.
    pub(super) fn read(&mut self, order: &Order) -> Verdict {
        match self.orders.get_mut(&order.id) {
            Some(seen) if seen.same_state(order) || seen.is_ahead_of(order) => Verdict::Drop,
            Some(seen) => {
                seen.advance(order);
                Verdict::Deliver
            }
            None => {
                self.insert(order.id.clone(), Seen::of(order));
                Verdict::Deliver
            }
        }
    }

    /// Orders subscribers last saw open: after a gap, each must be read again,
    /// since it may have finished while nobody was listening.
    pub(super) fn open_orders(&self) -> Vec<String> {
        self.orders
            .iter()
            .filter(|(_, seen)| !seen.status.is_terminal())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn insert(&mut self, id: String, seen: Seen) {
        if self.orders.len() >= MAX_ORDERS {
            let mut finished: Vec<(DateTime<Utc>, String)> = self
                .orders
                .iter()
                .filter(|(_, s)| s.status.is_terminal())
                .map(|(id, s)| (s.updated_at, id.clone()))
                .collect();
            finished.sort();
            for (_, id) in finished.into_iter().take(MAX_ORDERS / 10) {
                self.orders.remove(&id);
            }
        }
        self.orders.insert(id, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Fill, OrderEventKind, OrderSide, OrderType, TimeInForce};

    fn order(status: OrderStatus, filled: u32, secs: i64) -> Order {
        let t = DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap();
        Order {
            id: "o1".into(),
            idempotency_key: None,
            symbol: "ABC".into(),
            side: OrderSide::Buy,
            order_type: OrderType::Market,
            quantity: Decimal::from(10),
            filled_quantity: Decimal::from(filled),
            limit_price: None,
            stop_price: None,
            average_fill_price: None,
            time_in_force: TimeInForce::Day,
            status,
            created_at: t,
            updated_at: t,
            as_of: t,
            broker_status: None,
        }
    }

    fn event(name: &str, order: Order, exec: Option<&str>) -> OrderEvent {
        OrderEvent {
            kind: OrderEventKind::Other,
            broker_event: name.into(),
            at: order.updated_at,
            fill: exec.map(|e| Fill {
                execution_id: e.into(),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
            }),
            order,
            position_quantity: None,
        }
    }

    #[test]
    fn a_repeated_event_is_dropped() {
        let mut known = Known::default();
        let fill = event(
            "partial_fill",
            order(OrderStatus::PartiallyFilled, 4, 1),
            Some("x1"),
        );
        assert_eq!(known.event(&fill), Verdict::Deliver);
        assert_eq!(known.event(&fill), Verdict::Drop);
    }

    #[test]
    fn an_event_behind_a_newer_rest_read_is_dropped() {
        let mut known = Known::default();
        assert_eq!(
            known.read(&order(OrderStatus::Filled, 10, 5)),
            Verdict::Deliver
        );
        let late = event(
            "partial_fill",
            order(OrderStatus::PartiallyFilled, 4, 1),
            Some("x1"),
        );
        assert_eq!(known.event(&late), Verdict::Drop);
        let fill = event("fill", order(OrderStatus::Filled, 10, 5), Some("x2"));
        assert_eq!(
            known.event(&fill),
            Verdict::Deliver,
            "the same state by its own event"
        );
    }

    #[test]
    fn a_rest_read_equal_to_what_was_delivered_is_not_news() {
        let mut known = Known::default();
        let accepted = event("accepted", order(OrderStatus::Accepted, 0, 1), None);
        assert_eq!(known.event(&accepted), Verdict::Deliver);
        assert_eq!(
            known.read(&order(OrderStatus::Accepted, 0, 1)),
            Verdict::Drop
        );
        assert_eq!(known.open_orders(), vec!["o1".to_string()]);
        assert_eq!(
            known.read(&order(OrderStatus::Canceled, 0, 9)),
            Verdict::Deliver
        );
        assert!(known.open_orders().is_empty());
    }
}
