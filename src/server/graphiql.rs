//! GraphiQL served by brokergraph itself (README.md, "The playground").
//!
//! The page and everything it loads are embedded in the binary: GraphiQL and React
//! (released production builds, `assets/graphiql/`, see `assets/README.md`) and our
//! own bootstrap (`graphiql/`). A CDN-hosted GraphiQL is blank on a network without
//! internet access, as trading desks often are, and cannot be locked down with a
//! strict Content-Security-Policy; this page needs no network and no third party.
//!
//! Assets are served under `/graphiql/<content hash>/<name>`: a new build with
//! changed bytes gets new URLs, so browsers may cache them forever. The page links
//! them with relative URLs, so it also works behind a reverse proxy's path prefix.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;

use super::AppState;

/// No origin but our own, and no inline script or style. `style-src` needs no
/// `'unsafe-inline'`: GraphiQL, CodeMirror and React set styles through the CSSOM
/// (`element.style`), which CSP does not govern. The one `<style>` element GraphiQL
/// would insert is react-remove-scroll's scroll lock while a dialog is open; it is
/// blocked, and harmless, because the page itself never scrolls. `data:` is for the
/// fonts and icons GraphiQL's stylesheet embeds.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; font-src 'self' data:; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'none'";

/// Content-hashed URLs never change meaning: a year, and no revalidation.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// The first 16 hex digits of the body's SHA-256: the URL's version.
    hash: String,
}

/// A released third-party build, committed under `assets/graphiql/`.
macro_rules! vendored {
    ($name:literal, $type:expr) => {
        (
            $name,
            $type,
            include_bytes!(concat!("../../assets/graphiql/", $name)).as_slice(),
        )
    };
}

/// Our own page code, beside this module.
macro_rules! ours {
    ($name:literal, $type:expr) => {
        (
            $name,
            $type,
            include_bytes!(concat!("graphiql/", $name)).as_slice(),
        )
    };
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        vendored!("react.production.min.js", JS),
        vendored!("react-dom.production.min.js", JS),
        vendored!("graphiql.min.js", JS),
        vendored!("graphiql.min.css", CSS),
        vendored!("LICENSE.graphiql", TEXT),
        vendored!("LICENSE.react", TEXT),
        vendored!("LICENSE.react-dom", TEXT),
        ours!("playground.js", JS),
        ours!("playground.css", CSS),
    ]
    .into_iter()
    .map(|(name, content_type, body)| Asset {
        name,
        content_type,
        body,
        hash: hex::encode(&Sha256::digest(body)[..8]),
    })
    .collect()
});

/// The page with every `{{asset name}}` replaced by its URL, built once;
/// `{{keys-configured}}` is left for [`page`].
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut html = include_str!("graphiql/page.html").to_string();
    for asset in ASSETS.iter() {
        let placeholder = format!("{{{{{}}}}}", asset.name);
        html = html.replace(
            &placeholder,
            &format!("graphiql/{}/{}", asset.hash, asset.name),
        );
    }
    html
});

/// The GraphiQL page. It tells the bootstrap whether gateway keys are configured
/// (an attribute, not a script: no inline script) so it can explain the headers
/// editor; the key itself never reaches the page.
pub(crate) fn page(state: &AppState) -> Response {
    let keys = if state.services.auth.keys_configured() {
        "true"
    } else {
        "false"
    };
    let html = PAGE.replace("{{keys-configured}}", keys);
    respond(
        "text/html; charset=utf-8",
        // The page is cheap and names the current asset hashes: always revalidate.
        "no-cache",
        html.into_bytes(),
    )
}

/// `GET /graphiql/{hash}/{name}`, gzipped for clients that accept it: the assets
/// are 1.5 MB raw and about 0.45 MB gzipped, which a remote desk's link notices.
/// Each client downloads them once (they are cached for a year).
pub(crate) fn assets() -> MethodRouter<AppState> {
    get(asset).layer(CompressionLayer::new())
}

/// An embedded asset, if the hash is the current one. 404 for anything else, and
/// for everything when GraphiQL is switched off.
async fn asset(
    State(state): State<AppState>,
    Path((hash, name)): Path<(String, String)>,
) -> Response {
    if !state.graphiql {
        return StatusCode::NOT_FOUND.into_response();
    }
    match ASSETS.iter().find(|a| a.name == name && a.hash == hash) {
        Some(a) => respond(a.content_type, IMMUTABLE, a.body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn respond(
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    (headers, body.into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_names_an_asset() {
        let without_keys = PAGE.replace("{{keys-configured}}", "");
        assert!(!without_keys.contains("{{"), "{without_keys}");
        for asset in ASSETS.iter().filter(|a| a.content_type != TEXT) {
            assert!(PAGE.contains(&format!("graphiql/{}/{}", asset.hash, asset.name)));
        }
    }

    #[test]
    fn page_has_no_inline_script() {
        for tag in PAGE.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("defer src="), "{tag}");
            assert!(tag.contains("></script>"));
        }
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
    }
}
