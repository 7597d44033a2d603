//! GraphQL requests by operation and outcome with their latency, and mutation
//! attempts with the idempotency replays and conflicts among them.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::LATENCY_BUCKETS;

/// Operation names are chosen by clients: beyond this many distinct ones, further
/// names count as `other`, so a client cannot grow the exposition without bound.
const MAX_OPERATIONS: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MutationLabels {
    mutation: &'static str,
    outcome: String,
}

#[derive(Debug)]
pub(super) struct GraphqlMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    /// The operation names counted so far, to cap them at [`MAX_OPERATIONS`].
    operations: RwLock<HashSet<String>>,
    mutations: Family<MutationLabels, Counter>,
    replays: Counter,
    conflicts: Counter,
}

impl GraphqlMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let m = GraphqlMetrics {
            requests: Family::default(),
            duration: Histogram::new(LATENCY_BUCKETS),
            operations: RwLock::default(),
            mutations: Family::default(),
            replays: Counter::default(),
            conflicts: Counter::default(),
        };
        registry.register(
            "brokergraph_graphql_requests",
            "GraphQL requests by operation name and outcome (ok or the first error code)",
            m.requests.clone(),
        );
        registry.register(
            "brokergraph_graphql_request_duration_seconds",
            "Time to answer a GraphQL request",
            m.duration.clone(),
        );
        registry.register(
            "brokergraph_mutations",
            "Mutation attempts by mutation and outcome (OK, a userErrors code, or an error code)",
            m.mutations.clone(),
        );
        registry.register(
            "brokergraph_idempotency_replays",
            "Mutation answers replayed from the idempotency store",
            m.replays.clone(),
        );
        registry.register(
            "brokergraph_idempotency_conflicts",
            "Idempotency keys reused with other input or still in use",
            m.conflicts.clone(),
        );
        m
    }

    pub(super) fn request(&self, operation: Option<&str>, outcome: &str, took: Duration) {
        let operation = self.operation_label(operation);
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                outcome: outcome.to_string(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// The name as sent when it is a plain GraphQL name, `anonymous` otherwise, and
    /// `other` once [`MAX_OPERATIONS`] names are counted.
    fn operation_label(&self, operation: Option<&str>) -> String {
        let name = operation
            .filter(|o| !o.is_empty() && o.len() <= 64)
            .filter(|o| o.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("anonymous");
        let seen = self.operations.read().unwrap_or_else(|e| e.into_inner());
        if seen.contains(name) {
            return name.to_string();
        }
        drop(seen);
        let mut seen = self.operations.write().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_OPERATIONS {
            return "other".to_string();
        }
        seen.insert(name.to_string());
        name.to_string()
    }

    pub(super) fn mutation(
        &self,
        mutation: &'static str,
        outcome: &str,
        replayed: bool,
        conflict: bool,
    ) {
        self.mutations
            .get_or_create(&MutationLabels {
                mutation,
                outcome: outcome.to_string(),
            })
            .inc();
        if replayed {
            self.replays.inc();
        }
        if conflict {
            self.conflicts.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_past_the_cap_count_as_other_and_odd_names_as_anonymous() {
        let m = GraphqlMetrics::register(&mut Registry::default());
        for i in 0..MAX_OPERATIONS {
            assert_eq!(m.operation_label(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(m.operation_label(Some("OneTooMany")), "other");
        assert_eq!(m.operation_label(Some("Op7")), "Op7");
        assert_eq!(m.operation_label(Some("has space")), "other");
        let fresh = GraphqlMetrics::register(&mut Registry::default());
        assert_eq!(fresh.operation_label(Some("has space")), "anonymous");
        assert_eq!(fresh.operation_label(None), "anonymous");
    }
}
