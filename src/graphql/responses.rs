//! Whole-response cache for read-only operations: the hot path.
//!
//! It lives in the GraphQL layer, not in `cache/`, because what it stores and
//! keys on is GraphQL (documents, operation names, variables, serialized
//! responses); it rides on the resource caches below through their generation and
//! on the request scope's freshness, and never holds a broker value of its own.
//!
//! A warm dashboard query spends almost all its time in the GraphQL framework
//! (parse, validate, ~1000 resolver futures, a JSON value tree, serialization), not
//! in the cache. So the serialized answer to a query is kept, keyed by (query text,
//! operation name, variables, caller key and scopes), and reused only while it is
//! exactly what executing it again would give:
//!
//! - every broker read it made was a fresh cache value (nothing stale, no uncached
//!   read such as a 404 or an error), and it is reused only before the earliest TTL
//!   end among them (`RequestScope::freshness`);
//! - the cache store's generation did not move during execution nor since: any put,
//!   removal, eviction or mutation epoch invalidates every stored response at once
//!   (`CachedBroker::generation`). A submit or cancel therefore invalidates them before
//!   it returns;
//! - no errors, no extensions (`stale` or others), no extra headers.
//!
//! Resolvers are functions of the broker values and the request, so within those
//! bounds the bytes are the same; `asOf` and `extensions.stale` keep their meaning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::documents::DocumentCache;
use crate::auth::Principal;
use crate::cache::CachedBroker;
use crate::request::RequestScope;

/// Bounds what a reused answer may be worth keeping (TTLs bound it far sooner).
const MAX_AGE: Duration = Duration::from_secs(60);
const MAX_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    query: String,
    operation: Option<String>,
    variables: String,
    caller: String,
}

struct Stored {
    body: Bytes,
    /// The operation's name as executing it learned it, for the request metrics.
    operation: Option<String>,
    generation: u64,
    until: Option<Instant>,
}

pub(crate) struct ResponseCache {
    cached: Arc<CachedBroker>,
    /// Tells a query from a mutation without parsing a document seen before.
    documents: DocumentCache,
    answers: moka::sync::Cache<Key, Arc<Stored>>,
}

/// A stored answer, and the name of the operation it answers.
pub(crate) struct Hit {
    pub(crate) body: Bytes,
    pub(crate) operation: Option<String>,
}

/// A request that may be answered from, or stored in, the cache.
pub(crate) struct Candidate {
    key: Key,
    generation: u64,
}

impl Candidate {
    /// The resource caches' generation before the request executed.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }
}

/// An answer that may be reused, serialized.
pub(crate) struct Finished {
    pub(crate) body: Bytes,
    /// Stored, and fresh until then (`None`: nothing read). Not stored when the
    /// generation moved while it executed.
    pub(crate) stored: Option<Option<Instant>>,
}

impl ResponseCache {
    pub(super) fn new(cached: Arc<CachedBroker>, documents: DocumentCache) -> ResponseCache {
        ResponseCache {
            cached,
            documents,
            answers: moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|k: &Key, v: &Arc<Stored>| {
                    (k.query.len() + k.variables.len() + v.body.len()).min(u32::MAX as usize) as u32
                })
                .time_to_live(MAX_AGE)
                .build(),
        }
    }

    /// The stored answer if it is still exact, or the candidate to store after
    /// executing. `None` for anything that is not a plain query.
    pub(super) fn lookup(
        &self,
        request: &async_graphql::Request,
        principal: &Principal,
    ) -> Result<Hit, Option<Candidate>> {
        if !request.extensions.is_empty() || !request.uploads.is_empty() {
            return Err(None);
        }
        let variables = serde_json::to_string(&request.variables).map_err(|_| None)?;
        let mut caller = principal.key_id.clone();
        for scope in &principal.scopes {
            caller.push_str(&format!("\0{scope:?}"));
        }
        let key = Key {
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables,
            caller,
        };
        // Read before anything executes: see `CachedBroker::generation`.
        let generation = self.cached.generation();
        if let Some(stored) = self.answers.get(&key) {
            let fresh = stored.until.is_none_or(|until| Instant::now() < until);
            if stored.generation == generation && fresh {
                return Ok(Hit {
                    body: stored.body.clone(),
                    operation: stored.operation.clone(),
                });
            }
        } else if !is_query(request, &self.documents) {
            // Only queries are ever stored, so a hit needs no parse.
            return Err(None);
        }
        Err(Some(Candidate { key, generation }))
    }

    /// Serializes `response`; keeps it when it may be reused (see the module doc).
    pub(super) fn finish(
        &self,
        candidate: Option<Candidate>,
        scope: &RequestScope,
        response: &async_graphql::Response,
        operation: Option<&str>,
    ) -> Option<Finished> {
        let candidate = candidate?;
        let reusable = response.errors.is_empty()
            && response.extensions.is_empty()
            && response.http_headers.is_empty()
            && response.cache_control.value().is_none()
            && scope.stale().is_empty();
        let freshness = scope.freshness();
        if !reusable || freshness.uncached {
            return None;
        }
        let body = Bytes::from(serde_json::to_vec(response).ok()?);
        let stored = self.cached.generation() == candidate.generation;
        if stored {
            let stored = Stored {
                body: body.clone(),
                operation: operation.map(str::to_string),
                generation: candidate.generation,
                until: freshness.until,
            };
            self.answers.insert(candidate.key, Arc::new(stored));
        }
        Some(Finished {
            body,
            stored: stored.then_some(freshness.until),
        })
    }
}

/// Whether the request runs a query operation (never a mutation). Parsed here only
/// when neither the answer nor the document is known yet, and only for documents
/// small enough to parse before the query limits have looked at them; larger ones
/// are never stored.
fn is_query(request: &async_graphql::Request, documents: &DocumentCache) -> bool {
    let operation = request.operation_name.as_deref();
    if let Some(known) = documents.is_query(&request.query, operation) {
        return known;
    }
    if request.query.len() > super::limits::MAX_PREPARSE_BYTES {
        return false;
    }
    async_graphql::parser::parse_query(&request.query)
        .is_ok_and(|doc| super::documents::selects_query(&doc, operation))
}
