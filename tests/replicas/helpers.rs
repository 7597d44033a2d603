//! What the replica tests share: the mutation and dashboard they send, a cheap
//! symbol to buy, and TTLs long enough that only invalidation explains a fresh answer.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::cluster::{self, Cluster};
use crate::common::{cheap_symbol_in, INSTRUMENTS_FOR_PICKING};

pub const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) {
    replayed
    order { id brokerOrderId status }
    userErrors { code message }
  }
}"#;

pub const DASHBOARD: &str = r#"
query Dashboard {
  account { id cash buyingPower equity asOf }
  positions(first: 20) { nodes { symbol quantity asOf instrument { symbol lotSize } } }
  orders(first: 20) { nodes { brokerOrderId symbol status asOf } }
}"#;

/// A tradable lot-1 instrument, priced at 10.00 so buys are cheap.
pub async fn cheap_symbol(cluster: &Cluster) -> String {
    let data = cluster.data(0, INSTRUMENTS_FOR_PICKING, json!({})).await;
    cheap_symbol_in(&data, &cluster.sim).await
}

pub fn buy(key: Uuid, symbol: &str, order_type: &str) -> Value {
    let mut input = json!({ "idempotencyKey": key, "symbol": symbol, "side": "BUY",
        "type": order_type, "quantity": "1" });
    if order_type == "LIMIT" {
        // Far below the price: it rests, open, until canceled.
        input["limitPrice"] = json!("1.00");
        input["timeInForce"] = json!("GTC");
    }
    json!({ "input": input })
}

/// Long TTLs: without cross-replica invalidation, replica B would keep answering
/// its cached list for a minute.
pub const LONG_TTLS: cluster::Env = &[
    ("CACHE_ORDERS_TTL_MS", "60000"),
    ("CACHE_OPEN_ORDER_TTL_MS", "60000"),
    ("CACHE_ACCOUNT_TTL_MS", "60000"),
];

/// Settings a variable cannot carry (`[[keys]]`): `toml` as the replicas' config
/// file, plus `env`.
pub fn with_config(name: &str, toml: &str, env: cluster::Env) -> cluster::Env {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replicas-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, toml).unwrap();
    let path: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    let mut all = vec![("CONFIG", path)];
    all.extend_from_slice(env);
    Box::leak(all.into_boxed_slice())
}

/// A `[[keys]]` entry for `key` (read and trade), named `id`.
pub fn key_entry(id: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "[[keys]]\nid = \"{id}\"\nsha256 = \"{}\"\nscopes = [\"read\", \"trade\"]\n",
        hex::encode(Sha256::digest(key))
    )
}
