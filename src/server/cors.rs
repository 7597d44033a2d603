//! CORS: browsers on the listed origins may call `/graphql`; every other origin gets
//! no `Access-Control-Allow-*` headers, so its browser refuses to read the answer.
//! `*` is refused at config load when keys or JWT sessions are in use
//! (`config::server`): a credential held by one site must not be usable from any
//! other. Listed origins may send credentials (`Access-Control-Allow-Credentials`),
//! so a frontend that keeps its session in a cookie-backed fetch works too.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `None` when no origins are configured: no CORS headers at all (same-origin only).
pub(crate) fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let any = origins.iter().any(|o| o == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            // Never with `*`: browsers refuse the pair, and it would hand every
            // site the caller's credentials.
            .allow_credentials(!any)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}
