//! What the configuration tests share: a config file on disk, `Config::load_from`
//! with flags and an env map, and the real binary run with no inherited
//! `BROKERGRAPH_*` variables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use brokergraph::cli::Cli;
use brokergraph::config::{Config, ConfigError};
use clap::Parser;

pub const BROKER_KEY: &str = "sk-live-DO-NOT-PRINT-4711";
pub const KEY_HASH: &str = "5e50f405ace6cbdf17379f4b9f2b0c9f4144c5e380ea0b9298cb02ebd8ffe511";

pub fn toml_file(contents: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("config-test-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

pub fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("brokergraph").chain(args.iter().copied()))
}

pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load_from(&cli(args), &env(vars))
}

/// Runs the binary with no inherited `BROKERGRAPH_*` variables.
pub fn run(args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_brokergraph"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BROKERGRAPH_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(args).envs(vars.iter().copied());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// Exit code 2 and exactly one stderr line, naming `key`.
pub fn assert_config_error(out: &Output, key: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(&format!("`{key}`")),
        "names {key}: {stderr}"
    );
    stderr
}
