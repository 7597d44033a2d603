//! `brokergraph`: parse the command line, load the config (exit 2 on a bad one),
//! then run the command. Everything else lives in the library.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context;
use brokergraph::cli::{Cli, Command};
use brokergraph::config::{self, Config};
use brokergraph::secret::Secret;
use clap::Parser;

/// Exit code of a configuration error (clap uses 2 for usage errors too).
const CONFIG_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command() {
        Command::Schema => schema(),
        Command::HashKey { key } => hash_key(key),
        Command::CheckConfig => return check_config(&cli),
        Command::Healthcheck => return healthcheck(&cli),
        Command::Serve => {
            let env = config::process_env();
            let config = match Config::load_from(&cli, &env) {
                Ok(config) => config,
                Err(e) => return config_error(&e),
            };
            serve(config, &env)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "brokergraph stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(e: &config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(CONFIG_ERROR)
}

/// Logging starts inside the runtime because the OTLP exporter, when configured,
/// runs on it; the guard is dropped after the server has stopped and before the
/// runtime, which flushes the spans of the last requests.
fn serve(config: Config, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let telemetry = {
        let _inside = runtime.enter();
        brokergraph::telemetry::init(&config.log)
    };
    for name in config::unknown_env_vars(env) {
        tracing::warn!(variable = %name, "ignoring unknown BROKERGRAPH_* environment variable");
    }
    tracing::debug!(?config, "effective configuration");
    let served = runtime.block_on(brokergraph::server::serve(config));
    drop(telemetry);
    served?;
    Ok(())
}

fn schema() -> anyhow::Result<()> {
    let sdl = brokergraph::graphql::sdl();
    print!("{sdl}");
    if !sdl.ends_with('\n') {
        println!();
    }
    Ok(())
}

fn check_config(cli: &Cli) -> ExitCode {
    let env: HashMap<String, String> = config::process_env();
    for name in config::unknown_env_vars(&env) {
        eprintln!("warning: ignoring unknown environment variable {name}");
    }
    match Config::load_with_origins(cli, &env) {
        Ok((config, origins)) => {
            print!("{}", config::to_redacted_toml(&config, &origins));
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
}

/// `GET /healthz` on the address the configuration listens on (loopback when it
/// listens on all interfaces), the way the container's HEALTHCHECK runs it.
fn healthcheck(cli: &Cli) -> ExitCode {
    let env = config::process_env();
    let config = match Config::load_from(cli, &env) {
        Ok(config) => config,
        Err(e) => return config_error(&e),
    };
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(3))
                    .build()?;
                Ok(client.get(&url).send().await?.status())
            })
        });
    match status {
        Ok(status) if status.is_success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("unhealthy: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {url}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Hashes the key given, or the first line of stdin. Surrounding whitespace is
/// dropped: `echo KEY |` adds a newline, and an HTTP header value is trimmed too.
fn hash_key(key: Option<Secret>) -> anyhow::Result<()> {
    let key = match key {
        Some(key) => key,
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("type the gateway API key, then Enter and Ctrl-D:");
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the key from stdin")?;
            Secret::new(text)
        }
    };
    let key = key.expose().trim();
    anyhow::ensure!(!key.is_empty(), "no key given (pass it on stdin)");
    anyhow::ensure!(
        !key.contains(char::is_whitespace),
        "a gateway API key cannot contain whitespace (it is sent as `Authorization: Bearer <key>`)"
    );
    println!("{}", brokergraph::auth::hash_key(key));
    Ok(())
}
