//! Parsed and validated documents, kept by query text, so a document the gateway
//! has seen is not parsed or validated again: a dashboard's query, sent with other
//! variables or by another caller, skips the two steps that cost most before any
//! resolver runs.
//!
//! It is the innermost extension, so the others still see every request: the
//! limits count aliases and root fields on the document it returns and measure the
//! raw text before it; persisted queries have already put the text in place.
//!
//! A validation is reused only when it cannot depend on the request: async-graphql
//! checks variable *values* against the arguments they fill during validation, so
//! an operation that declares variables is validated every time (its parse is still
//! reused). Complexity and depth are facts of the document (no field here computes
//! its complexity from arguments), so a reused validation is one that passed the
//! schema's limits; a document that failed is never kept as valid.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, ServerError, ServerResult, ValidationResult, Variables};

/// Bytes of query text kept, weighed as the text times [`AST_PER_BYTE`]: the
/// parsed tree is several times the size of its text.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;
const AST_PER_BYTE: u64 = 8;

/// Operation names of one document with a validation kept: a document with more
/// operations is validated again for the others.
const OPERATIONS_PER_DOCUMENT: usize = 8;

/// The process's documents. One for every account: the accounts' schemas are the
/// same types under the same limits, so a document valid for one is for all.
#[derive(Clone)]
pub struct DocumentCache {
    documents: moka::sync::Cache<Arc<str>, Arc<Document>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache::new()
    }
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("documents", &self.documents.entry_count())
            .finish()
    }
}

struct Document {
    parsed: ExecutableDocument,
    /// Validations that passed, by the operation they selected.
    validated: Mutex<Vec<(Option<String>, ValidationResult)>>,
}

impl DocumentCache {
    fn new() -> DocumentCache {
        DocumentCache {
            documents: moka::sync::Cache::builder()
                .weigher(|query: &Arc<str>, _| {
                    u32::try_from(query.len() as u64 * AST_PER_BYTE).unwrap_or(u32::MAX)
                })
                .max_capacity(CAPACITY_BYTES)
                .build(),
        }
    }

    /// Whether `query` is known to select a query operation (never a mutation) by
    /// `operation`: `None` when the document has not been parsed yet.
    pub(crate) fn is_query(&self, query: &str, operation: Option<&str>) -> Option<bool> {
        let document = self.documents.get(query)?;
        Some(selects_query(&document.parsed, operation))
    }
}

/// Whether the request runs a query operation (never a mutation).
pub(crate) fn selects_query(doc: &ExecutableDocument, operation: Option<&str>) -> bool {
    let mut ops = doc.operations.iter();
    match (operation, ops.next(), ops.next()) {
        (_, Some((_, op)), None) => op.node.ty == OperationType::Query,
        (Some(name), _, _) => doc.operations.iter().any(|(n, op)| {
            n.is_some_and(|n| n.as_str() == name) && op.node.ty == OperationType::Query
        }),
        _ => false,
    }
}

impl ExtensionFactory for DocumentCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentsExtension {
            cache: self.clone(),
            request: Mutex::default(),
        })
    }
}

/// One request's view of the cache.
struct DocumentsExtension {
    cache: DocumentCache,
    request: Mutex<RequestState>,
}

#[derive(Default)]
struct RequestState {
    operation_name: Option<String>,
    /// The request's document, from the cache or just parsed.
    document: Option<Arc<Document>>,
}

impl DocumentsExtension {
    fn state(&self) -> std::sync::MutexGuard<'_, RequestState> {
        self.request.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Document {
    /// A validation to reuse for `operation`: only one that passed, and only for an
    /// operation that takes no variables.
    fn validated(&self, operation: &Option<String>) -> Option<ValidationResult> {
        let kept = self.validated.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .find(|(name, _)| name == operation)
            .map(|(_, result)| *result)
    }

    fn keep(&self, operation: Option<String>, result: ValidationResult) {
        if takes_variables(&self.parsed, operation.as_deref()) {
            return;
        }
        let mut kept = self.validated.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < OPERATIONS_PER_DOCUMENT && !kept.iter().any(|(n, _)| *n == operation) {
            kept.push((operation, result));
        }
    }
}

/// Whether the operation the request selects declares variables (or cannot be
/// told, which validation then reports).
fn takes_variables(doc: &ExecutableDocument, operation: Option<&str>) -> bool {
    let selected = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    selected.is_none_or(|op| !op.node.variable_definitions.is_empty())
}

#[async_trait::async_trait]
impl Extension for DocumentsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.state().operation_name = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.cache.documents.get(query) {
            let parsed = document.parsed.clone();
            self.state().document = Some(document);
            return Ok(parsed);
        }
        let parsed = next.run(ctx, query, variables).await?;
        let document = Arc::new(Document {
            parsed: parsed.clone(),
            validated: Mutex::default(),
        });
        self.cache
            .documents
            .insert(Arc::from(query), document.clone());
        self.state().document = Some(document);
        Ok(parsed)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let (document, operation) = {
            let state = self.state();
            (state.document.clone(), state.operation_name.clone())
        };
        let Some(document) = document else {
            return next.run(ctx).await;
        };
        if let Some(result) = document.validated(&operation) {
            return Ok(result);
        }
        let result = next.run(ctx).await?;
        document.keep(operation, result);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    #[test]
    fn only_operations_without_variables_have_their_validation_reused() {
        let doc = parse(
            "query A { account { id } } query B($n: Int) { orders(first: $n) { nodes { id } } }",
        );
        assert!(!takes_variables(&doc, Some("A")));
        assert!(takes_variables(&doc, Some("B")));
        // Which operation runs is not known: validation says so, every time.
        assert!(takes_variables(&doc, None));
        assert!(takes_variables(&doc, Some("C")));
        assert!(!takes_variables(&parse("{ account { id } }"), None));
    }
}
