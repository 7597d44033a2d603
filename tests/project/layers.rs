//! The layering of `src/`, read from the source itself.
//!
//! `src/lib.rs` lists its modules top to bottom in a ```` ```text ```` block under
//! `# Layout`, one layer per line. The block is the data and this file is the
//! check, so renaming or adding a module means changing one line of lib.rs, not
//! this test.
//!
//! The scan is deliberately cheap: a small tokenizer that drops comments and
//! string literals, then every path that starts with `crate::`, `super::`,
//! `self::` or the name of a module declared in the same file, including the
//! members of `use` groups. It does not expand macros or follow `#[cfg]`, which
//! is the right trade for a rule about what a file mentions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// A layer may import only the layers beneath it: lib.rs promises it, and the
/// promise is what lets a layer be read, tested and replaced without the ones
/// above it.
///
/// For every `.rs` file under `src/` (except `main.rs` and `lib.rs`),
/// each `crate::` path (and `super::` path that climbs out of its top-level module)
/// must name a module on a strictly lower line of the layer block of lib.rs. Modules
/// on one line are one layer and may not import each other; a module missing from
/// the block is an error too. Paths inside a module's own tree are free.
#[test]
fn every_module_imports_only_layers_beneath_it() {
    let layers = Layers::of_lib_rs();
    let src = Source::read(Path::new(SRC));
    let violations = layer_violations(&layers, &src);
    assert!(
        violations.is_empty(),
        "{} import(s) break the layers of src/lib.rs (top first: {}):\n{}",
        violations.len(),
        layers.describe(),
        violations.join("\n")
    );
}

