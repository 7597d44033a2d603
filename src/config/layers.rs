//! Merges the file, environment and flag layers into one TOML table, remembering
//! which layer set each key so that an error can say where to fix it. Defaults are
//! not in the table: `#[serde(default)]` fills whatever no layer set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::ConfigError;
use super::origin::{Origin, Origins};
use super::reference::{self, Kind, CONFIG_ENV};
use crate::cli::Cli;

/// The file, env and flag layers merged, and which of them set each key.
pub(crate) fn collect(
    cli: &Cli,
    env: &HashMap<String, String>,
) -> Result<(Table, Origins), ConfigError> {
    let mut table = Table::new();
    let mut origins = Origins::default();
    let file = match &cli.config {
        Some(path) => Some(path.clone()),
        None => env
            .get(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    if let Some(path) = file {
        table = read_file(&path)?;
        record_file_keys(&table, &path, &mut origins);
    }
    apply_env(env, &mut table, &mut origins)?;
    let flags = [
        ("listen", "--listen", cli.listen.clone()),
        ("broker.url", "--broker-url", cli.broker_url.clone()),
        (
            "broker.api_key",
            "--broker-api-key",
            cli.broker_api_key.as_ref().map(|s| s.expose().to_string()),
        ),
        ("broker.kind", "--broker", cli.broker.clone()),
        (
            "redis.url",
            "--redis-url",
            cli.redis_url.as_ref().map(|s| s.expose().to_string()),
        ),
        (
            "broker.key_id",
            "--broker-key-id",
            cli.broker_key_id.as_ref().map(|s| s.expose().to_string()),
        ),
        (
            "broker.secret",
            "--broker-secret",
            cli.broker_secret.as_ref().map(|s| s.expose().to_string()),
        ),
    ];
    for (key, flag, value) in flags {
        if let Some(value) = value {
            insert(&mut table, key, Value::String(value));
            origins.set(key, Origin::Flag(flag));
        }
    }
    Ok((table, origins))
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let fail = |message: String| ConfigError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    text.parse::<Table>().map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        fail(format!(
            "not valid TOML: {at}{}",
            e.message().replace('\n', " ")
        ))
    })
}

/// Records top-level keys and the keys of each section; arrays (`[[keys]]`) are
/// recorded whole.
fn record_file_keys(table: &Table, path: &Path, origins: &mut Origins) {
    for (key, value) in table {
        origins.set(key.clone(), Origin::File(path.to_path_buf()));
        if let Value::Table(section) = value {
            for sub in section.keys() {
                origins.set(format!("{key}.{sub}"), Origin::File(path.to_path_buf()));
            }
        }
    }
}

fn apply_env(
    env: &HashMap<String, String>,
    table: &mut Table,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    for name in names {
        let raw = &env[name];
        if name == "BROKERGRAPH_KEYS" {
            return Err(ConfigError::Invalid {
                key: "keys".to_string(),
                origin: Origin::Env(name.clone()),
                message: "gateway keys can only be set in the config file ([[keys]])".to_string(),
            });
        }
        // An empty variable counts as unset, as `FOO=${FOO:-}` in compose files expects.
        let Some(setting) = reference::by_env(name).filter(|_| !raw.is_empty()) else {
            continue;
        };
        let bad = |message: String| ConfigError::Invalid {
            key: setting.key.to_string(),
            origin: Origin::Env(name.clone()),
            message,
        };
        let value = match setting.kind {
            Kind::Str => Value::String(raw.clone()),
            Kind::Int => raw
                .trim()
                .replace('_', "")
                .parse::<i64>()
                .map(Value::Integer)
                .map_err(|_| bad(format!("expected a whole number, got {raw:?}")))?,
            Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Value::Boolean(true),
                "false" | "0" | "no" | "off" => Value::Boolean(false),
                _ => return Err(bad(format!("expected true or false, got {raw:?}"))),
            },
        };
        insert(table, setting.key, value);
        origins.set(setting.key, Origin::Env(name.clone()));
    }
    Ok(())
}

/// Sets `a.b` in `table`. If the file has a non-table where the section should be,
/// the value is left alone so that deserializing reports the file's mistake.
fn insert(table: &mut Table, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}
