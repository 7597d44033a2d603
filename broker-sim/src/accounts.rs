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
    pub updated_at: DateTime<Utc>,
}

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

    /// Forgets the oldest terminal orders beyond `keep`.
    pub(crate) fn prune(&mut self, keep: usize) {
        while self.closed.len() > keep {
            let Some(seq) = self.closed.pop_front() else {
                break;
            };
            if let Some(order) = self.orders.remove(&seq) {
                self.by_id.remove(&order.id);
            }
        }
    }

    /// Moves cash and position for one execution.
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
        match side {
            Side::Buy => {
                self.cash -= amount;
                pos.quantity += qty;
                pos.cost += qty * price;
            }
            Side::Sell => {
                let avg = if pos.quantity.is_zero() {
                    Decimal::ZERO
                } else {
                    pos.cost / pos.quantity
                };
                self.cash += amount;
                pos.quantity -= qty;
                pos.cost = avg * pos.quantity;
            }
        }
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

    /// Shares not yet promised to open sell orders.
    pub(crate) fn sellable(&self, symbol: &str) -> Decimal {
        let held = self
            .positions
            .get(symbol)
            .map_or(Decimal::ZERO, |p| p.quantity);
        held - self.promised.get(symbol).copied().unwrap_or_default()
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
