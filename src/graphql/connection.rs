//! Relay connections walked over broker cursor pages (docs/api.md, "Pagination").
//!
//! The broker pages at most 100 items behind opaque cursors and only forwards. A
//! client asks for `first: 250` or `last: 20, before: C`. We always fetch canonical
//! pages of `MAX_BROKER_PAGE` items (so every walk reuses the same cached pages),
//! slice out what was asked for, and remember which broker cursor precedes which so
//! `last/before` can walk back over pages seen while walking forward.

use std::future::Future;
use std::time::Duration;

use moka::sync::Cache;

use super::cursor::{CursorCodec, CursorPosition};
use super::error::GatewayError;
use crate::broker::{BrokerError, MAX_BROKER_PAGE};
use crate::domain::{Page, PageRequest};

/// How many pages `last` without `before` may walk to find the end of a list whose
/// end has not been seen yet. Past that it is cheaper for the client to page forward.
const MAX_TAIL_WALK: usize = 10;

/// The Relay arguments as the client sent them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// The slice of a list one connection field returns.
pub(crate) struct Slice<T> {
    pub edges: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ChainKey {
    /// The broker cursor of the page before the page fetched with this cursor.
    PrevOf(String),
    /// The broker cursor of the last page (`None` inside: the list has one page).
    Tail,
}

/// Pages through broker lists for every connection field of one broker account.
#[derive(Clone)]
pub(crate) struct Pager {
    codec: CursorCodec,
    /// `(scope, key) -> broker cursor`: the page chain learned while walking forward.
    /// Kept here, not in `cache/`, because it is not a copy of broker data: it is
    /// what Relay's backward paging needs to know about broker cursors (which one
    /// precedes which), learned from the pages this layer asks for, and it stays
    /// right however stale the pages themselves get (a broker cursor keeps naming
    /// the same position).
    chain: Cache<(String, ChainKey), Option<String>>,
    default_size: u32,
    max_size: u32,
}

impl Pager {
    pub(super) fn new(codec: CursorCodec, default_size: u32, max_size: u32) -> Self {
        Pager {
            codec,
            chain: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(30 * 60))
                .build(),
            default_size,
            max_size,
        }
    }

    /// Resolves one connection. `scope` names the list and its filter; `key_of` gives
    /// an item's stable identity; `fetch` reads one broker page.
    pub(super) async fn resolve<T, K, F, Fut>(
        &self,
        scope: &str,
        args: ConnectionArgs,
        key_of: K,
        fetch: F,
    ) -> Result<Slice<T>, GatewayError>
    where
        K: Fn(&T) -> String,
        F: Fn(PageRequest) -> Fut,
        Fut: Future<Output = Result<Page<T>, BrokerError>>,
    {
        let walker = Walker {
            pager: self,
            scope,
            key_of,
            fetch,
        };
        match (&args.first, &args.last) {
            (Some(_), Some(_)) => Err(bad(
                "use either `first`/`after` or `last`/`before`, not both",
            )),
            (_, Some(last)) => {
                if args.after.is_some() {
                    return Err(bad("`after` goes with `first`; use `before` with `last`"));
                }
                let n = self.size("last", *last)?;
                walker.backward(n, args.before.as_deref()).await
            }
            (first, None) => {
                if args.before.is_some() {
                    return Err(bad("`before` goes with `last`; use `after` with `first`"));
                }
                let n = match first {
                    Some(first) => self.size("first", *first)?,
                    None => self.default_size as usize,
                };
                walker.forward(n, args.after.as_deref()).await
            }
        }
    }

    fn size(&self, arg: &str, n: i32) -> Result<usize, GatewayError> {
        if n < 0 || n as u32 > self.max_size {
            return Err(bad(&format!(
                "`{arg}: {n}` is out of range; page size must be between 0 and {}",
                self.max_size
            )));
        }
        Ok(n as usize)
    }
}

fn bad(msg: &str) -> GatewayError {
    GatewayError::BadUserInput(msg.to_string())
}

struct Walker<'a, K, F> {
    pager: &'a Pager,
    scope: &'a str,
    key_of: K,
    fetch: F,
}

