//! The trading core: accounts and the market behind one lock, order submission,
//! cancellation, matching on every tick or price change, and session closes. Every
//! change to an order is published as an event under that same lock.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::accounts::Account;
use crate::config::{Dialect, SimConfig};
use crate::error::ApiError;
use crate::events::{EventKind, EventLog, Execution, OrderEvent};
use crate::market::Market;
use crate::orders::{
    tick_liquidity, Order, OrderRequest, OrderStatus, Replacement, Side, TimeInForce,
};
use crate::validation::{self, Admitted, Rules};

const ID_SALT: u64 = 0x5eed_0003;
const POSITIONS_SALT: u64 = 0x5eed_0004;
/// Execution ids have their own stream, so order ids stay what they were before fills
/// were numbered.
const EXECUTIONS_SALT: u64 = 0x5eed_0005;

pub(crate) struct Engine {
    pub market: Market,
    pub accounts: Vec<Account>,
    ids: ChaCha8Rng,
    executions: ChaCha8Rng,
    next_seq: u64,
    pub tick: u64,
    pub session: u64,
    session_ticks: u64,
    max_closed: usize,
    pub orders_created: u64,
    pub events: EventLog,
    pub rules: Rules,
}

/// What one execution attempt did to an order.
enum Attempt {
    Filled {
        symbol: String,
        side: Side,
        qty: Decimal,
        done: bool,
    },
    Canceled,
}

impl Engine {
    /// The seeded initial state; `POST /sim/reset` rebuilds exactly this.
    pub(crate) fn new(cfg: &SimConfig, now: DateTime<Utc>) -> Engine {
        let mut ids = ChaCha8Rng::seed_from_u64(cfg.seed ^ ID_SALT);
        let mut accounts = Vec::with_capacity(cfg.account_count());
        for _ in 0..cfg.account_count() {
            let id = uuid_from(&mut ids);
            let number = format!("PA{:08}", ids.gen_range(0..100_000_000u32));
            accounts.push(Account::new(id, number, cfg.cash, now));
        }
        let mut engine = Engine {
            market: Market::generate(cfg.seed, cfg.instruments),
            accounts,
            ids,
            executions: ChaCha8Rng::seed_from_u64(cfg.seed ^ EXECUTIONS_SALT),
            next_seq: 1,
            tick: 0,
            session: 0,
            session_ticks: cfg.session_ticks.max(1),
            max_closed: cfg.max_closed_orders.max(1),
            orders_created: 0,
            events: EventLog::new(cfg.account_count()),
            rules: Rules {
                async_acceptance: cfg.dialect == Dialect::Alpaca,
                shorting: cfg.shorting,
                sub_penny_rule: cfg.dialect == Dialect::Alpaca,
            },
        };
        engine.seed_positions(cfg.seed, cfg.positions, now);
        engine
    }

    /// Buys `count` positions per account at the initial price, without order history.
    fn seed_positions(&mut self, seed: u64, count: usize, now: DateTime<Utc>) {
        let tradable: Vec<usize> = (0..self.market.instruments.len())
            .filter(|&i| self.market.instruments[i].tradable)
            .collect();
        let count = count.min(tradable.len());
        if count == 0 {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ POSITIONS_SALT);
        for account in &mut self.accounts {
            let budget = account.cash / Decimal::from(2 * count);
            let mut picked = HashSet::new();
            while picked.len() < count {
                picked.insert(tradable[rng.gen_range(0..tradable.len())]);
            }
            let mut picked: Vec<usize> = picked.into_iter().collect();
            picked.sort_unstable();
            for i in picked {
                let inst = &self.market.instruments[i];
                let lot_cost = inst.price * Decimal::from(inst.lot_size);
                let max_lots = (budget / lot_cost).floor();
                let lots = Decimal::from(rng.gen_range(1..=20u32)).min(max_lots);
                if lots < Decimal::ONE {
                    continue;
                }
                let qty = lots * Decimal::from(inst.lot_size);
                let (symbol, price) = (inst.symbol.clone(), inst.price);
                account.apply_fill(&symbol, Side::Buy, qty, price, now);
            }
        }
    }

