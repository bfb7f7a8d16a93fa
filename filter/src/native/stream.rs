//! One stream (an HTTP exchange) on a worker thread: the core's exchange, this worker's plugin,
//! and the replies the core asked for.
//!
//! Replies are sent last. Envoy's local reply is synchronous: in the request phase it ends the
//! stream at once, which runs this stream's `stream_complete` and `destroy` hooks inside the
//! send. So a hook first finishes everything that touches streams (a reply made in the request
//! phase goes through the exchange's response policies, since Envoy does not pass a filter's
//! own reply back through it; a health run's answer is edited by each waiting stream), and only
//! then sends ([`Replies`]), touching no stream afterwards. As a second line, a stream
//! destroyed while any hook of its worker runs is freed only when the outermost hook returns
//! ([`HookDepth`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::abi::{FilterEnvoy, Header};
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
    /// How many hooks of this worker are running (a send runs others inside).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Streams Envoy destroyed while a hook ran, freed when the outermost hook returns.
    static DOOMED: RefCell<Vec<*mut Stream>> = const { RefCell::new(Vec::new()) };
}

/// What the core asked Envoy to do with a stream, done once the core is done.
pub enum Outbound {
    /// Answer it with this reply (already edited).
    Reply(LocalResponse),
    /// Let its stopped request go on (Envoy may run the stream's next hooks inside).
    Resume,
}

/// Replies (and resumptions) to send once the core is done, by stream.
pub type Replies = Vec<(FilterEnvoy, Outbound)>;

/// Sends replies and resumes streams; nothing may touch a stream after this (a send may end
/// and destroy it, a resumption run its hooks).
pub fn send_all(replies: Replies) {
    for (filter, outbound) in replies {
        match outbound {
            Outbound::Reply(reply) => host::send(filter, &reply),
            Outbound::Resume => host::continue_decoding(filter),
        }
    }
}

/// Held while a hook runs: streams destroyed meanwhile wait for the outermost hook to return.
pub struct HookDepth;

impl HookDepth {
    pub fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get().saturating_add(1)));
        Self
    }
}

impl Drop for HookDepth {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let depth = d.get().saturating_sub(1);
            d.set(depth);
            depth
        });
        if depth == 0 {
            let doomed = DOOMED.with(|d| std::mem::take(&mut *d.borrow_mut()));
            for stream in doomed {
                // SAFETY: each pointer came from `Stream::into_raw` and was handed to
                // `destroy` once; no hook runs on this worker any more.
                drop(unsafe { Box::from_raw(stream) });
            }
        }
    }
}

