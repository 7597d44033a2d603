//! What the soak and the bench both need from a broker-sim they started: cheap
//! symbols to trade many times, and the process's memory.

use serde_json::{json, Value};

/// `n` tradable lot-1 symbols, priced at 1.00 so thousands of buys fit the cash.
pub async fn cheap_symbols(sim: &broker_sim::SimHandle, api_key: &str, n: usize) -> Vec<String> {
    let list: Value = reqwest::Client::new()
        .get(format!("{}/v1/instruments?limit=100", sim.base_url()))
        .bearer_auth(api_key)
        .send()
        .await
        .expect("sim answers")
        .json()
        .await
        .expect("JSON");
    let symbols: Vec<String> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|i| i["tradable"] == json!(true) && i["lot_size"] == json!("1"))
        .take(n)
        .map(|i| i["symbol"].as_str().expect("symbol").to_string())
        .collect();
    for s in &symbols {
        sim.set_price(s, "1.00").await;
    }
    symbols
}

/// Resident set size of this process (sim, gateway and clients together), MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}