    fn next_id(&mut self) -> Uuid {
        uuid_from(&mut self.ids)
    }

    /// The id the next order will get, without taking it: a replaced order names its
    /// successor before the successor exists.
    fn peek_id(&self) -> Uuid {
        uuid_from(&mut self.ids.clone())
    }

    /// Validates a request against the instrument and the account, then creates the order
    /// and gives it its first chance to execute (at once, or on the next tick where
    /// orders are accepted asynchronously).
    pub(crate) fn submit(
        &mut self,
        acct: usize,
        req: OrderRequest,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Uuid, ApiError> {
        let admitted =
            validation::admit(&req, &self.market, &self.accounts[acct], &self.rules, None)?;
        let id = self.create(acct, req, admitted, idempotency_key, None, now);
        self.accounts[acct].prune(self.max_closed, now);
        Ok(id)
    }

    /// Replaces an open order that has not traded: the replacement is validated like
    /// a submit (with the old order's hold on buying power and shares released for
    /// the check), the old order ends `canceled` with `replaced_by` set (its event is
    /// `replaced`), and the new order, with `replaces` set, is created like any other.
    pub(crate) fn replace(
        &mut self,
        acct: usize,
        id: Uuid,
        changes: Replacement,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Uuid, ApiError> {
        let account = &self.accounts[acct];
        let seq = *account.by_id.get(&id).ok_or(ApiError::NotFound("order"))?;
        let old = &account.orders[&seq];
        let refusal = if !old.status.is_open() || old.status == OrderStatus::PendingCancel {
            Some(format!(
                "order is {} and can no longer be replaced",
                crate::wire::status_name(old.status)
            ))
        } else if !old.filled_quantity.is_zero() {
            Some("order has partially filled; this paper broker replaces only orders that have not traded".into())
        } else {
            None
        };
        if let Some(message) = refusal {
            return Err(ApiError::unprocessable(
                "order_not_replaceable",
                None,
                message,
            ));
        }
        let req = OrderRequest {
            symbol: old.symbol.clone(),
            side: old.side,
            order_type: old.order_type,
            quantity: changes.quantity.unwrap_or(old.quantity),
            limit_price: changes.limit_price.or(old.limit_price),
            stop_price: changes.stop_price.or(old.stop_price),
            time_in_force: changes.time_in_force.unwrap_or(old.time_in_force),
        };
        let admitted = validation::admit(&req, &self.market, account, &self.rules, Some(old))?;
        let new_id = self.peek_id();
        let account = &mut self.accounts[acct];
        account.update(seq, |order| {
            order.status = OrderStatus::Canceled;
            order.replaced_by = Some(new_id);
            order.updated_at = now;
        });
        self.publish(acct, seq, EventKind::Replaced, None, now);
        let created = self.create(acct, req, admitted, idempotency_key, Some(id), now);
        debug_assert_eq!(created, new_id);
        self.accounts[acct].prune(self.max_closed, now);
        Ok(created)
    }

    /// Stores a new admitted order, announces it, and routes it unless orders are
    /// accepted asynchronously (then the next tick does).
    fn create(
        &mut self,
        acct: usize,
        req: OrderRequest,
        admitted: Admitted,
        idempotency_key: Option<String>,
        replaces: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Uuid {
        let Admitted {
            instrument: inst,
            reserve_price,
        } = admitted;
        let id = self.next_id();
        let seq = self.next_seq;
        self.next_seq += 1;
        let order = Order {
            id,
            seq,
            idempotency_key,
            symbol: req.symbol,
            side: req.side,
            order_type: req.order_type,
            quantity: req.quantity.normalize(),
            filled_quantity: Decimal::ZERO,
            fill_notional: Decimal::ZERO,
            limit_price: req.limit_price.map(|p| inst.scaled(p)),
            stop_price: req.stop_price.map(|p| inst.scaled(p)),
            time_in_force: req.time_in_force,
            status: if self.rules.async_acceptance {
                OrderStatus::Pending
            } else {
                OrderStatus::Accepted
            },
            triggered: false,
            reserve_price,
            replaces,
            replaced_by: None,
            created_at: now,
            updated_at: now,
        };
        self.accounts[acct].insert_order(order);
        self.accounts[acct].updated_at = now;
        self.orders_created += 1;
        self.publish(acct, seq, EventKind::New, None, now);
        if !self.rules.async_acceptance {
            self.route(acct, seq, now);
        }
        id
    }

    /// The order reaches the market: a pending one is accepted, then it gets its first
    /// chance to execute; `ioc`/`fok` end here. Auction orders wait for their auction.
    fn route(&mut self, acct: usize, seq: u64, now: DateTime<Utc>) {
        let account = &mut self.accounts[acct];
        let accepted = account.update(seq, |order| {
            let pending = order.status == OrderStatus::Pending;
            if pending {
                order.status = OrderStatus::Accepted;
                order.updated_at = now;
            }
            pending
        });
        if accepted == Some(true) {
            self.publish(acct, seq, EventKind::Accepted, None, now);
        }
        let Some(order) = self.accounts[acct].orders.get(&seq) else {
            return;
        };
        let tif = order.time_in_force;
        if tif.is_auction() || !order.status.is_open() {
            return;
        }
        if tif != TimeInForce::Fok || self.fillable_in_full(acct, order) {
            self.execute(acct, seq, now);
        }
        if matches!(tif, TimeInForce::Ioc | TimeInForce::Fok) {
            self.finish(acct, seq, OrderStatus::Canceled, now);
        }
    }

    /// FOK: the whole quantity must trade now, at one price, within one tick's liquidity.
    fn fillable_in_full(&self, acct: usize, order: &Order) -> bool {
        let Some(inst) = self.market.get(&order.symbol) else {
            return false;
        };
        let price = self.quoted(&order.symbol, order.side, inst.price);
        let mut probe = order.clone();
        if !probe.marketable(price) || tick_liquidity(inst, inst.price) < order.quantity {
            return false;
        }
        order.side == Side::Sell || self.accounts[acct].cash >= order.quantity * price
    }

    /// Where an order of `side` trades now: a buy at the quoted ask, a sell at the
    /// bid, as the quotes published for this tick say (the price itself where the
    /// market has no quote).
    fn quoted(&self, symbol: &str, side: Side, price: Decimal) -> Decimal {
        match self.market.quote(symbol, self.tick) {
            Some(q) if side == Side::Buy => q.ask,
            Some(q) => q.bid,
            None => price,
        }
    }

    /// Ends an order that is still open with a terminal status.
    fn finish(&mut self, acct: usize, seq: u64, status: OrderStatus, now: DateTime<Utc>) {
        let account = &mut self.accounts[acct];
        let changed = account.update(seq, |order| {
            let open = order.status.is_open();
            if open {
                order.status = status;
                order.updated_at = now;
            }
            open
        });
        if changed == Some(true) {
            account.updated_at = now;
            let kind = match status {
                OrderStatus::Expired => EventKind::Expired,
                _ => EventKind::Canceled,
            };
            self.publish(acct, seq, kind, None, now);
        }
    }

    /// Announces the order's current state. Called right after each change, before
    /// anything can prune the order.
    fn publish(
        &mut self,
        acct: usize,
        seq: u64,
        kind: EventKind,
        execution: Option<Execution>,
        now: DateTime<Utc>,
    ) {
        let account = &self.accounts[acct];
        let Some(order) = account.orders.get(&seq) else {
            return;
        };
        let position_qty = account
            .positions
            .get(&order.symbol)
            .map_or(Decimal::ZERO, |p| p.quantity.normalize());
        let event = OrderEvent {
            seq: 0,
            kind,
            order: order.clone(),
            average_fill_price: order.average_fill_price(self.market.get(&order.symbol)),
            execution,
            position_qty,
            at: now,
        };
        self.events.publish(acct, event);
    }

    /// One execution attempt at the quoted price of the order's side, up to one
    /// tick's liquidity.
    fn execute(&mut self, acct: usize, seq: u64, now: DateTime<Utc>) {
        let Some(order) = self.accounts[acct].orders.get(&seq) else {
            return;
        };
        let Some(inst) = self.market.get(&order.symbol) else {
            return;
        };
        if !order.status.is_open() {
            return;
        }
        let price = self.quoted(&order.symbol, order.side, inst.price);
        let account = &mut self.accounts[acct];
        let lot = Decimal::from(inst.lot_size);
        // The market's depth is what trades at the last price, whichever side.
        let liquidity = tick_liquidity(inst, inst.price);
        let affordable = ((account.cash / price / lot).floor() * lot).max(Decimal::ZERO);
        let attempt = account.update(seq, |order| {
            if !order.marketable(price) {
                return None;
            }
            let mut qty = order.remaining().min(liquidity);
            if order.side == Side::Buy {
                qty = qty.min(affordable);
            }
            if qty.is_zero() {
                if order.limit_price.is_none() {
                    // A market order the account can no longer pay for: cancel the rest
                    // rather than overdraw cash.
                    order.status = OrderStatus::Canceled;
                    order.updated_at = now;
                    return Some(Attempt::Canceled);
                }
                return None;
            }
            order.filled_quantity += qty;
            order.fill_notional += qty * price;
            let done = order.remaining().is_zero();
            order.status = if done {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
            order.updated_at = now;
            Some(Attempt::Filled {
                symbol: order.symbol.clone(),
                side: order.side,
                qty,
                done,
            })
        });
        match attempt.flatten() {
            Some(Attempt::Filled {
                symbol,
                side,
                qty,
                done,
            }) => {
                account.apply_fill(&symbol, side, qty, price, now);
                let execution = Execution {
                    id: uuid_from(&mut self.executions),
                    price,
                    qty: qty.normalize(),
                };
                let kind = if done {
                    EventKind::Fill
                } else {
                    EventKind::PartialFill
                };
                self.publish(acct, seq, kind, Some(execution), now);
            }
            Some(Attempt::Canceled) => {
                self.publish(acct, seq, EventKind::Canceled, None, now);
            }
            None => {}
        }
    }

    pub(crate) fn cancel(
        &mut self,
        acct: usize,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let account = &self.accounts[acct];
        let seq = *account.by_id.get(&id).ok_or(ApiError::NotFound("order"))?;
        let status = account.orders[&seq].status;
        match status {
            s if s.is_open() => {
                self.finish(acct, seq, OrderStatus::Canceled, now);
                self.accounts[acct].prune(self.max_closed, now);
                Ok(())
            }
            OrderStatus::Canceled => Ok(()),
            other => Err(ApiError::unprocessable(
                "order_not_cancelable",
                None,
                format!(
                    "order is {} and can no longer be canceled",
                    crate::wire::status_name(other)
                ),
            )),
        }
    }

    /// One market clock step: pending orders are routed, prices move, resting orders
    /// get their chance, and a session boundary runs the auctions and expires `day`
    /// orders.
    pub(crate) fn step(&mut self, now: DateTime<Utc>) {
        self.tick += 1;
        // Orders submitted since the last tick reach the market at the price they saw.
        self.route_pending(now);
        self.market.step();
        self.match_open(None, now);
        if self.tick.checked_rem(self.session_ticks) == Some(0) {
            self.close_session(now);
        }
    }

    /// Orders accepted asynchronously reach the market on the tick after their submit.
    fn route_pending(&mut self, now: DateTime<Utc>) {
        for acct in 0..self.accounts.len() {
            let account = &self.accounts[acct];
            let pending: Vec<u64> = account
                .open
                .iter()
                .copied()
                .filter(|seq| account.orders[seq].status == OrderStatus::Pending)
                .collect();
            for seq in pending {
                self.route(acct, seq, now);
            }
            self.accounts[acct].prune(self.max_closed, now);
        }
    }

    pub(crate) fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let inst = self.market.get(symbol).ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_symbol",
                Some("symbol"),
                format!("unknown symbol {symbol:?}"),
            )
        })?;
        if price <= Decimal::ZERO
            || price > crate::validation::MAX_PRICE
            || !inst.on_tick_grid(price)
        {
            return Err(ApiError::unprocessable(
                "tick_size",
                Some("price"),
                format!(
                    "price must be positive and a multiple of the tick size {}",
                    inst.tick_size
                ),
            ));
        }
        self.market.set_price(symbol, price);
        self.match_open(Some(symbol), now);
        Ok(())
    }

