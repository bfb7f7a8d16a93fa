//! One stream (an HTTP exchange) on a worker thread: the core's exchange, this worker's plugin,
//! and the replies the core asked for, sent once it returns: a reply made in the request phase
//! first goes through the exchange's response policies (Envoy does not pass a filter's own
//! reply back through it), and the health endpoint's answer also goes to the streams of this
//! worker that waited for it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::abi::FilterEnvoy;
use super::config::NativeConfig;
use super::host::{self, Outgoing, StreamHost};
use crate::environment::Environment;
use crate::exchange::{Exchange, Flow, Plugin};
use crate::reply::LocalResponse;

thread_local! {
    /// This worker's next exchange id.
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
    /// The streams that may wait for a health run, by exchange id (only with a health
    /// endpoint): a run's answer goes to each.
    static STREAMS: RefCell<HashMap<u32, *mut Stream>> = RefCell::new(HashMap::new());
}

/// Where a hook is: a reply made in the request phase still gets the response policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
}

pub struct Stream {
    config: *const NativeConfig,
    filter: FilterEnvoy,
    plugin: Rc<Plugin>,
    exchange: Exchange,
    registered: bool,
    /// Whether the request's body waits in this filter (its headers stopped, or its last chunk
    /// answered StopIterationAndBuffer): then what Envoy buffered is this filter's. Otherwise
    /// the buffer is a later filter's (Envoy's buffer filter), not to be counted again.
    holds_body: bool,
    /// A hook panicked and the stream was answered: the other hooks let it be.
    pub failed: bool,
}

impl Stream {
    /// # Safety
    /// `config` must outlive the stream (Envoy keeps a filter's configuration alive while any
    /// of its streams lives).
    pub unsafe fn new(config: *const NativeConfig, filter: FilterEnvoy) -> Box<Self> {
        let id = NEXT_ID.with(|next| {
            let id = next.get();
            next.set(id.checked_add(1).unwrap_or(1));
            id
        });
        // SAFETY: per this function's contract.
        let shared = unsafe { &*config };
        let now = StreamHost::new(filter, shared.shared()).now_unix_nanos();
        let mut stream = Box::new(Self {
            config,
            filter,
            plugin: shared.plugin(now),
            exchange: Exchange::new(id),
            registered: false,
            holds_body: false,
            failed: false,
        });
        if shared.has_health() {
            let pointer: *mut Stream = &mut *stream;
            STREAMS.with(|s| s.borrow_mut().insert(id, pointer));
            stream.registered = true;
        }
        stream
    }

    /// The request body so far as the core counts it: what this filter holds and this
    /// callback's chunk, or the chunk alone when the body streams through.
    pub fn request_body_size(&self) -> usize {
        host::request_body_size(self.filter, self.holds_body)
    }

    /// Notes whether the request phase's last answer keeps the body in this filter.
    pub fn note_request_flow(&mut self, flow: Flow) -> Flow {
        self.holds_body = matches!(flow, Flow::HoldHeaders | Flow::Pause);
        flow
    }

    fn config(&self) -> &NativeConfig {
        // SAFETY: per `new`'s contract.
        unsafe { &*self.config }
    }

    /// Runs one of the core's callbacks with this stream's host, then sends what it asked for.
    pub fn run(
        &mut self,
        phase: Phase,
        callback: impl FnOnce(&mut Exchange, &Plugin, &StreamHost<'_>) -> Flow,
    ) -> Flow {
        self.run_with(phase, Vec::new(), callback)
    }

    /// [`Stream::run`] for an HTTP call's answer, whose headers the host hands to the core.
    pub fn run_with(
        &mut self,
        phase: Phase,
        callout_headers: Vec<super::abi::Header>,
        callback: impl FnOnce(&mut Exchange, &Plugin, &StreamHost<'_>) -> Flow,
    ) -> Flow {
        // SAFETY: per `new`'s contract; the reference does not outlive this call.
        let config = unsafe { &*self.config };
        let host =
            StreamHost::new(self.filter, config.shared()).with_callout_headers(callout_headers);
        let flow = callback(&mut self.exchange, &self.plugin, &host);
        for outgoing in host.take_outgoing() {
            match outgoing {
                Outgoing::Own(reply) => self.answer(phase, &host, reply),
                Outgoing::To(waiters, reply) => answer_waiters(&waiters, &reply),
            }
        }
        flow
    }

    /// Sends a reply on this stream, edited by its response policies if the request phase made
    /// it.
    fn answer(&self, phase: Phase, host: &StreamHost<'_>, reply: LocalResponse) {
        let reply = match phase {
            Phase::Request => self.exchange.edit_own_reply(&self.plugin, host, reply),
            Phase::Response => reply,
        };
        host::send(self.filter, &reply);
    }

    /// The stream ends: the exchange's last words (a health run's waiters), then the counts
    /// kept since the last stream ended go to Envoy.
    pub fn complete(&mut self) {
        self.run(Phase::Request, |exchange, plugin, host| {
            exchange.on_done(plugin, host);
            Flow::Continue
        });
        let host = StreamHost::new(self.filter, self.config().shared());
        self.plugin.flush_counters(&host);
        self.unregister();
    }

    fn unregister(&mut self) {
        if self.registered {
            let id = self.exchange.id();
            let _ = STREAMS.try_with(|s| s.borrow_mut().remove(&id));
            self.registered = false;
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Sends a health run's answer to the streams of this worker that waited for it (those that
/// ended meanwhile are gone from the list).
fn answer_waiters(waiters: &[u32], reply: &LocalResponse) {
    for id in waiters {
        let Some(pointer) = STREAMS.with(|s| s.borrow().get(id).copied()) else {
            continue;
        };
        // SAFETY: a registered stream is alive (it leaves the list when it completes or is
        // dropped) and belongs to this worker thread; it is not the stream running now, which
        // never waits for its own run.
        let waiter = unsafe { &*pointer };
        let host = StreamHost::new(waiter.filter, waiter.config().shared());
        waiter.answer(Phase::Request, &host, reply.clone());
    }
}
