//! Relay cursors over broker cursors (docs/api.md, "Pagination").
//!
//! A cursor names one item: the broker cursor of the page it came from, its index in
//! that page, and its own key (symbol or order id) so the item can be found again
//! when a newer item has shifted the page. It is also bound to the list it came from
//! (`scope`: resource and filter) and signed with an HMAC, so a forged, edited or
//! foreign cursor is refused before anything is sent to the broker.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::GatewayError;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CursorPosition {
    /// The broker cursor that fetched the page; `None` is the first page.
    #[serde(rename = "p")]
    pub page: Option<String>,
    #[serde(rename = "i")]
    pub index: usize,
    #[serde(rename = "k")]
    pub key: String,
}

/// What is signed: the list (or feed) a cursor belongs to and its place in it
/// (`CursorPosition` for connections, `streams::Position` for `orderUpdates`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload<P> {
    #[serde(rename = "s")]
    scope: String,
    #[serde(flatten)]
    position: P,
}

/// Encodes and verifies cursors with one process-wide key.
#[derive(Clone)]
pub(crate) struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    /// `secret` should be stable across restarts and replicas that share a broker
    /// account, so a client's cursor survives a deploy.
    pub(super) fn new(secret: &[u8]) -> Self {
        CursorCodec {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac
    }

    pub(super) fn encode<P: serde::Serialize>(&self, scope: &str, position: &P) -> String {
        let json = serde_json::to_vec(&Payload {
            scope: scope.to_string(),
            position,
        })
        .expect("cursor payload serializes");
        let mut signed = vec![VERSION];
        signed.extend_from_slice(&json);
        let tag = self.mac(&signed).finalize().into_bytes();
        let mut out = vec![VERSION];
        out.extend_from_slice(&tag[..MAC_LEN]);
        out.extend_from_slice(&json);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub(super) fn decode<P: serde::de::DeserializeOwned>(
        &self,
        scope: &str,
        cursor: &str,
    ) -> Result<P, GatewayError> {
        let invalid = || {
            GatewayError::BadUserInput(format!(
                "`{}` is not a cursor of this list; use a cursor this connection returned",
                truncate(cursor)
            ))
        };
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if raw.len() <= 1 + MAC_LEN || raw[0] != VERSION {
            return Err(invalid());
        }
        let (tag, json) = raw[1..].split_at(MAC_LEN);
        let mut signed = vec![VERSION];
        signed.extend_from_slice(json);
        self.mac(&signed)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        let payload: Payload<P> = serde_json::from_slice(json).map_err(|_| invalid())?;
        if payload.scope != scope {
            return Err(invalid());
        }
        Ok(payload.position)
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> CursorPosition {
        CursorPosition {
            page: Some("abc".into()),
            index: 7,
            key: "AAPL".into(),
        }
    }

    #[test]
    fn round_trip() {
        let codec = CursorCodec::new(b"k");
        let c = codec.encode("instruments", &pos());
        assert_eq!(
            codec.decode::<CursorPosition>("instruments", &c).unwrap(),
            pos()
        );
    }

    #[test]
    fn refuses_other_scope_other_key_and_any_edit() {
        let codec = CursorCodec::new(b"k");
        let c = codec.encode("instruments", &pos());
        assert!(codec.decode::<CursorPosition>("positions", &c).is_err());
        assert!(CursorCodec::new(b"other")
            .decode::<CursorPosition>("instruments", &c)
            .is_err());
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        let last = raw.len() - 2;
        raw[last] ^= 1;
        assert!(codec
            .decode::<CursorPosition>("instruments", &URL_SAFE_NO_PAD.encode(raw))
            .is_err());
        assert!(codec.decode::<CursorPosition>("instruments", "").is_err());
        assert!(codec
            .decode::<CursorPosition>("instruments", "%%%")
            .is_err());
    }
}
