//! Persisted queries. Automatic (Apollo's protocol, async-graphql's extension): a
//! client sends a query's SHA-256 alone and the query only on a miss, which saves
//! bandwidth but restricts nothing. The allow-list mode does restrict: only the
//! operations in a file an operator ships with the frontend run, by hash or by full
//! text, so a stolen key cannot run arbitrary (expensive) queries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerResult};
use sha2::{Digest, Sha256};

use super::limits::coded;
use super::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum AllowListError {
    #[error("persisted_queries.allow_list {path}: {message}")]
    Load { path: PathBuf, message: String },
}

/// The allowed operations by lowercase hex SHA-256 of their text.
#[derive(Clone, Debug)]
pub struct AllowList(Arc<HashMap<String, ExecutableDocument>>);

impl AllowList {
    /// Reads a JSON array of query strings (each hashed here, so the file cannot
    /// claim a wrong hash), parsing every one at startup.
    pub fn load(path: &Path) -> Result<AllowList, AllowListError> {
        let fail = |message: String| AllowListError::Load {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let queries: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| fail(format!("must be a JSON array of query strings: {e}")))?;
        let mut map = HashMap::new();
        for (i, query) in queries.iter().enumerate() {
            let doc = async_graphql::parser::parse_query(query)
                .map_err(|e| fail(format!("query {i} does not parse: {e}")))?;
            map.insert(sha256(query), doc);
        }
        Ok(AllowList(Arc::new(map)))
    }
}

pub(crate) fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl ExtensionFactory for AllowList {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for AllowList {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let hash = match request.extensions.remove("persistedQuery") {
            Some(value) => value
                .into_json()
                .ok()
                .and_then(|v| v.get("sha256Hash")?.as_str().map(str::to_owned)),
            None => None,
        };
        let hash = hash.unwrap_or_else(|| sha256(&request.query));
        let Some(doc) = self.0.get(&hash) else {
            return Err(coded(
                "only registered operations may run here (persisted_queries.allow_list); this one is not".into(),
                ErrorCode::PersistedQueryNotInList,
            ));
        };
        request.query = String::new();
        request.set_parsed_query(doc.clone());
        next.run(ctx, request).await
    }
}

/// With persisted queries off, a request carrying a hash is answered with Apollo's
/// `PersistedQueryNotSupported`, so an Apollo client stops sending hashes and sends
/// the query text, instead of seeing the hash ignored or a parse failure.
pub(crate) struct PersistedQueriesOff;

impl ExtensionFactory for PersistedQueriesOff {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PersistedQueriesOff)
    }
}

#[async_trait::async_trait]
impl Extension for PersistedQueriesOff {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.extensions.contains_key("persistedQuery") {
            return Err(coded(
                "PersistedQueryNotSupported".into(),
                ErrorCode::PersistedQueryNotSupported,
            ));
        }
        next.run(ctx, request).await
    }
}
