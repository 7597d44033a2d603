//! The one list of every scalar setting: its dotted key, its type, its flag and what
//! it means. Environment variable names are derived from the key, the env layer
//! looks keys up here, and `render::reference_table()` renders the operator docs
//! from it, so the docs, the env mapping and the loader cannot drift apart.

/// How an environment variable's text becomes a TOML value before deserializing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
}

pub(crate) struct Setting {
    /// Dotted key as written in the TOML file (`graphql.max_page_size`).
    pub key: &'static str,
    pub kind: Kind,
    /// CLI flag, for the few settings that have one (the highest layer: `crate::cli`).
    pub flag: Option<&'static str>,
    /// Never echoed in errors, `check-config` or docs.
    pub secret: bool,
    pub doc: &'static str,
    /// An environment variable name other than the one derived from the key, for a
    /// setting whose variable deployments already use (`BROKERGRAPH_BROKER` for
    /// `broker.kind`, as docs/brokers.md documents it).
    pub env: Option<&'static str>,
}

const fn s(key: &'static str, kind: Kind, doc: &'static str) -> Setting {
    Setting {
        key,
        kind,
        flag: None,
        secret: false,
        doc,
        env: None,
    }
}

pub(crate) const SETTINGS: &[Setting] = &[
    Setting {
        flag: Some("--listen"),
        ..s(
            "listen",
            Kind::Str,
            "IP address and port to serve on. Without `[[keys]]` or `[auth.jwt]` it must be a loopback address.",
        )
    },
    Setting {
        flag: Some("--broker"),
        env: Some("BROKERGRAPH_BROKER"),
        ..s(
            "broker.kind",
            Kind::Str,
            "Broker dialect: `generic` (v1, broker-sim) or `alpaca` (Alpaca Trading API v2).",
        )
    },
    Setting {
        flag: Some("--broker-url"),
        ..s(
            "broker.url",
            Kind::Str,
            "Base URL of the broker REST API, without `/v1` or `/v2`. Unset: the embedded paper broker; with `alpaca` and `broker.key_id`, Alpaca paper (`https://paper-api.alpaca.markets`).",
        )
    },
    Setting {
        flag: Some("--broker-api-key"),
        secret: true,
        ..s(
            "broker.api_key",
            Kind::Str,
            "Broker API key, sent only to the broker. Required with `broker.url`, refused without it.",
        )
    },
    Setting {
        flag: Some("--broker-key-id"),
        secret: true,
        ..s(
            "broker.key_id",
            Kind::Str,
            "Alpaca API key id (`APCA-API-KEY-ID`); `alpaca` only, with `broker.secret`.",
        )
    },
    Setting {
        flag: Some("--broker-secret"),
        secret: true,
        ..s(
            "broker.secret",
            Kind::Str,
            "Alpaca API secret key (`APCA-API-SECRET-KEY`); `alpaca` only, with `broker.key_id`.",
        )
    },
    s("broker.connect_timeout_ms", Kind::Int, "TCP/TLS connect timeout towards the broker."),
    s("broker.request_timeout_ms", Kind::Int, "Timeout of one broker HTTP request."),
    s("broker.ca_file", Kind::Str, "PEM file of CA certificates trusted besides the built-in roots, for an `https://` broker behind a private CA."),
    s("broker.data_url", Kind::Str, "Alpaca's market-data REST host, for quotes (`alpaca` only). Unset: `https://data.alpaca.markets` with Alpaca's trading hosts, else `broker.url`."),
    s("broker.data_stream_url", Kind::Str, "Alpaca's market-data stream host (`wss://…`, `alpaca` only); the feed is its path. Unset: `wss://stream.data.alpaca.markets` with Alpaca's trading hosts, else `broker.url`."),
    s("broker.feed", Kind::Str, "Alpaca's equity feed for quotes: `iex` (every plan) or `sip`."),
    s("broker.quote_symbol_limit", Kind::Int, "Most quote symbols the broker streams at once per credential (broker-sim's `--stream-symbol-limit`, Alpaca's plan); a `quotes` subscription beyond it is refused with `QUERY_TOO_COMPLEX`."),
    s("server.body_limit_bytes", Kind::Int, "Largest accepted request body."),
    s("server.request_timeout_ms", Kind::Int, "Timeout of one gateway request, end to end."),
    s("server.header_read_timeout_ms", Kind::Int, "Longest wait for a request's headers, from the connection's accept or the first byte of a later request; then the connection is closed."),
    s("server.keep_alive_timeout_ms", Kind::Int, "How long a connection may idle between requests, or a response write stall, before it is closed. Keep a load balancer's idle timeout below it."),
    s("server.body_read_timeout_ms", Kind::Int, "Longest wait for a `/graphql` request body after its headers; then HTTP 408, `REQUEST_TIMEOUT`."),
    s("server.max_connections", Kind::Int, "Most TCP connections served at once (WebSockets included); beyond it new ones get a 503 (`/healthz`, `/readyz`, `/metrics` are still served) or are closed. Unset: 80 % of the file limit (`ulimit -n`) at start, minus 64."),
    s("server.graphiql", Kind::Bool, "Serve GraphiQL to browsers at `GET /graphql`. Unset: on when `listen` is loopback, off otherwise."),
    s("server.introspection", Kind::Bool, "Answer introspection queries (`__schema`). Unset: on when `listen` is loopback, off otherwise."),
    s("server.cors_origins", Kind::Str, "Origins allowed cross-origin, comma-separated in the env (`https://app.example`), with credentials; empty: none. No `*` with `[[keys]]` or `[auth.jwt]`."),
    s("auth.jwt.jwks_url", Kind::Str, "The IdP's JWKS endpoint; its keys verify JWT sessions (RS256, ES256, EdDSA). Refetched on an unknown `kid` at most once a minute; the keys held are used while it is down."),
    s("auth.jwt.jwks_file", Kind::Str, "The IdP's JWKS as a file, instead of `auth.jwt.jwks_url`."),
    s("auth.jwt.jwks_timeout_ms", Kind::Int, "Longest wait for one JWKS fetch (5000 when `[auth.jwt]` is set)."),
    s("auth.jwt.issuer", Kind::Str, "The `iss` every JWT must carry; required with `[auth.jwt]`."),
    s("auth.jwt.audience", Kind::Str, "The `aud` every JWT must carry; required with `[auth.jwt]`."),
    s("auth.jwt.account_claim", Kind::Str, "The claim naming the caller's account (`brokergraph_account` when unset)."),
    s("auth.jwt.scope_claim", Kind::Str, "The claim with the caller's scopes, space-separated `read`/`trade` (`scope` when unset)."),
    s("auth.jwt.leeway_secs", Kind::Int, "Clock skew tolerated on `exp` and `nbf` (30 when unset); a WebSocket or SSE stream ends this long after its token's `exp`."),
    Setting {
        secret: true,
        ..s(
            "auth.jwt.hs256_secret",
            Kind::Str,
            "Shared secret (32 bytes or more) for HS256 tokens; unset: HS256 is refused.",
        )
    },
    s("limits.max_depth", Kind::Int, "Deepest selection nesting accepted (`QUERY_TOO_COMPLEX` above)."),
    s("limits.max_complexity", Kind::Int, "Most fields selected in one operation (`QUERY_TOO_COMPLEX` above)."),
    s("limits.max_aliases", Kind::Int, "Most aliased fields in one document (`QUERY_TOO_COMPLEX` above)."),
    s("limits.max_root_fields", Kind::Int, "Most root fields in one operation (`QUERY_TOO_COMPLEX` above)."),
    s("limits.max_variables_bytes", Kind::Int, "Largest `variables` object in JSON bytes (`BAD_USER_INPUT` above)."),
    s("rate_limit.per_minute", Kind::Int, "Requests per minute per gateway key (`[rate_limit.per_key]` overrides); 0: off. Over it: 429 `RATE_LIMITED`."),
    s("rate_limit.burst", Kind::Int, "Requests a gateway key may make at once after being idle."),
    s("audit.file", Kind::Str, "JSON-lines file the mutation audit log is appended to (flushed before each response); unset: tracing only."),
    s("persisted_queries.enabled", Kind::Bool, "Accept Apollo automatic persisted queries (`extensions.persistedQuery`)."),
    s("persisted_queries.max_entries", Kind::Int, "Most persisted queries remembered (least recently used dropped)."),
    s("persisted_queries.allow_list", Kind::Str, "JSON array of the only queries that may run (by hash or text; others: `PERSISTED_QUERY_NOT_IN_LIST`); unset: any query."),
    s("persisted_queries.shared_ttl_secs", Kind::Int, "With `redis.url`: how long a persisted query registered through any replica is kept in Redis for all of them."),
    s("persisted_queries.shared_max_bytes", Kind::Int, "With `redis.url`: longest query text registered in Redis; a longer one is remembered by its replica only."),
    s("graphql.default_page_size", Kind::Int, "Page size of a connection when `first`/`last` is omitted (1..=max)."),
    s("graphql.max_page_size", Kind::Int, "Largest `first`/`last` accepted (1..=500)."),
    s("idempotency.ttl_secs", Kind::Int, "How long a submitted order's idempotency key is remembered."),
    s("idempotency.max_entries", Kind::Int, "Most idempotency records kept in memory."),
    s("idempotency.wait_ms", Kind::Int, "How long a concurrent duplicate waits for the first request's result."),
    s("idempotency.lease_ms", Kind::Int, "How long an in-flight submit holds its key if it never finishes (a crashed replica); longer than `idempotency.resend_deadline_ms`."),
    s("idempotency.resend_deadline_ms", Kind::Int, "The most one submit spends resending with its key to learn an unknown outcome before `OUTCOME_UNKNOWN`."),
    Setting {
        flag: Some("--redis-url"),
        secret: true,
        ..s(
            "redis.url",
            Kind::Str,
            "Redis shared by replicas (idempotency keys, broker budget, invalidation, per-key rate limits, persisted queries, the L2 read cache), e.g. `redis://127.0.0.1:6379`; unset: all in this process. Needs `maxmemory-policy noeviction`.",
        )
    },
    s("oauth.refresh_before_ms", Kind::Int, "How long before an OAuth access token expires it is refreshed (halfway through its life for shorter-lived tokens)."),
    s("token_store.path", Kind::Str, "The encrypted file OAuth tokens are kept in (with `redis.url`: Redis instead)."),
    Setting {
        secret: true,
        env: Some("BROKERGRAPH_STORE_KEY"),
        ..s(
            "token_store.key",
            Kind::Str,
            "AES-256-GCM key of the token store, 64 hex characters; required with OAuth accounts.",
        )
    },
    Setting {
        secret: true,
        ..s(
            "admin.token",
            Kind::Str,
            "Bearer token of the admin API (`PUT`/`DELETE`/`GET /admin/accounts`), 32 characters or more; needs `token_store.key`. Unset: no admin API (404).",
        )
    },
    s("redis.timeout_ms", Kind::Int, "Bound on every Redis call; past it Redis counts as down (reads from local cache, mutations `BROKER_UNAVAILABLE`)."),
    s("redis.key_prefix", Kind::Str, "Prefix of every Redis key and channel, so deployments can share one Redis."),
    s("cache.account_ttl_ms", Kind::Int, "How long an account read is reused."),
    s("cache.positions_ttl_ms", Kind::Int, "How long a page of positions is reused."),
    s("cache.orders_ttl_ms", Kind::Int, "How long a page of an `orders` list is reused."),
    s("cache.open_order_ttl_ms", Kind::Int, "How long one order that can still change is reused."),
    s("cache.terminal_order_ttl_ms", Kind::Int, "How long one filled, canceled, rejected or expired order is reused (it cannot change)."),
    s("cache.instruments_ttl_ms", Kind::Int, "How long an instrument, or a page of instruments, is reused."),
    s("cache.quote_ttl_ms", Kind::Int, "How long a quote snapshot read over REST is reused (a symbol streamed live is served from the stream)."),
    s("cache.stale_ttl_ms", Kind::Int, "Oldest value served (with `extensions.stale`) when the broker fails or the budget is spent."),
    s("cache.max_entries", Kind::Int, "Most entries in each of the eight resource caches."),
    s("cache.max_bytes", Kind::Int, "Most estimated value bytes in each of the eight resource caches (at least 1 MiB)."),
    s("throttle.requests", Kind::Int, "Broker requests per window assumed until its `X-RateLimit-*` headers say otherwise."),
    s("throttle.window_secs", Kind::Int, "Broker rate-limit window assumed until its headers say otherwise."),
    s("throttle.reserve_percent", Kind::Int, "Share of each window kept for submits, cancels and the reads that confirm them (0..=90)."),
    s("throttle.max_read_wait_ms", Kind::Int, "How long a read with nothing cached waits for budget before `RATE_LIMITED`."),
    s("throttle.max_mutation_wait_ms", Kind::Int, "How long a submit or cancel waits for budget before `RATE_LIMITED`."),
    s("paper.seed", Kind::Int, "Seed of the embedded paper broker (same seed, same market)."),
    s("paper.cash", Kind::Str, "Starting cash of the paper account, a decimal string."),
    s("paper.instruments", Kind::Int, "Number of synthetic instruments in the paper market."),
    s("paper.positions", Kind::Int, "Starting positions of the paper account (at most `paper.instruments`)."),
    s("orders.price_collar_pct", Kind::Int, "Price collar in whole percent: a buy limit more than this above the ask, or a sell limit more than this below the bid, is refused with `PRICE_OUTSIDE_COLLAR` (quote cached 1 s; no quote: not checked). 0: off."),
    s("subscriptions.enabled", Kind::Bool, "Serve GraphQL subscriptions (WebSocket upgrade of `GET /graphql`, SSE on `POST /graphql`); off: both are refused with `FORBIDDEN`."),
    s("subscriptions.linger_ms", Kind::Int, "How long a broker stream stays open after its last subscriber left."),
    s("subscriptions.init_timeout_ms", Kind::Int, "How long a WebSocket may take to send `connection_init` before it is closed with 4408."),
    s("subscriptions.ping_ms", Kind::Int, "Interval of the gateway's WebSocket pings and SSE keep-alives; a WebSocket silent for a whole interval after a ping is closed."),
    s("subscriptions.max_per_connection", Kind::Int, "Most operations running at once on one WebSocket (the next gets an `error` message, `QUERY_TOO_COMPLEX`)."),
    s("subscriptions.max_connections_per_key", Kind::Int, "Most WebSocket and SSE connections open at once per gateway key (the next: close 4429, or 429 `RATE_LIMITED` for SSE)."),
    s("subscriptions.max_symbols", Kind::Int, "Most symbols in one `quotes` subscription (`QUERY_TOO_COMPLEX` above)."),
    s("subscriptions.history", Kind::Int, "Order events kept per account for `orderUpdates(after:)`."),
    s("subscriptions.lease_ms", Kind::Int, "With Redis: how long a replica's hold on an account's broker stream lasts unrenewed (another replica then takes over)."),
    s("log.format", Kind::Str, "`text` or `json` (one JSON object per line, for log shippers)."),
    s("log.filter", Kind::Str, "tracing `EnvFilter` directives; `RUST_LOG`, when set, wins."),
    s("log.otlp_endpoint", Kind::Str, "OpenTelemetry collector to export spans to over OTLP/HTTP, e.g. `http://otel-collector:4318`; unset: no export. Needs a build with `--features otlp`."),
    s("log.otlp_service_name", Kind::Str, "`service.name` of the exported spans."),
];

