//! The accounts a gateway serves, at run time: those of the config file, and those
//! linked through the admin API (kept in the token store, `tokens::LinkedStore`).
//!
//! Requests look their account up here on every call and hold the stack only for
//! that call, so an account removed (or replaced) stops serving at once: nothing
//! reaches its caches, stored responses or idempotency records any more, and its
//! open subscriptions end ([`AccountServices::removed`]). With Redis, a change made
//! on another replica is noticed by the store's version, compared before each
//! lookup (as `cluster::epoch` does for mutations), not by a message that could be
//! missed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::{adapter, AccountServices, Shared, StartError};
use crate::config::{Account, AccountConfig, BrokerKind, Config};
use crate::tokens::{LinkedStore, StoreError, TokenStore};

type Map = BTreeMap<String, Arc<AccountServices>>;

/// Why a link or unlink was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// The body is not an account (a field, a dialect, a credential).
    #[error("{0}")]
    BadInput(String),
    /// The config file's accounts are changed there, not here.
    #[error("account {0:?} is configured in the config file; change it there")]
    Configured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account's broker client could not be built (its OAuth tokens, say).
    #[error("account {0}")]
    Connect(String),
}

pub(crate) struct AccountRegistry {
    /// Replaced whole on a change, so a lookup holds the read lock only to clone
    /// an `Arc`.
    map: RwLock<Arc<Map>>,
    /// The config file's ids, in its order (`default` first).
    configured: Vec<String>,
    linker: Option<Linker>,
}

/// What it takes to build, store and compare linked accounts.
struct Linker {
    config: Config,
    shared: Arc<Shared>,
    tokens: Option<Arc<dyn TokenStore>>,
    store: Arc<dyn LinkedStore>,
    /// The store's version the map reflects; `UNSEEN` before the first load and
    /// after this process's own change.
    seen: AtomicU64,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

const UNSEEN: u64 = u64::MAX;

impl AccountRegistry {
    pub(super) fn new(stacks: Vec<AccountServices>) -> AccountRegistry {
        let configured = stacks.iter().map(|s| s.id.clone()).collect();
        let map = stacks
            .into_iter()
            .map(|s| (s.id.clone(), Arc::new(s)))
            .collect();
        AccountRegistry {
            map: RwLock::new(Arc::new(map)),
            configured,
            linker: None,
        }
    }

    /// Turns on linking (the admin API) and loads the accounts linked before.
    pub(super) async fn with_linker(
        mut self,
        config: &Config,
        shared: Arc<Shared>,
        tokens: Option<Arc<dyn TokenStore>>,
        store: Arc<dyn LinkedStore>,
    ) -> Result<AccountRegistry, StartError> {
        self.linker = Some(Linker {
            config: config.clone(),
            shared,
            tokens,
            store,
            seen: AtomicU64::new(UNSEEN),
            reloading: tokio::sync::Mutex::new(()),
        });
        self.sync()
            .await
            .map_err(|e| StartError::Linked(e.to_string()))?;
        Ok(self)
    }

    /// The stack of `id`, after catching up with changes made on other replicas.
    pub(crate) async fn get(&self, id: &str) -> Option<Arc<AccountServices>> {
        if let Err(e) = self.sync().await {
            // Redis down: the accounts as last seen (a removal made meanwhile
            // applies when it is back; the store refuses new links meanwhile).
            tracing::warn!(error = %e, "could not compare the linked accounts' version");
        }
        self.snapshot().get(id).cloned()
    }

    /// Every account, the config file's first.
    pub(crate) fn all(&self) -> Vec<Arc<AccountServices>> {
        let map = self.snapshot();
        let mut all: Vec<_> = self
            .configured
            .iter()
            .filter_map(|id| map.get(id).cloned())
            .collect();
        all.extend(
            map.values()
                .filter(|s| !self.configured.contains(&s.id))
                .cloned(),
        );
        all
    }

