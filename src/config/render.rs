//! The effective configuration as TOML, for `check-config` and the docs' default
//! column. Written by hand rather than with `Serialize` so that no secret type ever
//! needs to be serializable: the broker key renders as `[redacted]`, key hashes
//! abbreviated.

use toml::{Table, Value};

use super::{abbreviate_hash, Config, LogFormat, Origin, Origins};

pub(crate) fn to_table(config: &Config) -> Table {
    let mut root = Table::new();
    root.insert("listen".into(), config.listen.to_string().into());

    let b = &config.broker;
    let mut broker = Table::new();
    broker.insert("kind".into(), b.kind.as_str().into());
    if let Some(url) = &b.url {
        broker.insert("url".into(), url.clone().into());
    }
    if b.api_key.is_some() {
        broker.insert("api_key".into(), "[redacted]".into());
    }
    if b.key_id.is_some() {
        broker.insert("key_id".into(), "[redacted]".into());
    }
    if b.secret.is_some() {
        broker.insert("secret".into(), "[redacted]".into());
    }
    broker.insert("connect_timeout_ms".into(), int(b.connect_timeout_ms));
    broker.insert("request_timeout_ms".into(), int(b.request_timeout_ms));
    if let Some(path) = &b.ca_file {
        broker.insert("ca_file".into(), path.display().to_string().into());
    }
    root.insert("broker".into(), broker.into());

    let s = &config.server;
    let mut server = Table::new();
    server.insert("body_limit_bytes".into(), int(s.body_limit_bytes as u64));
    server.insert("request_timeout_ms".into(), int(s.request_timeout_ms));
    if let Some(on) = s.graphiql {
        server.insert("graphiql".into(), on.into());
    }
    root.insert("server".into(), server.into());

    let mut graphql = Table::new();
    graphql.insert(
        "default_page_size".into(),
        int(config.graphql.default_page_size.into()),
    );
    graphql.insert(
        "max_page_size".into(),
        int(config.graphql.max_page_size.into()),
    );
    root.insert("graphql".into(), graphql.into());

    let i = &config.idempotency;
    let mut idempotency = Table::new();
    idempotency.insert("ttl_secs".into(), int(i.ttl_secs));
    idempotency.insert("max_entries".into(), int(i.max_entries));
    idempotency.insert("wait_ms".into(), int(i.wait_ms));
    idempotency.insert("lease_ms".into(), int(i.lease_ms));
    idempotency.insert("resend_deadline_ms".into(), int(i.resend_deadline_ms));
    root.insert("idempotency".into(), idempotency.into());

    let c = &config.cache;
    let mut cache = Table::new();
    for (key, value) in [
        ("account_ttl_ms", c.account_ttl_ms),
        ("positions_ttl_ms", c.positions_ttl_ms),
        ("orders_ttl_ms", c.orders_ttl_ms),
        ("open_order_ttl_ms", c.open_order_ttl_ms),
        ("terminal_order_ttl_ms", c.terminal_order_ttl_ms),
        ("instruments_ttl_ms", c.instruments_ttl_ms),
        ("stale_ttl_ms", c.stale_ttl_ms),
        ("max_entries", c.max_entries),
        ("max_bytes", c.max_bytes),
    ] {
        cache.insert(key.into(), int(value));
    }
    root.insert("cache".into(), cache.into());

    let t = &config.throttle;
    let mut throttle = Table::new();
    throttle.insert("requests".into(), int(t.requests.into()));
    throttle.insert("window_secs".into(), int(t.window_secs));
    throttle.insert("reserve_percent".into(), int(t.reserve_percent.into()));
    throttle.insert("max_read_wait_ms".into(), int(t.max_read_wait_ms));
    throttle.insert("max_mutation_wait_ms".into(), int(t.max_mutation_wait_ms));
    root.insert("throttle".into(), throttle.into());

    let p = &config.paper;
    let mut paper = Table::new();
    paper.insert("seed".into(), int(p.seed));
    paper.insert("cash".into(), p.cash.clone().into());
    paper.insert("instruments".into(), int(p.instruments as u64));
    paper.insert("positions".into(), int(p.positions as u64));
    root.insert("paper".into(), paper.into());

    let mut log = Table::new();
    let format = match config.log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    log.insert("format".into(), format.into());
    log.insert("filter".into(), config.log.filter.clone().into());
    if let Some(endpoint) = &config.log.otlp_endpoint {
        log.insert("otlp_endpoint".into(), endpoint.clone().into());
    }
    log.insert(
        "otlp_service_name".into(),
        config.log.otlp_service_name.clone().into(),
    );
    root.insert("log".into(), log.into());

    let keys: Vec<Value> = config
        .keys
        .iter()
        .map(|k| {
            let mut t = Table::new();
            t.insert("id".into(), k.id.clone().into());
            t.insert("sha256".into(), abbreviate_hash(&k.sha256).into());
            let scopes = k.scopes.iter().map(|s| Value::from(s.as_str())).collect();
            t.insert("scopes".into(), Value::Array(scopes));
            Value::Table(t)
        })
        .collect();
    if !keys.is_empty() {
        root.insert("keys".into(), Value::Array(keys));
    }
    super::hardening::render(config, &mut root);
    super::scaleout::render(config, &mut root);
    root
}

/// TOML integers are i64; settings beyond that are not meaningful anyway.
fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The value at a dotted key (`graphql.max_page_size`), if set.
pub(crate) fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => table.get(key),
        Some((section, rest)) => lookup(table.get(section)?.as_table()?, rest),
    }
}

/// The effective configuration with secrets redacted, headed by a comment that
/// says which keys were set and by which layer; everything else is a default.
pub fn to_redacted_toml(config: &Config, origins: &Origins) -> String {
    let mut out = String::from("# brokergraph effective configuration (secrets redacted)\n");
    let all: Vec<_> = origins.iter().collect();
    // A file's `[section]` is recorded along with its keys; list only the keys.
    let set: Vec<_> = all
        .iter()
        .filter(|(key, origin)| {
            **origin != Origin::Default
                && !all
                    .iter()
                    .any(|(other, _)| other.starts_with(&format!("{key}.")))
        })
        .collect();
    if set.is_empty() {
        out.push_str("# every key is at its default\n");
    } else {
        for (key, origin) in set {
            out.push_str(&format!("# {key}: {origin}\n"));
        }
        out.push_str("# every other key is at its default\n");
    }
    out.push('\n');
    out.push_str(&toml::to_string(&to_table(config)).expect("a table of plain values"));
    out
}