/// Frees a stream Envoy destroyed, or keeps it until the running hooks return.
///
/// # Safety
/// `stream` must come from [`Stream::into_raw`], be destroyed once, on its worker.
pub unsafe fn destroy(stream: *mut Stream) {
    if DEPTH.with(Cell::get) > 0 {
        DOOMED.with(|d| d.borrow_mut().push(stream));
    } else {
        // SAFETY: per this function's contract.
        drop(unsafe { Box::from_raw(stream) });
    }
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
    /// The stream, on the heap, registered for health answers if the config has a health
    /// endpoint; Envoy keeps the pointer until `destroy`.
    ///
    /// # Safety
    /// `config` must outlive the stream (Envoy keeps a filter's configuration alive while any
    /// of its streams lives).
    pub unsafe fn into_raw(config: *const NativeConfig, filter: FilterEnvoy) -> *mut Stream {
        let id = NEXT_ID.with(|next| {
            let id = next.get();
            next.set(id.checked_add(1).unwrap_or(1));
            id
        });
        // SAFETY: per this function's contract.
        let shared = unsafe { &*config };
        let registered = shared.has_health();
        let stream = Box::into_raw(Box::new(Self {
            config,
            filter,
            plugin: shared.plugin(),
            exchange: Exchange::new(id),
            registered,
            holds_body: false,
            failed: false,
        }));
        if registered {
            STREAMS.with(|s| s.borrow_mut().insert(id, stream));
        }
        stream
    }

    fn config(&self) -> &NativeConfig {
        // SAFETY: per `into_raw`'s contract.
        unsafe { &*self.config }
    }

    /// The request body so far as the core counts it.
    pub fn request_body_size(&self) -> usize {
        host::request_body_size(self.filter, self.holds_body)
    }

    /// Notes whether the request phase's last answer keeps the body in this filter.
    pub fn note_request_flow(&mut self, flow: Flow) {
        self.holds_body = matches!(flow, Flow::HoldHeaders | Flow::Pause);
    }

    /// Runs one of the core's callbacks with this stream's host; returns what to do with the
    /// stream and the replies to send (edited; not sent yet).
    pub fn run(
        &mut self,
        phase: Phase,
        callback: impl FnOnce(&mut Exchange, &Plugin, &StreamHost<'_>) -> Flow,
    ) -> (Flow, Replies) {
        self.run_with(phase, (Vec::new(), Vec::new()), callback)
    }

    /// [`Stream::run`] for an HTTP call's answer, whose headers and body the host hands to
    /// the core.
    pub fn run_with(
        &mut self,
        phase: Phase,
        callout: (Vec<Header>, Vec<u8>),
        callback: impl FnOnce(&mut Exchange, &Plugin, &StreamHost<'_>) -> Flow,
    ) -> (Flow, Replies) {
        // SAFETY: per `into_raw`'s contract; the reference does not outlive this call.
        let config = unsafe { &*self.config };
        let host = StreamHost::new(self.filter, config.shared()).with_callout(callout.0, callout.1);
        let flow = callback(&mut self.exchange, &self.plugin, &host);
        let mut replies = Replies::new();
        for outgoing in host.take_outgoing() {
            match outgoing {
                Outgoing::Own(reply) => {
                    let edited = self.edit(phase, &host, reply);
                    replies.push((self.filter, Outbound::Reply(edited)));
                }
                Outgoing::Resume => replies.push((self.filter, Outbound::Resume)),
                Outgoing::To(waiters, reply) => {
                    replies.extend(self.waiters_replies(&waiters, &reply));
                }
            }
        }
        (flow, replies)
    }

    /// A reply to this stream, edited by its response policies if the request phase made it.
    fn edit(&self, phase: Phase, env: &dyn Environment, reply: LocalResponse) -> LocalResponse {
        match phase {
            Phase::Request => self.exchange.edit_own_reply(&self.plugin, env, reply),
            Phase::Response => reply,
        }
    }

    /// A health run's answer for each stream of this worker that waited for it, edited by that
    /// stream (those that ended meanwhile are gone from the list).
    fn waiters_replies(&self, waiters: &[u32], reply: &LocalResponse) -> Replies {
        let own = self.exchange.id();
        let mut replies = Replies::new();
        for id in waiters.iter().filter(|id| **id != own) {
            let Some(pointer) = STREAMS.with(|s| s.borrow().get(id).copied()) else {
                continue;
            };
            // SAFETY: a registered stream is alive (it leaves the list when it completes or is
            // dropped), belongs to this worker, and is not this one; nothing is sent (and so
            // no stream destroyed) while this shared reference lives.
            let waiter = unsafe { &*pointer };
            let host = StreamHost::new(waiter.filter, waiter.config().shared());
            let edited = waiter.edit(Phase::Request, &host, reply.clone());
            replies.push((waiter.filter, Outbound::Reply(edited)));
        }
        replies
    }

    /// The stream ends: the exchange's last words (a health run's waiters), then the counts
    /// kept since the last stream ended go to Envoy. Also for a stream that failed: its
    /// waiters must not wait for a run that will never end.
    pub fn complete(&mut self) -> Replies {
        let (_, replies) = self.run(Phase::Request, |exchange, plugin, host| {
            exchange.on_done(plugin, host);
            Flow::Continue
        });
        let host = StreamHost::new(self.filter, self.config().shared());
        self.plugin.flush_counters(&host);
        self.unregister();
        replies
    }

    fn unregister(&mut self) {
        if self.registered {
            let id = self.exchange.id();
            let this: *mut Stream = self;
            let _ = STREAMS.try_with(|s| {
                let mut streams = s.borrow_mut();
                // After the ids wrap, the entry may be a newer stream's: leave it.
                if streams.get(&id).is_some_and(|p| std::ptr::eq(*p, this)) {
                    streams.remove(&id);
                }
            });
            self.registered = false;
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.unregister();
    }
}
