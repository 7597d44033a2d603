//! Micro-benchmarks of the pieces on the hot read path: Relay cursors,
//! a cache hit, and turning an answer into bytes. `cargo bench --bench hot_path`.
//! The end-to-end numbers are the bench command's (docs/benchmarks.md).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use brokergraph::broker::{Broker, BrokerError};
use brokergraph::cache::{CacheStore, CachedBroker};
use brokergraph::config::{CacheSettings, ThrottleSettings};
use brokergraph::domain::{
    Account, AccountStatus, CanceledOrders, Instrument, NewOrder, Order, OrderQuery,
    OrderReplacement, Page, PageRequest, Position, PositionClose, Quote, Replaced, Submitted,
};
use brokergraph::graphql::bench_support::Cursors;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn cursors(c: &mut Criterion) {
    let codec = Cursors::new(b"bench secret of 32 bytes or so..");
    let page = Some("djE6b3JkZXJzOjAwMDAwMDAwMDEyMw");
    let key = "5f0c6f3e-8a8e-4a55-9d0e-3c1b2a9f7e11";
    c.bench_function("cursor encode", |b| {
        b.iter(|| codec.encode(black_box("orders:All:"), page, black_box(17), key))
    });
    let cursor = codec.encode("orders:All:", page, 17, key);
    c.bench_function("cursor decode+verify", |b| {
        b.iter(|| assert!(codec.decode(black_box("orders:All:"), black_box(&cursor))))
    });
}

/// Answers `account` only; a cache hit never gets here.
struct OneAccount(Account);

#[async_trait]
impl Broker for OneAccount {
    async fn account(&self) -> Result<Account, BrokerError> {
        Ok(self.0.clone())
    }
    async fn instrument(&self, _: &str) -> Result<Instrument, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn instruments(&self, _: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn positions(&self, _: &PageRequest) -> Result<Page<Position>, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn order(&self, _: &str) -> Result<Order, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn orders(&self, _: &OrderQuery, _: &PageRequest) -> Result<Page<Order>, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn submit_order(&self, _: &NewOrder) -> Result<Submitted, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn cancel_order(&self, _: &str) -> Result<Order, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn replace_order(&self, _: &str, _: &OrderReplacement) -> Result<Replaced, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn close_position(&self, _: &PositionClose) -> Result<Submitted, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn cancel_all_orders(&self, _: Option<&str>) -> Result<CanceledOrders, BrokerError> {
        Err(BrokerError::NotFound)
    }
    async fn quotes(&self, _: &[String]) -> Result<Vec<Quote>, BrokerError> {
        Err(BrokerError::NotFound)
    }
}

fn cache_hit(c: &mut Criterion) {
    let now = chrono::Utc::now();
    let account = Account {
        id: "PA00000001".into(),
        account_number: "PA00000001".into(),
        status: AccountStatus::Active,
        currency: "USD".into(),
        cash: "1000000.00".parse().expect("decimal"),
        buying_power: "1000000.00".parse().expect("decimal"),
        equity: "1000000.00".parse().expect("decimal"),
        updated_at: now,
        as_of: now,
    };
    let settings = CacheSettings {
        account_ttl: Duration::from_millis(3_600_000),
        ..CacheSettings::default()
    };
    let cached = CachedBroker::new(
        Arc::new(OneAccount(account)),
        "bench-account",
        CacheStore::new(&settings),
        &ThrottleSettings::default(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cached.account())
        .expect("first read fills the cache");
    c.bench_function("cache hit (account)", |b| {
        b.to_async(&rt)
            .iter(|| async { cached.account().await.expect("hit") })
    });
}

/// A dashboard-sized answer (account, 20 positions, 20 orders; ~7 KB of JSON).
fn dashboard() -> serde_json::Value {
    let positions: Vec<_> = (0..20)
        .map(|i| {
            serde_json::json!({ "symbol": format!("SYM{i}"), "quantity": "100",
            "averagePrice": "123.4500", "marketValue": "12345.00",
            "asOf": "2026-11-24T04:00:00.123456Z",
            "instrument": { "tickSize": "0.01", "lotSize": "1" } })
        })
        .collect();
    let orders: Vec<_> = (0..20)
        .map(|i| serde_json::json!({ "brokerOrderId": format!("5f0c6f3e-8a8e-4a55-9d0e-3c1b2a9f7e{i:02}"),
            "symbol": format!("SYM{i}"), "side": "BUY", "type": "MARKET", "quantity": "1",
            "filledQuantity": "1", "status": "FILLED", "createdAt": "2026-11-24T04:00:00.123456Z" }))
        .collect();
    serde_json::json!({ "data": {
        "account": { "id": "QWNjb3VudDpQQTAwMDAwMDAx", "accountNumber": "PA00000001",
            "status": "ACTIVE", "currency": "USD", "cash": "999980.00",
            "buyingPower": "999980.00", "equity": "1000000.00",
            "asOf": "2026-11-24T04:00:00.123456Z" },
        "positions": { "nodes": positions },
        "orders": { "nodes": orders } } })
}

fn serialization(c: &mut Criterion) {
    let json = dashboard();
    let data: async_graphql::Value =
        serde_json::from_value(json["data"].clone()).expect("a GraphQL value");
    let response = async_graphql::Response::new(data);
    c.bench_function("serialize dashboard response (value tree -> JSON)", |b| {
        b.iter(|| serde_json::to_vec(black_box(&response)).expect("serializes"))
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&response).expect("serializes"));
    c.bench_function("reuse serialized dashboard (response cache hit)", |b| {
        b.iter(|| black_box(&bytes).clone())
    });
}

criterion_group!(benches, cursors, cache_hit, serialization);
criterion_main!(benches);
