//! Fault injection: the profile `POST /sim/faults` takes, and the seeded dice that
//! decide, request by request and stream message by stream message, what goes wrong.
//! Seeded so that a failing run can be repeated exactly.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The body of `POST /sim/faults`; replaces the whole profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultProfile {
    /// Seeds the dice; defaults to the simulator's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// A route key such as `"POST /v1/orders"` (or the stream's `"GET /v1/stream"`), or
    /// `"*"` for every route the kind applies to.
    #[serde(default = "any_route")]
    pub route: String,
    /// Probability per request, 0..=1; defaults to 1 (always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

fn any_route() -> String {
    "*".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Added before the response: `ms` plus a uniform 0..=`jitter_ms`.
    Latency {
        #[serde(default)]
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Answer with this status instead of running the request. A 429 carries
    /// Retry-After: `retry_after` seconds if given, else the time to the end of the
    /// caller's rate-limit window, as the real limiter says.
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Never answer; the request is held until the client gives up or the sim stops.
    Hang,
    /// Drop the connection without a response.
    Reset,
    /// Run the request for real (the order is created), then lose the response.
    CommitThenFail {
        #[serde(rename = "as", default)]
        fail_as: CommitFailure,
    },
    /// Stream kinds roll once per order event a stream connection is about to send.
    /// This one closes the connection without a closing handshake instead of sending,
    /// as a network failure would.
    StreamDrop,
    /// Skips the message silently: what a broker's lossy stream does.
    StreamLose,
    /// Sends the message twice.
    StreamDuplicate,
    /// Holds the message (and so everything behind it) for `ms`.
    StreamDelay {
        #[serde(default)]
        ms: u64,
    },
}

impl FaultKind {
    fn is_stream(&self) -> bool {
        matches!(
            self,
            FaultKind::StreamDrop
                | FaultKind::StreamLose
                | FaultKind::StreamDuplicate
                | FaultKind::StreamDelay { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitFailure {
    #[default]
    #[serde(rename = "503")]
    ServiceUnavailable,
    #[serde(rename = "reset")]
    Reset,
}

/// What the dice decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pass,
    Status(u16, Option<u64>),
    Hang,
    Reset,
    CommitThenFail(CommitFailure),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub latency: Duration,
    pub outcome: Outcome,
}

/// What the dice decided for one stream message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamPlan {
    pub delay: Duration,
    pub drop: bool,
    pub lose: bool,
    pub duplicate: bool,
}

/// Stream dice roll apart from request dice, so that stream traffic does not change what
/// happens to requests of a seeded run, and the other way round.
const STREAM_SALT: u64 = 0x5eed_0006;

pub(crate) struct Faults {
    profile: FaultProfile,
    rng: ChaCha8Rng,
    stream_rng: ChaCha8Rng,
}

impl FaultProfile {
    /// Rejects profiles that would silently never fire, so a typo is not mistaken for a
    /// resilient gateway. `routes` are the request routes the pipeline applies faults
    /// to; `stream` is the stream's route, the only one stream kinds apply to.
    pub(crate) fn validate(&self, routes: &[&str], stream: &str) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.kind.is_stream() {
                if rule.route != "*" && rule.route != stream {
                    return Err(format!(
                        "rules[{i}].route: stream faults apply to {stream:?} or \"*\", not {:?}",
                        rule.route
                    ));
                }
            } else if rule.route != "*" && !routes.contains(&rule.route.as_str()) {
                return Err(format!(
                    "rules[{i}].route: unknown route {:?}; use one of {routes:?} or \"*\"",
                    rule.route
                ));
            }
            if let Some(rate) = rule.rate {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(format!("rules[{i}].rate must be between 0 and 1"));
                }
            }
            if let FaultKind::Status { status, .. } = rule.kind {
                if !(400..=599).contains(&status) {
                    return Err(format!(
                        "rules[{i}].status must be an HTTP error status (400..599)"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Faults {
    pub(crate) fn new(profile: FaultProfile, default_seed: u64) -> Self {
        let seed = profile.seed.unwrap_or(default_seed);
        Faults {
            profile,
            rng: ChaCha8Rng::seed_from_u64(seed),
            stream_rng: ChaCha8Rng::seed_from_u64(seed ^ STREAM_SALT),
        }
    }

    pub(crate) fn profile(&self) -> &FaultProfile {
        &self.profile
    }

    /// Rolls every matching rule in order (always, so the dice sequence depends only on
    /// the request sequence); latencies add up, the first failure that fires wins.
    pub(crate) fn plan(&mut self, route: &str) -> Plan {
        let mut plan = Plan {
            latency: Duration::ZERO,
            outcome: Outcome::Pass,
        };
        for rule in &self.profile.rules {
            if rule.kind.is_stream() || (rule.route != "*" && rule.route != route) {
                continue;
            }
            let fires = self.rng.gen::<f64>() < rule.rate.unwrap_or(1.0);
            if !fires {
                continue;
            }
            let outcome = match rule.kind {
                FaultKind::Latency { ms, jitter_ms } => {
                    let jitter = if jitter_ms > 0 {
                        self.rng.gen_range(0..=jitter_ms)
                    } else {
                        0
                    };
                    plan.latency += Duration::from_millis(ms.saturating_add(jitter));
                    continue;
                }
                FaultKind::Status {
                    status,
                    retry_after,
                } => Outcome::Status(status, retry_after),
                FaultKind::Hang => Outcome::Hang,
                FaultKind::Reset => Outcome::Reset,
                FaultKind::CommitThenFail { fail_as } => Outcome::CommitThenFail(fail_as),
                FaultKind::StreamDrop
                | FaultKind::StreamLose
                | FaultKind::StreamDuplicate
                | FaultKind::StreamDelay { .. } => continue,
            };
            if plan.outcome == Outcome::Pass {
                plan.outcome = outcome;
            }
        }
        plan
    }

    /// Like [`Faults::plan`], for one message of a stream on `route`: every matching
    /// stream rule rolls, in order; delays add up.
    pub(crate) fn plan_stream(&mut self, route: &str) -> StreamPlan {
        let mut plan = StreamPlan::default();
        for rule in &self.profile.rules {
            if !rule.kind.is_stream() || (rule.route != "*" && rule.route != route) {
                continue;
            }
            if self.stream_rng.gen::<f64>() >= rule.rate.unwrap_or(1.0) {
                continue;
            }
            match rule.kind {
                FaultKind::StreamDrop => plan.drop = true,
                FaultKind::StreamLose => plan.lose = true,
                FaultKind::StreamDuplicate => plan.duplicate = true,
                FaultKind::StreamDelay { ms } => plan.delay += Duration::from_millis(ms),
                _ => {}
            }
        }
        plan
    }
}
