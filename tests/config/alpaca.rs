//! `--broker alpaca` configuration: defaults, the paper URL, refusals, redaction.

use std::collections::HashMap;

use brokergraph::cli::Cli;
use brokergraph::config::{self, BrokerKind, Config};
use clap::Parser;

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, config::ConfigError> {
    let mut argv = vec!["brokergraph"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load_from(&cli, &env)
}

#[test]
fn keys_without_a_url_mean_alpaca_paper() {
    let config = load(
        &[],
        &[
            ("BROKERGRAPH_BROKER", "alpaca"),
            ("BROKERGRAPH_BROKER_KEY_ID", "PKABC"),
            ("BROKERGRAPH_BROKER_SECRET", "shh-123"),
        ],
    )
    .unwrap();
    assert_eq!(config.broker.kind, BrokerKind::Alpaca);
    assert_eq!(
        config.broker.url.as_deref(),
        Some("https://paper-api.alpaca.markets")
    );
    let shown = format!(
        "{config:?}\n{}",
        config::to_redacted_toml(&config, &Default::default())
    );
    assert!(
        !shown.contains("shh-123") && !shown.contains("PKABC"),
        "{shown}"
    );
}

#[test]
fn flags_work_and_without_keys_alpaca_is_the_embedded_paper_broker() {
    let config = load(&["--broker", "alpaca"], &[]).unwrap();
    assert_eq!(config.broker.url, None);
    let config = load(
        &[
            "--broker",
            "alpaca",
            "--broker-key-id",
            "K",
            "--broker-secret",
            "S",
            "--broker-url",
            "https://api.alpaca.markets",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        config.broker.url.as_deref(),
        Some("https://api.alpaca.markets")
    );
    assert_eq!(load(&[], &[]).unwrap().broker.kind, BrokerKind::Generic);
}

#[test]
fn half_or_mixed_credentials_are_refused_with_the_key_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--broker", "alpaca", "--broker-key-id", "K"],
            "broker.secret",
        ),
        (
            &["--broker", "alpaca", "--broker-api-key", "x"],
            "broker.api_key",
        ),
        (
            &[
                "--broker",
                "alpaca",
                "--broker-url",
                "https://api.alpaca.markets",
            ],
            "broker.key_id",
        ),
        (
            &["--broker-key-id", "K", "--broker-secret", "S"],
            "broker.key_id",
        ),
        (
            &[
                "--broker",
                "alpaca",
                "--broker-key-id",
                "K",
                "--broker-secret",
                "S",
                "--broker-url",
                "https://paper-api.alpaca.markets/v2",
            ],
            "broker.url",
        ),
        (&["--broker", "nasdaq"], "broker.kind"),
    ];
    for (args, key) in cases {
        let err = load(args, &[]).unwrap_err();
        assert_eq!(err.key(), Some(*key), "{args:?}: {err}");
    }
}
