//! The `broker-sim` binary: flags (and `BROKER_SIM_*` variables) onto [`SimConfig`].

use std::net::SocketAddr;

use clap::Parser;
use rust_decimal::Decimal;

use broker_sim::{Dialect, FaultProfile, SimConfig};

/// A paper broker serving the generic v1 REST API with a simulated market.
#[derive(Parser, Debug)]
#[command(name = "broker-sim", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "BROKER_SIM_LISTEN", default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// API key of a paper account; repeat for several accounts (env: comma-separated).
    #[arg(
        long = "api-key",
        env = "BROKER_SIM_API_KEY",
        value_delimiter = ',',
        default_value = "sim-key",
        hide_env_values = true
    )]
    api_keys: Vec<String>,
    /// Token for the /sim/ control plane; without it /sim/* answers 404.
    #[arg(long, env = "BROKER_SIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Seed of the universe, prices, ids and fault dice.
    #[arg(long, env = "BROKER_SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Starting cash of every account.
    #[arg(long, env = "BROKER_SIM_CASH", default_value = "1000000.00")]
    cash: Decimal,
    /// Number of synthetic instruments.
    #[arg(long, env = "BROKER_SIM_INSTRUMENTS", default_value_t = 2000)]
    instruments: usize,
    /// Starting positions per account.
    #[arg(long, env = "BROKER_SIM_POSITIONS", default_value_t = 0)]
    positions: usize,
    /// Requests per window per API key.
    #[arg(long, env = "BROKER_SIM_RATE_LIMIT", default_value_t = 200)]
    rate_limit: u32,
    /// Rate-limit window in seconds.
    #[arg(long, env = "BROKER_SIM_RATE_WINDOW_SECS", default_value_t = 60)]
    rate_window_secs: u64,
    /// Market clock step in milliseconds (0 stops the clock).
    #[arg(long, env = "BROKER_SIM_TICK_MS", default_value_t = 250)]
    tick_ms: u64,
    /// Market ticks per simulated session (day orders expire at its end).
    #[arg(long, env = "BROKER_SIM_SESSION_TICKS", default_value_t = 93_600)]
    session_ticks: u64,
    /// Terminal orders kept per account before the oldest are pruned.
    #[arg(long, env = "BROKER_SIM_MAX_CLOSED_ORDERS", default_value_t = 20_000)]
    max_closed_orders: usize,
    /// Idempotency keys kept per account (besides the 24 h limit).
    #[arg(
        long,
        env = "BROKER_SIM_MAX_IDEMPOTENCY_KEYS",
        default_value_t = 20_000
    )]
    max_idempotency_keys: usize,
    /// Initial fault profile: JSON as for POST /sim/faults, or @FILE.
    #[arg(long, env = "BROKER_SIM_FAULTS")]
    faults: Option<String>,
    /// How often stream connections are pinged, in milliseconds (0: never).
    #[arg(long, env = "BROKER_SIM_STREAM_PING_MS", default_value_t = 10_000)]
    stream_ping_ms: u64,
    /// REST API to serve: generic (v1) or alpaca (Alpaca Trading API v2).
    #[arg(long, env = "BROKER_SIM_DIALECT", default_value = "generic", value_parser = ["generic", "alpaca"])]
    dialect: String,
    /// Allow sells beyond the position (short selling).
    #[arg(long, env = "BROKER_SIM_SHORTING")]
    shorting: bool,
    /// Quotes per second per subscribed symbol on a stream (0: none).
    #[arg(long, env = "BROKER_SIM_QUOTE_HZ", default_value_t = 2)]
    quote_hz: u32,
    /// Quote symbols one stream connection may subscribe.
    #[arg(long, env = "BROKER_SIM_STREAM_SYMBOL_LIMIT", default_value_t = 30)]
    stream_symbol_limit: usize,
    /// OAuth 2.0 client of POST /oauth/token as ID:SECRET, one paper account each;
    /// repeat for several (env: comma-separated).
    #[arg(
        long = "oauth-client",
        env = "BROKER_SIM_OAUTH_CLIENT",
        value_delimiter = ',',
        value_parser = oauth_client,
        hide_env_values = true
    )]
    oauth_clients: Vec<(String, String)>,
    /// Lifetime of the access tokens of /oauth/token, in seconds.
    #[arg(long, env = "BROKER_SIM_TOKEN_TTL_SECS", default_value_t = 900)]
    token_ttl_secs: u64,
}

