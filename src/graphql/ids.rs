//! Relay global IDs: `base64url("Type:local id")`, so `node(id:)` can tell an order
//! from an instrument, and a client never builds broker ids by hand.

use async_graphql::ID;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use super::error::GatewayError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Account,
    Instrument,
    Position,
    Order,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::Account => "Account",
            NodeKind::Instrument => "Instrument",
            NodeKind::Position => "Position",
            NodeKind::Order => "Order",
        }
    }

    fn from_name(name: &str) -> Option<NodeKind> {
        [
            NodeKind::Account,
            NodeKind::Instrument,
            NodeKind::Position,
            NodeKind::Order,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

pub(crate) fn encode(kind: NodeKind, local_id: &str) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{local_id}", kind.name())))
}

/// Decodes any global id into its kind and local id.
pub(crate) fn decode(id: &str) -> Result<(NodeKind, String), GatewayError> {
    let invalid = || GatewayError::BadUserInput(format!("`{id}` is not a brokergraph ID"));
    let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (kind, local) = text.split_once(':').ok_or_else(invalid)?;
    let kind = NodeKind::from_name(kind).ok_or_else(invalid)?;
    if local.is_empty() {
        return Err(invalid());
    }
    Ok((kind, local.to_string()))
}

/// Decodes a global id that must be of one kind (e.g. `cancelOrder(orderId:)`).
pub(crate) fn decode_as(id: &str, expected: NodeKind) -> Result<String, GatewayError> {
    match decode(id)? {
        (kind, local) if kind == expected => Ok(local),
        (kind, _) => Err(GatewayError::BadUserInput(format!(
            "`{id}` is the ID of a {}, not of a {}",
            kind.name(),
            expected.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds_and_garbage() {
        let id = encode(NodeKind::Order, "ord_1:x");
        assert_eq!(decode(&id).unwrap(), (NodeKind::Order, "ord_1:x".into()));
        assert!(decode_as(&id, NodeKind::Instrument).is_err());
        assert!(decode("not base64!").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("Bogus:1")).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("Order:")).is_err());
    }
}
