//! One GraphQL request from a caller already authenticated to its answer: what the
//! HTTP server hands over and gets back, so that it needs to know nothing of the
//! cache, the replicas or the request scope.
//!
//! In order: learn of other replicas' mutations (so neither the resource caches
//! nor the stored responses answer with what another replica changed); answer
//! from the response cache when an exact answer is stored; otherwise run the
//! schema inside a fresh `RequestScope`, report stale values in
//! `extensions.stale`, and store the answer when it may be reused.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Name, Value};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::documents::DocumentCache;
use super::observe::{Facts, Learned};
use super::partial::RootResults;
use super::responses::ResponseCache;
use super::{AppSchema, ErrorCode, InstrumentLoader, Observed, Quotes};
use crate::auth::Principal;
use crate::cache::CachedBroker;
use crate::request::RequestScope;

/// Executes requests against the schema, with the response cache in front.
pub struct Executor {
    schema: AppSchema,
    /// The schema's broker: the instrument DataLoader of each request reads through
    /// it, and it learns of other replicas' mutations before each request.
    cached: Arc<CachedBroker>,
    /// Each request's quote DataLoader reads live quotes from its hub.
    quotes: Quotes,
    responses: ResponseCache,
    /// Root fields' results, for requests the response cache cannot answer.
    roots: Arc<RootResults>,
}

/// An answer: bytes stored earlier (or just now), or a response to serialize.
pub enum Answer {
    /// The serialized answer, `application/graphql-response+json`.
    Serialized(Bytes),
    Response(Box<async_graphql::Response>),
}

/// An answer and what the request metrics count of it; the transport records it
/// where the answer leaves, timed from when the request arrived.
pub struct Answered {
    pub answer: Answer,
    pub observed: Observed,
    /// The request failed before anything executed (it did not parse or validate,
    /// or named an unknown persisted query): the answer has no `data` entry, and is
    /// HTTP 400 to a client that accepts `application/graphql-response+json`.
    pub request_error: bool,
}

impl Executor {
    pub fn new(
        schema: AppSchema,
        cached: Arc<CachedBroker>,
        quotes: Quotes,
        documents: DocumentCache,
    ) -> Executor {
        Executor {
            schema,
            responses: ResponseCache::new(cached.clone(), documents),
            roots: Arc::new(RootResults::new()),
            cached,
            quotes,
        }
    }

    pub async fn execute(&self, request: async_graphql::Request, principal: Principal) -> Answered {
        // Before the response cache too: it is built on the same reads.
        self.cached.sync_replicas().await;
        let candidate = match self.responses.lookup(&request, &principal) {
            Ok(hit) => {
                return Answered {
                    answer: Answer::Serialized(hit.body),
                    observed: Observed::ok(hit.operation),
                    request_error: false,
                }
            }
            Err(candidate) => candidate,
        };
        let roots = candidate.as_ref().map(|candidate| {
            self.roots.request(
                request.operation_name.clone(),
                &principal,
                candidate.generation(),
            )
        });
        let learned = Learned::new(request.operation_name.clone());
        let scope = RequestScope::default();
        let loader_scope = scope.clone();
        let quote_scope = scope.clone();
        let trace = crate::trace::TraceContext::current();
        // The DataLoaders' batching and memo must not outlive the request. Their
        // batches run in tasks of their own, which re-enter the request's scope so
        // a stale instrument or quote is still reported.
        let request = request
            .data(DataLoader::new(
                InstrumentLoader::new(self.cached.clone()),
                move |batch| match trace {
                    Some(trace) => tokio::spawn(trace.scope(loader_scope.run(batch))),
                    None => tokio::spawn(loader_scope.run(batch)),
                },
            ))
            .data(
                self.quotes
                    .loader(self.cached.clone(), move |batch| match trace {
                        Some(trace) => tokio::spawn(trace.scope(quote_scope.run(batch))),
                        None => tokio::spawn(quote_scope.run(batch)),
                    }),
            )
            .data(principal)
            .data(learned.clone());
        let request = match &roots {
            Some(roots) => request.data(roots.clone()),
            None => request,
        };
        let mut response = scope.run(self.schema.execute(request)).await;
        if let Some(stale) = stale_extension(&scope) {
            response.extensions.insert("stale".to_string(), stale);
        }
        let facts = learned.facts();
        code_client_errors(&mut response, &facts);
        let observed = Observed::of(facts.operation.clone(), &response);
        let request_error = !facts.executed && !response.errors.is_empty();
        let stored =
            self.responses
                .finish(candidate, &scope, &response, observed.operation.as_deref());
        let answer = match stored {
            Some(finished) => {
                if let (Some(until), Some(roots)) = (finished.stored, roots) {
                    roots.keep(until);
                }
                Answer::Serialized(finished.body)
            }
            None => Answer::Response(Box::new(response)),
        };
        Answered {
            answer,
            observed,
            request_error,
        }
    }

