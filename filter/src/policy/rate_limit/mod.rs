//! Rate limiting: GCRA (the `governor` crate) over a fixed table in a store every worker
//! shares ([`RateStore`]: proxy-wasm shared data across Envoy's worker VMs, or atomics in
//! process memory across a native build's worker threads), so a limit holds across all of
//! Envoy's workers, with bounded memory, and the IETF RateLimit header fields on every
//! response.

mod atomic_table;
mod compile;
mod gcra;
pub mod global;
mod headers;
mod key;
pub mod raw;
pub mod rls;
mod shared_data;
mod store;
mod table;

use std::hash::Hasher;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use http::StatusCode;
use siphasher::sip128::{Hasher128, SipHasher13};

pub use atomic_table::{AtomicTables, TableRegistry};
pub use compile::{DEFAULT_MESSAGE, DEFAULT_SLOTS, compile};
pub use gcra::{Check, MAX_CAS_RETRIES, check};
pub use global::{Failure, GlobalOutcome, Scope, Service, ServiceAnswer, ServiceQuery};
pub use key::{KeyPart, KeySpec, parse_ip};
pub use raw::{MissingKey, Mode, OnError, RawLimits};
pub use shared_data::{GetError, MemorySharedData, SetError, SharedData};
pub use store::RateStore;
pub use table::{BUCKET_BYTES, Bucket, BucketCell, SLOTS_PER_BUCKET, Slot};

use crate::problem::Problem;
use crate::reply::LocalResponse;
use crate::request::RequestHead;
use key::MissingHeader;

/// One compiled limit.
#[derive(Debug)]
pub struct Limit {
    pub name: String,
    pub limit: u32,
    pub window: Duration,
    pub burst: u32,
    quota: Quota,
    pub key: KeySpec,
    pub missing_key: MissingKey,
    pub mode: Mode,
    pub message: String,
    pub on_error: OnError,
    /// Buckets of the table (8 slots each).
    pub buckets: u32,
    /// The table's name in its store; in shared data, the key prefix of its buckets
    /// (`<table><n>`).
    pub table: String,
    /// This limit's member of `RateLimit-Policy`: `"name";q=100;w=900`.
    pub policy_item: String,
    /// The start of its member of `RateLimit`: `"name";r=`.
    pub state_prefix: String,
    pub legacy_headers: bool,
    /// Counted here, or by a rate limit service for every replica.
    pub scope: Scope,
}

/// The limits of one route (or the defaults): all must pass.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    pub limits: Vec<Arc<Limit>>,
}

impl Limit {
    /// The shared-data key of bucket `bucket` of the table.
    pub fn bucket_key(&self, bucket: u32) -> String {
        format!("{}{bucket}", self.table)
    }
}

/// Keys are hashed with a per-process secret (shared by the workers through their store), so
/// clients cannot aim their keys at one bucket.
#[derive(Debug, Clone)]
pub struct KeyHasher {
    secret: [u8; 16],
}

impl KeyHasher {
    pub fn new(secret: [u8; 16]) -> Self {
        Self { secret }
    }

    /// The bucket a key lives in and its fingerprint in that bucket (never 0).
    fn locate(&self, limit: &Limit, key: &[u8]) -> (u32, u64) {
        let mut hasher = SipHasher13::new_with_key(&self.secret);
        hasher.write(limit.table.as_bytes());
        hasher.write(key);
        let hash = hasher.finish128();
        let bucket = u32::try_from(hash.h1 % u64::from(limit.buckets.max(1))).unwrap_or(0);
        (bucket, hash.h2 | 1)
    }
}

/// What the limiter needs from outside, per request.
pub struct Inputs<'a> {
    /// Wall clock, nanoseconds since the Unix epoch.
    pub now: u64,
    /// The client's address, when a limit keys by client (see `crate::client_address`).
    pub client: Option<IpAddr>,
    pub route: &'a str,
    pub store: &'a dyn RateStore,
    pub hasher: &'a KeyHasher,
}