/// No two files of `src/` depend on each other, directly or through others: a
/// cycle makes its files one unit that can only be understood and changed
/// together, whatever the module tree says.
///
/// Every path a file mentions (`crate::a::b::C`, `super::x::Y`, `self::x`, `x::Y`
/// for a module `x` it declares, and the members of `use` groups) is an edge to
/// the deepest file that defines a prefix of it: `src/a/b/c.rs`, `src/a/b/c/mod.rs`,
/// `src/a/b.rs`, `src/a/b/mod.rs`, `src/a.rs`, `src/a/mod.rs`, in that order. A
/// file's paths to its own ancestors' files are not edges: `use super::Thing` in
/// a child is the module's interface, the way Rust modules are built. `mod x;`
/// declarations are not imports either. Every cycle that remains is reported.
#[test]
fn the_files_of_src_import_each_other_in_no_cycle() {
    let src = Source::read(Path::new(SRC));
    let cycles = cycles(&src);
    assert!(
        cycles.is_empty(),
        "{} import cycle(s) between the files of src/:\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

/// Runs now, while the two checks above wait for the refactor: the block must stay
/// a true list of `src/`'s modules, or the checks would judge a stale picture.
#[test]
fn the_layer_block_lists_every_module_of_src_exactly_once() {
    let layers = Layers::of_lib_rs();
    let src = Source::read(Path::new(SRC));
    let on_disk: BTreeSet<&str> = src.files.iter().map(|f| f.module[0].as_str()).collect();
    let listed: BTreeSet<&str> = layers.rows.iter().flatten().map(String::as_str).collect();
    let missing: Vec<_> = on_disk.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the layer block of src/lib.rs is out of date: missing {missing:?}, no such module {extra:?}"
    );
}

/// The two checks above wait for the refactor; these keep the scanner they rely on
/// honest meanwhile, on sources small enough to read.
#[test]
fn paths_are_found_in_use_groups_and_expressions_but_not_in_comments_or_strings() {
    let text = r##"
        //! Mentions crate::doc_comment.
        mod child;
        use crate::{a, b::c::{self, D}, e as f};
        use super::sibling::Thing;
        /* crate::block /* nested crate::inner */ */
        fn g() -> crate::h::Ret {
            let s = "crate::in_string";
            let r = r#"crate::in_raw " string"#;
            let c = '"';
            let k = crate::k::new::<'static>();
            child::go();
            $crate::macro_crate;
            x.self_field; Self::assoc();
        }
        mod tests {
            use super::super::up;
        }
    "##;
    let found: Vec<String> = scan(text, &module(&["m", "n"]))
        .refs
        .iter()
        .map(|r| r.target.join("::"))
        .collect();
    assert_eq!(
        found,
        [
            "a",
            "b::c",
            "b::c::D",
            "e",
            "m::sibling::Thing",
            "h::Ret",
            "k::new",
            "m::n::child::go",
            "m::up"
        ]
    );
}

#[test]
fn imports_beside_above_or_outside_the_layers_are_reported() {
    let src = Source {
        files: vec![
            File::parsed("top.rs", "use crate::low::L; use crate::mid_b::B;"),
            File::parsed("mid_a/mod.rs", "mod x;"),
            File::parsed("mid_a/x.rs", "fn f() { crate::mid_b::g(); super::y(); }"),
            File::parsed("mid_b.rs", "use crate::top::T;"),
            File::parsed("low.rs", "use crate::nowhere::N;"),
        ],
    };
    let layers = Layers::parse(
        "//! # Layout\n//!\n//! ```text\n//! top\n//! mid_a mid_b\n//! low\n//! ```\n",
    );
    assert_eq!(
        layer_violations(&layers, &src),
        [
            "src/mid_a/x.rs: crate::mid_b::g (mid_a must not import mid_b, on the same layer)",
            "src/mid_b.rs: crate::top::T (mid_b must not import top, a layer above it)",
            "src/low.rs: crate::nowhere::N (nowhere is not in the layer block)",
        ]
    );
}

#[test]
fn a_cycle_between_files_is_reported_and_a_child_using_its_parent_is_not() {
    let src = Source {
        files: vec![
            File::parsed("a/mod.rs", "mod x; pub use x::X; pub struct A;"),
            File::parsed("a/x.rs", "use super::A; pub struct X(crate::b::B);"),
            File::parsed("b.rs", "pub struct B(crate::a::A);"),
            File::parsed("c.rs", "pub struct C(crate::b::B);"),
        ],
    };
    assert_eq!(
        cycles(&src),
        ["src/a/mod.rs -> src/a/x.rs (x::X)\n  -> src/b.rs (crate::b::B)\n  -> src/a/mod.rs (crate::a::A)"]
    );
}

/// The layer block: `rows[0]` is the top layer.
struct Layers {
    rows: Vec<Vec<String>>,
}

impl Layers {
    fn of_lib_rs() -> Layers {
        let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).expect("src/lib.rs");
        Layers::parse(&lib)
    }

    /// The first ```` ```text ```` block after the `# Layout` heading of the crate docs.
    fn parse(lib_rs: &str) -> Layers {
        let doc = lib_rs
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("//!"))
            .map(str::trim);
        let rows: Vec<Vec<String>> = doc
            .skip_while(|l| *l != "# Layout")
            .skip_while(|l| *l != "```text")
            .skip(1)
            .take_while(|l| *l != "```")
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .filter(|row: &Vec<String>| !row.is_empty())
            .collect();
        assert!(
            !rows.is_empty(),
            "src/lib.rs has no ```text block of layers under `# Layout`"
        );
        let mut seen = BTreeSet::new();
        for name in rows.iter().flatten() {
            assert!(
                seen.insert(name),
                "`{name}` is on two lines of the layer block"
            );
        }
        Layers { rows }
    }

    fn level(&self, module: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|row| row.iter().any(|m| m == module))
    }

    fn describe(&self) -> String {
        let rows: Vec<String> = self.rows.iter().map(|row| row.join(" ")).collect();
        rows.join(" / ")
    }
}

