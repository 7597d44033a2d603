//! Logging: tracing-subscriber's fmt layer, human text or one JSON object per line,
//! to stderr (stdout is for command output such as `schema`). The filter is
//! `RUST_LOG` when set, since that is what an operator reaches for while debugging,
//! else `log.filter`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. A second call (or a subscriber installed by
/// someone else, e.g. a test harness) is left in place rather than panicking.
pub fn init(log: &LogSettings) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, rejected) = filter(&log.filter, rust_log.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let (Ok(()), Some(error)) = (installed, rejected) {
        tracing::warn!(%error, filter = %log.filter, "RUST_LOG is not a valid filter; using log.filter");
    }
}

/// The filter to use, and why `RUST_LOG` was rejected if it was. `settings` was
/// validated by the config loader; should it still fail, `info` is the fallback.
fn filter(settings: &str, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let from_settings = || EnvFilter::try_new(settings).unwrap_or_else(|_| EnvFilter::new("info"));
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => (from_settings(), None),
        Some(directives) => match EnvFilter::try_new(directives) {
            Ok(filter) => (filter, None),
            Err(e) => (from_settings(), Some(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn rust_log_wins_when_valid() {
        let (f, rejected) = filter("info", Some("debug"));
        assert_eq!(f.to_string(), "debug");
        assert!(rejected.is_none());
    }

    #[test]
    fn invalid_rust_log_falls_back_to_settings() {
        let (f, rejected) = filter("warn,brokergraph=debug", Some("=[bad"));
        assert!(f.to_string().contains("brokergraph=debug"));
        assert!(rejected.is_some());
    }

    #[test]
    fn empty_rust_log_is_unset() {
        let (f, rejected) = filter("warn", Some("  "));
        assert_eq!(f.to_string(), "warn");
        assert!(rejected.is_none());
    }
}
