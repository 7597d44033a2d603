//! The parsers a client's input reaches before anything is sent to the broker,
//! exposed (hidden) so `tests/api/properties.rs` can throw thousands of inputs at them
//! without a server: cursors, global ids and the `Decimal` scalar. Thin: each function is the one the schema uses.

use async_graphql::ScalarType;

use super::cursor::{CursorCodec, CursorPosition};
use super::error::GatewayError;

/// A refusal as the client sees it: `extensions.code` and message.
pub type Refusal = (&'static str, String);

fn refusal(err: GatewayError) -> Refusal {
    (err.code().as_str(), err.message())
}

/// Signs a cursor naming item `index` (key `key`) of broker page `page` in `scope`.
pub fn encode_cursor(
    secret: &[u8],
    scope: &str,
    page: Option<&str>,
    index: usize,
    key: &str,
) -> String {
    CursorCodec::new(secret).encode(
        scope,
        &CursorPosition {
            page: page.map(str::to_string),
            index,
            key: key.to_string(),
        },
    )
}

/// Verifies `cursor` for `scope`: `(page, index, key)` or the client's refusal.
pub fn decode_cursor(
    secret: &[u8],
    scope: &str,
    cursor: &str,
) -> Result<(Option<String>, usize, String), Refusal> {
    CursorCodec::new(secret)
        .decode::<CursorPosition>(scope, cursor)
        .map(|p| (p.page, p.index, p.key))
        .map_err(refusal)
}

/// The global id of object `local` of type `kind` (`"Order"`, ...); `None` for a
/// type that has no ids.
pub fn encode_id(kind: &str, local: &str) -> Option<String> {
    use super::ids::NodeKind::*;
    let kind = [Account, Instrument, Position, Order]
        .into_iter()
        .find(|k| format!("{k:?}") == kind)?;
    Some(super::ids::encode(kind, local).0)
}

/// `node(id:)`'s decoding: `(type name, local id)` or the client's refusal.
pub fn decode_id(id: &str) -> Result<(String, String), Refusal> {
    super::ids::decode(id)
        .map(|(kind, local)| (format!("{kind:?}"), local))
        .map_err(refusal)
}

/// The `Decimal` scalar's input parsing: the exact decimal as a string, or the
/// message the client gets.
pub fn parse_decimal(value: async_graphql::Value) -> Result<String, String> {
    super::scalars::Decimal::parse(value)
        .map(|d| d.0.to_string())
        .map_err(|e| e.into_server_error(async_graphql::Pos::default()).message)
}