/// The prefix of every brokergraph environment variable.
pub(crate) const ENV_PREFIX: &str = "BROKERGRAPH_";
/// Names the config file; not a setting itself (it says where the settings are).
pub(crate) const CONFIG_ENV: &str = "BROKERGRAPH_CONFIG";

/// `graphql.max_page_size` → `BROKERGRAPH_GRAPHQL_MAX_PAGE_SIZE`.
pub(crate) fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_uppercase())
}

/// The environment variable of `setting`: its fixed name, or the derived one.
pub(crate) fn env_of(setting: &Setting) -> String {
    setting
        .env
        .map(str::to_owned)
        .unwrap_or_else(|| env_name(setting.key))
}

pub(crate) fn by_env(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| env_of(s) == name)
}

pub(crate) fn is_secret(key: &str) -> bool {
    const ACCOUNT_SECRETS: [&str; 5] = [
        ".api_key",
        ".key_id",
        ".secret",
        ".client_secret",
        ".refresh_token",
    ];
    SETTINGS.iter().any(|s| s.secret && s.key == key)
        || (key.starts_with("accounts") && ACCOUNT_SECRETS.iter().any(|f| key.ends_with(f)))
}

/// Variables Kubernetes injects for a Service named `brokergraph`
/// (`BROKERGRAPH_PORT`, `BROKERGRAPH_SERVICE_HOST`, ...): expected, not typos.
fn is_platform_var(name: &str) -> bool {
    let rest = &name[ENV_PREFIX.len()..];
    rest == "PORT" || rest.starts_with("PORT_") || rest.starts_with("SERVICE_")
}

/// `BROKERGRAPH_*` variables that are neither a setting nor the config file, most
/// likely typos. They are ignored rather than refused, because a deployment
/// platform may set variables with our prefix, but worth a warning.
pub fn unknown_env_vars<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<String> {
    let mut unknown: Vec<String> = env
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with(ENV_PREFIX) && name.as_str() != CONFIG_ENV)
        .filter(|name| by_env(name).is_none() && !is_platform_var(name))
        .cloned()
        .collect();
    unknown.sort();
    unknown
}