    /// Runs a subscription: one response per event, until the source ends (or the
    /// stream is dropped, which is how a transport unsubscribes). A query or
    /// mutation sent here yields its one response, without the response cache;
    /// the transports send those to [`Executor::execute`].
    ///
    /// Each event is resolved in a `RequestScope` of its own, so it reports in
    /// `extensions.stale` what it was served stale; the instrument DataLoader lives
    /// as long as the subscription and its batches run in the scope of the event
    /// that asked. Errors get their code as in `execute`.
    pub fn subscribe(
        &self,
        request: async_graphql::Request,
        principal: Principal,
    ) -> BoxStream<'static, async_graphql::Response> {
        let cached = self.cached.clone();
        let schema = self.schema.clone();
        let learned = Learned::new(request.operation_name.clone());
        let in_scope = |batch| {
            let scope = RequestScope::current().unwrap_or_default();
            tokio::spawn(scope.run(batch))
        };
        let request = request
            .data(DataLoader::new(
                InstrumentLoader::new(cached.clone()),
                in_scope,
            ))
            .data(self.quotes.loader(cached.clone(), in_scope))
            .data(principal)
            .data(learned.clone());
        let start = async move {
            cached.sync_replicas().await;
            schema.execute_stream(request)
        };
        stream::once(start)
            .flat_map(move |responses| {
                let learned = learned.clone();
                stream::unfold(responses, move |mut responses| {
                    let learned = learned.clone();
                    async move {
                        let scope = RequestScope::default();
                        let mut response = scope.run(responses.next()).await?;
                        if let Some(stale) = stale_extension(&scope) {
                            response.extensions.insert("stale".to_string(), stale);
                        }
                        code_client_errors(&mut response, &learned.facts());
                        Some((response, responses))
                    }
                })
            })
            .boxed()
    }
}

/// The answer to a caller whose account this gateway does not front (a principal
/// from a token naming an account since removed): nothing of any account is read.
pub fn unknown_account(account: &str) -> async_graphql::Response {
    let message = format!("the account {account:?} is not served by this gateway");
    async_graphql::Response::from_errors(vec![super::limits::coded(message, ErrorCode::Forbidden)])
}

/// Every resolver error carries a code (graphql::error); one without came from
/// async-graphql itself, before anything ran: the client's mistake, named with
/// Apollo's codes (which Apollo's tools look for) by how far the request got.
fn code_client_errors(response: &mut async_graphql::Response, facts: &Facts) {
    for error in &mut response.errors {
        let code = client_error_code(&error.message, facts);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", code.as_str());
        }
    }
}

fn client_error_code(message: &str, facts: &Facts) -> ErrorCode {
    // async-graphql's APQ extension answers a miss with Apollo's message.
    if message == "PersistedQueryNotFound" {
        ErrorCode::PersistedQueryNotFound
    } else if !facts.parsed {
        ErrorCode::GraphqlParseFailed
    } else if !facts.executed {
        ErrorCode::GraphqlValidationFailed
    } else {
        ErrorCode::BadUserInput
    }
}

/// `extensions.stale`: one entry per resource served stale, with the age of the
/// oldest value served (one decimal), so a client can tell which parts of its
/// answer are old and by how much; the objects keep the `asOf` of their read.
///
/// ```json
/// "extensions": { "stale": [ { "resource": "account", "ageSeconds": 3.2 } ] }
/// ```
fn stale_extension(scope: &RequestScope) -> Option<Value> {
    let stale = scope.stale();
    if stale.is_empty() {
        return None;
    }
    let items = stale
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stale_ages_are_reported_in_seconds_with_one_decimal() {
        let scope = RequestScope::default();
        let record = async {
            RequestScope::record_stale("account", Duration::from_millis(3240));
            RequestScope::record_stale("positions", Duration::from_millis(50));
        };
        scope.run(record).await;
        let value = serde_json::to_value(stale_extension(&scope).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                { "resource": "account", "ageSeconds": 3.2 },
                { "resource": "positions", "ageSeconds": 0.1 }
            ])
        );
        assert!(stale_extension(&RequestScope::default()).is_none());
    }
}