/// Something worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Allowed,
    Limited,
    DryRunLimited,
    /// CAS races lost and retried.
    StoreConflicts(u32),
    StoreError,
    /// A global limit's question sent to its service.
    ServiceRequest,
    /// Its service failed (an error status, an unusable answer, or no call).
    ServiceError,
    /// Its service did not answer within the timeout.
    ServiceTimeout,
}

/// The response headers the decision calls for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// `RateLimit-Policy` and `RateLimit` values (draft-ietf-httpapi-ratelimit-headers-11).
    pub policy: String,
    pub state: String,
    /// `X-RateLimit-Limit/Remaining/Reset`, when asked for.
    pub legacy: Option<(String, String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub refusal: Option<LocalResponse>,
    pub headers: Option<RateHeaders>,
    pub events: Vec<(Arc<Limit>, Event)>,
    /// The question for the rate limit service, when the local limits let the request
    /// through and global ones apply.
    pub query: Option<ServiceQuery>,
}

/// Whole seconds, rounded up (a client must not come back early).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Limit {
    pub fn is_global(&self) -> bool {
        matches!(self.scope, Scope::Global(_))
    }
}

impl RateLimits {
    pub fn needs_client_address(&self) -> bool {
        self.limits.iter().any(|l| l.key.needs_client_address())
    }

    /// Whether a rate limit service counts some of these limits.
    pub fn has_global(&self) -> bool {
        self.limits.iter().any(|l| l.is_global())
    }

    /// The service of the global limits (compile makes them share one).
    fn service(&self) -> Option<&Arc<Service>> {
        self.limits.iter().find_map(|l| match &l.scope {
            Scope::Global(service) => Some(service),
            Scope::Local => None,
        })
    }

    /// Checks the local limits in order (the first refusal in enforce mode stops the rest);
    /// if they let the request through, the global ones become the question for their service.
    pub fn check(&self, request: &RequestHead<'_, '_>, inputs: &Inputs<'_>) -> Outcome {
        let mut progress = Progress::default();
        let mut key = Vec::with_capacity(64);
        for limit in self.limits.iter().filter(|l| !l.is_global()) {
            if let ControlFlow::Break(answer) = progress.check(limit, request, inputs, &mut key) {
                return progress.into_outcome(Some(answer));
            }
        }
        let Some(service) = self.service() else {
            return progress.into_outcome(None);
        };
        let global = self
            .limits
            .iter()
            .filter(|l| l.is_global())
            .cloned()
            .collect();
        match ServiceQuery::new(service, global, request, inputs) {
            Ok(query) => {
                let mut outcome = progress.into_outcome(None);
                outcome.query = Some(query);
                outcome
            }
            Err(missing) => progress.into_outcome(Some(missing_key_refusal(&missing, request))),
        }
    }
}

/// What the limits checked so far decided: the events to count, and the header fields of each
/// limit whose state is known (written as they come: one allocation per field, no formatting
/// machinery on the request path).
#[derive(Default)]
struct Progress {
    events: Vec<(Arc<Limit>, Event)>,
    /// `RateLimit-Policy` so far.
    policy: String,
    /// `RateLimit` so far.
    state: String,
    /// The legacy fields of the limit with the fewest requests remaining: (limit, remaining,
    /// seconds to reset).
    legacy: Option<(u32, u32, u64)>,
}

