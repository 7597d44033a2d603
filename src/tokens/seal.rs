//! Tokens at rest: AES-256-GCM under `BROKERGRAPH_STORE_KEY`, a fresh random nonce
//! per write. The associated data names what the bytes are (the file format, or
//! the account in Redis), so a value moved to another place does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

const NONCE_BYTES: usize = 12;

/// Opening failed: a wrong key and tampered or truncated bytes look the same,
/// which is the point of an authenticated cipher.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: encrypted with another BROKERGRAPH_STORE_KEY, or damaged")]
pub(crate) struct OpenError;

#[derive(Clone)]
pub(crate) struct Sealer(Aes256Gcm);

impl Sealer {
    pub(crate) fn new(key: &[u8; 32]) -> Sealer {
        Sealer(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)))
    }

    /// `nonce || ciphertext+tag`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        [nonce.as_slice(), &sealed].concat()
    }

    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_BYTES {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_and_place_open_it() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"rt_secret", b"account a");
        assert!(!sealed.windows(9).any(|w| w == b"rt_secret"));
        assert_eq!(sealer.open(&sealed, b"account a").unwrap(), b"rt_secret");
        assert!(sealer.open(&sealed, b"account b").is_err());
        assert!(Sealer::new(&[8; 32]).open(&sealed, b"account a").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered, b"account a").is_err());
        assert!(sealer.open(&sealed[..5], b"account a").is_err());
        assert_ne!(
            sealer.seal(b"x", b""),
            sealer.seal(b"x", b""),
            "fresh nonce each time"
        );
    }
}
