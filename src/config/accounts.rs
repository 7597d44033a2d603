//! `[[accounts]]`: the broker accounts one gateway fronts (DESIGN §12,
//! docs/configuration.md "Accounts"). The single-account settings (`broker.*`,
//! `--broker-url`, their env) remain and mean the account `default`; `resolve`
//! turns both into the one list the rest of the gateway uses. A list, so TOML only.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::broker::{check_url, BrokerKind, BrokerSettings};
use super::check::{fail, Check};
use crate::secret::Secret;

/// The account the single-account settings configure, and the one a gateway key
/// uses when it names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One `[[accounts]]` entry as written.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The gateway's own name for the account, in logs and metrics: never a secret.
    pub id: String,
    #[serde(default)]
    pub broker: BrokerKind,
    /// Unset: Alpaca's paper endpoint for `broker = "alpaca"`; required otherwise.
    pub url: Option<String>,
    pub api_key: Option<Secret>,
    pub key_id: Option<Secret>,
    pub secret: Option<Secret>,
    pub oauth: Option<OAuthConfig>,
}

/// `[accounts.oauth]`: the broker issues short-lived bearer tokens (RFC 6749).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The refresh token to start from (the `refresh_token` grant); without one,
    /// `client_credentials`. Once rotated, the token store's copy wins.
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Ids and URLs only: every credential prints as `[redacted]`.
impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("broker", &self.broker)
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .field("key_id", &self.key_id)
            .field("secret", &self.secret)
            .field("oauth", &self.oauth)
            .finish()
    }
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("refresh_token", &self.refresh_token)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// How an account authenticates at its broker.
#[derive(Clone, Debug, PartialEq)]
pub enum Credentials {
    /// The generic dialect's `Authorization: Bearer <api_key>`.
    ApiKey(Secret),
    /// Alpaca's key id and secret headers.
    Alpaca { key_id: Secret, secret: Secret },
    /// Bearer tokens from the account's token endpoint.
    OAuth(OAuthConfig),
}

/// One account, checked: what `services` builds a stack for.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: String,
    pub kind: BrokerKind,
    /// `None` only for `default` without a configured broker: the embedded paper broker.
    pub url: Option<String>,
    pub credentials: Option<Credentials>,
}

/// Checks and normalizes each entry (trimmed id and URL, Alpaca's paper URL when
/// unset), then lists every account: `default` from `broker.*` first, when it is
/// configured or when there is no `[[accounts]]` (the embedded paper broker, as a
/// fresh clone runs), then the entries in file order.
pub(crate) fn resolve(
    entries: &mut [AccountConfig],
    broker: &BrokerSettings,
) -> Result<Vec<Account>, (String, String)> {
    let mut accounts = Vec::new();
    if broker.url.is_some() || entries.is_empty() {
        accounts.push(default_account(broker));
    }
    let mut ids: HashSet<String> = accounts.iter().map(|a| a.id.clone()).collect();
    for (i, entry) in entries.iter_mut().enumerate() {
        let at = |field: &str| format!("accounts[{i}].{field}");
        entry.id = entry.id.trim().to_string();
        if entry.id.is_empty() {
            fail(at("id"), "must not be empty")?;
        }
        if !entry
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            fail(
                at("id"),
                format!(
                    "{:?} must be letters, digits, '-', '_' or '.' (it is a metric label and a log field)",
                    entry.id
                ),
            )?;
        }
        if !ids.insert(entry.id.clone()) {
            let why = if entry.id == DEFAULT_ACCOUNT {
                "duplicate account id \"default\": the broker.* settings already configure the account default"
                    .to_string()
            } else {
                format!("duplicate account id {:?}", entry.id)
            };
            fail(at("id"), why)?;
        }
        let credentials = credentials(entry, &at)?;
        entry.url = match (&entry.url, entry.broker) {
            (Some(url), _) => Some(check_url(url).map_err(|(_, m)| (at("url"), m))?),
            (None, BrokerKind::Alpaca) => Some(crate::broker::alpaca::PAPER_URL.to_owned()),
            (None, BrokerKind::Generic) => return refuse(at("url"), "is required"),
        };
        if let Credentials::OAuth(oauth) = &credentials {
            check_oauth(oauth, &at)?;
        }
        accounts.push(Account {
            id: entry.id.clone(),
            kind: entry.broker,
            url: entry.url.clone(),
            credentials: Some(credentials),
        });
    }
    refuse_shared_credentials(&accounts)?;
    Ok(accounts)
}

