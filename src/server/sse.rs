//! GraphQL over Server-Sent Events, graphql-sse's "distinct connections mode":
//! `POST /graphql` with `Accept: text/event-stream` answers `text/event-stream`,
//! one `event: next` per result and a final `event: complete`; the client ends a
//! subscription by closing the connection. Everything refused before the stream
//! starts (content type, body, credentials, connections per key) answers as
//! `POST /graphql` does; errors of the operation itself (validation included)
//! come as a `next` event, as the protocol asks. A comment line keeps the
//! connection alive every `subscriptions.ping_ms` without an event. A stream
//! opened with a JWT session ends when its token expires.

use std::convert::Infallible;
use std::sync::Arc;

use async_graphql_axum::GraphQLRequest;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};

use super::graphql_http::{self, error_response, unauthenticated, BadRequest};
use super::live::{is_subscription, GatewayOperations, Live, Operations};
use super::AppState;
use crate::graphql::{Answer, ErrorCode};

/// `POST /graphql`: an SSE request is served here, anything else by
/// `graphql_http::post_graphql`.
pub(crate) async fn post_graphql(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<Live>>,
    headers: HeaderMap,
    request: Result<GraphQLRequest<BadRequest>, BadRequest>,
) -> Response {
    if !wants_event_stream(&headers) || !graphql_http::is_json(&headers) {
        return graphql_http::post_graphql(State(state), headers, request).await;
    }
    if !live.settings.enabled {
        return error_response(
            StatusCode::FORBIDDEN,
            "subscriptions are turned off on this gateway (subscriptions.enabled = false); \
             send the request without `Accept: text/event-stream`",
            ErrorCode::Forbidden,
        );
    }
    if live.is_shut_down() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down",
            ErrorCode::BrokerUnavailable,
        );
    }
    let request = match request {
        Ok(request) => request.into_inner(),
        Err(rejection) => return rejection.into_response(),
    };
    let ops = GatewayOperations(state);
    let Ok(principal) = ops.authenticate(graphql_http::bearer(&headers)).await else {
        return unauthenticated();
    };
    let Some(slot) = live.claim(&principal.key_id) else {
        return error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "too many connections for gateway key `{}` (subscriptions.max_connections_per_key = {})",
                principal.key_id, live.settings.max_connections_per_key
            ),
            ErrorCode::RateLimited,
        );
    };
    let session_end = super::live::session_end(&principal);
    let results = if is_subscription(&request) {
        ops.subscribe(request, principal)
            .await
            .map(|response| serde_json::to_string(&response).unwrap_or_default())
            .boxed()
    } else {
        stream::once(async move {
            match ops.execute(request, principal).await {
                Answer::Serialized(body) => String::from_utf8_lossy(&body).into_owned(),
                Answer::Response(response) => serde_json::to_string(&response).unwrap_or_default(),
            }
        })
        .boxed()
    };
    let events = results
        .map(|json| Event::default().event("next").data(json))
        // `data` too, or EventSource would not dispatch the event.
        .chain(stream::once(async {
            Event::default().event("complete").data("")
        }))
        .take_until(live.shutting_down())
        .take_until(session_end)
        .map(move |event| {
            // The stream holds the key's connection slot until it ends.
            let _ = &slot;
            Ok::<_, Infallible>(event)
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(live.settings.ping))
        .into_response()
}

/// `Accept` names `text/event-stream`.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn an_event_stream_is_asked_for_by_accept() {
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            wants_event_stream(&h)
        };
        assert!(accept("text/event-stream"));
        assert!(accept("application/json, text/event-stream;q=0.9"));
        assert!(!accept("application/json"));
        assert!(!accept("text/event-streams"));
        assert!(!wants_event_stream(&HeaderMap::new()));
    }
}
