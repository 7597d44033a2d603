//! Quote snapshots over REST, shared by both dialects: which symbols were asked for and
//! the quotes of the known ones, read at one market tick under one lock.

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::market::Quote;
use crate::state::{lock, now, AppState};

/// Symbols one REST call may ask for: enough for a page of instruments, small enough
/// that one call stays cheap.
pub(crate) const MAX_REST_SYMBOLS: usize = 100;

/// The `symbols` parameter: comma-separated, upper-cased, de-duplicated in order.
/// Empty is 400 `invalid_value`, more than [`MAX_REST_SYMBOLS`] is 400
/// `too_many_symbols`.
pub(crate) fn parse_symbols(pairs: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    let raw = pairs
        .iter()
        .filter(|(k, _)| k == "symbols")
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut symbols: Vec<String> = Vec::new();
    for s in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let s = s.to_uppercase();
        if !symbols.contains(&s) {
            symbols.push(s);
        }
        if symbols.len() > MAX_REST_SYMBOLS {
            return Err(ApiError::bad_request(
                "too_many_symbols",
                Some("symbols"),
                format!("at most {MAX_REST_SYMBOLS} symbols per request"),
            ));
        }
    }
    if symbols.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_value",
            Some("symbols"),
            "symbols is required: a comma-separated list such as symbols=ABC,XYZ",
        ));
    }
    Ok(symbols)
}

/// The quotes of the known symbols among `symbols`, in the order asked; unknown ones
/// are left out, as a list leaves out what does not match.
pub(crate) fn snapshot(
    app: &AppState,
    symbols: &[String],
) -> (Vec<(String, Quote)>, DateTime<Utc>) {
    let engine = lock(&app.engine);
    let quotes = symbols
        .iter()
        .filter_map(|s| Some((s.clone(), engine.market.quote(s, engine.tick)?)))
        .collect();
    (quotes, now())
}

/// The symbols among `symbols` that are instruments of the market.
pub(crate) fn known(app: &AppState, symbols: &[String]) -> Vec<String> {
    let engine = lock(&app.engine);
    symbols
        .iter()
        .filter(|s| engine.market.get(s).is_some())
        .cloned()
        .collect()
}