impl<T, K, F, Fut> Walker<'_, K, F>
where
    K: Fn(&T) -> String,
    F: Fn(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, BrokerError>>,
{
    /// Fetches one page and records what it teaches about the chain.
    async fn page(&self, cursor: Option<String>) -> Result<Page<T>, GatewayError> {
        let page = (self.fetch)(PageRequest {
            cursor: cursor.clone(),
            limit: MAX_BROKER_PAGE,
        })
        .await?;
        let scope = self.scope.to_string();
        match &page.next_cursor {
            Some(next) => self
                .pager
                .chain
                .insert((scope, ChainKey::PrevOf(next.clone())), cursor),
            None => self.pager.chain.insert((scope, ChainKey::Tail), cursor),
        }
        Ok(page)
    }

    fn decode(&self, cursor: &str) -> Result<CursorPosition, GatewayError> {
        self.pager.codec.decode(self.scope, cursor)
    }

    fn cursor(&self, page: &Option<String>, index: usize, item: &T) -> String {
        let position = CursorPosition {
            page: page.clone(),
            index,
            key: (self.key_of)(item),
        };
        self.pager.codec.encode(self.scope, &position)
    }

    /// Where the cursor's item is in its page now: at its old index, or moved by
    /// items added before it. `Err(i)` when it is gone (then `i` is where it was).
    fn locate(&self, page: &Page<T>, pos: &CursorPosition) -> Result<usize, usize> {
        if page.items.get(pos.index).map(&self.key_of).as_deref() == Some(pos.key.as_str()) {
            return Ok(pos.index);
        }
        page.items
            .iter()
            .position(|item| (self.key_of)(item) == pos.key)
            .ok_or(pos.index.min(page.items.len()))
    }

    async fn forward(&self, n: usize, after: Option<&str>) -> Result<Slice<T>, GatewayError> {
        let (mut page_cursor, mut start) = match after {
            Some(c) => {
                let pos = self.decode(c)?;
                (pos.page.clone(), Some(pos))
            }
            None => (None, None),
        };
        let mut page = self.page(page_cursor.clone()).await?;
        let mut from = match start.take() {
            Some(pos) => self
                .locate(&page, &pos)
                .map(|i| i + 1)
                .unwrap_or_else(|i| i),
            None => 0,
        };
        let mut edges = Vec::with_capacity(n.min(MAX_BROKER_PAGE as usize));
        loop {
            let take = (n - edges.len()).min(page.items.len().saturating_sub(from));
            let next = page.next_cursor.take();
            let more_in_page = from + take < page.items.len();
            for (i, item) in page.items.drain(..).enumerate().skip(from).take(take) {
                edges.push((self.cursor(&page_cursor, i, &item), item));
            }
            if edges.len() == n || next.is_none() {
                return Ok(Slice {
                    edges,
                    has_next_page: more_in_page || next.is_some(),
                    has_previous_page: after.is_some(),
                });
            }
            page = self.page(next.clone()).await?;
            page_cursor = next;
            from = 0;
        }
    }

    async fn backward(&self, n: usize, before: Option<&str>) -> Result<Slice<T>, GatewayError> {
        let (mut page_cursor, mut page, mut end) = match before {
            Some(c) => {
                let pos = self.decode(c)?;
                let page = self.page(pos.page.clone()).await?;
                let end = self.locate(&page, &pos).unwrap_or_else(|i| i);
                (pos.page, page, end)
            }
            None => {
                let (cursor, page) = self.tail().await?;
                let end = page.items.len();
                (cursor, page, end)
            }
        };
        let mut reversed = Vec::with_capacity(n.min(MAX_BROKER_PAGE as usize));
        loop {
            let take = (n - reversed.len()).min(end);
            page.items.truncate(end);
            for i in (end - take..end).rev() {
                let item = page.items.pop().expect("index within page");
                reversed.push((self.cursor(&page_cursor, i, &item), item));
            }
            end -= take;
            if reversed.len() == n || page_cursor.is_none() {
                reversed.reverse();
                return Ok(Slice {
                    edges: reversed,
                    has_next_page: before.is_some(),
                    has_previous_page: end > 0 || page_cursor.is_some(),
                });
            }
            let key = (
                self.scope.to_string(),
                ChainKey::PrevOf(page_cursor.clone().unwrap_or_default()),
            );
            let prev = self.pager.chain.get(&key).ok_or_else(|| {
                bad("the page before this cursor is not known; page forward with `first`/`after` first")
            })?;
            page = self.page(prev.clone()).await?;
            page_cursor = prev;
            end = page.items.len();
        }
    }

    /// The last page of the list: from what an earlier walk saw, or by walking
    /// forward a bounded number of pages.
    async fn tail(&self) -> Result<(Option<String>, Page<T>), GatewayError> {
        let known = self
            .pager
            .chain
            .get(&(self.scope.to_string(), ChainKey::Tail));
        let mut cursor = known.flatten();
        for _ in 0..MAX_TAIL_WALK {
            let page = self.page(cursor.clone()).await?;
            match page.next_cursor.clone() {
                None => return Ok((cursor, page)),
                Some(next) => cursor = Some(next),
            }
        }
        Err(bad(
            "the end of this list is not known yet; page forward with `first`/`after`, or use `last` with `before`",
        ))
    }
}
