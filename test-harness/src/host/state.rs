//! Per-VM host state: what Envoy keeps for one Wasm VM (one worker thread) and the streams it
//! is processing.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Memory, TypedFunc};

use super::abi::LogLevel;
use super::callout::{HttpCall, PendingCall, Responder};
use super::grpc::{self, GrpcCall, GrpcResponder, PendingGrpc};
use super::shared::{Shared, VmLabel};
use crate::message::Response;

pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What the plugin was configured with (Envoy's `PluginConfig` and `VmConfig`).
#[derive(Clone)]
pub struct PluginSettings {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    /// `vm_config.environment_variables`, seen through WASI `environ_get`.
    pub env: Vec<(String, String)>,
    /// The level `proxy_get_log_level` reports (Envoy's `wasm` logger level).
    pub log_level: LogLevel,
    /// Envoy's per-stream buffer limit (the listener's `per_connection_buffer_limit_bytes`,
    /// 1 MiB by default): buffering more of a request body gives a 413.
    pub buffer_limit: usize,
    /// Clusters `dispatch_http_call` and `dispatch_grpc_call` may name; others give
    /// BadArgument (HTTP) or ParseFailure (gRPC).
    pub clusters: Vec<String>,
    pub responder: Option<Arc<Responder>>,
    pub grpc_responder: Option<Arc<GrpcResponder>>,
    /// Extra properties by dotted path (e.g. `xds.route_name`).
    pub properties: Vec<(String, Vec<u8>)>,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            name: "hardening".into(),
            root_id: "hardening".into(),
            vm_id: "hardening".into(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            env: Vec::new(),
            log_level: LogLevel::Info,
            buffer_limit: 1024 * 1024,
            clusters: Vec::new(),
            responder: None,
            grpc_responder: None,
            properties: Vec::new(),
        }
    }
}

/// A local reply the filter asked for, applied after the callback returns (as Envoy does).
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Pairs,
    pub body: Vec<u8>,
}

