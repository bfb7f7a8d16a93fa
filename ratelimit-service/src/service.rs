//! `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`: each descriptor checked
//! alone against the limits of the request's domain, with Limitador's reservations so that
//! concurrent checks never admit more than a limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use limitador::AsyncRateLimiter;
use limitador::errors::LimitadorError;
use limitador::limit::{Context, Namespace};
use limitador::reservation::ReservationId;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};

use crate::limits::{DESCRIPTORS, Limits};
use crate::status::descriptor_status;
use crate::storage::Backend;

/// How long a reservation holds its hits if its commit never comes (the service stopped, or
/// Redis failed in between). A commit follows the answer within milliseconds; an orphaned
/// hold refuses requests that would fit until it expires, so it should not outlive that by
/// much. Limitador's own default is the whole window, up to 60 s.
const HOLD_TTL: Duration = Duration::from_secs(10);

/// The most hits one descriptor may add.
const MAX_HITS: u64 = u32::MAX as u64;

/// The gRPC service.
pub struct RateLimiter {
    backend: Arc<Backend>,
    limits: Arc<Limits>,
    commits: TaskTracker,
}

/// One descriptor of a request: its entries (the map `descriptors[0]` is bound to) and the
/// hits it adds.
struct Check {
    entries: HashMap<String, String>,
    hits: u64,
}

/// An admitted descriptor whose hits are held, waiting for its commit.
struct Held {
    entries: HashMap<String, String>,
    hits: u64,
    reservation: ReservationId,
}

impl RateLimiter {
    /// A service answering from `backend` (unavailable until it connects) with `limits`;
    /// commits run on `commits`, for a shutdown to wait for.
    pub fn new(backend: Arc<Backend>, limits: Arc<Limits>, commits: TaskTracker) -> Self {
        Self {
            backend,
            limits,
            commits,
        }
    }

    /// Reserves one descriptor's hits: its status, and the reservation to settle if any.
    async fn reserve(
        &self,
        limiter: &AsyncRateLimiter,
        namespace: &Namespace,
        check: &Check,
    ) -> Result<(DescriptorStatus, Option<ReservationId>), Status> {
        let ctx = context(&check.entries);
        if let Err(error) = self.limits.check_conditions(namespace, &ctx) {
            if error.first {
                eprintln!("hardening-ratelimit: {error}; answering INTERNAL for such requests");
            }
            return Err(Status::internal(error.to_string()));
        }
        // Limitador's exact path: one Lua script admits the hits only if the counter's value,
        // the hits other requests hold and these stay within the limit, and holds them
        // (`check_rate_limited_and_update` reads, then increments: concurrent checks overshoot).
        let reserved = limiter
            .reserve(namespace, &ctx, check.hits, Some(HOLD_TTL))
            .await;
        match reserved {
            Ok(result) => {
                self.backend.health().succeeded();
                let status = descriptor_status(result.limited, &result.counters);
                Ok((status, result.reservation_id))
            }
            Err(error) => Err(self.failure("reserve", &error)),
        }
    }

    /// Commits the held hits in the background (the answer does not wait for it: until the
    /// commit, the hold counts them), or, when the request is refused or failed, releases
    /// them: a request refused by one limit does not spend the others. (The statuses of those
    /// others, already answered, count their released hold in `limit_remaining`.)
    fn settle(
        &self,
        limiter: Arc<AsyncRateLimiter>,
        namespace: Namespace,
        held: Vec<Held>,
        count: bool,
    ) {
        if held.is_empty() {
            return;
        }
        let backend = Arc::clone(&self.backend);
        self.commits.spawn(async move {
            for hold in held {
                let ctx = context(&hold.entries);
                let amount = if count { hold.hits } else { 0 };
                // Counts `amount` and drops the hold in one Lua script (Limitador patched for
                // it: vendor/limitador/PATCHED.md), so the hits never count twice.
                let committed = limiter
                    .commit_reservation(&namespace, &ctx, Some(&hold.reservation), amount)
                    .await;
                if let Err(error) = committed {
                    // The hold expires after HOLD_TTL; these hits are then not counted.
                    backend.health().failed("commit", &describe(&error));
                }
            }
        });
    }

    /// The answer to a Limitador error, logged if it is a storage failure starting.
    fn failure(&self, operation: &str, error: &LimitadorError) -> Status {
        match error {
            LimitadorError::StorageError(storage) => {
                self.backend.health().failed(operation, &storage.msg());
                Status::unavailable(format!("rate limit storage unavailable: {}", storage.msg()))
            }
            LimitadorError::InterpreterError(_) => Status::internal(describe(error)),
        }
    }
}

