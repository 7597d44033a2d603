//! Stripe-style idempotency keys for `POST /v1/orders`: a key is claimed atomically with
//! a fingerprint of the body, the first response is stored and replayed verbatim, and a
//! second request while the first is still running is told so (409) instead of waiting.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a key is remembered, as at Stripe.
pub(crate) const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
pub(crate) struct StoredResponse {
    /// The exact bytes sent the first time: a replay must be byte-identical.
    pub body: std::sync::Arc<[u8]>,
}

enum Slot {
    InFlight { token: u64 },
    Done(StoredResponse),
}

struct Entry {
    fingerprint: [u8; 32],
    created: Instant,
    slot: Slot,
}

/// What a claim found.
pub(crate) enum Claim {
    /// The key is ours now; complete or release it with this token.
    Fresh(u64),
    Replay(StoredResponse),
    Reused,
    InUse,
}

#[derive(Default)]
struct AccountKeys {
    entries: HashMap<String, Entry>,
    /// Insertion order, for pruning by age and count.
    order: VecDeque<(String, Instant)>,
}

pub(crate) struct IdempotencyStore {
    accounts: Vec<AccountKeys>,
    max_keys: usize,
    next_token: u64,
}

/// Canonical JSON (serde_json sorts object keys) hashed: two bodies are "the same"
/// when they carry the same parameters, whatever the key order or whitespace.
pub(crate) fn fingerprint(body: &serde_json::Value) -> [u8; 32] {
    Sha256::digest(body.to_string().as_bytes()).into()
}

impl IdempotencyStore {
    pub(crate) fn new(accounts: usize, max_keys: usize) -> Self {
        IdempotencyStore {
            accounts: (0..accounts).map(|_| AccountKeys::default()).collect(),
            max_keys: max_keys.max(1),
            next_token: 1,
        }
    }

    pub(crate) fn claim(
        &mut self,
        acct: usize,
        key: &str,
        fingerprint: [u8; 32],
        now: Instant,
    ) -> Claim {
        self.prune(acct, now);
        let keys = &mut self.accounts[acct];
        if let Some(entry) = keys.entries.get(key) {
            return match &entry.slot {
                Slot::InFlight { .. } => Claim::InUse,
                Slot::Done(_) if entry.fingerprint != fingerprint => Claim::Reused,
                Slot::Done(stored) => Claim::Replay(stored.clone()),
            };
        }
        let token = self.next_token;
        self.next_token += 1;
        keys.entries.insert(
            key.to_owned(),
            Entry {
                fingerprint,
                created: now,
                slot: Slot::InFlight { token },
            },
        );
        keys.order.push_back((key.to_owned(), now));
        Claim::Fresh(token)
    }

    pub(crate) fn complete(
        &mut self,
        acct: usize,
        key: &str,
        token: u64,
        response: StoredResponse,
    ) {
        if let Some(entry) = self.accounts[acct].entries.get_mut(key) {
            if matches!(entry.slot, Slot::InFlight { token: t } if t == token) {
                entry.slot = Slot::Done(response);
            }
        }
    }

    /// Forgets a claim whose request failed before creating anything, so the client may
    /// retry with the same key (a failed validation stores nothing).
    pub(crate) fn release(&mut self, acct: usize, key: &str, token: u64) {
        let keys = &mut self.accounts[acct];
        if matches!(keys.entries.get(key), Some(Entry { slot: Slot::InFlight { token: t }, .. }) if *t == token)
        {
            keys.entries.remove(key);
        }
    }

    fn prune(&mut self, acct: usize, now: Instant) {
        let max = self.max_keys;
        let keys = &mut self.accounts[acct];
        while let Some((key, created)) = keys.order.front() {
            let expired = now.duration_since(*created) >= KEY_TTL;
            if !expired && keys.order.len() < max {
                break;
            }
            let (key, created) = (key.clone(), *created);
            keys.order.pop_front();
            if keys.entries.get(&key).is_some_and(|e| e.created == created) {
                keys.entries.remove(&key);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.accounts.iter().map(|a| a.entries.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredResponse {
        StoredResponse {
            body: std::sync::Arc::from(&b"{}"[..]),
        }
    }

    #[test]
    fn claim_replay_reuse_and_in_use() {
        let mut s = IdempotencyStore::new(1, 10);
        let now = Instant::now();
        let Claim::Fresh(t) = s.claim(0, "k", [1; 32], now) else {
            panic!()
        };
        assert!(matches!(s.claim(0, "k", [1; 32], now), Claim::InUse));
        s.complete(0, "k", t, stored());
        assert!(matches!(s.claim(0, "k", [1; 32], now), Claim::Replay(_)));
        assert!(matches!(s.claim(0, "k", [2; 32], now), Claim::Reused));
    }

    #[test]
    fn bounded_by_count_and_age() {
        let mut s = IdempotencyStore::new(1, 3);
        let now = Instant::now();
        for i in 0..10 {
            let Claim::Fresh(t) = s.claim(0, &format!("k{i}"), [0; 32], now) else {
                panic!()
            };
            s.complete(0, &format!("k{i}"), t, stored());
        }
        assert!(s.len() <= 3);
        let later = now + KEY_TTL;
        assert!(matches!(s.claim(0, "k9", [0; 32], later), Claim::Fresh(_)));
        assert_eq!(s.len(), 1);
    }
}