    /// Resting orders that trade continuously get a chance at the current price: not
    /// the ones still pending (the next tick routes them) nor auction orders.
    fn match_open(&mut self, symbol: Option<&str>, now: DateTime<Utc>) {
        for acct in 0..self.accounts.len() {
            let account = &self.accounts[acct];
            let seqs: Vec<u64> = account
                .open
                .iter()
                .copied()
                .filter(|seq| {
                    let order = &account.orders[seq];
                    symbol.is_none_or(|s| order.symbol == s)
                        && order.status != OrderStatus::Pending
                        && !order.time_in_force.is_auction()
                })
                .collect();
            for seq in seqs {
                self.execute(acct, seq, now);
            }
            self.accounts[acct].prune(self.max_closed, now);
        }
    }

    /// The simulated close: `cls` orders trade in the closing auction, every open
    /// `day` order expires, the next session begins, and `opg` orders trade in its
    /// opening auction. An auction is one execution at the current price; what it
    /// leaves of an auction order is canceled.
    pub(crate) fn close_session(&mut self, now: DateTime<Utc>) {
        self.auction(TimeInForce::Cls, now);
        for acct in 0..self.accounts.len() {
            for seq in self.open_with(acct, TimeInForce::Day) {
                self.finish(acct, seq, OrderStatus::Expired, now);
            }
            self.accounts[acct].prune(self.max_closed, now);
        }
        self.market.mark_close();
        self.session += 1;
        self.auction(TimeInForce::Opg, now);
    }