#[tonic::async_trait]
impl RateLimitService for RateLimiter {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        let request = request.into_inner();
        let checks = checks(&request)?;
        let limiter = self.backend.limiter().cloned().ok_or_else(|| {
            Status::unavailable("rate limit storage unavailable: not connected to Redis yet")
        })?;
        let namespace = Namespace::from(request.domain);
        let mut statuses = Vec::with_capacity(checks.len());
        let mut held = Vec::new();
        for check in checks {
            match self.reserve(&limiter, &namespace, &check).await {
                Ok((status, reservation)) => {
                    statuses.push(status);
                    if let Some(reservation) = reservation {
                        held.push(Held {
                            entries: check.entries,
                            hits: check.hits,
                            reservation,
                        });
                    }
                }
                Err(status) => {
                    self.settle(limiter, namespace, held, false);
                    return Err(status);
                }
            }
        }
        let over = statuses
            .iter()
            .any(|s| s.code == i32::from(Code::OverLimit));
        self.settle(limiter, namespace, held, !over);
        let overall = if over { Code::OverLimit } else { Code::Ok };
        Ok(Response::new(RateLimitResponse {
            overall_code: overall.into(),
            statuses,
            ..RateLimitResponse::default()
        }))
    }
}

/// The request's descriptors as checks, or why the request is malformed.
fn checks(request: &RateLimitRequest) -> Result<Vec<Check>, Status> {
    if request.domain.is_empty() {
        return Err(Status::invalid_argument("domain must not be empty"));
    }
    if request.descriptors.is_empty() {
        return Err(Status::invalid_argument("descriptors must not be empty"));
    }
    // The protocol's default: an unset (0) request-level hits_addend means 1.
    let hits = u64::from(request.hits_addend.max(1));
    request
        .descriptors
        .iter()
        .map(|descriptor| check(descriptor, hits))
        .collect()
}

/// One descriptor's entries (the last of a repeated key wins) and hits: its own
/// `hits_addend` when set (0 then checks without spending), else the request's.
fn check(descriptor: &RateLimitDescriptor, request_hits: u64) -> Result<Check, Status> {
    if descriptor.is_negative_hits {
        return Err(Status::invalid_argument(
            "is_negative_hits is not supported: Limitador counters only grow",
        ));
    }
    let entries = descriptor
        .entries
        .iter()
        .map(|entry| (entry.key.clone(), entry.value.clone()))
        .collect();
    // Capped to the request-level field's range: Limitador sums hits with its counts in u64
    // (and Lua in doubles), which a client's u64::MAX would overflow.
    let hits = descriptor
        .hits_addend
        .as_ref()
        .map_or(request_hits, |h| h.value.min(MAX_HITS));
    Ok(Check { entries, hits })
}

/// The context of one descriptor: `descriptors` bound to a list of its entries alone, so a
/// limit always says `descriptors[0]` whatever the descriptor's place in the request.
fn context(entries: &HashMap<String, String>) -> Context<'static> {
    let mut ctx = Context::default();
    ctx.list_binding(DESCRIPTORS.to_string(), vec![entries.clone()]);
    ctx
}

/// A Limitador error as a message (its `Display` prints its parts with `{:?}`).
fn describe(error: &LimitadorError) -> String {
    match error {
        LimitadorError::StorageError(storage) => storage.msg().to_string(),
        LimitadorError::InterpreterError(eval) => {
            format!("a limit's variable cannot be evaluated: {eval}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
    use envoy_types::pb::google::protobuf::UInt64Value;

    fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            ..RateLimitDescriptor::default()
        }
    }

    fn request(
        domain: &str,
        descriptors: Vec<RateLimitDescriptor>,
        hits_addend: u32,
    ) -> RateLimitRequest {
        RateLimitRequest {
            domain: domain.to_string(),
            descriptors,
            hits_addend,
        }
    }

    #[test]
    fn hits_default_to_one_and_descriptors_may_override() {
        let mut own = descriptor(&[("a", "1")]);
        own.hits_addend = Some(UInt64Value { value: 0 });
        let both = checks(&request(
            "d",
            vec![descriptor(&[("a", "1"), ("a", "2")]), own],
            0,
        ))
        .unwrap();
        assert_eq!(both[0].hits, 1);
        assert_eq!(both[0].entries.get("a").map(String::as_str), Some("2"));
        assert_eq!(both[1].hits, 0);
        assert_eq!(
            checks(&request("d", vec![descriptor(&[])], 5)).unwrap()[0].hits,
            5
        );
        let mut huge = descriptor(&[]);
        huge.hits_addend = Some(UInt64Value { value: u64::MAX });
        assert_eq!(
            checks(&request("d", vec![huge], 0)).unwrap()[0].hits,
            MAX_HITS
        );
    }

    #[test]
    fn malformed_requests_are_invalid_arguments() {
        let mut negative = descriptor(&[("a", "1")]);
        negative.is_negative_hits = true;
        for bad in [
            request("", vec![descriptor(&[("a", "1")])], 0),
            request("d", vec![], 0),
            request("d", vec![negative], 0),
        ] {
            let status = checks(&bad).err().unwrap();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
        }
    }
}
