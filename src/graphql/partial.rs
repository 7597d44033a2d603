//! Partial results: each root field's result of a query, kept under the same
//! freshness rules as a whole response, so a request the response cache cannot
//! answer (other variables, another caller, a page cursor in one field) executes
//! only the root fields whose result is not kept.
//!
//! A root field's result is kept when the request that computed it could have been
//! stored whole (`responses.rs`): no error, nothing stale, every read a fresh cache
//! value, the resource caches' generation unchanged from the request's start to its
//! end. It is kept with that request's generation and its earliest TTL end (of all
//! its reads, so at least as early as the field's own), and reused only while the
//! generation has not moved and before that end; the request reusing it records
//! that end as one of its own reads, so a whole response built on it is bounded
//! by it too.
//!
//! A result is kept by (query text, operation, the field's response key, the values
//! of the variables the field's selection uses, the caller's scopes). Not by the
//! caller's key: within one account (each account has its own executor, so its own
//! results) a read does not depend on who asks, so a thousand users of one desk
//! share them. Only fields selected directly at the root are kept, never through a
//! fragment spread at the root.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, ServerResult, Value, Variables};

use crate::auth::Principal;
use crate::request::RequestScope;

/// Bounds what a kept result may be worth (TTLs bound it far sooner).
const MAX_AGE: Duration = Duration::from_secs(60);
/// Bytes kept per account, as estimated by [`weight`].
const MAX_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    query: Arc<str>,
    operation: Option<String>,
    field: String,
    variables: String,
    scopes: String,
}

struct Kept {
    value: Value,
    generation: u64,
    until: Option<Instant>,
    weight: u32,
}

/// One account's kept root-field results.
pub(crate) struct RootResults {
    kept: moka::sync::Cache<Key, Arc<Kept>>,
}

/// One request's part: put in the request's data by the executor, filled by the
/// extension, read back by the executor when the request ends.
#[derive(Clone)]
pub(crate) struct RootRequest(Arc<Mutex<RequestRoots>>);

struct RequestRoots {
    results: Arc<RootResults>,
    operation: Option<String>,
    scopes: String,
    /// The resource caches' generation when the request started.
    generation: u64,
    /// By response key, for the root fields that may be kept.
    keys: HashMap<String, Key>,
    /// What this request executed, to keep if it ends as one that could be stored.
    executed: Vec<(Key, Value)>,
}

impl RootResults {
    pub(crate) fn new() -> RootResults {
        RootResults {
            kept: moka::sync::Cache::builder()
                .max_capacity(MAX_BYTES)
                .weigher(|key: &Key, kept: &Arc<Kept>| {
                    let key = key.query.len() + key.variables.len();
                    kept.weight
                        .saturating_add(key.try_into().unwrap_or(u32::MAX))
                })
                .time_to_live(MAX_AGE)
                .build(),
        }
    }

    /// The request's part, for a request that may be stored whole (a query the
    /// response cache would keep), starting at `generation`.
    pub(crate) fn request(
        self: &Arc<Self>,
        operation: Option<String>,
        principal: &Principal,
        generation: u64,
    ) -> RootRequest {
        let mut scopes = String::new();
        for scope in &principal.scopes {
            scopes.push_str(&format!("{scope:?} "));
        }
        RootRequest(Arc::new(Mutex::new(RequestRoots {
            results: self.clone(),
            operation,
            scopes,
            generation,
            keys: HashMap::new(),
            executed: Vec::new(),
        })))
    }
}

impl RootRequest {
    fn lock(&self) -> std::sync::MutexGuard<'_, RequestRoots> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request ended as one whose whole answer could be stored, with its
    /// reads fresh until `until`: keeps what it executed.
    pub(crate) fn keep(&self, until: Option<Instant>) {
        let mut roots = self.lock();
        let generation = roots.generation;
        for (key, value) in std::mem::take(&mut roots.executed) {
            let kept = Kept {
                weight: weight(&value).try_into().unwrap_or(u32::MAX),
                value,
                generation,
                until,
            };
            roots.results.kept.insert(key, Arc::new(kept));
        }
    }

    fn learn_keys(&self, query: &str, doc: &ExecutableDocument, variables: &Variables) {
        let mut roots = self.lock();
        let Some(op) = selected(doc, roots.operation.as_deref()) else {
            return;
        };
        if op.ty != OperationType::Query {
            return;
        }
        let query: Arc<str> = Arc::from(query);
        let mut keys = HashMap::new();
        for item in &op.selection_set.node.items {
            let Selection::Field(field) = &item.node else {
                continue;
            };
            let field = &field.node;
            let mut used = Vec::new();
            field_variables(doc, field, &mut used, &mut HashSet::new());
            used.sort();
            used.dedup();
            // Absent (the default applies) is not the same as null.
            let values: Vec<(&str, bool, Option<&Value>)> = used
                .iter()
                .map(|name| {
                    let value = variables.get(name);
                    (name.as_str(), value.is_some(), value)
                })
                .collect();
            let Ok(values) = serde_json::to_string(&values) else {
                continue;
            };
            let response_key = field.response_key().node.to_string();
            keys.insert(
                response_key.clone(),
                Key {
                    query: query.clone(),
                    operation: roots.operation.clone(),
                    field: response_key,
                    variables: values,
                    scopes: roots.scopes.clone(),
                },
            );
        }
        roots.keys = keys;
    }

