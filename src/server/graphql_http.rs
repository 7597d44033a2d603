//! `POST /graphql` and `GET /graphql`: authentication, then the schema; the answer
//! in the media type the client accepts (GraphQL over HTTP): a request that failed
//! before execution is a 400 without `data` in `application/graphql-response+json`,
//! a 200 in `application/json`, which is what a client that asks for nothing
//! particular (`*/*`, Apollo Client 3) gets.

use async_graphql::parser::types::OperationType;
use async_graphql::ParseRequestError;
use async_graphql_axum::GraphQLRequest;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::graphql::{self, Answer, Answered, ErrorCode, Observed};
use crate::trace::TraceContext;

/// A request we could not even parse as GraphQL-over-HTTP: the client's mistake,
/// so a 400 in the GraphQL error shape with a stable code, never a 500.
pub(crate) struct BadRequest(ParseRequestError);

impl From<ParseRequestError> for BadRequest {
    fn from(err: ParseRequestError) -> Self {
        BadRequest(err)
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let (status, message) = match self.0 {
            ParseRequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".to_string(),
            ),
            ParseRequestError::InvalidRequest(e) => (
                StatusCode::BAD_REQUEST,
                format!("request body is not a GraphQL request: {e}"),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("malformed GraphQL request: {other}"),
            ),
        };
        error_response(status, &message, ErrorCode::BadUserInput)
    }
}

/// A request refused before the schema runs still answers in the GraphQL error
/// shape, so a client reads `extensions.code` the same way whoever refused it.
pub(crate) fn error_response(status: StatusCode, message: &str, code: ErrorCode) -> Response {
    error_response_with(status, message, code, serde_json::Map::new())
}

/// `error_response` with more `extensions` next to the code (a rate limit's
/// `retryAfterSeconds`).
pub(crate) fn error_response_with(
    status: StatusCode,
    message: &str,
    code: ErrorCode,
    more: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let mut extensions = serde_json::Map::from_iter([("code".into(), code.as_str().into())]);
    extensions.extend(more);
    if let Some(trace) = TraceContext::current() {
        extensions.insert("traceId".into(), trace.trace_id().into());
    }
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(Observed::refused(code));
    response
}

/// Middleware on `/graphql`, outside every refusal: counts and times each answer
/// that says what it was ([`Observed`]: executed, from the response cache, or
/// refused). WebSocket and SSE operations are counted where they are answered
/// (`live.rs`), so an upgrade or an event stream carries none.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(observed) = response.extensions().get::<Observed>() {
        state.services.metrics.request(
            observed.operation.as_deref(),
            &observed.outcome,
            started.elapsed(),
        );
    }
    response
}

/// The answer to a request without a usable gateway key.
pub(crate) fn unauthenticated() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "missing or unknown credential; send `Authorization: Bearer <key or JWT>`",
        ErrorCode::Unauthenticated,
    )
}

/// The `Authorization` header's value, for `Authenticator::authenticate`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The media type of a GraphQL answer, by `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Media {
    GraphqlResponse,
    Json,
}

