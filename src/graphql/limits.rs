//! Query limits: a request is measured before anything runs, and one over a limit
//! is refused with `QUERY_TOO_COMPLEX` (or `BAD_USER_INPUT` for variables) naming
//! the config key, so a client knows what to change and an operator what to raise.
//!
//! async-graphql checks depth and complexity during validation; aliases and root
//! fields are counted here on the parsed document. The raw text is scanned for
//! nesting before parsing, so a 1000-deep query costs one pass over its bytes and
//! never reaches the (recursive) parser.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Request, ServerError, ServerResult, ValidationResult, Variables,
};

use crate::config::LimitsSettings;

/// Selection depth plus this much slack is allowed in the raw text: braces also
/// open input objects in arguments, which are not selection depth.
const TEXT_DEPTH_SLACK: usize = 16;

pub(crate) struct QueryLimits(Arc<LimitsSettings>);

impl QueryLimits {
    pub(crate) fn new(settings: &LimitsSettings) -> Self {
        QueryLimits(Arc::new(settings.clone()))
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0.clone()))
    }
}

struct LimitsExtension(Arc<LimitsSettings>);

pub(crate) fn coded(message: String, code: &str) -> ServerError {
    let mut err = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    err.extensions = Some(ext);
    err
}

fn too_complex(what: &str, key: &str, limit: usize) -> ServerError {
    coded(
        format!("query exceeds {key} ({limit}): {what}"),
        "QUERY_TOO_COMPLEX",
    )
}

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    /// Before persisted queries and parsing: the raw text and variables only.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let l = &self.0;
        let size = serde_json::to_vec(&request.variables).map_or(0, |v| v.len());
        if size > l.max_variables_bytes {
            return Err(coded(
                format!(
                    "variables are {size} bytes, over limits.max_variables_bytes ({})",
                    l.max_variables_bytes
                ),
                "BAD_USER_INPUT",
            ));
        }
        if text_depth(&request.query) > l.max_depth + TEXT_DEPTH_SLACK {
            return Err(too_complex(
                "nested too deep",
                "limits.max_depth",
                l.max_depth,
            ));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let l = &self.0;
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| recode(e, l))?;
        let aliases = count_aliases(&doc);
        if aliases > l.max_aliases {
            return Err(too_complex(
                &format!("{aliases} aliases"),
                "limits.max_aliases",
                l.max_aliases,
            ));
        }
        for (_, op) in doc.operations.iter() {
            let roots = root_fields(&doc, &op.node.selection_set.node, &mut HashSet::new());
            if roots > l.max_root_fields {
                return Err(too_complex(
                    &format!("{roots} root fields"),
                    "limits.max_root_fields",
                    l.max_root_fields,
                ));
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(|e| recode(e, &self.0)).collect())
    }
}

/// async-graphql's own limit errors carry no code and do not name our keys.
fn recode(err: ServerError, l: &LimitsSettings) -> ServerError {
    let m = err.message.as_str();
    if m.contains("nested too deep") || m.contains("recursion depth") {
        too_complex("nested too deep", "limits.max_depth", l.max_depth)
    } else if m.contains("too complex") {
        too_complex(
            "too many fields selected",
            "limits.max_complexity",
            l.max_complexity,
        )
    } else {
        err
    }
}

/// Deepest `{` nesting outside strings and comments: an upper bound of the
/// selection depth, computed without parsing.
fn text_depth(query: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut bytes = query.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' => depth = depth.saturating_sub(1),
            b'#' => {
                for c in bytes.by_ref() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            b'"' => {
                let mut escaped = false;
                for c in bytes.by_ref() {
                    match c {
                        b'\\' if !escaped => escaped = true,
                        b'"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            _ => {}
        }
    }
    max
}

fn count_aliases(doc: &ExecutableDocument) -> usize {
    let mut n = 0;
    for (_, op) in doc.operations.iter() {
        n += aliases_in(&op.node.selection_set.node);
    }
    for fragment in doc.fragments.values() {
        n += aliases_in(&fragment.node.selection_set.node);
    }
    n
}

fn aliases_in(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + aliases_in(&f.node.selection_set.node)
            }
            Selection::InlineFragment(i) => aliases_in(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Fields at the root, through fragments spread there (each fragment once, so a
/// cycle, which validation refuses anyway, cannot loop).
fn root_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    seen: &mut HashSet<&'a str>,
) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(i) => root_fields(doc, &i.node.selection_set.node, seen),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                match doc.fragments.get(&s.node.fragment_name.node) {
                    Some(f) if seen.insert(name) => {
                        root_fields(doc, &f.node.selection_set.node, seen)
                    }
                    _ => 0,
                }
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::text_depth;

    #[test]
    fn text_depth_ignores_braces_in_strings_and_comments() {
        assert_eq!(text_depth("{ a { b } }"), 2);
        assert_eq!(
            text_depth(
                r#"{ a(s: "{{{\"{") # {{{{
        { b } }"#
            ),
            2
        );
        assert_eq!(text_depth(&"{".repeat(1000)), 1000);
    }
}
