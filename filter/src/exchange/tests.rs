//! What the example tests of the exchange share: a VM (the plugin over a recording host) and
//! exchanges driven through it the way a shell forwards the host's callbacks.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{Exchange, Flow, Plugin};
use crate::engine::Engine;
use crate::environment::Recording;
use crate::logging::Level;
use crate::reply::LocalResponse;

/// 2023-11-14T22:13:20Z.
pub const START: u64 = 1_700_000_000_000_000_000;

/// One VM: the plugin loaded from a config, over a recording host.
pub struct Vm {
    pub plugin: Plugin,
    pub host: Recording,
    next_id: Cell<u32>,
}

impl Vm {
    pub fn load(config: Value) -> Self {
        let mut host = Recording::new(START);
        let bytes = config.to_string().into_bytes();
        let engine = Engine::load(&bytes, &|_| None, &host.shared, || Ok([7; 16]))
            .unwrap_or_else(|e| panic!("the config loads: {e}"));
        host.declare_counters(engine.metric_names());
        Self {
            plugin: Plugin::new(engine, START),
            host,
            next_id: Cell::new(1),
        }
    }

    /// A new exchange whose request has these headers (`:method` and `:path` among them)
    /// and this body.
    pub fn exchange(&self, headers: &[(&str, &str)], body: &[u8]) -> Ex<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.host.open(id, headers, body);
        Ex {
            vm: self,
            core: Exchange::new(id),
        }
    }

    /// A GET of `path` with these headers besides, its headers ending the stream: the flow.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (Ex<'_>, Flow) {
        let mut all = vec![(":method", "GET"), (":path", path)];
        all.extend_from_slice(headers);
        let mut exchange = self.exchange(&all, b"");
        let flow = exchange.headers(true);
        (exchange, flow)
    }

    /// The counters that moved, by name, as the host holds them after the VM's next flush
    /// (the shell's tick).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.plugin.flush_counters(&self.host);
        self.host.counters()
    }

    /// Every log line, parsed, with its level.
    pub fn lines(&self) -> Vec<(Level, Value)> {
        self.host
            .logs()
            .into_iter()
            .map(|(level, line)| {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a log line is JSON ({e}): {line}"));
                (level, value)
            })
            .collect()
    }
}

/// `[("name", n), ...]` as the counters map.
pub fn counters(expected: &[(&str, u64)]) -> BTreeMap<String, u64> {
    expected
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect()
}

/// `[("name", n), ...]` as the host calls map.
pub fn calls(expected: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    expected.iter().copied().collect()
}

/// One exchange: the core's side and the host's record of it.
pub struct Ex<'v> {
    pub vm: &'v Vm,
    pub core: Exchange,
}

impl Ex<'_> {
    pub fn id(&self) -> u32 {
        self.core.id()
    }

    pub fn headers(&mut self, end_of_stream: bool) -> Flow {
        let host = self.vm.host.host(self.core.id());
        self.core
            .on_request_headers(&self.vm.plugin, &host, end_of_stream)
    }

    /// A body callback: `size` as the host reports it (the chunk, or after a pause all it
    /// holds).
    pub fn body(&mut self, size: usize, end_of_stream: bool) -> Flow {
        let host = self.vm.host.host(self.core.id());
        self.core
            .on_request_body(&self.vm.plugin, &host, size, end_of_stream)
    }

    pub fn trailers(&mut self) -> Flow {
        let host = self.vm.host.host(self.core.id());
        self.core.on_request_trailers(&self.vm.plugin, &host)
    }

    /// The response's headers arrive (`:status` among them).
    pub fn response(&mut self, headers: &[(&str, &str)]) -> Flow {
        self.vm.host.set_response(self.core.id(), headers);
        let host = self.vm.host.host(self.core.id());
        self.core.on_response_headers(&self.vm.plugin, &host)
    }

    /// The filter's own reply comes back through its response callbacks, as Envoy passes a
    /// reply sent while the request is decoded.
    pub fn reply_comes_back(&mut self) -> Flow {
        let reply = self
            .reply()
            .unwrap_or_else(|| panic!("no reply to pass back"));
        let status = reply.status.to_string();
        let mut headers = vec![(":status", status.as_str())];
        headers.extend(reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.response(&headers)
    }

    /// An answer to one of its HTTP calls (`None`: reset, no headers).
    pub fn call_answered(&mut self, token: u32, status: Option<u16>) {
        self.vm
            .host
            .answer_call(token, status)
            .unwrap_or_else(|| panic!("call {token} is not out"));
        let host = self.vm.host.host(self.core.id());
        self.core
            .on_http_call_response(&self.vm.plugin, &host, token, status.is_some());
    }

    /// Moves the clock; the host answers this exchange's calls that time out with its 504.
    pub fn wait(&mut self, by: Duration) {
        self.vm.host.advance(by);
        for call in self.vm.host.timed_out() {
            assert_eq!(
                call.exchange,
                self.id(),
                "another exchange's call timed out"
            );
            let host = self.vm.host.host(self.core.id());
            self.vm.host.answer_call(call.token, Some(504));
            self.core
                .on_http_call_response(&self.vm.plugin, &host, call.token, true);
        }
    }

    /// The exchange ends (the client left, or it is done).
    pub fn done(&mut self) {
        self.vm.host.end(self.core.id());
        let host = self.vm.host.host(self.core.id());
        self.core.on_done(&self.vm.plugin, &host);
    }

    /// The last local reply it got.
    pub fn reply(&self) -> Option<LocalResponse> {
        self.vm.host.replies(self.core.id()).pop()
    }

    /// The last write of its response headers, as text.
    pub fn written(&self) -> Option<Vec<(String, String)>> {
        let writes = self.vm.host.stream(self.core.id()).header_writes;
        writes.last().map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect()
        })
    }

    /// A header of the last write.
    pub fn written_header(&self, name: &str) -> Option<String> {
        self.written()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}
