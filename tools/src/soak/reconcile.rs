//! After the storm: what the clients were told against what the broker holds.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::client::Outcome;

#[derive(Default)]
pub struct Report {
    pub answered: usize,
    pub gave_up: usize,
    pub broker_orders: usize,
    /// Keys with more than one broker order.
    pub duplicates: usize,
    /// Orders a client was told about that the broker does not have under its key.
    pub lost: usize,
    /// Broker orders under no key a client used.
    pub orphans: usize,
    pub details: Vec<String>,
}

impl Report {
    pub fn violations(&self) -> u64 {
        (self.duplicates + self.lost + self.orphans) as u64
    }
}

/// Every order of the account, read from the broker's REST API with faults off.
async fn broker_orders(sim: &broker_sim::SimHandle) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{}/v1/orders", sim.base_url()))
            .bearer_auth(super::SIM_KEY)
            .query(&[("status", "all"), ("limit", "100")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: Value = req
            .send()
            .await
            .expect("sim answers")
            .json()
            .await
            .expect("json");
        all.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

pub async fn reconcile(sim: &broker_sim::SimHandle, outcomes: &[Outcome]) -> Report {
    let orders = broker_orders(sim).await;
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for o in &orders {
        let key = o["idempotency_key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        by_key
            .entry(key)
            .or_default()
            .push(o["id"].as_str().unwrap_or_default().to_string());
    }
    let ours: HashSet<String> = outcomes.iter().map(|o| o.key.to_string()).collect();
    let mut report = Report {
        broker_orders: orders.len(),
        ..Report::default()
    };
    for outcome in outcomes {
        let held = by_key
            .get(&outcome.key.to_string())
            .cloned()
            .unwrap_or_default();
        if held.len() > 1 {
            report.duplicates += 1;
            report.details.push(format!(
                "key {} has {} broker orders",
                outcome.key,
                held.len()
            ));
        }
        match &outcome.order_id {
            Some(id) => {
                report.answered += 1;
                if !held.contains(id) {
                    report.lost += 1;
                    report.details.push(format!(
                        "key {}: told {id}, broker has {held:?}",
                        outcome.key
                    ));
                }
            }
            None => report.gave_up += 1,
        }
    }
    for (key, ids) in &by_key {
        if !ours.contains(key) {
            report.orphans += ids.len();
            report
                .details
                .push(format!("broker orders {ids:?} under unknown key {key:?}"));
        }
    }
    report
}