/// Work the filter requested during a callback, carried out when the callback returns.
#[derive(Debug, Clone)]
pub enum Deferred {
    LocalReply(u32, LocalReply),
    Continue(u32, i32),
    Close(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStage {
    Headers,
    Body,
    Trailers,
    Upstream,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamOutcome {
    /// Waiting for the filter to call `continue_stream` (after an HTTP call, a tick...).
    Paused,
    /// The request went to the upstream.
    Forwarded,
    /// The filter (or Envoy on its behalf) answered; the upstream never saw the request.
    LocalReply(Response),
    /// The stream was reset (`close_stream`).
    Reset,
}

/// One HTTP exchange in a VM.
#[derive(Debug)]
pub struct Stream {
    pub source: SocketAddr,
    pub request_headers: Pairs,
    pub request_headers_readable: bool,
    /// Body chunks still to deliver.
    pub pending_chunks: Vec<Vec<u8>>,
    /// Request trailers, delivered after the body; the stream ends with them.
    pub request_trailers: Option<Pairs>,
    /// What `get_buffer_bytes(HttpRequestBody)` shows: the current chunk, or everything
    /// buffered since the filter last paused.
    pub request_body: Vec<u8>,
    pub request_buffering: bool,
    pub forwarded_body: Vec<u8>,
    pub stage: RequestStage,
    pub outcome: StreamOutcome,
    pub response_headers: Pairs,
    pub response_headers_readable: bool,
    pub response_body: Vec<u8>,
    /// In the response phase (headers from the upstream or a local reply arrived).
    pub in_response: bool,
    pub local_reply_sent: bool,
    /// Stopped until the filter calls `continue_stream(HttpRequest)`.
    pub request_waiting: bool,
    /// A local reply sent from a response callback goes straight to the client.
    pub direct_reply: Option<LocalReply>,
}

impl Stream {
    pub fn new(source: SocketAddr, request_headers: Pairs, chunks: Vec<Vec<u8>>) -> Self {
        Self {
            source,
            request_headers,
            request_headers_readable: true,
            pending_chunks: chunks,
            request_trailers: None,
            request_body: Vec::new(),
            request_buffering: false,
            forwarded_body: Vec::new(),
            stage: RequestStage::Headers,
            outcome: StreamOutcome::Paused,
            response_headers: Vec::new(),
            response_headers_readable: false,
            response_body: Vec::new(),
            in_response: false,
            local_reply_sent: false,
            request_waiting: false,
            direct_reply: None,
        }
    }

    pub fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.request_headers
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// Everything the host keeps for one VM.
pub struct HostState {
    pub label: VmLabel,
    pub shared: Arc<Shared>,
    pub plugin: Arc<PluginSettings>,
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,
    /// During `_initialize`, V8 in Envoy lets only logging, clock, random, args and environment
    /// calls through; anything else traps.
    pub restricted: bool,
    pub in_configure: bool,
    pub effective_context: u32,
    pub root_context_id: u32,
    pub next_context_id: u32,
    pub streams: HashMap<u32, Stream>,
    pub deferred: Vec<Deferred>,
    pub tick_period: Option<Duration>,
    /// Monotonic nanoseconds at which the next tick fires.
    pub next_tick_at: u64,
    pub next_callout_token: u32,
    pub callouts: Vec<PendingCall>,
    /// The HTTP call response being delivered (`on_http_call_response`).
    pub call_response: Option<HttpCallResponse>,
    /// The id the next gRPC call gets.
    pub next_grpc_token: u32,
    /// gRPC calls waiting for their answer (they belong to the root context).
    pub grpc_calls: Vec<PendingGrpc>,
    /// The message being delivered (`proxy_on_grpc_receive`): the root context's receive
    /// buffer.
    pub grpc_receive: Option<Vec<u8>>,
    pub grpc_calls_made: Vec<GrpcCall>,
    /// What `proxy_get_status` reports: the last HTTP call failure or gRPC close.
    pub last_status: (u32, String),
    pub host_calls: BTreeMap<&'static str, u64>,
    pub metric_ids: HashMap<u32, (i32, String)>,
    pub next_metric_id: u32,
    pub random_state: u64,
    pub calls_made: Vec<HttpCall>,
}

/// A response delivered to `on_http_call_response`.
#[derive(Debug, Clone)]
pub struct HttpCallResponse {
    pub headers: Pairs,
    pub body: Vec<u8>,
}

impl HostState {
    pub fn new(label: VmLabel, shared: Arc<Shared>, plugin: Arc<PluginSettings>) -> Self {
        let seed = match label {
            VmLabel::Canary => 1,
            VmLabel::Main => 2,
            VmLabel::Worker(i) => 3 + i as u64,
        };
        Self {
            label,
            shared,
            plugin,
            memory: None,
            allocate: None,
            restricted: false,
            in_configure: false,
            effective_context: 0,
            root_context_id: 1,
            next_context_id: 2,
            streams: HashMap::new(),
            deferred: Vec::new(),
            tick_period: None,
            next_tick_at: 0,
            next_callout_token: 4,
            callouts: Vec::new(),
            call_response: None,
            next_grpc_token: grpc::FIRST_TOKEN,
            grpc_calls: Vec::new(),
            grpc_receive: None,
            grpc_calls_made: Vec::new(),
            last_status: (0, String::new()),
            host_calls: BTreeMap::new(),
            metric_ids: HashMap::new(),
            next_metric_id: 4,
            random_state: 0x9e37_79b9_7f4a_7c15 ^ seed,
            calls_made: Vec::new(),
        }
    }

    pub fn count(&mut self, call: &'static str) {
        *self.host_calls.entry(call).or_insert(0) += 1;
    }

    pub fn stream(&self) -> Option<&Stream> {
        self.streams.get(&self.effective_context)
    }

    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        self.streams.get_mut(&self.effective_context)
    }

    /// xorshift64*: deterministic randomness for `random_get`.
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
