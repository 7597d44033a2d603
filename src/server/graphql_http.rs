//! `POST /graphql` and `GET /graphql`: authentication, then the schema.

use async_graphql::parser::types::OperationType;
use async_graphql::ParseRequestError;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::graphql::{self, Answer, ErrorCode};

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
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (status, Json(body)).into_response()
}

/// The answer to a request without a usable gateway key.
pub(crate) fn unauthenticated() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "missing or unknown API key; send `Authorization: Bearer <key>`",
        ErrorCode::Unauthenticated,
    )
}

/// The `Authorization` header's value, for `Authenticator::authenticate`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
) -> Response {
    let Ok(principal) = state.services.auth.authenticate(bearer(headers)) else {
        return unauthenticated();
    };
    let Some(account) = state.services.account(&principal.account) else {
        return error_response(
            StatusCode::FORBIDDEN,
            &graphql::unknown_account(&principal.account).errors[0].message,
            ErrorCode::Forbidden,
        );
    };
    match account.executor.execute(request, principal).await {
        Answer::Serialized(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/graphql-response+json"),
            );
            response
        }
        Answer::Response(response) => GraphQLResponse::from(*response).into_response(),
    }
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