impl Progress {
    /// One limit's decision; `Break` with the refusal that stops the rest. `key`: a buffer
    /// for the request's key, reused from limit to limit.
    fn check(
        &mut self,
        limit: &Arc<Limit>,
        request: &RequestHead<'_, '_>,
        inputs: &Inputs<'_>,
        key: &mut Vec<u8>,
    ) -> ControlFlow<LocalResponse> {
        key.clear();
        if let Err(missing) = limit.key.derive(request, inputs.client, inputs.route, key) {
            if limit.missing_key == MissingKey::Reject {
                return ControlFlow::Break(missing_key_refusal(&missing, request));
            }
            key.clear();
            key.extend_from_slice(b"\0missing");
        }
        let (bucket, fingerprint) = inputs.hasher.locate(limit, key);
        let result = inputs.store.check(limit, bucket, fingerprint, inputs.now);
        if result.conflicts > 0 {
            self.event(limit, Event::StoreConflicts(result.conflicts));
        }
        if result.store_failed {
            self.event(limit, Event::StoreError);
            if limit.on_error == OnError::Deny && limit.mode == Mode::Enforce {
                return ControlFlow::Break(unavailable_refusal(request.request_id()));
            }
            return ControlFlow::Continue(()); // allowed, without headers for a state we do not know
        }
        self.add_fields(limit, &result);
        if result.allowed {
            self.event(limit, Event::Allowed);
            return ControlFlow::Continue(());
        }
        if limit.mode == Mode::DryRun {
            self.event(limit, Event::DryRunLimited);
            return ControlFlow::Continue(());
        }
        self.event(limit, Event::Limited);
        let retry_after = ceil_secs(result.retry_after);
        ControlFlow::Break(limited_refusal(limit, retry_after, request.request_id()))
    }

    fn event(&mut self, limit: &Arc<Limit>, event: Event) {
        self.events.push((Arc::clone(limit), event));
    }

    /// The limit's members of `RateLimit-Policy` and `RateLimit`, and its legacy fields if it
    /// asks for them and has the fewest requests remaining so far.
    fn add_fields(&mut self, limit: &Limit, result: &Check) {
        let t = if result.allowed {
            result.reset_after
        } else {
            result.retry_after
        };
        if !self.policy.is_empty() {
            self.policy.push_str(", ");
            self.state.push_str(", ");
        }
        self.policy.push_str(&limit.policy_item);
        // The prefix, two numbers of up to 20 digits and `;t=`: one allocation.
        self.state.reserve(limit.state_prefix.len() + 43);
        self.state.push_str(&limit.state_prefix);
        self.state
            .push_str(itoa::Buffer::new().format(result.remaining));
        self.state.push_str(";t=");
        self.state
            .push_str(itoa::Buffer::new().format(ceil_secs(t)));
        if limit.legacy_headers
            && self
                .legacy
                .is_none_or(|(_, remaining, _)| result.remaining < remaining)
        {
            self.legacy = Some((limit.limit, result.remaining, ceil_secs(result.reset_after)));
        }
    }

    fn into_outcome(self, refusal: Option<LocalResponse>) -> Outcome {
        let headers = (!self.policy.is_empty()).then(|| RateHeaders {
            policy: self.policy,
            state: self.state,
            legacy: self.legacy.map(|(limit, remaining, reset)| {
                (limit.to_string(), remaining.to_string(), reset.to_string())
            }),
        });
        Outcome {
            refusal,
            headers,
            events: self.events,
            query: None,
        }
    }
}

/// 400: a `header:` key's header is missing and the limit says `missing_key: reject`.
fn missing_key_refusal(missing: &MissingHeader, request: &RequestHead<'_, '_>) -> LocalResponse {
    let problem = Problem::new(
        StatusCode::BAD_REQUEST,
        "rate_limit_key_missing",
        format!("This endpoint requires the {} header.", missing.0),
    );
    LocalResponse::problem(&problem, request.request_id())
}

/// 503: the store (or the service) failed and the limit says `on_error` (`failure_mode`)
/// `deny`.
fn unavailable_refusal(request_id: Option<&str>) -> LocalResponse {
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "rate_limit_unavailable",
        "The rate limiter is unavailable; try again shortly.",
    );
    let mut refusal = LocalResponse::problem(&problem, request_id);
    refusal.headers.push(("retry-after".into(), "1".into()));
    refusal
}

/// 429 with `Retry-After` (whole seconds, at least 1), naming the limit.
fn limited_refusal(limit: &Limit, retry_after: u64, request_id: Option<&str>) -> LocalResponse {
    let retry_after = retry_after.max(1).to_string();
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        limit.message.clone(),
    )
    .with_extension("violated_policies", &[&limit.name]);
    let mut refusal = LocalResponse::problem(&problem, request_id);
    refusal.headers.push(("retry-after".into(), retry_after));
    refusal
}

#[cfg(test)]
mod atomic_table_tests;
#[cfg(test)]
mod tests;