impl Media {
    /// `application/graphql-response+json` only when the client names it, at a
    /// quality no lower than `application/json`'s; otherwise `application/json`
    /// (also for `*/*` and a missing `Accept`, as the spec asks of servers while
    /// clients move over).
    pub(crate) fn of(headers: &HeaderMap) -> Media {
        let (mut graphql, mut json) = (None, None);
        let ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for range in ranges {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media.eq_ignore_ascii_case("application/graphql-response+json") {
                graphql = Some(q);
            } else if media.eq_ignore_ascii_case("application/json") {
                json = Some(q);
            }
        }
        match graphql {
            Some(q) if q > 0.0 && q >= json.unwrap_or(0.0) => Media::GraphqlResponse,
            _ => Media::Json,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }
}

/// `extensions.traceId` on every error, so a client can hand it to whoever reads
/// the logs or the traces.
fn name_trace(answer: &mut serde_json::Value) {
    let Some(trace) = TraceContext::current() else {
        return;
    };
    let errors = answer.get_mut("errors").and_then(|e| e.as_array_mut());
    for error in errors.into_iter().flatten() {
        if let Some(error) = error.as_object_mut() {
            let extensions = error
                .entry("extensions")
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(extensions) = extensions.as_object_mut() {
                extensions.insert("traceId".into(), trace.trace_id().into());
            }
        }
    }
}

/// An answer as `media`; see the module doc for the status.
fn render(answered: Answered, media: Media) -> Response {
    let status = match (answered.request_error, media) {
        (true, Media::GraphqlResponse) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut response = match answered.answer {
        Answer::Serialized(body) => Response::new(Body::from(body)),
        Answer::Response(answer) => {
            let mut value = serde_json::to_value(&*answer).unwrap_or_default();
            // Nothing executed: a request error has no `data` entry (GraphQL §7.1).
            if answered.request_error {
                if let Some(object) = value.as_object_mut() {
                    object.remove("data");
                }
            }
            name_trace(&mut value);
            let mut response = Response::new(Body::from(value.to_string()));
            if answer.is_ok() {
                if let Some(value) = answer
                    .cache_control
                    .value()
                    .and_then(|v| HeaderValue::from_str(&v).ok())
                {
                    response.headers_mut().insert(header::CACHE_CONTROL, value);
                }
            }
            response.headers_mut().extend(answer.http_headers.clone());
            response
        }
    };
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    response.extensions_mut().insert(answered.observed);
    response
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> Response {
    let Ok(principal) = state.services.auth.authenticate(bearer(headers)).await else {
        let mut response = unauthenticated();
        response.extensions_mut().insert(Observed {
            operation: request.operation_name,
            outcome: ErrorCode::Unauthenticated.as_str().to_string(),
        });
        return response;
    };
    if request.query.trim().is_empty() && !request.extensions.contains_key("persistedQuery") {
        return error_response(
            StatusCode::BAD_REQUEST,
            "the request has no `query` (nor a persisted query's hash)",
            ErrorCode::BadUserInput,
        );
    }
    let Some(account) = state.services.account(&principal.account).await else {
        return error_response(
            StatusCode::FORBIDDEN,
            &graphql::unknown_account(&principal.account).errors[0].message,
            ErrorCode::Forbidden,
        );
    };
    let answered = account.executor.execute(request, principal).await;
    render(answered, Media::of(headers))
}

pub(crate) async fn post_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<GraphQLRequest<BadRequest>, BadRequest>,
) -> Response {
    if !is_json(&headers) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as `Content-Type: application/json`; other types are refused \
             because a web page may post them cross-site without asking (CSRF)",
            ErrorCode::BadUserInput,
        );
    }
    match request {
        Ok(request) => execute(&state, &headers, request.into_inner()).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// Whether a POST says it is JSON. A browser sends `text/plain`, form and multipart
/// bodies from any page without a CORS preflight, and async-graphql would read them
/// as JSON anyway: without this, a page a developer visits could place an order
/// through a gateway on loopback without keys.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A browser gets GraphiQL; anything else is a query sent as a GET (never a
/// mutation: a GET must not place an order, e.g. from a prefetching link).
pub(crate) async fn get_graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && uri.query().is_none_or(|q| q.is_empty()) {
        if !state.graphiql {
            return (StatusCode::NOT_FOUND, "GraphiQL is disabled").into_response();
        }
        return super::graphiql::page(&state);
    }
    let request = match async_graphql::http::parse_query_string(uri.query().unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => {
            return BadRequest(ParseRequestError::InvalidRequest(Box::new(e))).into_response()
        }
    };
    if request.query.len() > graphql::limits::MAX_PREPARSE_BYTES {
        // Checked for a mutation before the schema's limits run, so bounded here.
        return error_response(
            StatusCode::URI_TOO_LONG,
            &format!(
                "a query sent with GET is limited to {} bytes; send it with POST",
                graphql::limits::MAX_PREPARSE_BYTES
            ),
            ErrorCode::BadUserInput,
        );
    }
    if is_mutation(&request) {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            ErrorCode::BadUserInput,
        );
    }
    execute(&state, &headers, request).await
}

fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Mutation)
}
