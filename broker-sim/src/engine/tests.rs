//! Property-style check of the engine's bookkeeping under a seeded random workload.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::*;
use crate::orders::OrderType;

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
                let off =
                    Decimal::from(rng.gen_range(-5i64..=5)) * inst.tick_size * Decimal::from(10);
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
                    engine.cancel(0, id, now).unwrap();
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
}
