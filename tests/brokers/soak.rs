//! The short chaos soak: a few hundred orders through the default fault profile
//! (5xx, hangs, resets, commit-then-fail, 429 bursts, latency). The binary
//! reconciles client answers against the broker and exits non-zero on any
//! duplicate, lost or orphan order, undocumented error or 500.

use std::process::Command;

#[test]
fn short_soak_loses_and_duplicates_nothing() {
    let output = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--clients", "10", "--orders", "20", "--seed", "3"])
        .output()
        .expect("the soak binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("soak:"))
        .unwrap_or_default();
    assert!(
        output.status.success() && summary.contains("result=PASS"),
        "soak failed:\n{summary}\n{stderr}"
    );
    for zero in [
        "duplicates=0",
        "lost=0",
        "orphans=0",
        "undocumented_errors=0",
        "http_500=0",
    ] {
        assert!(summary.contains(zero), "{zero} expected in: {summary}");
    }
    assert!(summary.contains("submitted=200"), "{summary}");
}
