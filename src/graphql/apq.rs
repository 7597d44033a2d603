//! Automatic persisted queries (Apollo's protocol) that every replica knows.
//!
//! Alone, a gateway keeps registrations in its LRU (async-graphql's storage), as
//! async-graphql's own extension does. With replicas on Redis a registration is
//! also written there (`prefix:apq:<sha256>`, with a TTL, up to a size), and a hash
//! this replica does not know is looked up there before the client is told
//! `PersistedQueryNotFound`; what Redis gives is checked against its hash and kept
//! in the LRU, so a hot query costs Redis nothing. Redis unreachable: the LRU alone,
//! as without Redis (a client whose hash misses registers it again, its retry).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::apollo_persisted_queries::{CacheStorage, LruCacheStorage};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError, ServerResult};

use super::persisted::sha256;
use crate::cluster::Redis;

/// Where registrations are shared with the other replicas.
#[derive(Clone, Debug)]
pub struct SharedApq {
    pub redis: Arc<Redis>,
    /// How long Redis keeps a registration.
    pub ttl: Duration,
    /// Longest query text written to Redis.
    pub max_bytes: usize,
}

#[derive(serde::Deserialize)]
struct PersistedQuery {
    version: i32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

#[derive(Clone)]
pub(crate) struct Apq {
    local: LruCacheStorage,
    shared: Option<SharedApq>,
}

impl Apq {
    pub(crate) fn new(max_entries: usize, shared: Option<SharedApq>) -> Apq {
        Apq {
            local: LruCacheStorage::new(max_entries.max(1)),
            shared,
        }
    }

    /// The query registered under `hash`, parsed: this replica's LRU, then Redis.
    async fn get(&self, hash: &str) -> Option<ExecutableDocument> {
        if let Some(doc) = self.local.get(hash.to_string()).await {
            return Some(doc);
        }
        let shared = self.shared.as_ref()?;
        let mut conn = shared.redis.conn();
        let key = shared.redis.key(&["apq", hash]);
        let text = shared
            .redis
            .call_optional("apq get", async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "persisted queries: redis unreachable"))
            .ok()??;
        // Whoever can write Redis could store any text under any hash.
        if sha256(&text) != hash {
            return None;
        }
        let doc = async_graphql::parser::parse_query(&text).ok()?;
        self.local.set(hash.to_string(), doc.clone()).await;
        Some(doc)
    }

    async fn set(&self, hash: &str, text: &str, doc: ExecutableDocument) {
        self.local.set(hash.to_string(), doc).await;
        let Some(shared) = self.shared.as_ref().filter(|s| text.len() <= s.max_bytes) else {
            return;
        };
        let mut conn = shared.redis.conn();
        let key = shared.redis.key(&["apq", hash]);
        let ttl = shared.ttl.as_millis() as u64;
        let text = text.to_string();
        let stored = shared
            .redis
            .call_optional("apq set", async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&text)
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await;
        if let Err(e) = stored {
            tracing::debug!(error = %e, "persisted query registered on this replica only");
        }
    }
}

impl ExtensionFactory for Apq {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

/// Apollo's protocol as async-graphql's `ApolloPersistedQueries` speaks it (the
/// same messages, which `graphql::execute` maps to codes).
#[async_trait::async_trait]
impl Extension for Apq {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let Some(value) = request.extensions.remove("persistedQuery") else {
            return next.run(ctx, request).await;
        };
        let persisted: PersistedQuery = async_graphql::from_value(value).map_err(|_| {
            ServerError::new("Invalid \"PersistedQuery\" extension configuration.", None)
        })?;
        if persisted.version != 1 {
            return Err(ServerError::new(
                format!(
                    "Only the \"PersistedQuery\" extension of version \"1\" is supported, and the current version is \"{}\".",
                    persisted.version
                ),
                None,
            ));
        }
        let doc = if request.query.is_empty() {
            let Some(doc) = self.get(&persisted.sha256_hash).await else {
                return Err(ServerError::new("PersistedQueryNotFound", None));
            };
            doc
        } else {
            let hash = sha256(&request.query);
            if persisted.sha256_hash != hash {
                return Err(ServerError::new("provided sha does not match query", None));
            }
            let doc = async_graphql::parser::parse_query(&request.query)?;
            self.set(&hash, &request.query, doc.clone()).await;
            request.query = String::new();
            doc
        };
        request.set_parsed_query(doc);
        next.run(ctx, request).await
    }
}
