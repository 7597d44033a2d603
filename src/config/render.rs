//! The effective configuration as TOML, for `check-config` and the docs' default
//! column. Written by hand rather than with `Serialize` so that no secret type ever
//! needs to be serializable: the broker key renders as `[redacted]`, key hashes
//! abbreviated. Durations render as the whole number of their key's unit
//! (`account_ttl_ms = 2000`), as they are written.

use std::time::Duration;

use toml::{Table, Value};

use super::accounts::AccountConfig;
use super::audit::AuditSettings;
use super::auth::JwtSettings;
use super::broker::BrokerSettings;
use super::cache::CacheSettings;
use super::idempotency::IdempotencySettings;
use super::keys::{abbreviate_hash, GatewayKeyConfig};
use super::limits::LimitsSettings;
use super::log::{LogFormat, LogSettings};
use super::origin::{Origin, Origins};
use super::paper::PaperSettings;
use super::persisted_queries::PersistedQuerySettings;
use super::rate_limit::RateLimitSettings;
use super::redis::RedisSettings;
use super::reference::{env_of, SETTINGS};
use super::server::ServerSettings;
use super::subscriptions::SubscriptionSettings;
use super::throttle::ThrottleSettings;
use super::Config;

pub(crate) fn to_table(config: &Config) -> Table {
    let mut root = Table::new();
    root.insert("listen".into(), config.listen.to_string().into());
    root.insert("broker".into(), broker(&config.broker).into());
    root.insert("server".into(), server(&config.server).into());
    let mut graphql = Table::new();
    graphql.insert(
        "default_page_size".into(),
        int(config.graphql.default_page_size),
    );
    graphql.insert("max_page_size".into(), int(config.graphql.max_page_size));
    root.insert("graphql".into(), graphql.into());
    root.insert(
        "idempotency".into(),
        idempotency(&config.idempotency).into(),
    );
    root.insert("cache".into(), cache(&config.cache).into());
    root.insert("throttle".into(), throttle(&config.throttle).into());
    root.insert("paper".into(), paper(&config.paper).into());
    root.insert("log".into(), log(&config.log).into());
    if !config.accounts.is_empty() {
        root.insert("accounts".into(), accounts(&config.accounts));
    }
    if !config.keys.is_empty() {
        root.insert("keys".into(), keys(&config.keys));
    }
    if let Some(jwt) = &config.auth.jwt {
        let mut auth = Table::new();
        auth.insert("jwt".into(), self::jwt(jwt).into());
        root.insert("auth".into(), auth.into());
    }
    root.insert("limits".into(), limits(&config.limits).into());
    root.insert("rate_limit".into(), rate_limit(&config.rate_limit).into());
    root.insert("audit".into(), audit(&config.audit).into());
    let apq = persisted_queries(&config.persisted_queries);
    root.insert("persisted_queries".into(), apq.into());
    root.insert("redis".into(), redis(&config.redis).into());
    let mut oauth = Table::new();
    oauth.insert("refresh_before_ms".into(), ms(config.oauth.refresh_before));
    root.insert("oauth".into(), oauth.into());
    let mut store = Table::new();
    let path = config.token_store.path.display().to_string();
    store.insert("path".into(), path.into());
    if config.token_store.key.is_some() {
        store.insert("key".into(), "[redacted]".into());
    }
    root.insert("token_store".into(), store.into());
    if config.admin.token.is_some() {
        let mut admin = Table::new();
        admin.insert("token".into(), "[redacted]".into());
        root.insert("admin".into(), admin.into());
    }
    root.insert(
        "subscriptions".into(),
        subscriptions(&config.subscriptions).into(),
    );
    let mut orders = Table::new();
    orders.insert(
        "price_collar_pct".into(),
        int(config.orders.price_collar_pct),
    );
    root.insert("orders".into(), orders.into());
    root
}

fn jwt(j: &JwtSettings) -> Table {
    let mut jwt = Table::new();
    if let Some(file) = &j.jwks_file {
        jwt.insert("jwks_file".into(), file.display().to_string().into());
    }
    if let Some(url) = &j.jwks_url {
        jwt.insert("jwks_url".into(), url.clone().into());
    }
    jwt.insert("jwks_timeout_ms".into(), ms(j.jwks_timeout));
    jwt.insert("issuer".into(), j.issuer.clone().into());
    jwt.insert("audience".into(), j.audience.clone().into());
    jwt.insert("account_claim".into(), j.account_claim.clone().into());
    jwt.insert("scope_claim".into(), j.scope_claim.clone().into());
    jwt.insert("leeway_secs".into(), secs(j.leeway));
    if j.hs256_secret.is_some() {
        jwt.insert("hs256_secret".into(), "[redacted]".into());
    }
    jwt
}