    fn auction(&mut self, tif: TimeInForce, now: DateTime<Utc>) {
        for acct in 0..self.accounts.len() {
            for seq in self.open_with(acct, tif) {
                self.execute(acct, seq, now);
                self.finish(acct, seq, OrderStatus::Canceled, now);
            }
            self.accounts[acct].prune(self.max_closed, now);
        }
    }

    fn open_with(&self, acct: usize, tif: TimeInForce) -> Vec<u64> {
        let account = &self.accounts[acct];
        account
            .open
            .iter()
            .copied()
            .filter(|seq| account.orders[seq].time_in_force == tif)
            .collect()
    }

    pub(crate) fn open_order_count(&self) -> u64 {
        self.accounts.iter().map(|a| a.open.len() as u64).sum()
    }

    pub(crate) fn stored_order_count(&self) -> u64 {
        self.accounts.iter().map(|a| a.orders.len() as u64).sum()
    }
}

/// Ids come from the seeded stream, so two runs with one seed hand out the same ids.
fn uuid_from(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

#[cfg(test)]
mod tests {
    // Property-style check of the engine's bookkeeping under a seeded random workload.

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rust_decimal::Decimal;

    use super::*;
    use crate::orders::{OrderType, Replacement};

    fn invariants(engine: &Engine) {
        for a in &engine.accounts {
            let reserved: Decimal = a.open.iter().map(|s| a.orders[s].reservation()).sum();
            assert_eq!(a.reserved, reserved, "running reservation drifted");
            for (sym, promised) in &a.promised {
                let actual: Decimal = a
                    .open
                    .iter()
                    .map(|s| &a.orders[s])
                    .filter(|o| o.side == Side::Sell && &o.symbol == sym)
                    .map(Order::remaining)
                    .sum();
                assert_eq!(*promised, actual);
                let held = a.positions.get(sym).map_or(Decimal::ZERO, |p| p.quantity);
                assert!(*promised <= held, "more promised than held");
            }
            assert!(a.cash >= Decimal::ZERO, "cash went negative: {}", a.cash);
            let mv: Decimal = a
                .positions
                .iter()
                .map(|(s, p)| Account::market_value(&engine.market, s, p))
                .sum();
            assert_eq!(a.equity(&engine.market), a.cash + mv);
            for o in a.orders.values() {
                assert!(o.filled_quantity <= o.quantity);
            }
        }
    }

    #[test]
    fn bookkeeping_stays_consistent_under_random_trading() {
        let cfg = SimConfig {
            instruments: 20,
            cash: Decimal::from(200_000),
            positions: 3,
            session_ticks: 37,
            max_closed_orders: 50,
            ..SimConfig::default()
        };
        let mut engine = Engine::new(&cfg, Utc::now());
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let symbols: Vec<String> = engine
            .market
            .instruments
            .iter()
            .filter(|i| i.tradable)
            .map(|i| i.symbol.clone())
            .collect();
        for _ in 0..3000 {
            let now = Utc::now();
            match rng.gen_range(0..10) {
                0..=5 => {
                    let sym = symbols[rng.gen_range(0..symbols.len())].clone();
                    let inst = engine.market.get(&sym).unwrap().clone();
                    let lots = Decimal::from(rng.gen_range(1..2000u32));
                    let off = Decimal::from(rng.gen_range(-5i64..=5))
                        * inst.tick_size
                        * Decimal::from(10);
                    let near = (inst.price + off).max(inst.tick_size);
                    let order_type = [
                        OrderType::Market,
                        OrderType::Limit,
                        OrderType::Stop,
                        OrderType::StopLimit,
                    ][rng.gen_range(0..4)];
                    let tif = match order_type {
                        OrderType::Market | OrderType::Limit => [
                            TimeInForce::Day,
                            TimeInForce::Gtc,
                            TimeInForce::Ioc,
                            TimeInForce::Fok,
                        ][rng.gen_range(0..4)],
                        _ => TimeInForce::Gtc,
                    };
                    let req = OrderRequest {
                        symbol: sym,
                        side: if rng.gen_bool(0.5) {
                            Side::Buy
                        } else {
                            Side::Sell
                        },
                        order_type,
                        quantity: lots * Decimal::from(inst.lot_size),
                        limit_price: matches!(order_type, OrderType::Limit | OrderType::StopLimit)
                            .then_some(near),
                        stop_price: matches!(order_type, OrderType::Stop | OrderType::StopLimit)
                            .then_some(near),
                        time_in_force: tif,
                    };
                    let _ = engine.submit(0, req, None, now);
                }
                6 => {
                    let open: Vec<u64> = engine.accounts[0].open.iter().copied().collect();
                    if !open.is_empty() {
                        let seq = open[rng.gen_range(0..open.len())];
                        let id = engine.accounts[0].orders[&seq].id;
                        if rng.gen_bool(0.5) {
                            engine.cancel(0, id, now).unwrap();
                        } else {
                            let order = &engine.accounts[0].orders[&seq];
                            let lot =
                                Decimal::from(engine.market.get(&order.symbol).unwrap().lot_size);
                            let changes = Replacement {
                                quantity: Some(order.quantity + lot),
                                ..Replacement::default()
                            };
                            // Refusals (partly filled, buying power) leave the books as they were.
                            let _ = engine.replace(0, id, changes, None, now);
                        }
                    }
                }
                7 => {
                    let sym = symbols[rng.gen_range(0..symbols.len())].clone();
                    let inst = engine.market.get(&sym).unwrap().clone();
                    let ticks = Decimal::from(rng.gen_range(-30i64..=30));
                    let price = (inst.price + ticks * inst.tick_size).max(inst.tick_size);
                    engine.set_price(&sym, price, now).unwrap();
                }
                _ => engine.step(now),
            }
            invariants(&engine);
        }
        assert!(engine.accounts[0].orders.len() <= 50 + engine.accounts[0].open.len());
        events_tell_the_current_state(&engine);
    }

    /// If any change went unpublished, the last event held for some order would show a
    /// state the order has left.
    fn events_tell_the_current_state(engine: &Engine) {
        use crate::events::{Replay, HISTORY};
        let latest = engine.events.latest(0);
        assert!(latest > HISTORY as u64, "the workload makes enough events");
        let Some(Replay::Events(held)) = engine
            .events
            .subscribe(0, Some(latest - HISTORY as u64))
            .replay
        else {
            panic!("the last {HISTORY} events are held");
        };
        let seqs: Vec<u64> = held.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (latest - HISTORY as u64 + 1..=latest).collect::<Vec<_>>()
        );
        let mut last = std::collections::HashMap::new();
        for event in &held {
            last.insert(event.order.id, event);
        }
        let account = &engine.accounts[0];
        for (id, event) in last {
            let Some(seq) = account.by_id.get(&id) else {
                continue;
            };
            let order = &account.orders[seq];
            assert_eq!(
                (event.order.status, event.order.filled_quantity),
                (order.status, order.filled_quantity),
                "order {id}: the last event is stale"
            );
        }
    }

    fn small(dialect: Dialect, shorting: bool) -> Engine {
        let cfg = SimConfig {
            instruments: 50,
            cash: Decimal::from(100_000),
            dialect,
            shorting,
            ..SimConfig::default()
        };
        Engine::new(&cfg, Utc::now())
    }

    /// A tradable lot-1 symbol priced at 10.00.
    fn ten(engine: &mut Engine) -> String {
        let sym = engine
            .market
            .instruments
            .iter()
            .find(|i| i.tradable && i.lot_size == 1 && i.tick_size == Decimal::new(1, 2))
            .unwrap()
            .symbol
            .clone();
        engine.set_price(&sym, Decimal::TEN, Utc::now()).unwrap();
        sym
    }

    fn order(
        sym: &str,
        side: Side,
        kind: OrderType,
        qty: i64,
        limit: Option<i64>,
        tif: TimeInForce,
    ) -> OrderRequest {
        OrderRequest {
            symbol: sym.into(),
            side,
            order_type: kind,
            quantity: Decimal::from(qty),
            limit_price: limit.map(Decimal::from),
            stop_price: None,
            time_in_force: tif,
        }
    }

    fn kinds(engine: &Engine) -> Vec<(&'static str, Uuid)> {
        let Some(crate::events::Replay::Events(all)) = engine.events.subscribe(0, Some(0)).replay
        else {
            panic!("events held")
        };
        all.iter().map(|e| (e.kind.name(), e.order.id)).collect()
    }

    #[test]
    fn a_replace_ends_the_old_order_and_creates_the_new_one_with_events() {
        let mut engine = small(Dialect::Generic, false);
        let sym = ten(&mut engine);
        let now = Utc::now();
        let old = engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Limit,
                    5,
                    Some(9),
                    TimeInForce::Gtc,
                ),
                None,
                now,
            )
            .unwrap();
        let changes = Replacement {
            quantity: Some(Decimal::from(7)),
            limit_price: Some(Decimal::from(8)),
            ..Replacement::default()
        };
        let new = engine
            .replace(0, old, changes, Some("k".into()), now)
            .unwrap();
        let account = &engine.accounts[0];
        let (o, n) = (
            &account.orders[&account.by_id[&old]],
            &account.orders[&account.by_id[&new]],
        );
        assert_eq!(
            (o.status, o.replaced_by),
            (OrderStatus::Canceled, Some(new))
        );
        assert_eq!((n.status, n.replaces), (OrderStatus::Accepted, Some(old)));
        assert_eq!(
            (n.quantity, n.limit_price),
            (Decimal::from(7), Some(Decimal::from(8)))
        );
        assert_eq!(n.idempotency_key.as_deref(), Some("k"));
        assert_eq!(
            account.reserved,
            Decimal::from(56),
            "only the new order holds cash"
        );
        assert_eq!(
            kinds(&engine),
            [("new", old), ("replaced", old), ("new", new)]
        );
        // Over: canceled, filled or partly filled orders are not replaced.
        let again = engine.replace(0, old, Replacement::default(), None, now);
        assert!(matches!(
            again,
            Err(ApiError::Invalid {
                code: "order_not_replaceable",
                ..
            })
        ));
    }

    #[test]
    fn a_replace_may_use_the_buying_power_its_old_order_holds() {
        let mut engine = small(Dialect::Generic, false);
        let sym = ten(&mut engine);
        let now = Utc::now();
        // All but 1 000 of the cash is held at 9.00; 10 000 shares at the same price
        // need 90 000, which fits only because the old order's 99 000 is released
        // for the check.
        let old = engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Limit,
                    11_000,
                    Some(9),
                    TimeInForce::Gtc,
                ),
                None,
                now,
            )
            .unwrap();
        assert!(engine.accounts[0].buying_power() < Decimal::from(5_000));
        let changes = Replacement {
            quantity: Some(Decimal::from(10_000)),
            ..Replacement::default()
        };
        assert!(engine.replace(0, old, changes, None, now).is_ok());
    }

    #[test]
    fn auction_orders_wait_for_their_auction_and_the_rest_is_canceled() {
        let mut engine = small(Dialect::Generic, false);
        let sym = ten(&mut engine);
        let now = Utc::now();
        let opg = engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Market,
                    3,
                    None,
                    TimeInForce::Opg,
                ),
                None,
                now,
            )
            .unwrap();
        let cls = engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Limit,
                    2,
                    Some(5),
                    TimeInForce::Cls,
                ),
                None,
                now,
            )
            .unwrap();
        engine.step(now);
        let status = |e: &Engine, id: Uuid| e.accounts[0].orders[&e.accounts[0].by_id[&id]].status;
        assert_eq!(
            (status(&engine, opg), status(&engine, cls)),
            (OrderStatus::Accepted, OrderStatus::Accepted)
        );
        engine.close_session(now);
        assert_eq!(
            status(&engine, opg),
            OrderStatus::Filled,
            "the opening auction filled it"
        );
        assert_eq!(
            status(&engine, cls),
            OrderStatus::Canceled,
            "not marketable at the close"
        );
    }

    #[test]
    fn alpaca_orders_are_pending_until_the_next_tick() {
        let mut engine = small(Dialect::Alpaca, false);
        let sym = ten(&mut engine);
        let now = Utc::now();
        let id = engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Market,
                    3,
                    None,
                    TimeInForce::Day,
                ),
                None,
                now,
            )
            .unwrap();
        let status = |e: &Engine| e.accounts[0].orders[&e.accounts[0].by_id[&id]].status;
        assert_eq!(status(&engine), OrderStatus::Pending);
        engine.set_price(&sym, Decimal::TEN, now).unwrap();
        assert_eq!(
            status(&engine),
            OrderStatus::Pending,
            "a price change does not route it"
        );
        engine.step(now);
        assert_eq!(status(&engine), OrderStatus::Filled);
        assert_eq!(
            kinds(&engine),
            [("new", id), ("accepted", id), ("fill", id)]
        );
    }

    #[test]
    fn with_shorting_a_sell_goes_short_and_a_buy_covers_it() {
        let now = Utc::now();
        let mut refused = small(Dialect::Generic, false);
        let sym = ten(&mut refused);
        let sell = order(
            &sym,
            Side::Sell,
            OrderType::Market,
            4,
            None,
            TimeInForce::Day,
        );
        assert!(matches!(
            refused.submit(0, sell.clone(), None, now),
            Err(ApiError::Refused {
                code: "insufficient_position",
                ..
            })
        ));
        let mut engine = small(Dialect::Generic, true);
        let sym = ten(&mut engine);
        let cash = engine.accounts[0].cash;
        let bid = engine.market.quote(&sym, engine.tick).unwrap().bid;
        assert!(bid < Decimal::from(10), "the bid is below the price");
        engine.submit(0, sell, None, now).unwrap();
        let account = &engine.accounts[0];
        assert_eq!(account.held(&sym), Decimal::from(-4));
        assert_eq!(
            account.cash,
            cash + bid * Decimal::from(4),
            "sold at the bid"
        );
        assert_eq!(
            account.equity(&engine.market),
            cash - (Decimal::from(10) - bid) * Decimal::from(4),
            "short at the bid, marked at 10"
        );
        engine.set_price(&sym, Decimal::from(12), now).unwrap();
        let ask = engine.market.quote(&sym, engine.tick).unwrap().ask;
        assert!(ask > Decimal::from(12), "the ask is above the price");
        engine
            .submit(
                0,
                order(
                    &sym,
                    Side::Buy,
                    OrderType::Market,
                    4,
                    None,
                    TimeInForce::Day,
                ),
                None,
                now,
            )
            .unwrap();
        let account = &engine.accounts[0];
        assert_eq!(account.held(&sym), Decimal::ZERO);
        assert_eq!(
            account.cash,
            cash - (ask - bid) * Decimal::from(4),
            "sold at the bid, bought back at the ask"
        );
    }
}
