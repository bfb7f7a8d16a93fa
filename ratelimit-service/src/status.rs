//! One descriptor's answer, as envoyproxy/ratelimit fills it (Limitador's own server leaves
//! `statuses` empty): the code, and from the most restrictive counter the limit, what
//! remains of it and when its window ends.

use std::cmp::Reverse;
use std::time::Duration;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit,
};
use envoy_types::pb::google::protobuf;
use limitador::counter::Counter;

/// The status of a descriptor whose reservation was `limited` (or not) on `counters`. No
/// counter (no limit applies): `OK` and nothing else, as envoyproxy/ratelimit answers.
pub fn descriptor_status(limited: bool, counters: &[Counter]) -> DescriptorStatus {
    let code = if limited { Code::OverLimit } else { Code::Ok };
    let Some(counter) = most_restrictive(counters) else {
        return DescriptorStatus {
            code: code.into(),
            ..DescriptorStatus::default()
        };
    };
    let limit = counter.limit();
    DescriptorStatus {
        code: code.into(),
        current_limit: Some(RateLimit {
            name: limit.name().unwrap_or_default().to_string(),
            requests_per_unit: saturate(limit.max_value()),
            unit: unit(limit.seconds()).into(),
        }),
        limit_remaining: saturate(remaining(counter)),
        duration_until_reset: Some(duration(counter.expires_in().unwrap_or(counter.window()))),
        quota: None,
    }
}

/// The counter with the fewest remaining hits; among equals the one reset last, so that a
/// client waiting for the reset waits long enough.
fn most_restrictive(counters: &[Counter]) -> Option<&Counter> {
    counters
        .iter()
        .min_by_key(|c| (remaining(c), Reverse(c.expires_in().unwrap_or(c.window()))))
}

fn remaining(counter: &Counter) -> u64 {
    counter.remaining().unwrap_or(counter.max_value())
}

/// The RLS unit of a window: only a window of exactly one unit has one.
pub fn unit(seconds: u64) -> Unit {
    match seconds {
        1 => Unit::Second,
        60 => Unit::Minute,
        3600 => Unit::Hour,
        86400 => Unit::Day,
        _ => Unit::Unknown,
    }
}

/// The protocol's counts are 32-bit; Limitador's are 64-bit.
fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn duration(value: Duration) -> protobuf::Duration {
    protobuf::Duration {
        seconds: i64::try_from(value.as_secs()).unwrap_or(i64::MAX),
        // Below 10^9, so it fits.
        nanos: i32::try_from(value.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use limitador::limit::{Context, Expression, Limit};

    fn counter(name: &str, max: u64, seconds: u64, remaining: u64, expires_ms: u64) -> Counter {
        let mut limit = Limit::new("ns", max, seconds, vec![], Vec::<Expression>::new());
        limit.set_name(name.to_string());
        let mut counter = Counter::new(limit, &Context::default()).unwrap().unwrap();
        counter.set_remaining(remaining);
        counter.set_expires_in(Duration::from_millis(expires_ms));
        counter
    }

    #[test]
    fn no_counter_is_ok_without_a_limit() {
        let status = descriptor_status(false, &[]);
        assert_eq!(status.code, Code::Ok as i32);
        assert_eq!(status.current_limit, None);
        assert_eq!(status.duration_until_reset, None);
    }

    #[test]
    fn the_counter_with_fewest_remaining_answers() {
        let counters = [
            counter("per_minute", 50, 60, 7, 30_500),
            counter("per_second", 10, 1, 3, 400),
            counter("per_hour", 1000, 3600, 900, 10_000),
        ];
        let status = descriptor_status(false, &counters);
        assert_eq!(status.code, Code::Ok as i32);
        let limit = status.current_limit.unwrap();
        assert_eq!(
            (limit.name.as_str(), limit.requests_per_unit),
            ("per_second", 10)
        );
        assert_eq!(limit.unit, Unit::Second as i32);
        assert_eq!(status.limit_remaining, 3);
        let reset = status.duration_until_reset.unwrap();
        assert_eq!((reset.seconds, reset.nanos), (0, 400_000_000));
    }

    #[test]
    fn ties_take_the_later_reset() {
        let counters = [
            counter("short", 5, 1, 0, 200),
            counter("long", 5, 60, 0, 59_000),
        ];
        let status = descriptor_status(true, &counters);
        assert_eq!(status.code, Code::OverLimit as i32);
        assert_eq!(status.current_limit.unwrap().name, "long");
        assert_eq!(status.duration_until_reset.unwrap().seconds, 59);
    }

    #[test]
    fn units_only_for_whole_single_units() {
        assert_eq!(unit(1), Unit::Second);
        assert_eq!(unit(60), Unit::Minute);
        assert_eq!(unit(3600), Unit::Hour);
        assert_eq!(unit(86400), Unit::Day);
        assert_eq!(unit(120), Unit::Unknown);
        assert_eq!(unit(30), Unit::Unknown);
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(saturate(u64::MAX), u32::MAX);
        assert_eq!(saturate(12), 12);
    }
}
