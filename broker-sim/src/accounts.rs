//! Paper accounts: cash, positions and the orders that belong to them, and the
//! arithmetic that keeps cash + market value = equity to the cent.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use crate::market::Market;
use crate::orders::{Order, Side};

#[derive(Clone, Debug)]
pub(crate) struct Position {
    pub quantity: Decimal,
    /// Cost basis of the shares held (unrounded): average price = cost / quantity.
    pub cost: Decimal,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub id: Uuid,
    pub number: String,
    pub cash: Decimal,
    pub positions: BTreeMap<String, Position>,
    /// All stored orders by creation sequence (iterate in reverse for newest first).
    pub orders: BTreeMap<u64, Order>,
    pub by_id: HashMap<Uuid, u64>,
    /// Open orders: kept apart so buying power and matching never scan closed history.
    pub open: BTreeSet<u64>,
    /// Cash held back by open buy orders (sum of their reservations).
    pub reserved: Decimal,
    /// Shares held back by open sell orders, by symbol.
    pub promised: HashMap<String, Decimal>,
    /// Terminal orders in the order they became terminal: the pruning queue.
    pub closed: VecDeque<u64>,
    /// When the account was opened: fixed, unlike `updated_at`.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How long a terminal order stays readable at most (besides the count cap).
const CLOSED_ORDER_TTL: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Cash moved by a fill, rounded to the cent like a broker's ledger.
pub(crate) fn fill_cash(quantity: Decimal, price: Decimal) -> Decimal {
    (quantity * price).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

impl Account {
    pub(crate) fn new(id: Uuid, number: String, cash: Decimal, now: DateTime<Utc>) -> Account {
        Account {
            id,
            number,
            cash: cents(cash),
            positions: BTreeMap::new(),
            orders: BTreeMap::new(),
            by_id: HashMap::new(),
            open: BTreeSet::new(),
            reserved: Decimal::ZERO,
            promised: HashMap::new(),
            closed: VecDeque::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Stores a new order and files it as open or closed.
    pub(crate) fn insert_order(&mut self, order: Order) {
        let seq = order.seq;
        if order.status.is_open() {
            self.open.insert(seq);
            self.commit(&order, true);
        } else {
            self.closed.push_back(seq);
        }
        self.by_id.insert(order.id, seq);
        self.orders.insert(seq, order);
    }

    /// The only way to change a stored order: keeps the open set, the pruning queue and
    /// the running commitments (reserved cash, promised shares) true, so buying power
    /// never needs a scan over open orders.
    pub(crate) fn update<R>(&mut self, seq: u64, f: impl FnOnce(&mut Order) -> R) -> Option<R> {
        let mut order = self.orders.remove(&seq)?;
        self.commit(&order, false);
        let was_open = order.status.is_open();
        let result = f(&mut order);
        self.commit(&order, true);
        if was_open && !order.status.is_open() {
            self.open.remove(&seq);
            self.closed.push_back(seq);
        }
        self.orders.insert(seq, order);
        Some(result)
    }

    fn commit(&mut self, order: &Order, add: bool) {
        if !order.status.is_open() {
            return;
        }
        let sign = if add {
            Decimal::ONE
        } else {
            Decimal::NEGATIVE_ONE
        };
        match order.side {
            Side::Buy => self.reserved += sign * order.reservation(),
            Side::Sell => {
                let promised = self.promised.entry(order.symbol.clone()).or_default();
                *promised += sign * order.remaining();
                if promised.is_zero() {
                    self.promised.remove(&order.symbol);
                }
            }
        }
    }

    /// Forgets the oldest terminal orders beyond `keep`, and any that ended more than
    /// `CLOSED_ORDER_TTL` ago: a long-running sim must not grow without bound.
    pub(crate) fn prune(&mut self, keep: usize, now: DateTime<Utc>) {
        while let Some(&seq) = self.closed.front() {
            let stale = self
                .orders
                .get(&seq)
                .is_none_or(|o| now - o.updated_at > CLOSED_ORDER_TTL);
            if self.closed.len() <= keep && !stale {
                break;
            }
            self.closed.pop_front();
            if let Some(order) = self.orders.remove(&seq) {
                self.by_id.remove(&order.id);
            }
        }
    }

    /// Moves cash and position for one execution. A position is signed (negative when
    /// short) and its cost basis with it, so the average price `cost / quantity` is
    /// positive either way; a fill that reduces a position keeps its average, and one
    /// that crosses zero opens the other side at the fill price.
    pub(crate) fn apply_fill(
        &mut self,
        symbol: &str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        now: DateTime<Utc>,
    ) {
        let amount = fill_cash(qty, price);
        let pos = self.positions.entry(symbol.to_owned()).or_insert(Position {
            quantity: Decimal::ZERO,
            cost: Decimal::ZERO,
            updated_at: now,
        });
        let delta = match side {
            Side::Buy => {
                self.cash -= amount;
                qty
            }
            Side::Sell => {
                self.cash += amount;
                -qty
            }
        };
        let held = pos.quantity;
        let quantity = held + delta;
        pos.cost = if held.is_zero() || held.is_sign_negative() == delta.is_sign_negative() {
            pos.cost + delta * price
        } else if delta.abs() <= held.abs() {
            pos.cost / held * quantity
        } else {
            quantity * price
        };
        pos.quantity = quantity;
        pos.updated_at = now;
        if pos.quantity.is_zero() {
            self.positions.remove(symbol);
        }
        self.cash = cents(self.cash);
        self.updated_at = now;
    }

    /// Cash not yet promised to open buy orders.
    pub(crate) fn buying_power(&self) -> Decimal {
        cents((self.cash - self.reserved).max(Decimal::ZERO))
    }

    /// The signed position in `symbol` (negative when short).
    pub(crate) fn held(&self, symbol: &str) -> Decimal {
        self.positions
            .get(symbol)
            .map_or(Decimal::ZERO, |p| p.quantity)
    }

    /// Shares held and not yet promised to open sell orders.
    pub(crate) fn sellable(&self, symbol: &str) -> Decimal {
        self.held(symbol) - self.promised.get(symbol).copied().unwrap_or_default()
    }

    /// Market value of a position at the current price, to the cent.
    pub(crate) fn market_value(market: &Market, symbol: &str, pos: &Position) -> Decimal {
        let price = market.price(symbol).unwrap_or(Decimal::ZERO);
        fill_cash(pos.quantity, price)
    }

    pub(crate) fn equity(&self, market: &Market) -> Decimal {
        let mv: Decimal = self
            .positions
            .iter()
            .map(|(sym, p)| Self::market_value(market, sym, p))
            .sum();
        cents(self.cash + mv)
    }
}

/// Money is always shown with exactly two decimals.
pub(crate) fn cents(value: Decimal) -> Decimal {
    let mut v = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    v.rescale(2);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{OrderStatus, OrderType, TimeInForce};

    fn closed_order(seq: u64, at: DateTime<Utc>) -> Order {
        Order {
            id: Uuid::from_u128(seq.into()),
            seq,
            idempotency_key: None,
            symbol: "AB".into(),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: Decimal::ONE,
            filled_quantity: Decimal::ONE,
            fill_notional: Decimal::ONE,
            limit_price: None,
            stop_price: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Filled,
            triggered: false,
            reserve_price: Decimal::ONE,
            replaces: None,
            replaced_by: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn terminal_orders_are_pruned_by_count_and_by_age() {
        let now = Utc::now();
        let mut a = Account::new(Uuid::nil(), "PA1".into(), Decimal::ONE, now);
        let old = now - chrono::TimeDelta::days(8);
        for seq in 1..=3 {
            a.insert_order(closed_order(seq, old));
        }
        for seq in 4..=10 {
            a.insert_order(closed_order(seq, now));
        }
        a.prune(5, now);
        let kept: Vec<u64> = a.orders.keys().copied().collect();
        assert_eq!(kept, [6, 7, 8, 9, 10]);
        a.prune(100, now + chrono::TimeDelta::days(8));
        assert!(a.orders.is_empty() && a.by_id.is_empty());
    }
}