/// `file: path (why)` for every path that leaves its top-level module for one that
/// is not beneath it.
fn layer_violations(layers: &Layers, src: &Source) -> Vec<String> {
    let mut out = Vec::new();
    for file in &src.files {
        let from = file.module[0].as_str();
        let mut seen = BTreeSet::new();
        for r in &file.refs {
            let Some(to) = r.target.first().map(String::as_str) else {
                continue;
            };
            if to == from || !seen.insert(&r.written) {
                continue;
            }
            let why = match (layers.level(from), layers.level(to)) {
                (None, _) => format!("{from} is not in the layer block"),
                (_, None) => format!("{to} is not in the layer block"),
                (Some(f), Some(t)) if t == f => {
                    format!("{from} must not import {to}, on the same layer")
                }
                (Some(f), Some(t)) if t < f => {
                    format!("{from} must not import {to}, a layer above it")
                }
                _ => continue,
            };
            out.push(format!("src/{}: {} ({why})", file.path, r.written));
        }
    }
    out
}

/// Every elementary cycle of the file graph, as `a -> b (path) -> ... -> a (path)`.
fn cycles(src: &Source) -> Vec<String> {
    let by_module: BTreeMap<&[String], &str> = src
        .files
        .iter()
        .map(|f| (f.module.as_slice(), f.path.as_str()))
        .collect();
    // file -> file -> the first path that made the edge
    let mut edges: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for file in &src.files {
        let out = edges.entry(file.path.as_str()).or_default();
        for r in &file.refs {
            let deepest = (1..=r.target.len())
                .rev()
                .find_map(|n| by_module.get(&r.target[..n]).map(|path| (n, *path)));
            let Some((n, to)) = deepest else { continue };
            let ancestor = n <= file.module.len() && r.target[..n] == file.module[..n];
            if !ancestor {
                out.entry(to).or_insert(r.written.as_str());
            }
        }
    }
    // Each cycle once, found from its smallest file: a DFS from `start` through
    // larger files only.
    let mut found = Vec::new();
    for &start in edges.keys() {
        let mut path = vec![(start, "")];
        walk(&edges, start, &mut path, &mut found);
    }
    if found.len() >= MAX_CYCLES {
        found.push(format!("(stopped at {MAX_CYCLES} cycles)"));
    }
    found
}

/// Elementary cycles can grow exponentially with the edges of a tangle; past this
/// many, more would not tell anyone more.
const MAX_CYCLES: usize = 100;

fn walk<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
    start: &'a str,
    path: &mut Vec<(&'a str, &'a str)>,
    found: &mut Vec<String>,
) {
    let here = path.last().unwrap().0;
    for (&next, &via) in edges.get(here).into_iter().flatten() {
        if found.len() >= MAX_CYCLES {
            return;
        }
        if next == start {
            let mut text = format!("src/{start}");
            for (file, via) in path.iter().skip(1).chain([&(next, via)]) {
                text += &format!(
                    "{}-> src/{file} ({via})",
                    if text.contains("->") { "\n  " } else { " " }
                );
            }
            found.push(text);
        } else if next > start && !path.iter().any(|(f, _)| *f == next) {
            path.push((next, via));
            walk(edges, start, path, found);
            path.pop();
        }
    }
}

/// The files of `src/` that belong to the layers, with what each mentions.
struct Source {
    files: Vec<File>,
}

struct File {
    /// Relative to `src/`, `/`-separated.
    path: String,
    /// `src/cache/read.rs` -> `["cache", "read"]`; `src/cache/mod.rs` -> `["cache"]`.
    module: Vec<String>,
    refs: Vec<Ref>,
}

/// A path a file mentions, resolved against the crate root.
struct Ref {
    /// `crate::cache::Counters` in `src/throttle/mod.rs` -> `["cache", "Counters"]`.
    target: Vec<String>,
    /// As written in the file, for the report.
    written: String,
}

