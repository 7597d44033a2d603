//! What `brokergraph_graphql_requests_total` counts of one answer: the operation's
//! name and the outcome. The executor learns them ([`Observed`]), the transport
//! records them where the answer leaves (`server::graphql_http::observe` for HTTP),
//! so cache hits and refusals count like executed requests, each once.
//!
//! The name comes from an extension, so that a request without `operationName`
//! is named by its document's one operation without parsing the document twice.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{ServerResult, Variables};

use super::ErrorCode;

/// The operation and outcome of one answer, for the request metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// As the request named it, or as its document did.
    pub operation: Option<String>,
    /// `ok`, or the first error's code.
    pub outcome: String,
}

impl Observed {
    pub(crate) fn ok(operation: Option<String>) -> Self {
        Observed {
            operation,
            outcome: "ok".to_string(),
        }
    }

    /// A refusal before the request was read.
    pub(crate) fn refused(code: ErrorCode) -> Self {
        Observed {
            operation: None,
            outcome: code.as_str().to_string(),
        }
    }

    /// From a response whose errors all carry a code (`execute::code_client_errors`).
    pub(crate) fn of(operation: Option<String>, response: &async_graphql::Response) -> Self {
        let outcome = match response.errors.first() {
            None => "ok".to_string(),
            Some(e) => e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| ErrorCode::BadUserInput.to_string()),
        };
        Observed { operation, outcome }
    }
}

/// What the extension learns of one request, in the request's data: the
/// operation's name, and how far the request got (a request that never executed
/// failed as a request: no `data`, HTTP 400 for `application/graphql-response+json`).
#[derive(Clone, Default)]
pub(crate) struct Learned(Arc<Mutex<Facts>>);

#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    pub(crate) operation: Option<String>,
    pub(crate) parsed: bool,
    pub(crate) executed: bool,
}

impl Learned {
    /// Starts with the request's `operationName`, if it has one.
    pub(crate) fn new(name: Option<String>) -> Self {
        Learned(Arc::new(Mutex::new(Facts {
            operation: name,
            ..Facts::default()
        })))
    }

    pub(crate) fn facts(&self) -> Facts {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Facts)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

pub(crate) struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExtension)
    }
}

struct ObserveExtension;

fn slot<'a>(ctx: &ExtensionContext<'a>) -> Option<&'a Learned> {
    ctx.data_opt::<Learned>()
}

#[async_trait::async_trait]
impl Extension for ObserveExtension {
    /// A document refused by validation never executes: name it from the document.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(slot) = slot(ctx) {
            slot.update(|facts| {
                facts.parsed = true;
                if let (None, DocumentOperations::Multiple(ops)) =
                    (&facts.operation, &doc.operations)
                {
                    if ops.len() == 1 {
                        facts.operation = ops.keys().next().map(|n| n.to_string());
                    }
                }
            });
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        if let Some(slot) = slot(ctx) {
            slot.update(|facts| {
                facts.executed = true;
                if let Some(name) = operation_name {
                    facts.operation = Some(name.to_string());
                }
            });
        }
        next.run(ctx, operation_name).await
    }
}
