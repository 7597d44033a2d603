//! Keyset pagination. A cursor carries the sort key of the last item served, so
//! following it is stable while new orders arrive, and the same cursor over unchanged
//! data returns the same page. Opaque to clients: versioned, tagged with the list it
//! belongs to, base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::ApiError;

pub(crate) const DEFAULT_LIMIT: usize = 50;
pub(crate) const MAX_LIMIT: usize = 100;

/// Where a page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    First,
    /// Strictly after this sort key.
    After(String),
    Offset(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub limit: usize,
    pub start: Start,
}

/// Which list a cursor belongs to; a cursor from another list is `invalid_cursor`.
#[derive(Clone, Copy)]
pub(crate) enum ListKind {
    Instruments,
    Positions,
    Orders,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            ListKind::Instruments => "i",
            ListKind::Positions => "p",
            ListKind::Orders => "o",
        }
    }
}

pub(crate) fn encode(kind: ListKind, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{}:{key}", kind.tag()))
}

fn decode(kind: ListKind, cursor: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let key = text
        .strip_prefix("v1:")?
        .strip_prefix(kind.tag())?
        .strip_prefix(':')?;
    if let ListKind::Orders = kind {
        key.parse::<u64>().ok()?;
    }
    Some(key.to_owned())
}

/// Reads `limit`, `cursor` and `offset` from the query pairs.
pub(crate) fn parse(kind: ListKind, query: &[(String, String)]) -> Result<Page, ApiError> {
    let get = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    Some("limit"),
                    format!("limit must be an integer between 1 and {MAX_LIMIT}, got {raw:?}"),
                ))
            }
        },
    };
    let start = match (
        get("cursor").filter(|c| !c.is_empty()),
        get("offset").filter(|o| !o.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                Some("offset"),
                "use either cursor or offset, not both",
            ))
        }
        (Some(cursor), None) => Start::After(decode(kind, cursor).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                Some("cursor"),
                "cursor is malformed or belongs to another list",
            )
        })?),
        (None, Some(raw)) => Start::Offset(raw.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_offset",
                Some("offset"),
                "offset must be a non-negative integer",
            )
        })?),
        (None, None) => Start::First,
    };
    Ok(Page { limit, start })
}

/// Takes one page from items already positioned at the start (keyset) or from the first
/// item (offset), returning the page and the cursor for the next one.
pub(crate) fn take<T, I>(
    kind: ListKind,
    page: &Page,
    items: I,
    key_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>)
where
    I: Iterator<Item = T>,
{
    let skip = match page.start {
        Start::Offset(n) => n,
        _ => 0,
    };
    let mut iter = items.skip(skip);
    let data: Vec<T> = iter.by_ref().take(page.limit).collect();
    let more = iter.next().is_some();
    let next = match (more, data.last()) {
        (true, Some(last)) => Some(encode(kind, &key_of(last))),
        _ => None,
    };
    (data, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_reject_foreign_lists() {
        let c = encode(ListKind::Orders, "17");
        let p = parse(ListKind::Orders, &q(&[("cursor", &c)])).unwrap();
        assert_eq!(p.start, Start::After("17".into()));
        assert!(parse(ListKind::Instruments, &q(&[("cursor", &c)])).is_err());
        assert!(parse(ListKind::Orders, &q(&[("cursor", "!!")])).is_err());
        assert!(parse(ListKind::Orders, &q(&[("limit", "101")])).is_err());
        assert!(parse(ListKind::Orders, &q(&[("limit", "0")])).is_err());
    }
}
