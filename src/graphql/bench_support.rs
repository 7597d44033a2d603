//! What the criterion benchmarks (`benches/hot_path.rs`) measure of this module's
//! internals, without making them part of the crate's API: hidden, and thin.

use super::cursor::{CursorCodec, CursorPosition};

/// The Relay cursor codec (HMAC-signed, base64url), as connections use it.
pub struct Cursors(CursorCodec);

impl Cursors {
    pub fn new(secret: &[u8]) -> Cursors {
        Cursors(CursorCodec::new(secret))
    }

    /// The cursor of item `index` of the page fetched with broker cursor `page`.
    pub fn encode(&self, scope: &str, page: Option<&str>, index: usize, key: &str) -> String {
        self.0.encode(
            scope,
            &CursorPosition {
                page: page.map(str::to_string),
                index,
                key: key.to_string(),
            },
        )
    }

    /// Whether `cursor` verifies for `scope` (and so would be followed).
    pub fn decode(&self, scope: &str, cursor: &str) -> bool {
        self.0.decode::<CursorPosition>(scope, cursor).is_ok()
    }
}
