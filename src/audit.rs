//! The mutation audit log: every mutation attempt (`submitOrder`, `cancelOrder`,
//! `replaceOrder`, `closePosition`, `cancelAllOrders`), whoever
//! made it and however it ended, as a tracing event on target `audit` and,
//! optionally, one JSON line in a file.
//!
//! The file line is written and flushed to the OS before the mutation's response
//! leaves: a client that saw an answer can rely on its audit line existing even if
//! the process dies right after. Secrets never reach it: the caller is named by key
//! id (and a JWT session by its subject), and the input is the order as the client wrote it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One mutation attempt, as logged.
#[derive(Debug, Serialize)]
pub(crate) struct AuditRecord {
    /// RFC 3339 wall time of the answer.
    pub at: String,
    /// The mutation's GraphQL name (`submitOrder`, `replaceOrder`...).
    pub mutation: &'static str,
    pub key_id: String,
    /// The account the mutation was made in.
    pub account: String,
    /// The signed-in user of a JWT session (its `sub`); absent for gateway keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub idempotency_key: Option<String>,
    pub input: Value,
    /// `OK`, the first userError code, or the GraphQL error code.
    pub outcome: String,
    pub broker_order_id: Option<String>,
    pub replayed: bool,
    pub latency_ms: f64,
}

/// The sink; shared by every request.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    /// Opens (creating, appending) the JSON-lines file, if one is configured, so a
    /// bad path stops the gateway at startup instead of losing the first lines.
    pub fn open(path: Option<&Path>) -> Result<AuditLog, AuditError> {
        let file = match path {
            None => None,
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| AuditError::Open {
                        path: path.to_path_buf(),
                        source,
                    })?,
            )),
        };
        Ok(AuditLog { file })
    }

    pub(crate) fn record(&self, record: &AuditRecord) {
        let input = record.input.to_string();
        tracing::info!(
            target: "audit",
            mutation = record.mutation,
            key_id = %record.key_id,
            account = %record.account,
            subject = record.subject.as_deref().unwrap_or("-"),
            idempotency_key = record.idempotency_key.as_deref().unwrap_or("-"),
            input = %input,
            outcome = %record.outcome,
            broker_order_id = record.broker_order_id.as_deref().unwrap_or("-"),
            replayed = record.replayed,
            latency_ms = record.latency_ms,
            "mutation"
        );
        let Some(file) = &self.file else { return };
        let mut line = serde_json::to_vec(record).expect("plain values serialize");
        line.push(b'\n');
        // One write of the whole line under the lock: lines never interleave, and
        // an append-mode write of a small buffer lands whole.
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(&line).and_then(|()| file.flush()) {
            tracing::error!(target: "audit", error = %e, "could not write the audit file");
        }
    }
}
