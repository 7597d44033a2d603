//! `[log]`: log format and filter, and the optional OTLP trace export.

use serde::Deserialize;

use super::check::{fail, Check};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `EnvFilter` directives; `RUST_LOG` overrides them when set.
    pub filter: String,
    /// OTLP/HTTP collector base URL (`/v1/traces` is appended); unset: no export.
    /// Accepted by every build so one config file fits all, refused at validation
    /// by a build without the `otlp` feature rather than silently not exporting.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans, to tell deployments apart.
    pub otlp_service_name: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info,brokergraph=info".to_string(),
            otlp_endpoint: None,
            otlp_service_name: "brokergraph".to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl LogSettings {
    pub(crate) fn validate(&self) -> Check {
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.filter) {
            fail("log.filter", format!("is not a valid filter: {e}"))?;
        }
        self.validate_otlp()
    }

    /// A build without the exporter refuses the endpoint: an operator who asked for
    /// traces would otherwise see none and no reason why.
    fn validate_otlp(&self) -> Check {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        if !cfg!(feature = "otlp") {
            fail(
                "log.otlp_endpoint",
                "needs a brokergraph built with `--features otlp` (this build cannot export traces)",
            )?;
        }
        let endpoint = endpoint.trim();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            fail(
                "log.otlp_endpoint",
                "must be an http:// or https:// URL such as http://otel-collector:4318",
            )?;
        }
        if self.otlp_service_name.trim().is_empty() {
            fail("log.otlp_service_name", "must not be empty")?;
        }
        Ok(())
    }
}
