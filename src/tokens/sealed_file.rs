//! A JSON value sealed in one file: a magic prefix naming what the file is, then
//! AES-256-GCM over the JSON (`seal`), with the file's kind as associated data.
//! Written to a temporary file and renamed, so a reader never sees half a file;
//! mode 0600. The token store and the linked accounts each keep one.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::seal::Sealer;
use super::StoreError;

pub(crate) struct SealedFile {
    path: PathBuf,
    sealer: Sealer,
    magic: &'static [u8],
    aad: &'static [u8],
    /// What the file is, in errors ("token store").
    what: &'static str,
}

impl SealedFile {
    pub(crate) fn new(
        path: PathBuf,
        key: &[u8; 32],
        magic: &'static [u8],
        aad: &'static [u8],
        what: &'static str,
    ) -> SealedFile {
        SealedFile {
            path,
            sealer: Sealer::new(key),
            magic,
            aad,
            what,
        }
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(crate) fn fail(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::File {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// The value; the default when the file does not exist.
    pub(crate) fn read<T: DeserializeOwned + Default>(&self) -> Result<T, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
            Err(e) => return Err(self.fail(format!("cannot read: {e}"))),
        };
        let sealed = bytes
            .strip_prefix(self.magic)
            .ok_or_else(|| self.fail(format!("not a brokergraph {} (corrupt?)", self.what)))?;
        let plain = self
            .sealer
            .open(sealed, self.aad)
            .map_err(|e| self.fail(e))?;
        serde_json::from_slice(&plain).map_err(|_| self.fail("decrypted but unreadable"))
    }

    pub(crate) fn write<T: Serialize>(&self, value: &T) -> Result<(), StoreError> {
        let plain = serde_json::to_vec(value).map_err(|e| self.fail(e))?;
        let mut bytes = self.magic.to_vec();
        bytes.extend(self.sealer.seal(&plain, self.aad));
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