/// TOML integers are i64; settings beyond that are not meaningful anyway.
fn int(n: impl TryInto<i64>) -> Value {
    Value::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> Value {
    int(d.as_millis())
}

fn secs(d: Duration) -> Value {
    int(d.as_secs())
}

fn broker(b: &BrokerSettings) -> Table {
    let mut broker = Table::new();
    broker.insert("kind".into(), b.kind.as_str().into());
    if let Some(url) = &b.url {
        broker.insert("url".into(), url.clone().into());
    }
    for (key, secret) in [
        ("api_key", &b.api_key),
        ("key_id", &b.key_id),
        ("secret", &b.secret),
    ] {
        if secret.is_some() {
            broker.insert(key.into(), "[redacted]".into());
        }
    }
    broker.insert("connect_timeout_ms".into(), ms(b.connect_timeout));
    broker.insert("request_timeout_ms".into(), ms(b.request_timeout));
    if let Some(path) = &b.ca_file {
        broker.insert("ca_file".into(), path.display().to_string().into());
    }
    for (key, url) in [
        ("data_url", &b.data_url),
        ("data_stream_url", &b.data_stream_url),
    ] {
        if let Some(url) = url {
            broker.insert(key.into(), url.clone().into());
        }
    }
    broker.insert("feed".into(), b.feed.as_str().into());
    broker.insert("quote_symbol_limit".into(), int(b.quote_symbol_limit));
    broker
}

fn server(s: &ServerSettings) -> Table {
    let mut server = Table::new();
    server.insert("body_limit_bytes".into(), int(s.body_limit_bytes));
    server.insert("request_timeout_ms".into(), ms(s.request_timeout));
    server.insert("header_read_timeout_ms".into(), ms(s.header_read_timeout));
    server.insert("keep_alive_timeout_ms".into(), ms(s.keep_alive_timeout));
    server.insert("body_read_timeout_ms".into(), ms(s.body_read_timeout));
    if let Some(max) = s.max_connections {
        server.insert("max_connections".into(), int(max));
    }
    if let Some(on) = s.graphiql {
        server.insert("graphiql".into(), on.into());
    }
    if let Some(on) = s.introspection {
        server.insert("introspection".into(), on.into());
    }
    let origins = s.cors_origins.iter().map(|o| Value::from(o.as_str()));
    server.insert("cors_origins".into(), Value::Array(origins.collect()));
    server
}

fn idempotency(i: &IdempotencySettings) -> Table {
    let mut idempotency = Table::new();
    idempotency.insert("ttl_secs".into(), secs(i.ttl));
    idempotency.insert("max_entries".into(), int(i.max_entries));
    idempotency.insert("wait_ms".into(), ms(i.wait));
    idempotency.insert("lease_ms".into(), ms(i.lease));
    idempotency.insert("resend_deadline_ms".into(), ms(i.resend_deadline));
    idempotency
}

fn cache(c: &CacheSettings) -> Table {
    let mut cache = Table::new();
    for (key, value) in [
        ("account_ttl_ms", c.account_ttl),
        ("positions_ttl_ms", c.positions_ttl),
        ("orders_ttl_ms", c.orders_ttl),
        ("open_order_ttl_ms", c.open_order_ttl),
        ("terminal_order_ttl_ms", c.terminal_order_ttl),
        ("instruments_ttl_ms", c.instruments_ttl),
        ("quote_ttl_ms", c.quote_ttl),
        ("stale_ttl_ms", c.stale_ttl),
    ] {
        cache.insert(key.into(), ms(value));
    }
    cache.insert("max_entries".into(), int(c.max_entries));
    cache.insert("max_bytes".into(), int(c.max_bytes));
    cache
}

fn throttle(t: &ThrottleSettings) -> Table {
    let mut throttle = Table::new();
    throttle.insert("requests".into(), int(t.requests));
    throttle.insert("window_secs".into(), secs(t.window));
    throttle.insert("reserve_percent".into(), int(t.reserve_percent));
    throttle.insert("max_read_wait_ms".into(), ms(t.max_read_wait));
    throttle.insert("max_mutation_wait_ms".into(), ms(t.max_mutation_wait));
    throttle
}

fn paper(p: &PaperSettings) -> Table {
    let mut paper = Table::new();
    paper.insert("seed".into(), int(p.seed));
    paper.insert("cash".into(), p.cash.clone().into());
    paper.insert("instruments".into(), int(p.instruments));
    paper.insert("positions".into(), int(p.positions));
    paper
}

fn log(l: &LogSettings) -> Table {
    let mut log = Table::new();
    let format = match l.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    log.insert("format".into(), format.into());
    log.insert("filter".into(), l.filter.clone().into());
    if let Some(endpoint) = &l.otlp_endpoint {
        log.insert("otlp_endpoint".into(), endpoint.clone().into());
    }
    log.insert(
        "otlp_service_name".into(),
        l.otlp_service_name.clone().into(),
    );
    log
}

fn keys(keys: &[GatewayKeyConfig]) -> Value {
    let keys = keys.iter().map(|k| {
        let mut t = Table::new();
        t.insert("id".into(), k.id.clone().into());
        t.insert("sha256".into(), abbreviate_hash(&k.sha256).into());
        let scopes = k.scopes.iter().map(|s| Value::from(s.as_str())).collect();
        t.insert("scopes".into(), Value::Array(scopes));
        t.insert("account".into(), k.account.clone().into());
        Value::Table(t)
    });
    Value::Array(keys.collect())
}

/// Ids, dialects and URLs; every credential `[redacted]`, the OAuth client id too
/// (some brokers treat it as a secret).
fn accounts(accounts: &[AccountConfig]) -> Value {
    let redacted = |t: &mut Table, key: &str, present: bool| {
        if present {
            t.insert(key.into(), "[redacted]".into());
        }
    };
    let accounts = accounts.iter().map(|a| {
        let mut t = Table::new();
        t.insert("id".into(), a.id.clone().into());
        t.insert("broker".into(), a.broker.as_str().into());
        if let Some(url) = &a.url {
            t.insert("url".into(), url.clone().into());
        }
        redacted(&mut t, "api_key", a.api_key.is_some());
        redacted(&mut t, "key_id", a.key_id.is_some());
        redacted(&mut t, "secret", a.secret.is_some());
        if let Some(oauth) = &a.oauth {
            let mut o = Table::new();
            o.insert("token_url".into(), oauth.token_url.clone().into());
            redacted(&mut o, "client_id", true);
            redacted(&mut o, "client_secret", true);
            redacted(&mut o, "refresh_token", oauth.refresh_token.is_some());
            let scopes = oauth.scopes.iter().map(|s| Value::from(s.as_str()));
            o.insert("scopes".into(), Value::Array(scopes.collect()));
            t.insert("oauth".into(), o.into());
        }
        Value::Table(t)
    });
    Value::Array(accounts.collect())
}

fn limits(l: &LimitsSettings) -> Table {
    let mut limits = Table::new();
    limits.insert("max_depth".into(), int(l.max_depth));
    limits.insert("max_complexity".into(), int(l.max_complexity));
    limits.insert("max_aliases".into(), int(l.max_aliases));
    limits.insert("max_root_fields".into(), int(l.max_root_fields));
    limits.insert("max_variables_bytes".into(), int(l.max_variables_bytes));
    limits
}

fn rate_limit(r: &RateLimitSettings) -> Table {
    let mut rate = Table::new();
    rate.insert("per_minute".into(), int(r.per_minute));
    rate.insert("burst".into(), int(r.burst));
    if !r.per_key.is_empty() {
        let per_key = r.per_key.iter().map(|(k, v)| (k.clone(), int(*v)));
        rate.insert("per_key".into(), Value::Table(per_key.collect()));
    }
    rate
}

fn audit(a: &AuditSettings) -> Table {
    let mut audit = Table::new();
    if let Some(file) = &a.file {
        audit.insert("file".into(), file.display().to_string().into());
    }
    audit
}

fn persisted_queries(p: &PersistedQuerySettings) -> Table {
    let mut apq = Table::new();
    apq.insert("enabled".into(), p.enabled.into());
    apq.insert("max_entries".into(), int(p.max_entries));
    apq.insert("shared_ttl_secs".into(), secs(p.shared_ttl));
    apq.insert("shared_max_bytes".into(), int(p.shared_max_bytes));
    if let Some(path) = &p.allow_list {
        apq.insert("allow_list".into(), path.display().to_string().into());
    }
    apq
}

fn redis(r: &RedisSettings) -> Table {
    let mut redis = Table::new();
    if r.url.is_some() {
        redis.insert("url".into(), "[redacted]".into());
    }
    redis.insert("timeout_ms".into(), ms(r.timeout));
    redis.insert("key_prefix".into(), r.key_prefix.clone().into());
    redis
}

fn subscriptions(s: &SubscriptionSettings) -> Table {
    let mut subscriptions = Table::new();
    subscriptions.insert("enabled".into(), s.enabled.into());
    subscriptions.insert("linger_ms".into(), ms(s.linger));
    subscriptions.insert("init_timeout_ms".into(), ms(s.init_timeout));
    subscriptions.insert("ping_ms".into(), ms(s.ping));
    subscriptions.insert("max_per_connection".into(), int(s.max_per_connection));
    subscriptions.insert(
        "max_connections_per_key".into(),
        int(s.max_connections_per_key),
    );
    subscriptions.insert("max_symbols".into(), int(s.max_symbols));
    subscriptions.insert("history".into(), int(s.history));
    subscriptions.insert("lease_ms".into(), ms(s.lease));
    subscriptions
}

/// The value at a dotted key (`graphql.max_page_size`), if set.
fn lookup<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
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

/// The Markdown table of docs/configuration.md: key, env, flag, default, meaning.
/// Rendered from the code, and a test checks that the docs contain it verbatim, so
/// the docs cannot go stale.
pub fn reference_table() -> String {
    let defaults = to_table(&Config::default());
    let mut out = String::from("| key | env | flag | default | meaning |\n|---|---|---|---|---|\n");
    for setting in SETTINGS {
        let default = match lookup(&defaults, setting.key) {
            Some(value) => format!("`{value}`"),
            None => "unset".to_string(),
        };
        let flag = setting.flag.map(|f| format!("`{f}`")).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | `{}` | {flag} | {default} | {} |\n",
            setting.key,
            env_of(setting),
            setting.doc
        ));
    }
    out
}
