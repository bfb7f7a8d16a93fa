//! The host in memory, for native tests of the core: it gives the core what a test sets (each
//! exchange's headers and body, the client's address, a clock the test moves, which clusters
//! exist) and keeps what the core did through it (counters, log lines, local replies, header
//! writes, HTTP calls, host calls by name). HTTP calls time out as the host's do: a call whose
//! timeout has passed on the test's clock is listed by [`Recording::timed_out`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    EncodedMap, Environment, GetError, GrpcCall, Host, HttpCall, MemorySharedData, SetError,
    SharedData,
};
use crate::logging::Level;
use crate::policy::rate_limit::RateStore;
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;

/// What one exchange's host holds and got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// What the host hands over (the pairs' encoding).
    pub request_headers: EncodedMap,
    pub response_headers: EncodedMap,
    pub body: Vec<u8>,
    /// Local replies sent to it, in order.
    pub replies: Vec<LocalResponse>,
    /// Each write of its response headers: the pairs written.
    pub header_writes: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
    /// It ended (the client left, or it was answered and done): replies to it are skipped.
    pub ended: bool,
    /// How many times the core let it go on after stopping it (`resume_request`).
    pub resumed: u32,
}

/// An HTTP call the core started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The exchange that started it (its answer goes back there).
    pub exchange: u32,
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    /// A gRPC call's `package.Service/Method` and message; `None` for an HTTP call.
    pub grpc: Option<(String, Vec<u8>)>,
    pub timeout: Duration,
    /// The clock when it was sent.
    pub sent_at: u64,
    /// Answered or timed out already.
    pub done: bool,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Recording {
    pub shared: MemorySharedData,
    now: Cell<u64>,
    client: RefCell<Option<String>>,
    metric_names: Vec<String>,
    counters: RefCell<BTreeMap<usize, u64>>,
    logs: RefCell<Vec<(Level, String)>>,
    streams: RefCell<BTreeMap<u32, Stream>>,
    calls: RefCell<Vec<Call>>,
    unknown_clusters: RefCell<Vec<String>>,
    /// The headers and body of the call answer being delivered.
    call_answer: RefCell<EncodedMap>,
    call_answer_body: RefCell<Vec<u8>>,
    host_calls: RefCell<BTreeMap<&'static str, usize>>,
}

impl Recording {
    /// A host whose clock is at `now` (nanoseconds since the Unix epoch).
    pub fn new(now: u64) -> Self {
        Self {
            now: Cell::new(now),
            ..Self::default()
        }
    }

    /// Names the counters by index, as a shell defines the engine's when the VM loads.
    pub fn declare_counters(&mut self, names: &[String]) {
        self.metric_names = names.to_vec();
    }

