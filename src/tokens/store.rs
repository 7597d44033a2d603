//! Where OAuth tokens live between refreshes and restarts, encrypted (`seal`): one
//! file for every account (`token_store.path`), or Redis when replicas share an
//! account. Both offer a lock per account, held across "read what is stored, maybe
//! refresh, write the result", so two processes never spend one rotating refresh
//! token twice (which the broker answers by revoking the family).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::seal::Sealer;
use super::sealed_file::SealedFile;
use crate::cluster::Redis;

/// What is kept per account. Plain strings only inside this module and only
/// between decrypting and encrypting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// SHA-256 of the configured `refresh_token` this record descends from: a new
    /// one in the config (the operator authorized again) wins over the stored one.
    pub seed: String,
    pub refresh_token: Option<String>,
    pub access_token: Option<String>,
    /// Unix milliseconds; `None` when the token endpoint did not say.
    pub expires_at_ms: Option<u64>,
    /// The token's whole life as issued, so a process adopting it refreshes when
    /// the one that got it would.
    pub lifetime_ms: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("token store {path}: {reason}")]
    File { path: String, reason: String },
    #[error("token store in redis: {0}")]
    Redis(String),
}

/// Held while an account's tokens are read and refreshed; released on drop.
pub(crate) type Lock = Box<dyn Send + Sync>;

#[async_trait]
pub(crate) trait TokenStore: Send + Sync {
    async fn lock(&self, account: &str) -> Result<Lock, StoreError>;
    async fn load(&self, account: &str) -> Result<Option<Record>, StoreError>;
    async fn save(&self, account: &str, record: &Record) -> Result<(), StoreError>;
}

/// Longest a refresh waits for another process's lock: past it, the other is
/// presumed stuck (its own token call is bounded by the request timeout).
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// All accounts in one file: `BGT1` then the sealed JSON map. Written to a
/// temporary file and renamed, so a reader never sees half a file; locked with
/// `flock` on `<path>.lock`, so processes on one host (and tasks in one) take turns.
pub(crate) struct FileStore {
    file: SealedFile,
}

impl FileStore {
    /// Opens and decrypts the file once, so a corrupt, unreadable or wrongly keyed
    /// store stops the start (with the path and the reason) instead of being
    /// overwritten later. A missing file is an empty store.
    pub(crate) fn open(path: &Path, key: &[u8; 32]) -> Result<FileStore, StoreError> {
        let store = FileStore {
            file: SealedFile::new(
                path.to_path_buf(),
                key,
                b"BGT1",
                b"brokergraph token store v1",
                "token store",
            ),
        };
        store.read_all()?;
        Ok(store)
    }

    fn fail(&self, reason: impl std::fmt::Display) -> StoreError {
        self.file.fail(reason)
    }

    fn read_all(&self) -> Result<std::collections::BTreeMap<String, Record>, StoreError> {
        self.file.read()
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn lock(&self, _account: &str) -> Result<Lock, StoreError> {
        let path = self.file.path().with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.fail(format!("cannot open the lock file: {e}")))?;
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match try_flock(&file) {
                Ok(true) => return Ok(Box::new(file)),
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                Ok(false) => return Err(self.fail("another process holds the lock")),
                Err(e) => return Err(self.fail(format!("cannot lock: {e}"))),
            }
        }
    }

    async fn load(&self, account: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.read_all()?.remove(account))
    }

    async fn save(&self, account: &str, record: &Record) -> Result<(), StoreError> {
        let mut all = self.read_all()?;
        all.insert(account.to_string(), record.clone());
        self.file.write(&all)
    }
}

/// An exclusive `flock`, without waiting; closing the file releases it.
#[cfg(unix)]
fn try_flock(file: &std::fs::File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_flock(_file: &std::fs::File) -> std::io::Result<bool> {
    Ok(true)
}

/// Tokens in Redis (`<prefix>:tokens:<account>`, sealed with the account as
/// associated data), locked per account with `SET NX PX` so replicas refresh once.
pub(crate) struct RedisStore {
    redis: Arc<Redis>,
    sealer: Sealer,
}

/// A lock outlives a stuck holder by this much at most.
const REDIS_LOCK_TTL: Duration = Duration::from_secs(20);

struct RedisLock {
    redis: Arc<Redis>,
    key: String,
    owner: String,
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        let (redis, key, owner) = (self.redis.clone(), self.key.clone(), self.owner.clone());
        // Deletes only our own lock: after a TTL expiry it may be another's.
        tokio::spawn(async move {
            let script = redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            );
            let mut conn = redis.conn();
            let mut call = script.key(&key);
            let call = call.arg(&owner);
            let _: Result<i64, _> = redis
                .call("token lock release", call.invoke_async(&mut conn))
                .await;
        });
    }
}

impl RedisStore {
    pub(crate) fn new(redis: Arc<Redis>, key: &[u8; 32]) -> RedisStore {
        RedisStore {
            redis,
            sealer: Sealer::new(key),
        }
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn lock(&self, account: &str) -> Result<Lock, StoreError> {
        let key = self.redis.key(&["tokens-lock", account]);
        let owner = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            let mut conn = self.redis.conn();
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(REDIS_LOCK_TTL.as_millis() as u64);
            let got: Option<String> = self
                .redis
                .call("token lock", cmd.query_async(&mut conn))
                .await
                .map_err(|e| StoreError::Redis(e.to_string()))?;
            if got.is_some() {
                return Ok(Box::new(RedisLock {
                    redis: self.redis.clone(),
                    key,
                    owner,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Redis(
                    "another replica holds the token lock".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn load(&self, account: &str) -> Result<Option<Record>, StoreError> {
        let key = self.redis.key(&["tokens", account]);
        let mut conn = self.redis.conn();
        let value: Option<Vec<u8>> = self
            .redis
            .call(
                "token load",
                redis::cmd("GET").arg(&key).query_async(&mut conn),
            )
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        let Some(sealed) = value else {
            return Ok(None);
        };
        let plain = self
            .sealer
            .open(&sealed, account.as_bytes())
            .map_err(|e| StoreError::Redis(format!("{key}: {e}")))?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|_| StoreError::Redis(format!("{key}: decrypted but unreadable")))
    }

    async fn save(&self, account: &str, record: &Record) -> Result<(), StoreError> {
        let key = self.redis.key(&["tokens", account]);
        let plain = serde_json::to_vec(record).map_err(|e| StoreError::Redis(e.to_string()))?;
        let sealed = self.sealer.seal(&plain, account.as_bytes());
        let mut conn = self.redis.conn();
        let _: () = self
            .redis
            .call(
                "token save",
                redis::cmd("SET")
                    .arg(&key)
                    .arg(sealed)
                    .query_async(&mut conn),
            )
            .await
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        Ok(())
    }
}
