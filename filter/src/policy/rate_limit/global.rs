//! Fleet-wide limits (`scope: global`): counted by a rate limit service that every Envoy
//! replica asks (envoyproxy/ratelimit, Limitador, or this project's `hardening-ratelimit`),
//! through Envoy's rate limit service protocol ([`super::rls`]). Here: the service's compiled
//! config, the question a request asks (one descriptor per global limit), and what an answer,
//! or its absence, decides. The call itself is the exchange's, over the host.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use super::key::MissingHeader;
use super::raw::RawService;
use super::rls::{self, Descriptor, Entry, RateLimitRequest, Verdict};
use super::{
    Event, Inputs, Limit, Mode, OnError, RateHeaders, ceil_secs, limited_refusal,
    unavailable_refusal,
};
use crate::reply::LocalResponse;
use crate::request::RequestHead;
use crate::syntax::{ConfigError, parse_duration};

/// The longest a request may wait for the service.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// A descriptor's value when a `header:` key's header is absent and the limit says
/// `missing_key: shared`: every such request shares this one counter.
pub const MISSING_VALUE: &str = "(missing)";

/// The rate limit service a global limit asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The Envoy cluster the call goes to (HTTP/2).
    pub cluster: String,
    /// The RLS `domain` (Limitador's namespace).
    pub domain: String,
    /// How long a request waits for the answer; the host ends the call then.
    pub timeout: Duration,
    pub failure_mode: OnError,
}

/// Where a limit is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// In this Envoy, across its workers (GCRA over shared data or process memory).
    Local,
    /// By the service, for every replica.
    Global(Arc<Service>),
}

impl Service {
    pub fn compile(raw: Option<&RawService>) -> Result<Self, ConfigError> {
        let Some(raw) = raw else {
            return Err(ConfigError::new(
                "service",
                "required with scope: global (cluster, domain)",
            ));
        };
        let cluster = raw.cluster.clone().unwrap_or_default();
        check_cluster(&cluster).map_err(|reason| ConfigError::new("service.cluster", reason))?;
        let domain = raw.domain.clone().unwrap_or_default();
        if domain.is_empty() || domain.len() > 255 || domain.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "service.domain",
                "required: the service's domain (Limitador's namespace), 1-255 characters",
            ));
        }
        let timeout = match raw.timeout.as_deref() {
            None => Duration::from_millis(100),
            Some(text) => parse_duration(text)
                .map_err(|reason| ConfigError::new("service.timeout", reason))?,
        };
        if timeout > MAX_TIMEOUT {
            return Err(ConfigError::new(
                "service.timeout",
                "at most 10s: every request waits for the answer",
            ));
        }
        Ok(Self {
            cluster,
            domain,
            timeout,
            failure_mode: raw.failure_mode.unwrap_or_default(),
        })
    }
}

/// A cluster name Envoy takes as a cluster name. Envoy first tries the name as a serialised
/// `GrpcService`: one that happens to decode as protobuf would be read as that and refused
/// with a status the proxy-wasm SDK panics on, so such names are refused here.
fn check_cluster(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("required: the Envoy cluster of the rate limit service (1-255 bytes)".into());
    }
    if name.chars().any(char::is_control) {
        return Err("no control characters".into());
    }
    if <() as Message>::decode(name.as_bytes()).is_ok() {
        return Err(format!(
            "`{name}` reads as a serialised protobuf message, which Envoy would take for a \
             GrpcService; choose another name (for example with a `_` or a digit first)"
        ));
    }
    Ok(())
}

/// The question one request asks the service: its encoded `RateLimitRequest` and the limits
/// its descriptors stand for, in order.
#[derive(Debug, Clone)]
pub struct ServiceQuery {
    pub service: Arc<Service>,
    pub limits: Vec<Arc<Limit>>,
    pub message: Vec<u8>,
}

/// What came back from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAnswer<'a> {
    /// The response message (deframed).
    Message(&'a [u8]),
    /// The call ended without one: its gRPC status and message (a timeout is code 4, or 14
    /// with Envoy's "upstream request timeout").
    Closed { code: u32, message: &'a str },
    /// The host could not start the call (an unknown cluster).
    NotSent,
}

/// Why the answer could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotSent,
    Timeout,
    /// A gRPC status other than OK.
    Status(u32),
    Undecodable,
    /// `UNKNOWN` overall: the service does not know the domain.
    UnknownCode,
}

impl Failure {
    /// The `code` of its log line.
    pub fn code(self) -> String {
        match self {
            Self::NotSent => "not_sent".into(),
            Self::Timeout => "timeout".into(),
            Self::Status(code) => format!("grpc_status_{code}"),
            Self::Undecodable => "undecodable_answer".into(),
            Self::UnknownCode => "unknown_code".into(),
        }
    }
}

/// What the answer decides.
#[derive(Debug, Clone, Default)]
pub struct GlobalOutcome {
    pub refusal: Option<LocalResponse>,
    pub events: Vec<(Arc<Limit>, Event)>,
    /// Set when the service failed (the limits' `failure_mode` decided).
    pub failure: Option<Failure>,
    /// The status message of a call that closed without an answer (at most 200 characters).
    pub detail: Option<String>,
}