    /// The host as one exchange sees it.
    pub fn host(&self, exchange: u32) -> RecordingHost<'_> {
        RecordingHost {
            recording: self,
            exchange,
        }
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.set(self.now.get().saturating_add(nanos));
    }

    pub fn set_client_address(&self, address: Option<&str>) {
        *self.client.borrow_mut() = address.map(str::to_string);
    }

    /// Calls to this cluster cannot start (as Envoy refuses a cluster it does not know).
    pub fn unknown_cluster(&self, cluster: &str) {
        self.unknown_clusters.borrow_mut().push(cluster.to_string());
    }

    /// Sets what an exchange's host holds; the rest of its record starts empty.
    pub fn open(&self, exchange: u32, request_headers: &[(&str, &str)], body: &[u8]) {
        let stream = Stream {
            request_headers: EncodedMap(crate::pairs::encode(request_headers)),
            body: body.to_vec(),
            ..Stream::default()
        };
        self.streams.borrow_mut().insert(exchange, stream);
    }

    /// Sets the response headers an exchange's host holds (the upstream's, or a reply's).
    pub fn set_response(&self, exchange: u32, headers: &[(&str, &str)]) {
        let map = EncodedMap(crate::pairs::encode(headers));
        self.streams
            .borrow_mut()
            .entry(exchange)
            .or_default()
            .response_headers = map;
    }

    /// The exchange ended: replies to it are skipped from now on.
    pub fn end(&self, exchange: u32) {
        self.streams.borrow_mut().entry(exchange).or_default().ended = true;
    }

    pub fn stream(&self, exchange: u32) -> Stream {
        self.streams
            .borrow()
            .get(&exchange)
            .cloned()
            .unwrap_or_default()
    }

    /// The replies an exchange got.
    pub fn replies(&self, exchange: u32) -> Vec<LocalResponse> {
        self.stream(exchange).replies
    }

    /// Counters that moved, by name.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .borrow()
            .iter()
            .map(|(index, value)| {
                let name = self
                    .metric_names
                    .get(*index)
                    .cloned()
                    .unwrap_or_else(|| format!("<undeclared counter {index}>"));
                (name, *value)
            })
            .collect()
    }

    /// Every log line, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }

    fn is_unknown(&self, cluster: &str) -> bool {
        self.unknown_clusters.borrow().iter().any(|c| c == cluster)
    }

    /// Records a call; its token.
    fn add_call(&self, mut call: Call) -> u32 {
        let mut calls = self.calls.borrow_mut();
        call.token = u32::try_from(calls.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let token = call.token;
        calls.push(call);
        token
    }

    /// Marks a call answered and sets the HTTP answer's headers and body, for hosts that
    /// carry gRPC calls over HTTP (`http_call_response_headers`/`_body`); the call, if out.
    pub fn answer_call_with(
        &self,
        token: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Call> {
        let call = self.take_call(token)?;
        let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        *self.call_answer.borrow_mut() = EncodedMap(crate::pairs::encode(&pairs));
        *self.call_answer_body.borrow_mut() = body.to_vec();
        Some(call)
    }

    /// Every HTTP call started, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// Marks a call answered and sets the answer's headers (`None`: reset, no headers) for
    /// `http_call_response_headers`; the call, if it is out.
    pub fn answer_call(&self, token: u32, status: Option<u16>) -> Option<Call> {
        let call = self.take_call(token)?;
        let headers = match status {
            Some(status) => crate::pairs::encode(&[(":status", status.to_string())]),
            None => Vec::new(),
        };
        *self.call_answer.borrow_mut() = EncodedMap(headers);
        self.call_answer_body.borrow_mut().clear();
        Some(call)
    }

    /// The calls still out whose timeout has passed, now done: the host answers each with its
    /// own 504 (deliver it with `answer_call(token, Some(504))`).
    pub fn timed_out(&self) -> Vec<Call> {
        let now = self.now.get();
        let mut calls = self.calls.borrow_mut();
        calls
            .iter_mut()
            .filter(|call| {
                let timeout = u64::try_from(call.timeout.as_nanos()).unwrap_or(u64::MAX);
                !call.done && call.sent_at.saturating_add(timeout) <= now
            })
            .map(|call| {
                call.done = true;
                call.clone()
            })
            .collect()
    }

    fn take_call(&self, token: u32) -> Option<Call> {
        let mut calls = self.calls.borrow_mut();
        let call = calls.iter_mut().find(|c| c.token == token)?;
        call.done = true;
        Some(call.clone())
    }

    /// Host calls made, by the name of the boundary's method.
    pub fn host_calls(&self) -> BTreeMap<&'static str, usize> {
        self.host_calls.borrow().clone()
    }

    pub fn clear_host_calls(&self) {
        self.host_calls.borrow_mut().clear();
    }

    fn called(&self, name: &'static str) {
        *self.host_calls.borrow_mut().entry(name).or_default() += 1;
    }

    fn with_stream<T>(&self, exchange: u32, f: impl FnOnce(&mut Stream) -> T) -> T {
        f(self.streams.borrow_mut().entry(exchange).or_default())
    }
}

impl Environment for Recording {
    fn now_unix_nanos(&self) -> u64 {
        self.called("now_unix_nanos");
        self.now.get()
    }

    fn client_address(&self) -> Option<String> {
        self.called("client_address");
        self.client.borrow().clone()
    }

    /// Shared data, its reads and writes counted.
    fn rate_store(&self) -> &dyn RateStore {
        self
    }

    fn increment(&self, metric: usize, by: u64) {
        self.called("increment");
        let mut counters = self.counters.borrow_mut();
        let counter = counters.entry(metric).or_default();
        *counter = counter.saturating_add(by);
    }

