//! `[[accounts]]`: several broker accounts in one gateway, each gateway key naming
//! one; the single-account settings mean the account `default`.

use brokergraph::config::{Credentials, DEFAULT_ACCOUNT};

use crate::helpers::*;

const KEY_LINE: &str =
    "sha256 = \"5e50f405ace6cbdf17379f4b9f2b0c9f4144c5e380ea0b9298cb02ebd8ffe511\"";

fn load_file(
    contents: &str,
) -> Result<brokergraph::config::Config, brokergraph::config::ConfigError> {
    let file = toml_file(contents);
    load(&["--config", file.to_str().unwrap()], &[])
}

#[test]
fn broker_settings_are_the_default_account_and_keys_name_theirs() {
    let config = load_file(&format!(
        r#"
[broker]
url = "https://one.broker.test"
api_key = "{BROKER_KEY}"

[[accounts]]
id = "desk-2"
url = "https://two.broker.test"
api_key = "other-key"

[[accounts]]
id = "paper"
broker = "alpaca"
key_id = "PK1"
secret = "S1"

[[keys]]
id = "k1"
{KEY_LINE}
scopes = ["read"]

[[keys]]
id = "k2"
sha256 = "{}"
scopes = ["read"]
account = "desk-2"
"#,
        "a".repeat(64)
    ))
    .unwrap();
    let accounts = config.accounts().unwrap();
    let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [DEFAULT_ACCOUNT, "desk-2", "paper"]);
    assert_eq!(accounts[0].url.as_deref(), Some("https://one.broker.test"));
    assert!(
        matches!(&accounts[1].credentials, Some(Credentials::ApiKey(k)) if k.expose() == "other-key")
    );
    // Alpaca without a URL is its paper endpoint, as for broker.*.
    assert!(accounts[2]
        .url
        .as_deref()
        .unwrap()
        .contains("paper-api.alpaca.markets"));
    assert_eq!(config.keys[0].account, DEFAULT_ACCOUNT);
    assert_eq!(config.keys[1].account, "desk-2");
}

#[test]
fn bad_accounts_are_refused_at_load_naming_the_key() {
    let oauth = "[accounts.oauth]\ntoken_url = \"https://b.test/oauth/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let cases = [
        (
            format!("[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\napi_key = \"k\"\n{oauth}"),
            "accounts[0].oauth",
            "not both",
        ),
        (
            "[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\napi_key = \"k\"\n\
             [[accounts]]\nid = \"a\"\nurl = \"https://c.test\"\napi_key = \"k2\"\n"
                .to_string(),
            "accounts[1].id",
            "duplicate account id \"a\"",
        ),
        (
            "[broker]\nurl = \"https://b.test\"\napi_key = \"k\"\n\
             [[accounts]]\nid = \"default\"\nurl = \"https://c.test\"\napi_key = \"k2\"\n"
                .to_string(),
            "accounts[0].id",
            "broker.* settings already configure the account default",
        ),
        (
            format!("[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\napi_key = \"k\"\n[[keys]]\nid = \"k\"\n{KEY_LINE}\nscopes = [\"read\"]\naccount = \"b\"\n"),
            "keys[0].account",
            "unknown account \"b\"",
        ),
        (
            // Without broker.url there is no `default` once accounts are listed.
            format!("[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\napi_key = \"k\"\n[[keys]]\nid = \"k\"\n{KEY_LINE}\nscopes = [\"read\"]\n"),
            "keys[0].account",
            "unknown account \"default\"",
        ),
        (
            "[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\n".to_string(),
            "accounts[0].api_key",
            "is required",
        ),
        (
            "[[accounts]]\nid = \"a\"\nurl = \"https://b.test\"\napi_key = \"k\"\n\
             [[accounts]]\nid = \"b\"\nurl = \"https://b.test\"\napi_key = \"k\"\n"
                .to_string(),
            "accounts",
            "same broker credentials",
        ),
    ];
    for (file, key, message) in cases {
        let err = load_file(&file).expect_err(&file);
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(message), "{err}");
    }
}

#[test]
fn check_config_lists_accounts_without_their_secrets() {
    let file = toml_file(&format!(
        r#"
[[accounts]]
id = "desk-2"
url = "https://two.broker.test"
api_key = "{BROKER_KEY}"

[[accounts]]
id = "tokens"
url = "https://three.broker.test"
[accounts.oauth]
token_url = "https://three.broker.test/oauth/token"
client_id = "client-4711"
client_secret = "{BROKER_KEY}-client"
refresh_token = "{BROKER_KEY}-refresh"

[[keys]]
id = "k1"
{KEY_LINE}
scopes = ["read"]
account = "tokens"
"#
    ));
    let path = file.to_str().unwrap();
    // OAuth accounts need the store key: refused without it, naming the key.
    let out = run(&["check-config", "--config", path], &[], None);
    let line = assert_config_error(&out, "token_store.key");
    assert!(line.contains("BROKERGRAPH_STORE_KEY"), "{line}");
    let out = run(
        &["check-config", "--config", path],
        &[("BROKERGRAPH_STORE_KEY", "abc")],
        None,
    );
    assert_config_error(&out, "token_store.key");
    let store_key = "0123456789abcdef".repeat(4);
    let out = run(
        &["check-config", "--config", path],
        &[("BROKERGRAPH_STORE_KEY", &store_key)],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shown in [
        "id = \"desk-2\"",
        "id = \"tokens\"",
        "https://three.broker.test/oauth/token",
        "account = \"tokens\"",
    ] {
        assert!(stdout.contains(shown), "{shown} in {stdout}");
    }
    assert!(!stdout.contains(BROKER_KEY), "{stdout}");
    assert!(!stdout.contains("client-4711"), "{stdout}");
    assert!(!stdout.contains(&store_key), "{stdout}");
}