impl Source {
    fn read(src: &Path) -> Source {
        let paths = crate::files_under(src, &["rs"])
            .into_iter()
            .map(|path| {
                let rel = path.strip_prefix(src).expect("under src/");
                rel.to_string_lossy().replace('\\', "/")
            })
            .filter(|rel| rel != "lib.rs" && rel != "main.rs");
        let texts: Vec<(String, String)> = paths
            .into_iter()
            .map(|rel| {
                let text = std::fs::read_to_string(src.join(&rel)).expect("a readable source file");
                (rel, text)
            })
            .collect();
        // `#[path = "x.rs"] mod name;` puts x.rs at the declaring module's `name`.
        let mut declared: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (rel, text) in &texts {
            let dir = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
            for (file, name) in scan(text, &module_of(rel)).path_mods {
                let mut module = module_of(rel);
                module.push(name);
                let target = if dir.is_empty() {
                    file
                } else {
                    format!("{dir}/{file}")
                };
                declared.insert(target, module);
            }
        }
        let files = texts
            .into_iter()
            .map(|(rel, text)| {
                let module = declared.remove(&rel).unwrap_or_else(|| module_of(&rel));
                let refs = scan(&text, &module).refs;
                File {
                    path: rel,
                    module,
                    refs,
                }
            })
            .collect();
        Source { files }
    }
}

impl File {
    fn parsed(path: &str, text: &str) -> File {
        let module = module_of(path);
        File {
            path: path.to_string(),
            refs: scan(text, &module).refs,
            module,
        }
    }
}

fn module_of(rel: &str) -> Vec<String> {
    let mut module: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if module.len() > 1 && module.last().is_some_and(|m| m == "mod") {
        module.pop();
    }
    module
}

fn module(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// `::`
    Sep,
    Punct(char),
}

fn is_ident(t: Option<&Tok>, word: &str) -> bool {
    matches!(t, Some(Tok::Ident(w)) if w == word)
}

/// Rust source as tokens, without comments; string and char literals are kept only
/// as `Str` (so `"crate::x"` is not a path), lifetimes dropped.
fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            let start = i + 1;
            i = start;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            out.push(Tok::Str(c[start..i.min(c.len())].iter().collect()));
            i += 1;
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{..}'
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or a label: drop the quote and its name.
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw = matches!(word.as_str(), "r" | "br") && matches!(at(i), '"' | '#');
            if raw && at(i) == '#' && at(i + 1) != '"' && at(i + 1) != '#' {
                // A raw identifier, r#type: the `#` is dropped and the name follows.
                i += 1;
            } else if raw {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1; // the opening quote
                let start = i;
                let closes = |i: usize| at(i) == '"' && (1..=hashes).all(|h| at(i + h) == '#');
                while i < c.len() && !closes(i) {
                    i += 1;
                }
                out.push(Tok::Str(c[start..i.min(c.len())].iter().collect()));
                i += 1 + hashes;
            } else if !start_is_digit(&word) {
                out.push(Tok::Ident(word));
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Tok::Sep);
            i += 2;
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

fn start_is_digit(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit())
}

/// What one file mentions.
struct Scan {
    refs: Vec<Ref>,
    /// `#[path = "file"] mod name;`: `(file, name)`.
    path_mods: Vec<(String, String)>,
}

