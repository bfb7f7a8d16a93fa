//! `dispatch_grpc_call`: what the filter asked for, how the test's responder answers, and
//! `proxy_grpc_call` / `proxy_grpc_cancel` / `proxy_grpc_close` as Envoy 1.40 answers them
//! (source/extensions/common/wasm/context.cc, `Context::grpcCall`). The answers are delivered
//! by the VM's event loop (`Vm::run_due`), to the root context, as in Envoy.

use std::time::Duration;

use wasmtime::Caller;

use super::abi::{self, Status};
use super::memory::{HostResult, read, write_u32};
use super::state::HostState;

/// A unary gRPC call the filter dispatched to an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    pub cluster: String,
    pub service: String,
    pub method: String,
    /// Initial metadata, in the order the filter sent it.
    pub metadata: Vec<(String, Vec<u8>)>,
    /// The request message, without the gRPC frame (Envoy adds it).
    pub message: Vec<u8>,
    /// `None`: the filter asked for none (0 ms).
    pub timeout: Option<Duration>,
}

impl GrpcCall {
    pub fn metadata_value(&self, name: &str) -> Option<&[u8]> {
        self.metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// How the (emulated) cluster answers a gRPC call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcOutcome {
    /// Status OK after this much (controlled) time: `message` is the response message, as
    /// Envoy hands it over (deframed). Envoy sends no close after it.
    Reply { after: Duration, message: Vec<u8> },
    /// The call fails after this much time with a gRPC status (`proxy_on_grpc_close`).
    Close {
        after: Duration,
        code: u32,
        message: String,
    },
    /// Never answer: the call's timeout fires (Envoy 1.40: close 4 "upstream request
    /// timeout"); without a timeout, nothing ever comes.
    NoAnswer,
}

impl GrpcOutcome {
    /// A reply now.
    pub fn reply(message: impl Into<Vec<u8>>) -> Self {
        Self::Reply {
            after: Duration::ZERO,
            message: message.into(),
        }
    }

    /// A close now.
    pub fn close(code: u32, message: impl Into<String>) -> Self {
        Self::Close {
            after: Duration::ZERO,
            code,
            message: message.into(),
        }
    }
}

pub type GrpcResponder = dyn Fn(&GrpcCall) -> GrpcOutcome + Send + Sync;

/// gRPC status DEADLINE_EXCEEDED: what Envoy 1.40 closes a timed-out call with.
const DEADLINE_EXCEEDED: u32 = 4;
/// gRPC status UNAVAILABLE: a cluster without healthy hosts.
const UNAVAILABLE: u32 = 14;

/// What the VM receives for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcAnswer {
    /// `proxy_on_grpc_receive` with this message.
    Message(Vec<u8>),
    /// `proxy_on_grpc_close` with this status.
    Close { code: u32, message: String },
}

/// A dispatched call waiting for its answer. It belongs to the root context, as in Envoy:
/// deleting the stream that dispatched it cancels nothing.
#[derive(Debug, Clone)]
pub struct PendingGrpc {
    pub token: u32,
    /// Monotonic nanoseconds when the answer is delivered; `None`: never.
    pub due_at: Option<u64>,
    pub answer: GrpcAnswer,
}

/// Call ids are `1 + 4k` (HTTP calls `4k`, gRPC streams `2 + 4k`: cpp-host's wasm.h).
pub const FIRST_TOKEN: u32 = 5;
const TOKEN_STEP: u32 = 4;