    /// `(id, dialect, linked)` of every account: never a credential.
    pub(crate) fn list(&self) -> Vec<(String, BrokerKind, bool)> {
        self.all()
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.account.kind,
                    !self.configured.contains(&s.id),
                )
            })
            .collect()
    }

    fn snapshot(&self) -> Arc<Map> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds or replaces the linked account `id` from the admin API's JSON body;
    /// `true` when it is new.
    pub(crate) async fn link(&self, id: &str, body: Value) -> Result<bool, LinkError> {
        let linker = self.linker.as_ref().expect("linking is on");
        if self.configured.iter().any(|c| c == id) {
            return Err(LinkError::Configured(id.to_string()));
        }
        let mut entry = entry(id, body.clone())?;
        let others: Vec<Account> = self
            .all()
            .iter()
            .filter(|s| s.id != id)
            .map(|s| s.account.clone())
            .collect();
        let account =
            crate::config::check_linked(&mut entry, &others).map_err(|(key, message)| {
                LinkError::BadInput(format!(
                    "{}: {message}",
                    key.trim_start_matches("accounts[0].")
                ))
            })?;
        let mut stored = body;
        stored["id"] = Value::String(id.to_string());
        let mut stack = linker.build(&account).await?;
        stack.linked_from = Some(stored.clone());
        linker.store.put(id, Some(&stored)).await?;
        let new = self.replace(id, Some(stack));
        linker.saw_own_change();
        tracing::info!(account = id, "account linked");
        Ok(new)
    }

    /// Removes the linked account `id`; `false` when there was none.
    pub(crate) async fn unlink(&self, id: &str) -> Result<bool, LinkError> {
        let linker = self.linker.as_ref().expect("linking is on");
        if self.configured.iter().any(|c| c == id) {
            return Err(LinkError::Configured(id.to_string()));
        }
        linker.store.put(id, None).await?;
        let existed = !self.replace(id, None);
        linker.saw_own_change();
        if existed {
            tracing::info!(account = id, "account unlinked");
        }
        Ok(existed)
    }

    /// Puts `stack` at `id` (or removes it); the stack it replaces ends its
    /// streams. `true` when there was none.
    fn replace(&self, id: &str, stack: Option<AccountServices>) -> bool {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Map::clone(&map);
        let old = match stack {
            Some(stack) => next.insert(id.to_string(), Arc::new(stack)),
            None => next.remove(id),
        };
        *map = Arc::new(next);
        match old {
            Some(old) => {
                old.remove();
                false
            }
            None => true,
        }
    }

    /// Reloads the linked accounts when the store's version moved (another
    /// replica linked or unlinked one).
    async fn sync(&self) -> Result<(), LinkError> {
        let Some(linker) = &self.linker else {
            return Ok(());
        };
        let version = linker.store.version().await?;
        if linker.seen.load(Ordering::SeqCst) == version {
            return Ok(());
        }
        let _one = linker.reloading.lock().await;
        if linker.seen.load(Ordering::SeqCst) == version {
            return Ok(());
        }
        let stored = linker.store.all().await?;
        let current = self.snapshot();
        for (id, body) in &stored {
            if self.configured.contains(id) {
                continue;
            }
            let unchanged = current
                .get(id)
                .is_some_and(|s| s.linked_from.as_ref() == Some(body));
            if unchanged {
                continue;
            }
            let built = async {
                let mut entry = entry(id, body.clone())?;
                let account = crate::config::check_linked(&mut entry, &[])
                    .map_err(|(_, m)| LinkError::BadInput(m))?;
                linker.build(&account).await
            };
            match built.await {
                Ok(mut stack) => {
                    stack.linked_from = Some(body.clone());
                    self.replace(id, Some(stack));
                }
                Err(e) => {
                    tracing::error!(account = %id, error = %e, "stored linked account not served")
                }
            }
        }
        for id in current.keys() {
            if !self.configured.contains(id) && !stored.contains_key(id) {
                self.replace(id, None);
            }
        }
        linker.seen.store(version, Ordering::SeqCst);
        Ok(())
    }
}

impl Linker {
    async fn build(&self, account: &Account) -> Result<AccountServices, LinkError> {
        let endpoint = adapter::connect(&self.config, account, self.tokens.as_ref())
            .await
            .map_err(|e| LinkError::Connect(format!("{}: {e}", account.id)))?;
        Ok(AccountServices::build(
            &self.config,
            &self.shared,
            account,
            endpoint,
        ))
    }

    /// After this process's own `put`: its change is in the map already. With a
    /// file store that is the version; with Redis another replica's change may
    /// have come in between, so the next lookup compares again.
    fn saw_own_change(&self) {
        self.seen.store(UNSEEN, Ordering::SeqCst);
    }
}

/// The body as an `[[accounts]]` entry with the path's id.
fn entry(id: &str, mut body: Value) -> Result<AccountConfig, LinkError> {
    let Some(object) = body.as_object_mut() else {
        return Err(LinkError::BadInput(
            "the body must be a JSON object: the fields of an [[accounts]] entry".into(),
        ));
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), Value::String(id.to_string()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(_) => {
            return Err(LinkError::BadInput(format!(
                "id: the body's id differs from the path's {id:?}"
            )))
        }
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let secret = [
            "api_key",
            "key_id",
            "secret",
            "client_secret",
            "refresh_token",
        ]
        .iter()
        .any(|f| path.ends_with(f));
        let message = if secret {
            "must be a string".to_string()
        } else {
            e.inner().to_string()
        };
        LinkError::BadInput(format!("{path}: {message}"))
    })
}
