//! Broker URLs: a checked base, then `base/<version>/<segments>` with every segment
//! percent-encoded, so an id from a client can never change which route is called.

use crate::broker::BrokerError;

/// Accepts only an absolute http(s) URL that can take path segments and does not
/// already end in the API version (`version`, e.g. `/v1`); a query or fragment would
/// silently end up in every request, so those are refused too. `Err` is the reason.
pub(crate) fn check_base_url(raw: &str, version: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".into());
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("it needs a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it must not have a query or fragment".into());
    }
    if url.path().trim_end_matches('/').ends_with(version) {
        return Err(format!("give the base URL without {version}"));
    }
    Ok(url)
}

/// `base/<version>/<segments>`, each segment percent-encoded so that an id
/// containing `/`, `?`, `#` or `%` stays one path segment.
pub(crate) fn versioned_url(base: &reqwest::Url, version: &str, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("checked in check_base_url")
        .pop_if_empty()
        .push(version)
        .extend(segments);
    url
}

/// A URL for one object by id. `.` and `..` would be resolved away as path steps
/// (and an empty id would name the list), so they can name no object: not found,
/// without asking.
pub(crate) fn object_url(
    base: &reqwest::Url,
    version: &str,
    collection: &str,
    id: &str,
) -> Result<reqwest::Url, BrokerError> {
    if matches!(id, "" | "." | "..") {
        return Err(BrokerError::NotFound);
    }
    Ok(versioned_url(base, version, &[collection, id]))
}
