//! Tells the client which parts of its answer are stale, without the `Broker` trait
//! knowing about requests: the HTTP handler runs each GraphQL request inside a
//! task-local `StaleReads` scope, and the cache records into whatever scope it is
//! called from. Outside a scope (readiness probe, order flows) recording is a no-op.
//!
//! Shape, in the GraphQL response (one entry per resource, the oldest value served):
//!
//! ```json
//! "extensions": { "stale": [ { "resource": "account", "ageSeconds": 3.2 } ] }
//! ```
//!
//! `resource` is one of `account`, `positions`, `orders`, `order`, `instruments`,
//! `instrument`; `ageSeconds` is how long ago brokergraph read the value from the
//! broker (one decimal). The objects themselves keep the `asOf` of that read.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::{Name, Value};

tokio::task_local! {
    static SCOPE: StaleReads;
}

/// The stale values served while answering one request.
#[derive(Clone, Default, Debug)]
pub struct StaleReads(
    Arc<Mutex<Vec<(&'static str, Duration)>>>,
    Arc<Mutex<Freshness>>,
);

/// Until when every value a request read would still be served fresh by the cache:
/// what lets the response cache (`server::responses`) reuse a whole answer without
/// ever serving something the resource caches would not.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Freshness {
    /// The earliest TTL end of the values read; `None` when nothing was read.
    pub until: Option<Instant>,
    /// A read was answered by the broker without being cached (an error, a 404).
    pub uncached: bool,
}

impl StaleReads {
    /// Runs `fut` with this collector in scope; also for tasks the request spawns
    /// (the DataLoader's), which do not inherit task-locals.
    pub fn scope<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        SCOPE.scope(self.clone(), fut)
    }

    /// Notes, in the current request's scope if any, that `resource` was served `age` old.
    pub(crate) fn record(resource: &'static str, age: Duration) {
        let _ = SCOPE.try_with(|reads| {
            let mut list = reads.0.lock().unwrap_or_else(|p| p.into_inner());
            match list.iter_mut().find(|(r, _)| *r == resource) {
                Some((_, oldest)) => *oldest = (*oldest).max(age),
                None => list.push((resource, age)),
            }
        });
    }

    /// Notes, in the current request's scope if any, a fresh value good until `until`.
    pub(crate) fn record_fresh(until: Instant) {
        let _ = SCOPE.try_with(|reads| {
            let mut f = reads.1.lock().unwrap_or_else(|p| p.into_inner());
            f.until = Some(f.until.map_or(until, |u| u.min(until)));
        });
    }

    /// Notes a read that the cache did not answer and will not answer next time.
    pub(crate) fn record_uncached() {
        let _ = SCOPE.try_with(|reads| {
            reads.1.lock().unwrap_or_else(|p| p.into_inner()).uncached = true;
        });
    }

    pub(crate) fn freshness(&self) -> Freshness {
        *self.1.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anything stale was served.
    pub(crate) fn any_stale(&self) -> bool {
        !self.0.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// `extensions.stale`, when anything stale was served.
    pub fn to_value(&self) -> Option<Value> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.is_empty() {
            return None;
        }
        let items = list
            .iter()
            .map(|(resource, age)| {
                let secs = (age.as_secs_f64() * 10.0).round() / 10.0;
                let mut obj = async_graphql::indexmap::IndexMap::new();
                obj.insert(Name::new("resource"), Value::from(*resource));
                obj.insert(Name::new("ageSeconds"), Value::from(secs));
                Value::Object(obj)
            })
            .collect();
        Some(Value::List(items))
    }

    /// Adds `extensions.stale` to a response when anything stale was served.
    pub fn attach(&self, response: &mut async_graphql::Response) {
        if let Some(value) = self.to_value() {
            response.extensions.insert("stale".to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_only_inside_a_scope_and_keeps_the_oldest_per_resource() {
        StaleReads::record("account", Duration::from_secs(9));
        let reads = StaleReads::default();
        reads
            .scope(async {
                StaleReads::record("account", Duration::from_millis(1200));
                StaleReads::record("account", Duration::from_millis(3240));
                StaleReads::record("positions", Duration::from_millis(50));
            })
            .await;
        let value = serde_json::to_value(reads.to_value().unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                { "resource": "account", "ageSeconds": 3.2 },
                { "resource": "positions", "ageSeconds": 0.1 }
            ])
        );
        assert!(StaleReads::default().to_value().is_none());
    }
}
