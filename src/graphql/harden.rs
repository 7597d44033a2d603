//! What production hardening adds to the schema: query limits, the introspection
//! switch, persisted queries, and the data that mutations audit and count through.

use std::sync::Arc;

use async_graphql::{ObjectType, SchemaBuilder, SubscriptionType};

use super::apq::{Apq, SharedApq};
use super::documents::DocumentCache;
use super::limits::QueryLimits;
use super::observe::Observe;
use super::partial::PartialResults;
use super::persisted::{AllowList, PersistedQueriesOff};
use crate::audit::AuditLog;
use crate::config::LimitsSettings;
use crate::metrics::Metrics;

/// Schema-level settings of the hardening layer, resolved from the config (e.g.
/// introspection already follows `listen`).
#[derive(Clone, Debug, Default)]
pub struct Hardening {
    pub limits: LimitsSettings,
    pub introspection: bool,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<AuditLog>,
    /// Automatic persisted queries with this many remembered, or off.
    pub apq: Option<usize>,
    /// Only these operations run (and APQ registration is off). The same list on
    /// every replica: it is the file each one loads, never what clients registered.
    pub allow_list: Option<AllowList>,
    /// With replicas on Redis: APQ registrations shared through it.
    pub apq_shared: Option<SharedApq>,
    /// Parsed and validated documents, for every account's schema.
    pub documents: DocumentCache,
}

pub(crate) fn apply<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    hardening: &Hardening,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let l = &hardening.limits;
    let builder = builder
        .limit_depth(l.max_depth)
        .limit_complexity(l.max_complexity)
        .extension(Observe)
        .extension(QueryLimits::new(l))
        .data(hardening.metrics.clone())
        .data(hardening.audit.clone());
    // After the limits, so a query's raw text is measured before APQ parses it.
    let builder = match (&hardening.allow_list, hardening.apq) {
        (Some(list), _) => builder.extension(list.clone()),
        (None, Some(n)) => builder.extension(Apq::new(n, hardening.apq_shared.clone())),
        (None, None) => builder.extension(PersistedQueriesOff),
    };
    // Innermost the document cache: the text it is keyed by is the one persisted
    // queries resolved, and the limits above still count on the document it returns.
    // Partial results learn the root fields from that document.
    let builder = builder
        .extension(PartialResults)
        .extension(hardening.documents.clone());
    if hardening.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}