    /// A kept result for the root field `response_key`, still exact.
    fn kept(&self, response_key: &str) -> Result<Arc<Kept>, Option<Key>> {
        let roots = self.lock();
        let key = roots.keys.get(response_key).ok_or(None)?;
        match roots.results.kept.get(key) {
            Some(kept)
                if kept.generation == roots.generation
                    && kept.until.is_none_or(|until| Instant::now() < until) =>
            {
                Ok(kept)
            }
            _ => Err(Some(key.clone())),
        }
    }
}

/// About the bytes a value tree takes: its strings, and a node's overhead each.
fn weight(value: &Value) -> usize {
    const NODE: usize = 48;
    NODE + match value {
        Value::String(s) => s.len(),
        Value::List(items) => items.iter().map(weight).sum(),
        Value::Object(fields) => fields.iter().map(|(k, v)| k.len() + weight(v)).sum(),
        _ => 0,
    }
}

fn selected<'a>(
    doc: &'a ExecutableDocument,
    operation: Option<&str>,
) -> Option<&'a async_graphql::parser::types::OperationDefinition> {
    let mut ops = doc.operations.iter();
    match (operation, ops.next(), ops.next()) {
        (None, Some((_, op)), None) => Some(&op.node),
        (None, _, _) => None,
        (Some(name), _, _) => doc
            .operations
            .iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
            .map(|(_, op)| &op.node),
    }
}

/// The variables `field` uses, in its arguments, directives and selection
/// (through fragments, each once).
fn field_variables<'a>(
    doc: &'a ExecutableDocument,
    field: &'a Field,
    used: &mut Vec<Name>,
    fragments: &mut HashSet<&'a str>,
) {
    for (_, value) in &field.arguments {
        value_variables(&value.node, used);
    }
    for directive in &field.directives {
        for (_, value) in &directive.node.arguments {
            value_variables(&value.node, used);
        }
    }
    set_variables(doc, &field.selection_set.node, used, fragments);
}

fn set_variables<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    used: &mut Vec<Name>,
    fragments: &mut HashSet<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => field_variables(doc, &field.node, used, fragments),
            Selection::InlineFragment(inline) => {
                for directive in &inline.node.directives {
                    for (_, value) in &directive.node.arguments {
                        value_variables(&value.node, used);
                    }
                }
                set_variables(doc, &inline.node.selection_set.node, used, fragments);
            }
            Selection::FragmentSpread(spread) => {
                for directive in &spread.node.directives {
                    for (_, value) in &directive.node.arguments {
                        value_variables(&value.node, used);
                    }
                }
                let name = &spread.node.fragment_name.node;
                if let Some(fragment) = doc.fragments.get(name) {
                    if fragments.insert(name.as_str()) {
                        set_variables(doc, &fragment.node.selection_set.node, used, fragments);
                    }
                }
            }
        }
    }
}

/// The variables an argument's value names, at any depth (lists, input objects).
fn value_variables(value: &async_graphql_value::Value, used: &mut Vec<Name>) {
    use async_graphql_value::Value as V;
    match value {
        V::Variable(name) => used.push(name.clone()),
        V::List(items) => items.iter().for_each(|v| value_variables(v, used)),
        V::Object(fields) => fields.values().for_each(|v| value_variables(v, used)),
        _ => {}
    }
}

/// The extension that answers root fields from [`RootResults`] and notes what
/// it executed; it acts only on requests the executor gave a [`RootRequest`].
pub(crate) struct PartialResults;

impl ExtensionFactory for PartialResults {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PartialResults)
    }
}

#[async_trait::async_trait]
impl Extension for PartialResults {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(roots) = ctx.data_opt::<RootRequest>() {
            roots.learn_keys(query, &doc, variables);
        }
        Ok(doc)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let roots = match (info.path_node.parent, ctx.data_opt::<RootRequest>()) {
            (None, Some(roots)) => roots,
            _ => return next.run(ctx, info).await,
        };
        let response_key = info.alias.unwrap_or(info.name);
        match roots.kept(response_key) {
            Ok(kept) => {
                if let Some(until) = kept.until {
                    RequestScope::record_fresh(until);
                }
                Ok(Some(kept.value.clone()))
            }
            Err(key) => {
                let value = next.run(ctx, info).await?;
                if let (Some(key), Some(value)) = (key, &value) {
                    roots.lock().executed.push((key, value.clone()));
                }
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_fields_key_names_the_variables_its_selection_uses() {
        let doc = async_graphql::parser::parse_query(
            "query($a: Int, $b: String, $c: Boolean) { \
               orders(first: $a, filter: { symbol: $b }) { nodes { ...F } } \
               account { id } } \
             fragment F on Order { id quote @include(if: $c) { bid } }",
        )
        .unwrap();
        let op = selected(&doc, None).unwrap();
        let Selection::Field(orders) = &op.selection_set.node.items[0].node else {
            panic!("a field");
        };
        let mut used = Vec::new();
        field_variables(&doc, &orders.node, &mut used, &mut HashSet::new());
        let mut names: Vec<&str> = used.iter().map(Name::as_str).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        let Selection::Field(account) = &op.selection_set.node.items[1].node else {
            panic!("a field");
        };
        let mut used = Vec::new();
        field_variables(&doc, &account.node, &mut used, &mut HashSet::new());
        assert!(used.is_empty());
    }
}
