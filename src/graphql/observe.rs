//! Counts every request that reaches the schema by operation name and outcome, and
//! times it, for `/metrics`. An extension, so parse and validation failures (which
//! never reach a resolver) are counted too.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Request, Response, ServerResult, Variables};

use super::ErrorCode;
use crate::metrics::Metrics;

pub(crate) struct Observe(pub(crate) Arc<Metrics>);

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExtension {
            metrics: self.0.clone(),
            operation: Mutex::new(None),
        })
    }
}

struct ObserveExtension {
    metrics: Arc<Metrics>,
    /// The executed operation's name, learned in `execute` (or from the request).
    operation: Mutex<Option<String>>,
}

impl ObserveExtension {
    fn set_operation(&self, name: Option<&str>) {
        if let Some(name) = name {
            *self.operation.lock().unwrap_or_else(|e| e.into_inner()) = Some(name.to_string());
        }
    }
}

#[async_trait::async_trait]
impl Extension for ObserveExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let outcome = match response.errors.first() {
            None => "ok".to_string(),
            Some(e) => e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| ErrorCode::BadUserInput.to_string()),
        };
        let operation = self
            .operation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.metrics
            .request(operation.as_deref(), &outcome, started.elapsed());
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.set_operation(request.operation_name.as_deref());
        next.run(ctx, request).await
    }

    /// A document refused by validation never executes: name it from the document.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let known = self
            .operation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if let (false, DocumentOperations::Multiple(ops)) = (known, &doc.operations) {
            if ops.len() == 1 {
                self.set_operation(ops.keys().next().map(|n| n.as_str()));
            }
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.set_operation(operation_name);
        next.run(ctx, operation_name).await
    }
}