fn timed_out() -> GrpcAnswer {
    GrpcAnswer::Close {
        code: DEADLINE_EXCEEDED,
        message: "upstream request timeout".into(),
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// When and how a call dispatched at `now` is answered: an answer due later than the timeout
/// becomes the timeout's close.
fn schedule(
    outcome: GrpcOutcome,
    now: u64,
    timeout: Option<Duration>,
) -> (Option<u64>, GrpcAnswer) {
    let at = |after: Duration| now.saturating_add(nanos(after));
    let (due_at, answer) = match outcome {
        GrpcOutcome::Reply { after, message } => (Some(at(after)), GrpcAnswer::Message(message)),
        GrpcOutcome::Close {
            after,
            code,
            message,
        } => (Some(at(after)), GrpcAnswer::Close { code, message }),
        GrpcOutcome::NoAnswer => (None, timed_out()),
    };
    match (due_at, timeout.map(at)) {
        (Some(due), Some(limit)) if limit < due => (Some(limit), timed_out()),
        (None, limit) => (limit, timed_out()),
        (due, _) => (due, answer),
    }
}

/// `proxy_grpc_call`: `spans` are the (pointer, length) of the upstream, service, method,
/// metadata pairs and message, in the ABI's order.
pub fn dispatch(
    caller: &mut Caller<'_, HostState>,
    spans: [(i32, i32); 5],
    timeout_ms: i32,
    ret_token: i32,
) -> HostResult<()> {
    let [upstream, service, method, metadata, message] =
        spans.map(|(ptr, len)| read(caller, ptr, len));
    let (upstream, service, method, metadata, message) =
        (upstream?, service?, method?, metadata?, message?);
    // Envoy first tries the bytes as a serialized GrpcService; this host knows cluster names
    // only. An unknown cluster is ParseFailure, before any id is taken.
    let cluster = String::from_utf8(upstream)
        .ok()
        .filter(|name| caller.data().plugin.clusters.contains(name))
        .ok_or(Status::ParseFailure)?;
    // Envoy reads malformed pairs as no pairs (PairsUtil::toPairs).
    let metadata = abi::decode_pairs(&metadata)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
        .collect();
    // The ABI's timeout is unsigned; 0 is none.
    let timeout = match timeout_ms as u32 {
        0 => None,
        ms => Some(Duration::from_millis(u64::from(ms))),
    };
    let call = GrpcCall {
        cluster,
        service: String::from_utf8_lossy(&service).into_owned(),
        method: String::from_utf8_lossy(&method).into_owned(),
        metadata,
        message,
        timeout,
    };
    let state = caller.data_mut();
    let outcome = match &state.plugin.grpc_responder {
        Some(responder) => responder(&call),
        // Envoy's router answers 503 "no healthy upstream", which the gRPC client reads as 14.
        None => GrpcOutcome::close(UNAVAILABLE, "no healthy upstream"),
    };
    let (due_at, answer) = schedule(outcome, state.shared.clock.monotonic_nanos(), timeout);
    let token = state.next_grpc_token;
    state.next_grpc_token = token.wrapping_add(TOKEN_STEP);
    state.grpc_calls.push(PendingGrpc {
        token,
        due_at,
        answer,
    });
    state.grpc_calls_made.push(call);
    write_u32(caller, ret_token, token)
}

/// `proxy_grpc_cancel` and `proxy_grpc_close` of a call: the answer is dropped. A call id
/// that is not pending is NotFound; so is any stream id (this host opens none); an id of
/// neither kind is BadArgument, as in Envoy.
pub fn cancel(state: &mut HostState, token: i32) -> HostResult<()> {
    let token = token as u32;
    match token % TOKEN_STEP {
        1 => {
            let index = state
                .grpc_calls
                .iter()
                .position(|c| c.token == token)
                .ok_or(Status::NotFound)?;
            state.grpc_calls.remove(index);
            Ok(())
        }
        2 => Err(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn an_answer_later_than_the_timeout_is_the_timeout_close() {
        let timeout = Some(Duration::from_millis(100));
        let late = GrpcOutcome::Reply {
            after: Duration::from_millis(101),
            message: b"x".to_vec(),
        };
        assert_eq!(
            schedule(late, 7, timeout),
            (Some(7 + 100 * MS), timed_out())
        );
        let on_time = GrpcOutcome::Reply {
            after: Duration::from_millis(100),
            message: b"x".to_vec(),
        };
        let message = GrpcAnswer::Message(b"x".to_vec());
        assert_eq!(schedule(on_time, 7, timeout), (Some(7 + 100 * MS), message));
    }

    #[test]
    fn no_answer_without_a_timeout_never_comes() {
        assert_eq!(schedule(GrpcOutcome::NoAnswer, 7, None).0, None);
        let timeout = Some(Duration::from_millis(3));
        let pending = schedule(GrpcOutcome::NoAnswer, 7, timeout);
        assert_eq!(pending, (Some(7 + 3 * MS), timed_out()));
    }
}
