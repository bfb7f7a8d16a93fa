//! Envoy's rate limit service protocol (`envoy.service.ratelimit.v3.RateLimitService`,
//! `ShouldRateLimit`), the messages a fleet-wide limit sends to a shared engine
//! (envoyproxy/ratelimit, Limitador) and reads back, and what an answer means for one
//! descriptor. Hand-written with prost: the field numbers of `rls.proto` (docs/research/
//! rate-limit-service.md, section 5), so the module carries no generated Envoy API.
//!
//! A host without gRPC calls (Envoy's dynamic modules) carries the call as an HTTP/2 request
//! ([`grpc_headers`], [`grpc_frame`]) and reads its answer back with [`answer_over_http`].

use std::time::Duration;

use prost::Message;

/// The gRPC service and method of the protocol.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";
/// `:path` of the call over HTTP/2 (for hosts with HTTP callouts only).
pub const PATH: &str = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

#[derive(Clone, PartialEq, Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<Descriptor>,
    /// Requests this one counts as (0 means 1).
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`: the entries naming one counter.
#[derive(Clone, PartialEq, Message)]
pub struct Descriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct RateLimitResponse {
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    /// One per descriptor of the request, in its order (Limitador's server sends none).
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
    #[prost(message, repeated, tag = "3")]
    pub response_headers_to_add: Vec<HeaderValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    Ok = 1,
    OverLimit = 2,
}

#[derive(Clone, PartialEq, Message)]
pub struct DescriptorStatus {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<prost_types::Duration>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RateLimit {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "Unit", tag = "2")]
    pub unit: i32,
    #[prost(string, tag = "3")]
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Unit {
    Unknown = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
    Year = 6,
    Week = 7,
}

#[derive(Clone, PartialEq, Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// What the service said of one descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit; what the service knows of it (each `None` when it did not say).
    Ok {
        limit: Option<u32>,
        remaining: Option<u32>,
        reset: Option<Duration>,
    },
    /// Over the limit; `reset`: when the window starts again, if the service said.
    OverLimit {
        limit: Option<u32>,
        reset: Option<Duration>,
    },
}

/// Why an answer cannot be used: the limit's `failure_mode` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The body is not a `RateLimitResponse`.
    Undecodable,
    /// `UNKNOWN` overall: the service does not know the domain or failed.
    UnknownCode,
}

/// Each descriptor's verdict, from the response's bytes; `descriptors` is how many the
/// request had. A service that sends no statuses (Limitador's server) gives every descriptor
/// the overall code, with nothing else known.
pub fn read_response(bytes: &[u8], descriptors: usize) -> Result<Vec<Verdict>, Failure> {
    let response = RateLimitResponse::decode(bytes).map_err(|_| Failure::Undecodable)?;
    let overall = Code::try_from(response.overall_code).unwrap_or(Code::Unknown);
    if overall == Code::Unknown {
        return Err(Failure::UnknownCode);
    }
    Ok((0..descriptors)
        .map(|i| match response.statuses.get(i) {
            Some(status) => verdict(status, overall),
            None => bare(overall),
        })
        .collect())
}

fn bare(code: Code) -> Verdict {
    match code {
        Code::OverLimit => Verdict::OverLimit {
            limit: None,
            reset: None,
        },
        _ => Verdict::Ok {
            limit: None,
            remaining: None,
            reset: None,
        },
    }
}

fn verdict(status: &DescriptorStatus, overall: Code) -> Verdict {
    // A status left UNKNOWN (a descriptor no rule matched, in envoyproxy/ratelimit) counts as
    // OK, as Envoy's own rate limit filter reads it; OVER_LIMIT overall with no descriptor
    // over is still over.
    let code = match Code::try_from(status.code).unwrap_or(Code::Unknown) {
        Code::Unknown => overall,
        code => code,
    };
    let limit = status.current_limit.as_ref().map(|l| l.requests_per_unit);
    let reset = status.duration_until_reset.as_ref().map(to_duration);
    match code {
        Code::OverLimit => Verdict::OverLimit { limit, reset },
        _ => Verdict::Ok {
            limit,
            remaining: limit.map(|_| status.limit_remaining),
            reset,
        },
    }
}

/// A protobuf Duration, negative parts read as zero.
fn to_duration(d: &prost_types::Duration) -> Duration {
    let seconds = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
    Duration::new(seconds, nanos)
}

/// A gRPC message on the wire: not compressed, its length (u32, big-endian), the message.
pub fn grpc_frame(message: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(message.len()).ok()?;
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(message);
    Some(frame)
}

/// The headers of a unary gRPC call carried as an HTTP/2 request to `cluster`.
pub fn grpc_headers(cluster: &str, timeout_ms: u64) -> Vec<(String, String)> {
    vec![
        (":method".into(), "POST".into()),
        (":path".into(), PATH.into()),
        (":authority".into(), cluster.into()),
        ("content-type".into(), "application/grpc".into()),
        ("te".into(), "trailers".into()),
        ("grpc-timeout".into(), format!("{timeout_ms}m")),
    ]
}

/// A gRPC call's outcome read from its HTTP/2 answer, as far as a host that hands over
/// headers and body but not trailers lets it be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAnswer<'a> {
    Message(&'a [u8]),
    Closed { code: u32, message: String },
}

/// Reads a unary call's answer without its trailers: a `grpc-status` in the headers (a
/// trailers-only answer: Envoy's own timeout and no-host replies to a gRPC request, a
/// service's error) ends the call with that status; a `:status` other than 200 is
/// UNAVAILABLE; otherwise the body must be exactly one uncompressed message. (Wrong only for a
/// message followed by an error status in the trailers, which no RLS implementation sends for
/// this unary method.)
pub fn answer_over_http<'a>(headers: &[(&[u8], &[u8])], body: &'a [u8]) -> HttpAnswer<'a> {
    let header = |name: &[u8]| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let message = header(b"grpc-message").unwrap_or_default();
    if let Some(code) = header(b"grpc-status") {
        let code = code.trim().parse().unwrap_or(2); // UNKNOWN
        if code != 0 {
            return HttpAnswer::Closed { code, message };
        }
    }
    if header(b":status").as_deref() != Some("200") {
        let status = header(b":status").unwrap_or_default();
        return HttpAnswer::Closed {
            code: 14,
            message: format!("HTTP status {status}"),
        };
    }
    match grpc_message(body) {
        Some(message) => HttpAnswer::Message(message),
        None => HttpAnswer::Closed {
            code: 13,
            message: "not one uncompressed gRPC message".into(),
        },
    }
}

/// The message of a body that is exactly one uncompressed gRPC frame.
pub fn grpc_message(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    let (length, message) = rest.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    (flag == 0 && message.len() == length).then_some(message)
}

#[cfg(test)]
mod tests;