impl ServiceQuery {
    /// The question for `limits` (the route's global ones, all with the same service), or the
    /// 400 refusal of a `header:` key whose header is missing under `missing_key: reject`.
    pub fn new(
        service: &Arc<Service>,
        limits: Vec<Arc<Limit>>,
        request: &RequestHead<'_, '_>,
        inputs: &Inputs<'_>,
    ) -> Result<Self, MissingHeader> {
        let mut descriptors = Vec::with_capacity(limits.len());
        for limit in &limits {
            let mut entries = vec![Entry {
                key: "limit".into(),
                value: limit.name.clone(),
            }];
            if let Err(missing) =
                limit
                    .key
                    .entries(request, inputs.client, inputs.route, &mut entries)
            {
                if limit.missing_key == super::MissingKey::Reject {
                    return Err(missing);
                }
                entries.truncate(1);
                entries.push(Entry {
                    key: format!("header:{}", missing.0),
                    value: MISSING_VALUE.into(),
                });
            }
            descriptors.push(Descriptor { entries });
        }
        let message = RateLimitRequest {
            domain: service.domain.clone(),
            descriptors,
            hits_addend: 1,
        }
        .encode_to_vec();
        Ok(Self {
            service: Arc::clone(service),
            limits,
            message,
        })
    }

    /// What the answer decides; `fields`: the RateLimit fields so far (the local limits'),
    /// extended with the global limits' where the service said their state.
    pub fn decide(
        &self,
        answer: ServiceAnswer<'_>,
        fields: &mut Option<RateHeaders>,
        request_id: Option<&str>,
    ) -> GlobalOutcome {
        let verdicts = match answer {
            ServiceAnswer::Message(bytes) => {
                rls::read_response(bytes, self.limits.len()).map_err(|failure| match failure {
                    rls::Failure::Undecodable => Failure::Undecodable,
                    rls::Failure::UnknownCode => Failure::UnknownCode,
                })
            }
            ServiceAnswer::Closed { code, message } => Err(closed(code, message)),
            ServiceAnswer::NotSent => Err(Failure::NotSent),
        };
        match verdicts {
            Ok(verdicts) => self.apply(&verdicts, fields, request_id),
            Err(failure) => {
                let mut outcome = self.fail(failure, request_id);
                if let ServiceAnswer::Closed { message, .. } = answer {
                    outcome.detail = Some(message.chars().take(200).collect());
                }
                outcome
            }
        }
    }

    fn apply(
        &self,
        verdicts: &[Verdict],
        fields: &mut Option<RateHeaders>,
        request_id: Option<&str>,
    ) -> GlobalOutcome {
        let mut outcome = GlobalOutcome::default();
        for (limit, verdict) in self.limits.iter().zip(verdicts) {
            add_fields(fields, limit, verdict);
            let event = match verdict {
                Verdict::Ok { .. } => Event::Allowed,
                Verdict::OverLimit { .. } if limit.mode == Mode::DryRun => Event::DryRunLimited,
                Verdict::OverLimit { reset, .. } => {
                    if outcome.refusal.is_none() {
                        let retry = reset.map_or(ceil_secs(limit.window), ceil_secs);
                        outcome.refusal = Some(limited_refusal(limit, retry, request_id));
                    }
                    Event::Limited
                }
            };
            outcome.events.push((Arc::clone(limit), event));
        }
        outcome
    }

    fn fail(&self, failure: Failure, request_id: Option<&str>) -> GlobalOutcome {
        let event = if failure == Failure::Timeout {
            Event::ServiceTimeout
        } else {
            Event::ServiceError
        };
        let deny = self.service.failure_mode == OnError::Deny
            && self.limits.iter().any(|l| l.mode == Mode::Enforce);
        GlobalOutcome {
            refusal: deny.then(|| unavailable_refusal(request_id)),
            events: self.limits.iter().map(|l| (Arc::clone(l), event)).collect(),
            failure: Some(failure),
            detail: None,
        }
    }
}

/// A call that ended without an answer: a timeout (code 4, or Envoy 1.40's 14 with its
/// router's message, `upstream request timeout{response_timeout}` to a Wasm filter and
/// percent-encoded in a `grpc-message` header), or another status.
fn closed(code: u32, message: &str) -> Failure {
    let timed_out = message.starts_with("upstream request timeout")
        || message.starts_with("upstream%20request%20timeout");
    if code == 4 || timed_out {
        Failure::Timeout
    } else {
        Failure::Status(code)
    }
}

/// The limit's members of `RateLimit-Policy` and `RateLimit` from the service's verdict: `q`
/// is the service's limit when it says one, `r` and `t` only when it says them.
fn add_fields(fields: &mut Option<RateHeaders>, limit: &Limit, verdict: &Verdict) {
    let (quota, remaining, reset) = match verdict {
        Verdict::Ok {
            limit,
            remaining,
            reset,
        } => (*limit, *remaining, *reset),
        Verdict::OverLimit { limit, reset } => (*limit, Some(0), *reset),
    };
    let fields = fields.get_or_insert_with(RateHeaders::default);
    let window = ceil_secs(limit.window);
    let quota = quota.unwrap_or(limit.limit);
    if !fields.policy.is_empty() {
        fields.policy.push_str(", ");
    }
    // The member compiled with the limit, unless the service says another quota.
    if quota == limit.limit {
        fields.policy.push_str(&limit.policy_item);
    } else {
        let item = format!("\"{}\";q={quota};w={window}", limit.name);
        fields.policy.push_str(&item);
    }
    if let Some(remaining) = remaining {
        if !fields.state.is_empty() {
            fields.state.push_str(", ");
        }
        fields.state.push_str(&limit.state_prefix);
        fields.state.push_str(itoa::Buffer::new().format(remaining));
        if let Some(reset) = reset {
            fields.state.push_str(";t=");
            fields
                .state
                .push_str(itoa::Buffer::new().format(ceil_secs(reset)));
        }
        let fewer = fields
            .legacy
            .as_ref()
            .and_then(|(_, r, _)| r.parse::<u32>().ok())
            .is_none_or(|r| remaining < r);
        if limit.legacy_headers && fewer {
            let reset = reset.map_or(window, ceil_secs);
            fields.legacy = Some((quota.to_string(), remaining.to_string(), reset.to_string()));
        }
    }
}

#[cfg(test)]
mod tests;
