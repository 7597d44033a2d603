//! `[admin]`: the admin API (`/admin/accounts`), with which the frontend's backend
//! links and unlinks broker accounts at run time. Off unless `admin.token` is set.

use serde::Deserialize;

use super::check::{fail, Check};
use crate::secret::Secret;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// The bearer token of `/admin/*` (`BROKERGRAPH_ADMIN_TOKEN`); unset: no admin API.
    pub token: Option<Secret>,
}

impl AdminSettings {
    pub(crate) fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// `store_key`: whether `token_store.key` is set, since linked accounts are
    /// kept encrypted with it.
    pub(crate) fn validate(&self, store_key: bool) -> Check {
        let Some(token) = &self.token else {
            return Ok(());
        };
        if token.expose().trim().len() < 32 {
            fail(
                "admin.token",
                "must be at least 32 characters (`openssl rand -hex 32`)",
            )?;
        }
        if !store_key {
            fail(
                "token_store.key",
                "is required with admin.token: linked accounts are kept encrypted in the token store \
                 (set BROKERGRAPH_STORE_KEY to 64 hex characters)",
            )?;
        }
        Ok(())
    }
}
