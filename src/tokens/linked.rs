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

const MAGIC: &[u8] = b"BGA1";
const FILE_AAD: &[u8] = b"brokergraph linked accounts v1";

/// `<token_store.path>.accounts`, written whole to a temporary file and renamed.
pub(crate) struct LinkedFile {
    path: PathBuf,
    sealer: Sealer,
    version: std::sync::atomic::AtomicU64,
}

impl LinkedFile {
    /// Opens and decrypts the file once, so a corrupt or wrongly keyed one stops
    /// the start rather than being overwritten.
    pub(crate) fn open(token_store: &Path, key: &[u8; 32]) -> Result<LinkedFile, StoreError> {
        let mut path = token_store.as_os_str().to_owned();
        path.push(".accounts");
        let file = LinkedFile {
            path: PathBuf::from(path),
            sealer: Sealer::new(key),
            version: Default::default(),
        };
        file.read_all()?;
        Ok(file)
    }

    fn fail(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::File {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    fn read_all(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.fail(format!("cannot read: {e}"))),
        };
        let sealed = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| self.fail("not a brokergraph accounts file (corrupt?)"))?;
        let plain = self
            .sealer
            .open(sealed, FILE_AAD)
            .map_err(|e| self.fail(e))?;
        serde_json::from_slice(&plain).map_err(|_| self.fail("decrypted but unreadable"))
    }

    fn write_all(&self, entries: &BTreeMap<String, Value>) -> Result<(), StoreError> {
        let plain = serde_json::to_vec(entries).map_err(|e| self.fail(e))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend(self.sealer.seal(&plain, FILE_AAD));
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.fail(format!("cannot write: {e}"))
        })
    }
}

#[async_trait]
impl LinkedStore for LinkedFile {
    async fn all(&self) -> Result<BTreeMap<String, Value>, StoreError> {
        self.read_all()
    }

    async fn put(&self, id: &str, entry: Option<&Value>) -> Result<(), StoreError> {
        let mut all = self.read_all()?;
        match entry {
            Some(entry) => all.insert(id.to_string(), entry.clone()),
            None => all.remove(id),
        };
        self.write_all(&all)?;
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
