//! Accounts linked at run time (`/admin/accounts`), kept in the token store beside
//! the OAuth tokens and sealed with the same key, so they survive a restart and
//! their credentials are never at rest in clear: a sibling file of
//! `token_store.path`, or one Redis hash the replicas share (with a version the
//! replicas compare, so that a change on one applies on all).
//!
//! An entry is the admin API's JSON body of the account, credentials included;
//! this module only seals and stores it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::seal::Sealer;
use super::sealed_file::SealedFile;
use super::StoreError;
use crate::cluster::Redis;

#[async_trait]
pub(crate) trait LinkedStore: Send + Sync {
    /// Every linked account's entry, by id.
    async fn all(&self) -> Result<BTreeMap<String, Value>, StoreError>;
    /// Stores (`Some`) or forgets (`None`) the account `id`, and moves the version.
    async fn put(&self, id: &str, entry: Option<&Value>) -> Result<(), StoreError>;
    /// Moves on every `put`, on whichever replica: a replica that sees another
    /// version than it last loaded reloads.
    async fn version(&self) -> Result<u64, StoreError>;
}

/// `<token_store.path>.accounts`.
pub(crate) struct LinkedFile {
    file: SealedFile,
    version: std::sync::atomic::AtomicU64,
}

impl LinkedFile {
    /// Opens and decrypts the file once, so a corrupt or wrongly keyed one stops
    /// the start rather than being overwritten.
    pub(crate) fn open(token_store: &Path, key: &[u8; 32]) -> Result<LinkedFile, StoreError> {
        let mut path = token_store.as_os_str().to_owned();
        path.push(".accounts");
        let file = LinkedFile {
            file: SealedFile::new(
                PathBuf::from(path),
                key,
                b"BGA1",
                b"brokergraph linked accounts v1",
                "accounts file",
            ),
            version: Default::default(),
        };
        file.file.read::<BTreeMap<String, Value>>()?;
        Ok(file)
    }
}

#[async_trait]
impl LinkedStore for LinkedFile {
    async fn all(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        self.file.read()
    }

    async fn put(&self, id: &str, entry: Option<&Value>) -> Result<(), StoreError> {
        let mut all: BTreeMap<String, Value> = self.file.read()?;
        match entry {
            Some(entry) => all.insert(id.to_string(), entry.clone()),
            None => all.remove(id),
        };
        self.file.write(&all)?;
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// One process owns the file: its own count.
    async fn version(&self) -> Result<u64, StoreError> {
        Ok(self.version.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The hash `<prefix>accounts` (id → sealed entry, the id as associated data) and
/// the counter `<prefix>accounts:version`.
pub(crate) struct LinkedRedis {
    redis: Arc<Redis>,
    sealer: Sealer,
}

impl LinkedRedis {
    pub(crate) fn new(redis: Arc<Redis>, key: &[u8; 32]) -> LinkedRedis {
        LinkedRedis {
            redis,
            sealer: Sealer::new(key),
        }
    }

    fn fail(e: impl std::fmt::Display) -> StoreError {
        StoreError::Redis(e.to_string())
    }
}

#[async_trait]
impl LinkedStore for LinkedRedis {
    async fn all(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        let key = self.redis.key(&["accounts"]);
        let mut conn = self.redis.conn();
        let sealed: BTreeMap<String, Vec<u8>> = self
            .redis
            .call(
                "linked accounts load",
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn),
            )
            .await
            .map_err(Self::fail)?;
        sealed
            .into_iter()
            .map(|(id, sealed)| {
                let plain = self
                    .sealer
                    .open(&sealed, id.as_bytes())
                    .map_err(|e| Self::fail(format!("{key} {id}: {e}")))?;
                let entry = serde_json::from_slice(&plain)
                    .map_err(|_| Self::fail(format!("{key} {id}: decrypted but unreadable")))?;
                Ok((id, entry))
            })
            .collect()
    }

    async fn put(&self, id: &str, entry: Option<&Value>) -> Result<(), StoreError> {
        let key = self.redis.key(&["accounts"]);
        let version = self.redis.key(&["accounts", "version"]);
        let mut pipe = redis::pipe();
        pipe.atomic();
        match entry {
            Some(entry) => {
                let plain = serde_json::to_vec(entry).map_err(Self::fail)?;
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg(id)
                    .arg(self.sealer.seal(&plain, id.as_bytes()))
                    .ignore();
            }
            None => {
                pipe.cmd("HDEL").arg(&key).arg(id).ignore();
            }
        }
        pipe.cmd("INCR").arg(&version).ignore();
        let mut conn = self.redis.conn();
        let _: () = self
            .redis
            .call("linked accounts save", pipe.query_async(&mut conn))
            .await
            .map_err(Self::fail)?;
        Ok(())
    }

    async fn version(&self) -> Result<u64, StoreError> {
        let version = self.redis.key(&["accounts", "version"]);
        let mut conn = self.redis.conn();
        let n: Option<u64> = self
            .redis
            .call(
                "linked accounts version",
                redis::cmd("GET").arg(&version).query_async(&mut conn),
            )
            .await
            .map_err(Self::fail)?;
        Ok(n.unwrap_or(0))
    }
}
