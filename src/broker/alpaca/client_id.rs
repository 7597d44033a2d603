//! The gateway's idempotency key as an Alpaca `client_order_id`, and back.
//!
//! Alpaca dedups on `client_order_id` (at most 48 characters, unique per account
//! forever), so the same gateway key must always give the same client id: then a
//! resend after a lost answer, or a retry after a gateway restart, is refused as a
//! duplicate instead of placing a second order. The mapping is reversible so an
//! order read back from Alpaca shows the client's key; orders placed by other tools
//! of the same account have other client ids and simply show none.

use uuid::Uuid;

/// Marks client ids brokergraph made, so foreign ids are never mistaken for keys.
const PREFIX: &str = "bg-";

/// `bg-` and the key's 32 hex digits: 35 characters, within Alpaca's 48.
pub(super) fn from_key(key: Uuid) -> String {
    format!("{PREFIX}{}", key.simple())
}

/// The gateway key a client id was made from, if brokergraph made it.
pub(super) fn to_key(client_order_id: &str) -> Option<Uuid> {
    let hex = client_order_id.strip_prefix(PREFIX)?;
    (hex.len() == 32)
        .then(|| Uuid::try_parse(hex).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_fits_alpacas_limit() {
        let key = Uuid::new_v4();
        let id = from_key(key);
        assert!(id.len() <= 48);
        assert_eq!(from_key(key), id, "deterministic");
        assert_eq!(to_key(&id), Some(key));
        assert_eq!(to_key("my-own-id"), None);
        assert_eq!(to_key(&key.to_string()), None);
    }
}