fn oauth_client(arg: &str) -> Result<(String, String), String> {
    match arg.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_owned(), secret.to_owned()))
        }
        _ => Err("expected ID:SECRET".to_owned()),
    }
}

fn load_faults(arg: &str) -> Result<FaultProfile, String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("--faults {path}: {e}"))?,
        None => arg.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| format!("--faults: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = SimConfig {
        listen: cli.listen,
        api_keys: cli.api_keys,
        admin_token: cli.admin_token,
        seed: cli.seed,
        cash: cli.cash,
        instruments: cli.instruments,
        positions: cli.positions,
        rate_limit: cli.rate_limit,
        rate_window_secs: cli.rate_window_secs,
        tick_ms: cli.tick_ms,
        session_ticks: cli.session_ticks,
        max_closed_orders: cli.max_closed_orders,
        max_idempotency_keys: cli.max_idempotency_keys,
        faults: cli.faults.as_deref().map(load_faults).transpose()?,
        stream_ping_ms: cli.stream_ping_ms,
        dialect: match cli.dialect.as_str() {
            "alpaca" => Dialect::Alpaca,
            _ => Dialect::Generic,
        },
        shorting: cli.shorting,
        quote_hz: cli.quote_hz,
        stream_symbol_limit: cli.stream_symbol_limit,
        oauth_clients: cli.oauth_clients,
        token_ttl_secs: cli.token_ttl_secs,
    };
    let sim = broker_sim::spawn(config).await?;
    tracing::info!(url = %sim.base_url(), "serving; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_onto_the_config_and_keys_repeat() {
        let cli = Cli::try_parse_from([
            "broker-sim",
            "--listen",
            "127.0.0.1:9100",
            "--api-key",
            "a",
            "--api-key",
            "b",
            "--admin-token",
            "adm",
            "--seed",
            "7",
            "--cash",
            "5000.00",
            "--instruments",
            "10",
            "--positions",
            "2",
            "--rate-limit",
            "5",
            "--rate-window-secs",
            "2",
            "--tick-ms",
            "0",
            "--faults",
            r#"{"rules":[{"kind":"reset","rate":0.1}]}"#,
            "--oauth-client",
            "app-1:s1",
            "--oauth-client",
            "app-2:s:2",
            "--token-ttl-secs",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.api_keys, ["a", "b"]);
        assert_eq!(
            cli.oauth_clients,
            [
                ("app-1".into(), "s1".into()),
                ("app-2".into(), "s:2".into())
            ]
        );
        assert_eq!(cli.token_ttl_secs, 2);
        assert!(Cli::try_parse_from(["broker-sim", "--oauth-client", "nocolon"]).is_err());
        assert_eq!(
            (
                cli.seed,
                cli.instruments,
                cli.positions,
                cli.rate_limit,
                cli.tick_ms
            ),
            (7, 10, 2, 5, 0)
        );
        assert_eq!(cli.cash.to_string(), "5000.00");
        let faults = load_faults(cli.faults.as_deref().unwrap()).unwrap();
        assert_eq!(faults.rules.len(), 1);
        let defaults = Cli::try_parse_from(["broker-sim"]).unwrap();
        assert_eq!(defaults.api_keys, ["sim-key"]);
        assert_eq!(
            (
                defaults.rate_limit,
                defaults.rate_window_secs,
                defaults.tick_ms
            ),
            (200, 60, 250)
        );
    }
}
