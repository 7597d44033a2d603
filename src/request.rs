//! What one GraphQL request carries down to layers that never see it as an
//! argument. The `Broker` trait takes no request (the cache, the resilience layer
//! and the adapters serve everyone alike), yet a request must learn which values it
//! was served stale, until when its whole answer stays exact (the response cache
//! needs that), and whether its reads are part of a submit or cancel (they then get
//! the mutation's share of the broker budget). One task-local holds all three, set
//! by the GraphQL executor around a request and read by the cache.
//!
//! Outside a scope (the readiness probe, a submit's settle task) recording is a
//! no-op and reads have plain read priority.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// The request-wide state one request's reads record into. Cloning shares it.
#[derive(Clone, Default, Debug)]
pub(crate) struct RequestScope {
    reads: Arc<Mutex<Reads>>,
    /// Set by [`RequestScope::for_mutation`] for the reads a submit or cancel makes.
    mutation: bool,
}

#[derive(Default, Debug)]
struct Reads {
    /// Per resource, the oldest stale value served.
    stale: Vec<(&'static str, Duration)>,
    freshness: Freshness,
}

/// Until when every value a request read would still be served fresh by the cache:
/// what lets the response cache reuse a whole answer without ever serving something
/// the resource caches would not.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Freshness {
    /// The earliest TTL end of the values read; `None` when nothing was read.
    pub until: Option<Instant>,
    /// A read was answered by the broker without being cached (an error, a 404).
    pub uncached: bool,
}

impl RequestScope {
    /// Runs `fut` with this scope current; also for tasks the request spawns (the
    /// DataLoader's), which do not inherit task-locals.
    pub(crate) fn run<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        SCOPE.scope(self.clone(), fut)
    }

    /// The scope the current task runs in, if any: for work a request hands to a
    /// task of its own, which does not inherit task-locals (the DataLoader's batches
    /// of one subscription event).
    pub(crate) fn current() -> Option<RequestScope> {
        SCOPE.try_with(RequestScope::clone).ok()
    }

    /// Runs `reads` as part of a submit or cancel: a read with nothing cached then
    /// has the mutation's priority (the whole window, and the mutation's wait).
    /// Otherwise a polling storm that spent the read share would refuse a trader's
    /// order at its pre-trade check, with the reserve kept for exactly that order
    /// unused. Still records into the request's scope, if there is one.
    pub(crate) async fn for_mutation<F: Future>(reads: F) -> F::Output {
        let scope = RequestScope {
            reads: SCOPE.try_with(|s| s.reads.clone()).unwrap_or_default(),
            mutation: true,
        };
        SCOPE.scope(scope, reads).await
    }

    /// Whether the current task reads for a submit or cancel.
    pub(crate) fn reading_for_mutation() -> bool {
        SCOPE.try_with(|s| s.mutation).unwrap_or(false)
    }

    /// Notes, in the current scope if any, that `resource` was served `age` old.
    pub(crate) fn record_stale(resource: &'static str, age: Duration) {
        Self::with_current(
            |reads| match reads.stale.iter_mut().find(|(r, _)| *r == resource) {
                Some((_, oldest)) => *oldest = (*oldest).max(age),
                None => reads.stale.push((resource, age)),
            },
        );
    }

    /// Notes, in the current scope if any, a fresh value good until `until`.
    pub(crate) fn record_fresh(until: Instant) {
        Self::with_current(|reads| {
            let f = &mut reads.freshness;
            f.until = Some(f.until.map_or(until, |u| u.min(until)));
        });
    }

    /// Notes a read that the cache did not answer and will not answer next time.
    pub(crate) fn record_uncached() {
        Self::with_current(|reads| reads.freshness.uncached = true);
    }

    fn with_current(f: impl FnOnce(&mut Reads)) {
        let _ = SCOPE.try_with(|s| f(&mut s.lock()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reads> {
        // Plain values, consistent between statements: a poisoned lock is still usable.
        self.reads.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn freshness(&self) -> Freshness {
        self.lock().freshness
    }

    /// The stale values served, per resource the oldest, in the order first served.
    pub(crate) fn stale(&self) -> Vec<(&'static str, Duration)> {
        self.lock().stale.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_only_inside_a_scope_and_keeps_the_oldest_per_resource() {
        RequestScope::record_stale("account", Duration::from_secs(9));
        let scope = RequestScope::default();
        scope
            .run(async {
                RequestScope::record_stale("account", Duration::from_millis(1200));
                RequestScope::record_stale("account", Duration::from_millis(3240));
                RequestScope::record_stale("positions", Duration::from_millis(50));
            })
            .await;
        assert_eq!(
            scope.stale(),
            vec![
                ("account", Duration::from_millis(3240)),
                ("positions", Duration::from_millis(50))
            ]
        );
        assert!(RequestScope::default().stale().is_empty());
    }

    #[tokio::test]
    async fn a_mutations_reads_keep_recording_into_the_request() {
        let scope = RequestScope::default();
        scope
            .run(async {
                assert!(!RequestScope::reading_for_mutation());
                RequestScope::for_mutation(async {
                    assert!(RequestScope::reading_for_mutation());
                    RequestScope::record_uncached();
                })
                .await;
                assert!(!RequestScope::reading_for_mutation());
            })
            .await;
        assert!(scope.freshness().uncached);
        assert!(!RequestScope::reading_for_mutation());
    }
}
