//! `[limits]`, `[rate_limit]`, `[audit]` and `[persisted_queries]`: what keeps a
//! gateway on a network standing (query limits, per-key request budgets) and what an
//! operator audits (the mutation log). Kept apart from `mod.rs` because they are
//! one concern, production hardening, and are validated together.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use toml::{Table, Value};

use super::validate::{fail, Check};
use super::Config;

/// Bounds on one GraphQL request, checked before anything runs. The defaults let
/// the dashboard query (account, 20 positions and 20 orders with instruments)
/// through with a wide margin and refuse abuse in microseconds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Deepest selection nesting (the dashboard needs 6).
    pub max_depth: usize,
    /// async-graphql complexity: one per field selected (the dashboard needs ~60).
    pub max_complexity: usize,
    /// Aliased fields in one document: aliases are how one request fans out.
    pub max_aliases: usize,
    /// Fields at the root of the executed operation.
    pub max_root_fields: usize,
    /// Largest `variables` object, as JSON bytes.
    pub max_variables_bytes: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            max_depth: 12,
            max_complexity: 500,
            max_aliases: 30,
            max_root_fields: 20,
            max_variables_bytes: 64 * 1024,
        }
    }
}

/// Per-gateway-key token buckets, so one tool cannot spend the broker budget of all.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per minute each key may make; 0 turns the limit off.
    pub per_minute: u32,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
    /// Per key id: its own requests per minute (TOML only: `[rate_limit.per_key]`).
    pub per_key: HashMap<String, u32>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_minute: 600,
            burst: 60,
            per_key: HashMap::new(),
        }
    }
}

/// The mutation audit log: always a tracing event on target `audit`; also a file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Appends one JSON object per mutation attempt, flushed before the response.
    pub file: Option<PathBuf>,
}

/// Apollo automatic persisted queries, and the allow-list mode for production.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistedQuerySettings {
    /// Accept `extensions.persistedQuery` (hash first, query on a miss).
    pub enabled: bool,
    /// Most registered queries kept (least recently used are dropped).
    pub max_entries: usize,
    /// A JSON array of the only queries that may run (allow-list mode); unset: any.
    pub allow_list: Option<PathBuf>,
}

impl Default for PersistedQuerySettings {
    fn default() -> Self {
        PersistedQuerySettings {
            enabled: true,
            max_entries: 1_000,
            allow_list: None,
        }
    }
}

/// `server.cors_origins` as a TOML array or, for the environment, one string of
/// comma-separated origins.
pub(super) fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let list = match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom("must be a list of origins such as [\"https://app.example\"]")
    })? {
        Raw::List(list) => list,
        Raw::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(list
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect())
}

pub(super) fn validate(config: &Config) -> Check {
    let l = &config.limits;
    for (key, value) in [
        ("limits.max_depth", l.max_depth),
        ("limits.max_complexity", l.max_complexity),
        ("limits.max_aliases", l.max_aliases),
        ("limits.max_root_fields", l.max_root_fields),
        ("limits.max_variables_bytes", l.max_variables_bytes),
        (
            "persisted_queries.max_entries",
            config.persisted_queries.max_entries,
        ),
    ] {
        if value == 0 {
            fail(key, "must be greater than 0, got 0")?;
        }
    }
    if config.rate_limit.per_minute > 0 && config.rate_limit.burst == 0 {
        fail(
            "rate_limit.burst",
            "must be greater than 0 when rate_limit.per_minute is set",
        )?;
    }
    for id in config.rate_limit.per_key.keys() {
        if !config.keys.iter().any(|k| &k.id == id) {
            fail(
                format!("rate_limit.per_key.{id}"),
                "names no configured [[keys]] id",
            )?;
        }
    }
    for origin in &config.server.cors_origins {
        if origin == "*" && !config.keys.is_empty() {
            fail(
                "server.cors_origins",
                "must list origins, not `*`, when gateway keys are configured",
            )?;
        }
        if origin != "*" && reqwest::Url::parse(origin).map(|u| u.origin().is_tuple()) != Ok(true) {
            fail(
                "server.cors_origins",
                format!("must be origins such as https://app.example, got {origin:?}"),
            )?;
        }
    }
    Ok(())
}

/// The rows of `to_table` for these sections (docs' default column, `check-config`).
pub(super) fn render(config: &Config, root: &mut Table) {
    let int = |n: usize| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(Value::Table(server)) = root.get_mut("server") {
        if let Some(on) = config.server.introspection {
            server.insert("introspection".into(), on.into());
        }
        let origins = config
            .server
            .cors_origins
            .iter()
            .map(|o| Value::from(o.as_str()));
        server.insert("cors_origins".into(), Value::Array(origins.collect()));
    }
    let l = &config.limits;
    let mut limits = Table::new();
    limits.insert("max_depth".into(), int(l.max_depth));
    limits.insert("max_complexity".into(), int(l.max_complexity));
    limits.insert("max_aliases".into(), int(l.max_aliases));
    limits.insert("max_root_fields".into(), int(l.max_root_fields));
    limits.insert("max_variables_bytes".into(), int(l.max_variables_bytes));
    root.insert("limits".into(), limits.into());

    let r = &config.rate_limit;
    let mut rate = Table::new();
    rate.insert("per_minute".into(), int(r.per_minute as usize));
    rate.insert("burst".into(), int(r.burst as usize));
    if !r.per_key.is_empty() {
        let per_key = r.per_key.iter().map(|(k, v)| (k.clone(), int(*v as usize)));
        rate.insert("per_key".into(), Value::Table(per_key.collect()));
    }
    root.insert("rate_limit".into(), rate.into());

    let mut audit = Table::new();
    if let Some(file) = &config.audit.file {
        audit.insert("file".into(), file.display().to_string().into());
    }
    root.insert("audit".into(), audit.into());

    let p = &config.persisted_queries;
    let mut apq = Table::new();
    apq.insert("enabled".into(), p.enabled.into());
    apq.insert("max_entries".into(), int(p.max_entries));
    if let Some(path) = &p.allow_list {
        apq.insert("allow_list".into(), path.display().to_string().into());
    }
    root.insert("persisted_queries".into(), apq.into());
}
