//! The SDL is a contract with frontends: `schema.graphql` must be what the binary
//! serves, and nothing in the reference SDL may be renamed or removed.

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

#[test]
fn schema_graphql_matches_brokergraph_schema() {
    let generated = brokergraph::graphql::sdl();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists");
    assert!(
        committed == generated,
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
    );
}

/// `type.field(arg: Type)` -> type string, for every type, field, argument and enum value.
fn signatures(sdl: &str) -> BTreeMap<String, String> {
    let doc = parse_schema(sdl).expect("valid SDL");
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let name = ty.node.name.node.to_string();
        out.insert(name.clone(), String::new());
        match &ty.node.kind {
            TypeKind::Object(o) => {
                for f in &o.fields {
                    let fname = format!("{name}.{}", f.node.name.node);
                    out.insert(fname.clone(), f.node.ty.node.to_string());
                    for a in &f.node.arguments {
                        out.insert(
                            format!("{fname}({})", a.node.name.node),
                            a.node.ty.node.to_string(),
                        );
                    }
                }
                for i in &o.implements {
                    out.insert(format!("{name} implements {}", i.node), String::new());
                }
            }
            TypeKind::Interface(o) => {
                for f in &o.fields {
                    out.insert(
                        format!("{name}.{}", f.node.name.node),
                        f.node.ty.node.to_string(),
                    );
                }
            }
            TypeKind::InputObject(o) => {
                for f in &o.fields {
                    out.insert(
                        format!("{name}.{}", f.node.name.node),
                        f.node.ty.node.to_string(),
                    );
                }
            }
            TypeKind::Enum(e) => {
                for v in &e.values {
                    out.insert(format!("{name}::{}", v.node.value.node), String::new());
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_name_of_the_reference_sdl_is_served_with_the_same_type() {
    let reference = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/schema.reference.graphql"
    ));
    // The reference lives beside the repository; a checkout without it is checked
    // against the copy in docs/.
    let reference = reference.unwrap_or_else(|_| {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/schema.reference.graphql"
        ))
        .expect("docs/schema.reference.graphql exists")
    });
    let ours = signatures(&brokergraph::graphql::sdl());
    let mut missing = Vec::new();
    for (name, ty) in signatures(&reference) {
        match ours.get(&name) {
            Some(t) if *t == ty => {}
            Some(t) => missing.push(format!("{name}: reference {ty}, served {t}")),
            None => missing.push(format!("{name}: missing")),
        }
    }
    assert!(
        missing.is_empty(),
        "schema drifted from the reference:\n{}",
        missing.join("\n")
    );
}
