//! The documents the code leans on are in the repository and keep up with it:
//! `docs/architecture.md` places every file of `src/`, and no text of the
//! repository sends a reader to a document a clone does not have.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    crate::files_under(&Path::new(ROOT).join(dir), exts)
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .expect("under the repository")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_architecture_document_places_every_file_of_src_and_no_other() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md"))
        .expect("docs/architecture.md exists");
    let missing: Vec<String> = files("src", &["rs"])
        .iter()
        .map(|p| relative(p))
        .filter(|rel| !doc.contains(&format!("`{rel}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "files of src/ that docs/architecture.md's file table does not name:\n{}",
        missing.join("\n")
    );
    let gone: Vec<&str> = doc
        .split('`')
        .filter(|s| s.starts_with("src/") && s.ends_with(".rs"))
        .filter(|s| !Path::new(ROOT).join(s).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "docs/architecture.md names files that do not exist:\n{}",
        gone.join("\n")
    );
}

/// The design contract the project started from lives outside the repository; the
/// repository's own documents say what the code relies on, so nothing may point there.
#[test]
fn nothing_points_at_a_document_outside_the_repository() {
    let outside = concat!("DESIGN", ".md");
    let mut texts = Vec::new();
    for dir in [
        "src",
        "tests",
        "tools",
        "broker-sim",
        "docs",
        "benches",
        "scripts",
    ] {
        texts.extend(files(
            dir,
            &["rs", "md", "toml", "graphql", "sh", "js", "html"],
        ));
    }
    texts.extend(["README.md", "Cargo.toml"].map(|f| Path::new(ROOT).join(f)));
    let pointing: Vec<String> = texts
        .iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|text| text.contains(outside)))
        .map(|p| relative(p))
        .collect();
    assert!(
        pointing.is_empty(),
        "these files point at {outside}, which a clone does not have:\n{}",
        pointing.join("\n")
    );
}

/// `docs/<name>.md` named anywhere in the code or the docs exists.
#[test]
fn every_docs_file_named_exists() {
    let mut broken = Vec::new();
    for path in files("src", &["rs"])
        .into_iter()
        .chain(files("tests", &["rs"]))
        .chain(files("tools", &["rs"]))
        .chain(files("docs", &["md"]))
        .chain([Path::new(ROOT).join("README.md")])
    {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (at, _) in text.match_indices("docs/") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
                .collect();
            let name = name.trim_end_matches('.');
            if name.ends_with(".md") && !Path::new(ROOT).join(name).exists() {
                broken.push(format!("{}: {name}", relative(&path)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "named but missing:\n{}",
        broken.join("\n")
    );
}