/// The paths of `text`, a file whose module is `module`.
fn scan(text: &str, module: &[String]) -> Scan {
    let t = tokens(text);
    // Inline `mod x { .. }` blocks change what `self` and `super` mean inside them.
    let scopes = inline_scopes(&t, module);
    // Modules declared in each scope, so that `x::Y` after `mod x;` resolves.
    let mut children: BTreeSet<(Vec<String>, String)> = BTreeSet::new();
    let mut path_mods = Vec::new();
    let mut pending_path: Option<String> = None;
    for i in 0..t.len() {
        if let (Some(Tok::Ident(kw)), Some(Tok::Ident(name))) = (t.get(i), t.get(i + 1)) {
            if kw == "mod" && matches!(t.get(i + 2), Some(Tok::Punct(';' | '{'))) {
                children.insert((scopes[i].clone(), name.clone()));
                if t.get(i + 2) == Some(&Tok::Punct(';')) {
                    if let Some(file) = pending_path.take() {
                        path_mods.push((file, name.clone()));
                    }
                }
            }
        }
        if let [Tok::Punct('#'), Tok::Punct('['), Tok::Ident(attr), Tok::Punct('='), Tok::Str(file), Tok::Punct(']')] =
            &t[i..(i + 6).min(t.len())]
        {
            if attr == "path" {
                pending_path = Some(file.clone());
            }
        } else if matches!(t.get(i), Some(Tok::Punct(';' | '}'))) {
            pending_path = None;
        }
    }

    let mut refs = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let Some(Tok::Ident(word)) = t.get(i) else {
            i += 1;
            continue;
        };
        let after_sep = i > 0 && matches!(t[i - 1], Tok::Sep | Tok::Punct('$'));
        let starts = matches!(word.as_str(), "crate" | "self" | "super")
            || children.contains(&(scopes[i].clone(), word.clone()));
        if after_sep || !starts || t.get(i + 1) != Some(&Tok::Sep) {
            i += 1;
            continue;
        }
        let (paths, next) = path(&t, i);
        for segments in paths {
            if let Some(target) = resolve(&scopes[i], &segments) {
                // `use crate::x::{self, ..}` names `crate::x`.
                let named = match segments.split_last() {
                    Some((last, prefix)) if last == "self" && !prefix.is_empty() => prefix,
                    _ => &segments[..],
                };
                refs.push(Ref {
                    target,
                    written: named.join("::"),
                });
            }
        }
        i = next;
    }
    Scan { refs, path_mods }
}

/// The module path in effect at each token: the file's, plus inline `mod x {`.
fn inline_scopes(t: &[Tok], module: &[String]) -> Vec<Vec<String>> {
    let mut scope = module.to_vec();
    let mut open: Vec<(usize, usize)> = Vec::new(); // (depth of its brace, len of scope before)
    let mut depth = 0;
    let mut out = Vec::with_capacity(t.len());
    for (i, tok) in t.iter().enumerate() {
        out.push(scope.clone());
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                if i >= 2 && is_ident(t.get(i - 2), "mod") {
                    if let Some(Tok::Ident(name)) = t.get(i - 1) {
                        open.push((depth, scope.len()));
                        scope.push(name.clone());
                    }
                }
            }
            Tok::Punct('}') => {
                if open.last().is_some_and(|(d, _)| *d == depth) {
                    let (_, len) = open.pop().unwrap();
                    scope.truncate(len);
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    out
}

/// The path starting at `t[i]`, one entry per member of any `{ .. }` group.
fn path(t: &[Tok], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut segments = Vec::new();
    loop {
        match t.get(i) {
            Some(Tok::Ident(w)) => {
                segments.push(w.clone());
                i += 1;
            }
            Some(Tok::Punct('{')) => {
                let (members, next) = group(t, i + 1);
                let paths = members
                    .into_iter()
                    .map(|m| segments.iter().cloned().chain(m).collect())
                    .collect();
                return (paths, next);
            }
            Some(Tok::Punct('*')) => {
                i += 1;
                break;
            }
            _ => break,
        }
        if t.get(i) == Some(&Tok::Sep) {
            i += 1;
        } else {
            break;
        }
    }
    (vec![segments], i)
}

/// The members of a `use` group, from after its `{` to after its `}`.
fn group(t: &[Tok], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut members = Vec::new();
    loop {
        match t.get(i) {
            None => return (members, i),
            Some(Tok::Punct('}')) => return (members, i + 1),
            Some(Tok::Ident(w)) if w == "as" => i += 2,
            Some(Tok::Ident(_) | Tok::Punct('{')) => {
                let (paths, next) = path(t, i);
                members.extend(paths);
                i = next;
            }
            Some(_) => i += 1,
        }
    }
}

/// `segments` as a path from the crate root, seen from `scope`; `None` if it
/// climbs above the root.
fn resolve(scope: &[String], segments: &[String]) -> Option<Vec<String>> {
    let (mut target, rest) = match segments.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &segments[1..]),
        _ => (scope.to_vec(), segments),
    };
    for s in rest {
        match s.as_str() {
            "self" => {}
            "super" => {
                target.pop()?;
            }
            _ => target.push(s.clone()),
        }
    }
    Some(target)
}