/// One account linked at run time (the admin API): checked as an `[[accounts]]`
/// entry is, and refused when it shares its broker credentials with one of
/// `others`. Failures name the field as `accounts[0].<field>`.
pub(crate) fn check_linked(
    entry: &mut AccountConfig,
    others: &[Account],
) -> Result<Account, (String, String)> {
    let account = resolve(std::slice::from_mut(entry), &BrokerSettings::default())?
        .pop()
        .expect("one entry, one account");
    let mut all = others.to_vec();
    all.push(account.clone());
    refuse_shared_credentials(&all)?;
    Ok(account)
}

fn default_account(broker: &BrokerSettings) -> Account {
    let credentials = match (&broker.api_key, &broker.key_id, &broker.secret) {
        (Some(key), _, _) => Some(Credentials::ApiKey(key.clone())),
        (None, Some(key_id), Some(secret)) => Some(Credentials::Alpaca {
            key_id: key_id.clone(),
            secret: secret.clone(),
        }),
        _ => None,
    };
    Account {
        id: DEFAULT_ACCOUNT.to_string(),
        kind: broker.kind,
        url: broker.url.clone(),
        credentials,
    }
}

/// Exactly one kind of credential, the one the dialect speaks.
fn credentials(
    entry: &AccountConfig,
    at: &dyn Fn(&str) -> String,
) -> Result<Credentials, (String, String)> {
    let static_key = entry.api_key.is_some() || entry.key_id.is_some() || entry.secret.is_some();
    if let Some(oauth) = &entry.oauth {
        if static_key {
            fail(
                at("oauth"),
                "an account authenticates with a static key or with [accounts.oauth], not both: \
                 remove api_key/key_id/secret or the oauth table",
            )?;
        }
        if entry.broker == BrokerKind::Alpaca {
            fail(
                at("oauth"),
                "is for the generic dialect; Alpaca accounts use key_id and secret",
            )?;
        }
        return Ok(Credentials::OAuth(oauth.clone()));
    }
    let nonempty = |field: &str, value: &Secret| -> Check {
        if value.expose().trim().is_empty() {
            fail(at(field), "must not be empty")?;
        }
        Ok(())
    };
    match entry.broker {
        BrokerKind::Generic => {
            if entry.key_id.is_some() || entry.secret.is_some() {
                fail(
                    at("key_id"),
                    "key_id and secret are for broker = \"alpaca\"; the generic broker uses api_key",
                )?;
            }
            let Some(key) = &entry.api_key else {
                return refuse(at("api_key"), "is required (or an [accounts.oauth] table)");
            };
            nonempty("api_key", key)?;
            Ok(Credentials::ApiKey(key.clone()))
        }
        BrokerKind::Alpaca => {
            if entry.api_key.is_some() {
                fail(
                    at("api_key"),
                    "is for the generic broker; Alpaca uses key_id and secret",
                )?;
            }
            match (&entry.key_id, &entry.secret) {
                (Some(key_id), Some(secret)) => {
                    nonempty("key_id", key_id)?;
                    nonempty("secret", secret)?;
                    Ok(Credentials::Alpaca {
                        key_id: key_id.clone(),
                        secret: secret.clone(),
                    })
                }
                (None, _) => refuse(at("key_id"), "is required with broker = \"alpaca\""),
                (_, None) => refuse(at("secret"), "is required with broker = \"alpaca\""),
            }
        }
    }
}

fn check_oauth(oauth: &OAuthConfig, at: &dyn Fn(&str) -> String) -> Check {
    match reqwest::Url::parse(oauth.token_url.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        _ => fail(at("oauth.token_url"), "must be an http:// or https:// URL")?,
    }
    if oauth.client_id.trim().is_empty() {
        fail(at("oauth.client_id"), "must not be empty")?;
    }
    if oauth.client_secret.expose().trim().is_empty() {
        fail(at("oauth.client_secret"), "must not be empty")?;
    }
    Ok(())
}

fn refuse<T>(key: String, message: &str) -> Result<T, (String, String)> {
    Err((key, message.to_string()))
}

/// Two accounts on one broker credential would be one broker account with two
/// caches, two idempotency scopes and two throttles spending one rate budget.
fn refuse_shared_credentials(accounts: &[Account]) -> Check {
    for (i, a) in accounts.iter().enumerate() {
        for b in &accounts[..i] {
            let same = match (&a.credentials, &b.credentials) {
                (Some(Credentials::OAuth(x)), Some(Credentials::OAuth(y))) => {
                    x.token_url == y.token_url && x.client_id == y.client_id
                }
                (Some(x), Some(y)) => x == y,
                _ => false,
            };
            if same && a.url == b.url {
                fail(
                    "accounts",
                    format!(
                        "accounts {:?} and {:?} use the same broker credentials; one broker account is one gateway account",
                        b.id, a.id
                    ),
                )?;
            }
        }
    }
    Ok(())
}
