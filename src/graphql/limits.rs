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

use super::ErrorCode;
use crate::config::LimitsSettings;

/// Largest document parsed *outside* the schema, before these limits have run (the
/// HTTP layer's checks: is it a query the response cache may keep, is a GET a
/// mutation). Parsing is the expensive step the limits exist to skip: a 200 KB
/// document of aliases takes tens of milliseconds to parse and microseconds to
/// refuse. The dashboard query is about 1 KB.
pub(crate) const MAX_PREPARSE_BYTES: usize = 16 * 1024;

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

/// A refusal from an extension, before any resolver: these never pass through
/// `GatewayError`, so they name their code here.
pub(crate) fn coded(message: String, code: ErrorCode) -> ServerError {
    let mut err = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    err.extensions = Some(ext);
    err
}

fn too_complex(what: &str, key: &str, limit: usize) -> ServerError {
    coded(
        format!("query exceeds {key} ({limit}): {what}"),
        ErrorCode::QueryTooComplex,
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
                ErrorCode::BadUserInput,
            ));
        }
        let shape = text_shape(&request.query);
        if shape.depth > l.max_depth + TEXT_DEPTH_SLACK {
            return Err(too_complex(
                "nested too deep",
                "limits.max_depth",
                l.max_depth,
            ));
        }
        // Also counted on the parsed document; counted here first because parsing
        // 10 000 aliases costs tens of milliseconds, this scan microseconds.
        if shape.aliases > l.max_aliases {
            return Err(too_complex(
                &format!("{} aliases", shape.aliases),
                "limits.max_aliases",
                l.max_aliases,
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

/// What the raw text shows before any parsing: the deepest `{` nesting (an upper
/// bound of the selection depth) and the aliases (`name:` outside parentheses,
/// which is the only place GraphQL puts a colon outside arguments and variable
/// definitions). Strings, block strings and comments are skipped.
#[derive(Debug, PartialEq, Eq)]
struct TextShape {
    depth: usize,
    aliases: usize,
}

fn text_shape(query: &str) -> TextShape {
    let b = query.as_bytes();
    let (mut depth, mut max, mut parens, mut aliases) = (0usize, 0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' => depth = depth.saturating_sub(1),
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b':' if parens == 0 => aliases += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < b.len() && !(b[i..].starts_with(b"\"\"\"") && b[i - 1] != b'\\') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    TextShape {
        depth: max,
        aliases,
    }
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
    use super::{text_shape, TextShape};

    fn depth(q: &str) -> usize {
        text_shape(q).depth
    }

    fn aliases(q: &str) -> usize {
        text_shape(q).aliases
    }

    #[test]
    fn text_depth_ignores_braces_in_strings_and_comments() {
        assert_eq!(depth("{ a { b } }"), 2);
        assert_eq!(
            depth(
                r#"{ a(s: "{{{\"{") # {{{{
        { b } }"#
            ),
            2
        );
        assert_eq!(depth(&"{".repeat(1000)), 1000);
    }

    #[test]
    fn text_aliases_count_colons_outside_arguments_strings_and_comments() {
        let q = r#"query Q($a: Int, $b: [String!]!) @x(k: 1) {
            x: account { id }
            orders(first: $a, filter: { status: ALL }) { nodes { y: id } }
            i: instrument(symbol: "A:B") { symbol } # c: d
            j: instrument(symbol: """ a "quoted" ( b: """) { symbol }
        }
        fragment F on Order { z: id }"#;
        assert_eq!(
            text_shape(q),
            TextShape {
                depth: 3,
                aliases: 5
            }
        );
        assert_eq!(aliases("{ account { id } }"), 0);
        let many: String = (0..10_000)
            .map(|i| format!("a{i}: account {{ id }} "))
            .collect();
        assert_eq!(aliases(&format!("{{ {many} }}")), 10_000);
    }
}
