//! The Dockerfile keeps up with the workspace: its dependency layer stands an
//! empty file in for every target a manifest names (or cargo refuses the
//! manifests), it builds with scripts/image-build (which CI runs without a
//! container builder), and its health check is the binary's own.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `path = "..."` of each `[[bin]]`, `[[bench]]`, `[[test]]`, `[[example]]` and
/// `[lib]` of a manifest, relative to the repository.
fn target_paths(manifest: &str, dir: &str) -> Vec<String> {
    let text = read(manifest);
    let mut paths = Vec::new();
    let mut in_target = false;
    let mut bench = false;
    let mut name = None;
    // A bench without `path` is `benches/<name>.rs`.
    let flush = |paths: &mut Vec<String>, name: &mut Option<String>, bench: bool| {
        if let (true, Some(n)) = (bench, name.take()) {
            paths.push(format!("{dir}benches/{n}.rs"));
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut paths, &mut name, in_target && bench);
            bench = line == "[[bench]]";
            in_target = matches!(
                line,
                "[[bin]]" | "[[bench]]" | "[[test]]" | "[[example]]" | "[lib]"
            );
            continue;
        }
        if !in_target {
            continue;
        }
        if let Some(path) = line.strip_prefix("path = ") {
            paths.push(format!("{dir}{}", path.trim_matches('"')));
            in_target = false;
            name = None;
        } else if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        }
    }
    flush(&mut paths, &mut name, in_target && bench);
    paths
}

#[test]
fn the_dependency_layer_stubs_every_target_the_manifests_name() {
    let dockerfile = read("Dockerfile");
    let (deps, _) = dockerfile
        .split_once("COPY . .")
        .expect("the dependency layer comes before the sources");
    let mut paths = target_paths("Cargo.toml", "");
    paths.extend(target_paths("broker-sim/Cargo.toml", "broker-sim/"));
    paths.extend(target_paths("tools/Cargo.toml", "tools/"));
    assert!(
        paths.iter().any(|p| p == "benches/hot_path.rs"),
        "{paths:?}"
    );
    for path in &paths {
        assert!(
            deps.contains(path.as_str()),
            "the dependency layer has no stub for {path}"
        );
    }
    for manifest in ["broker-sim/Cargo.toml", "tools/Cargo.toml"] {
        assert!(deps.contains(&format!("COPY {manifest}")), "{manifest}");
    }
}

#[test]
fn the_image_builds_with_the_script_ci_checks_and_checks_its_own_health() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let builds: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.contains("cargo "))
        .collect();
    assert!(
        builds.is_empty(),
        "cargo runs only through scripts/image-build: {builds:?}"
    );
    assert!(dockerfile.contains("scripts/image-build"));
    assert!(read(".ci/run").contains("scripts/image-build --check"));
    assert!(dockerfile.contains("CMD [\"/usr/local/bin/brokergraph\", \"healthcheck\"]"));
    assert!(
        !instructions.iter().any(|l| l.contains("curl")),
        "no curl in the image"
    );
    assert!(read(".dockerignore").lines().any(|l| l.trim() == "target"));
    assert!(read(".dockerignore").lines().any(|l| l.trim() == ".git"));
}