    fn log(&self, level: Level, line: &str) {
        self.called("log");
        self.logs.borrow_mut().push((level, line.to_string()));
    }
}

/// Shared data as the core sees it: `shared`, its reads and writes counted.
impl SharedData for Recording {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, GetError> {
        self.called("get_shared_data");
        self.shared.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.called("set_shared_data");
        self.shared.set(key, value, cas)
    }
}

/// The recording as one exchange's host.
#[derive(Debug, Clone, Copy)]
pub struct RecordingHost<'r> {
    recording: &'r Recording,
    exchange: u32,
}

impl Environment for RecordingHost<'_> {
    fn now_unix_nanos(&self) -> u64 {
        self.recording.now_unix_nanos()
    }

    fn client_address(&self) -> Option<String> {
        self.recording.client_address()
    }

    fn rate_store(&self) -> &dyn RateStore {
        self.recording.rate_store()
    }

    fn increment(&self, metric: usize, by: u64) {
        self.recording.increment(metric, by);
    }

    fn log(&self, level: Level, line: &str) {
        self.recording.log(level, line);
    }
}

impl Host for RecordingHost<'_> {
    type Map = EncodedMap;

    fn request_headers(&self) -> EncodedMap {
        self.recording.called("request_headers");
        self.recording
            .with_stream(self.exchange, |s| s.request_headers.clone())
    }

    fn response_headers(&self) -> EncodedMap {
        self.recording.called("response_headers");
        self.recording
            .with_stream(self.exchange, |s| s.response_headers.clone())
    }

    fn set_response_headers(&self, headers: &ResponseHeaders<'_>) {
        self.recording.called("set_response_headers");
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = headers
            .pairs()
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let encoded = EncodedMap(headers.encode());
        self.recording.with_stream(self.exchange, |s| {
            s.header_writes.push(pairs);
            s.response_headers = encoded;
        });
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        self.recording.called("request_body");
        self.recording.with_stream(self.exchange, |s| {
            s.body
                .get(..size.min(s.body.len()))
                .unwrap_or_default()
                .to_vec()
        })
    }

    fn send_reply(&self, reply: &LocalResponse) {
        self.recording.called("send_reply");
        self.recording
            .with_stream(self.exchange, |s| s.replies.push(reply.clone()));
    }

    fn send_reply_to(&self, exchanges: &[u32], reply: &LocalResponse) {
        self.recording.called("send_reply_to");
        for exchange in exchanges {
            self.recording.with_stream(*exchange, |s| {
                if !s.ended {
                    s.replies.push(reply.clone());
                }
            });
        }
    }

    fn dispatch_http_call(&self, call: &HttpCall<'_>) -> Option<u32> {
        self.recording.called("dispatch_http_call");
        let recording = self.recording;
        if recording.is_unknown(call.cluster) {
            return None;
        }
        Some(recording.add_call(Call {
            exchange: self.exchange,
            token: 0,
            cluster: call.cluster.to_string(),
            headers: call.headers.to_vec(),
            grpc: None,
            timeout: call.timeout,
            sent_at: recording.now.get(),
            done: false,
        }))
    }

    fn http_call_response_headers(&self) -> EncodedMap {
        self.recording.called("http_call_response_headers");
        self.recording.call_answer.borrow().clone()
    }

    fn http_call_response_body(&self) -> Vec<u8> {
        self.recording.called("http_call_response_body");
        self.recording.call_answer_body.borrow().clone()
    }

    fn dispatch_grpc_call(&self, call: &GrpcCall<'_>) -> Option<u32> {
        self.recording.called("dispatch_grpc_call");
        let recording = self.recording;
        if recording.is_unknown(call.cluster) {
            return None;
        }
        Some(recording.add_call(Call {
            exchange: self.exchange,
            token: 0,
            cluster: call.cluster.to_string(),
            headers: Vec::new(),
            grpc: Some((
                format!("{}/{}", call.service, call.method),
                call.message.to_vec(),
            )),
            timeout: call.timeout,
            sent_at: recording.now.get(),
            done: false,
        }))
    }

    fn resume_request(&self) {
        self.recording.called("resume_request");
        self.recording
            .with_stream(self.exchange, |s| s.resumed += 1);
    }
}
