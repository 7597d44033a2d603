use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Who the broker account behind a gateway is: its URL and credentials, hashed.
/// Stable across restarts and replicas of the same account, so cursors survive a
/// deploy, cache entries and idempotency keys are scoped per account, and replicas
/// of one account agree on all three. Secret because the credentials are: it signs
/// cursors. Every value derived from it goes through one of the methods below, each
/// with its own domain-separation label, so no derived value reveals another.
pub(crate) struct AccountIdentity([u8; 32]);

impl AccountIdentity {
    pub(crate) fn new(url: &str, credentials: &Secret) -> AccountIdentity {
        let mut hasher = Sha256::new();
        hasher.update(b"brokergraph cursor v1\0");
        hasher.update(url.as_bytes());
        hasher.update([0]);
        hasher.update(credentials.expose().as_bytes());
        AccountIdentity(hasher.finalize().into())
    }

    /// The key that signs cursors. Global ids are not signed: they name a type and a
    /// broker id, which the broker checks anyway.
    pub(crate) fn cursor_secret(&self) -> &[u8] {
        &self.0
    }

    /// Names the account in cache keys: a cache dump or debug log shows which
    /// account an entry belongs to but not the credentials.
    pub(crate) fn cache_account(&self) -> String {
        self.derive(b"cache account\0")
    }

    /// Where the account's idempotency keys live: unique per account, as at the broker.
    pub(crate) fn idempotency_scope(&self) -> String {
        self.derive(b"idempotency scope\0")
    }

    /// Names the account's broker stream in Redis (its lease and shared events):
    /// the broker allows one stream connection per credential, so gateways of the
    /// same credential share them.
    pub(crate) fn stream_name(&self) -> String {
        self.derive(b"stream\0")
    }

    fn derive(&self, label: &[u8]) -> String {
        hex::encode(&Sha256::digest([label, self.0.as_slice()].concat())[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a deploy must not change: cursors signed, cache keys and Redis
    /// idempotency keys written before it are read after it.
    #[test]
    fn derived_names_are_stable_across_releases() {
        let id = AccountIdentity::new("http://broker", &Secret::new("key-a"));
        assert_eq!(
            (
                id.cache_account(),
                id.idempotency_scope(),
                hex::encode(id.cursor_secret())
            ),
            (
                GOLDEN.0.to_string(),
                GOLDEN.1.to_string(),
                GOLDEN.2.to_string()
            )
        );
    }

    /// Computed by the release before accounts existed.
    const GOLDEN: (&str, &str, &str) = (
        "02ba95466adaaa2e12773bcfab6bd650",
        "37452b260970036da59555c6eb9481a0",
        "7a398b7e26a9781e274881df560100d53aba14b4a81e677822956662518ccfec",
    );

    #[test]
    fn derived_names_differ_per_purpose_and_per_account() {
        let a = AccountIdentity::new("http://broker", &Secret::new("key-a"));
        let b = AccountIdentity::new("http://broker", &Secret::new("key-b"));
        assert_ne!(a.cache_account(), a.idempotency_scope());
        assert_ne!(a.cache_account(), b.cache_account());
        assert_eq!(
            a.cache_account(),
            AccountIdentity::new("http://broker", &Secret::new("key-a")).cache_account()
        );
    }
}
