//! One Wasm VM (one Envoy worker) and the way Envoy drives it: start-up, HTTP streams with
//! pause/continue, local replies through the filter chain, HTTP and gRPC calls, ticks.

use std::collections::{BTreeMap, HashMap};

use wasmtime::{AsContextMut, Engine, Instance, Linker, Module, Store, WasmParams, WasmResults};

use super::abi::{self, ACTION_CONTINUE, LogLevel};
use super::error::{HarnessError, Result};
use super::grpc::{GrpcAnswer, GrpcCall, PendingGrpc};
use super::shared::VmLabel;
use super::state::{
    Deferred, HostState, HttpCallResponse, LocalReply, Pairs, RequestStage, Stream, StreamOutcome,
};
use crate::message::{Request, Response};

/// What one exchange cost inside the module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    /// Host calls by name.
    pub host_calls: BTreeMap<&'static str, u64>,
    /// Wasmtime fuel: roughly the number of Wasm instructions executed.
    pub fuel: u64,
}

impl Cost {
    pub fn total_host_calls(&self) -> u64 {
        self.host_calls.values().sum()
    }

    fn add(&mut self, other: &Cost) {
        for (k, v) in &other.host_calls {
            *self.host_calls.entry(k).or_insert(0) += v;
        }
        self.fuel += other.fuel;
    }
}

/// A finished exchange.
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: StreamOutcome,
    pub upstream_request: Option<Request>,
    pub cost: Cost,
}

const FUEL: u64 = u64::MAX / 2;

pub struct Vm {
    store: Store<HostState>,
    /// The fuel `proxy_on_configure` used (loading the plugin configuration).
    pub configure_fuel: u64,
    instance: Instance,
    failed: bool,
    costs: HashMap<u32, Cost>,
    finished: HashMap<u32, Finished>,
    upstream: HashMap<u32, Request>,
    response_chunks: HashMap<u32, Vec<Vec<u8>>>,
    response_forwarded: HashMap<u32, Vec<u8>>,
}

impl Vm {
    /// The size of the VM's linear memory now (it only grows).
    pub fn memory_bytes(&mut self) -> usize {
        match self.store.data().memory {
            Some(memory) => memory.data_size(&self.store),
            None => 0,
        }
    }

    /// Instantiates the module and starts it as Envoy does: `_initialize` (restricted), root
    /// context creation, `on_vm_start`, `on_configure`.
    pub fn start(
        engine: &Engine,
        module: &Module,
        linker: &Linker<HostState>,
        state: HostState,
    ) -> Result<Self> {
        let label = state.label;
        let mut store = Store::new(engine, state);
        store
            .set_fuel(FUEL)
            .map_err(|e| HarnessError::Instantiate(e.to_string()))?;
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(|e| HarnessError::Instantiate(format!("{e:#}")))?;
        let memory = instance.get_memory(&mut store, "memory");
        // cpp-host looks for `malloc` first, then `proxy_on_memory_allocate`.
        let allocate = instance
            .get_typed_func::<i32, i32>(&mut store, "malloc")
            .or_else(|_| {
                instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            })
            .ok();
        if allocate.is_none() {
            return Err(HarnessError::Instantiate(
                "Wasm module is missing malloc function.".into(),
            ));
        }
        {
            let state = store.data_mut();
            state.memory = memory;
            state.allocate = allocate;
            state.restricted = true;
        }
        let mut vm = Self {
            store,
            configure_fuel: 0,
            instance,
            failed: false,
            costs: HashMap::new(),
            finished: HashMap::new(),
            upstream: HashMap::new(),
            response_chunks: HashMap::new(),
            response_forwarded: HashMap::new(),
        };
        if vm.has_export("_initialize") {
            vm.call::<(), ()>(0, "_initialize", ())?;
            if vm.has_export("main") {
                vm.call::<(i32, i32), i32>(0, "main", (0, 0))?;
            }
        } else if vm.has_export("_start") {
            vm.call::<(), ()>(0, "_start", ())?;
        }
        vm.store.data_mut().restricted = false;

        let root = vm.store.data().root_context_id as i32;
        let vm_config_len = vm.store.data().plugin.vm_configuration.len() as i32;
        let config_len = vm.store.data().plugin.configuration.len() as i32;
        vm.call::<(i32, i32), ()>(root as u32, "proxy_on_context_create", (root, 0))?;
        if vm.call::<(i32, i32), i32>(root as u32, "proxy_on_vm_start", (root, vm_config_len))? == 0
        {
            return Err(HarnessError::VmStartFailed { vm: label });
        }
        vm.configure(label, root, config_len)?;
        vm.run_deferred()?;
        Ok(vm)
    }

    /// `proxy_on_configure`, its fuel kept; a refusal is `ConfigRejected` with what the VM
    /// logged at warn and above.
    fn configure(&mut self, label: VmLabel, root: i32, config_len: i32) -> Result<()> {
        self.store.data_mut().in_configure = true;
        let fuel_before = self.store.get_fuel().unwrap_or(FUEL);
        let configured =
            self.call::<(i32, i32), i32>(root as u32, "proxy_on_configure", (root, config_len));
        self.configure_fuel = fuel_before.saturating_sub(self.store.get_fuel().unwrap_or(FUEL));
        self.store.data_mut().in_configure = false;
        if configured? == 0 {
            let log = self
                .store
                .data()
                .shared
                .logs()
                .into_iter()
                .filter(|r| r.vm == label && r.level >= LogLevel::Warn)
                .map(|r| r.message)
                .collect();
            return Err(HarnessError::ConfigRejected { vm: label, log });
        }
        Ok(())
    }

    pub fn label(&self) -> VmLabel {
        self.store.data().label
    }

    fn has_export(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Calls an export with `context` as the effective context; a trap fails the VM. The cost
    /// is booked to `context`.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        context: u32,
        name: &'static str,
        params: P,
    ) -> Result<R> {
        let label = self.label();
        if self.failed {
            return Err(HarnessError::VmFailed { vm: label });
        }
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| HarnessError::Instantiate(format!("export {name}: {e}")))?;
        self.store.data_mut().effective_context = context;
        let calls_before = self.store.data().host_calls.clone();
        let fuel_before = self.store.get_fuel().unwrap_or(FUEL);
        let result = func.call(self.store.as_context_mut(), params);
        let fuel_after = self.store.get_fuel().unwrap_or(FUEL);
        let mut cost = Cost {
            host_calls: BTreeMap::new(),
            fuel: fuel_before.saturating_sub(fuel_after),
        };
        for (k, v) in &self.store.data().host_calls {
            let delta = v - calls_before.get(k).copied().unwrap_or(0);
            if delta > 0 {
                cost.host_calls.insert(k, delta);
            }
        }
        self.costs.entry(context).or_default().add(&cost);
        result.map_err(|e| {
            self.failed = true;
            HarnessError::Trap {
                vm: label,
                callback: name,
                message: format!("{e:?}"),
            }
        })
    }

    fn stream(&mut self, ctx: u32) -> Result<&mut Stream> {
        self.store
            .data_mut()
            .streams
            .get_mut(&ctx)
            .ok_or_else(|| HarnessError::Usage(format!("no stream {ctx}")))
    }

    /// Creates the stream context and delivers the request as far as the filter lets it go.
    pub fn begin(&mut self, request: &Request) -> Result<u32> {
        let ctx = {
            let state = self.store.data_mut();
            let ctx = state.next_context_id;
            state.next_context_id += 1;
            ctx
        };
        let (headers, chunks) = envoy_request(request, ctx);
        let mut stream = Stream::new(request.source, headers, chunks);
        stream.request_trailers = (!request.trailers.is_empty()).then(|| {
            request
                .trailers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase().into_bytes(), v.as_bytes().to_vec()))
                .collect()
        });
        self.store.data_mut().streams.insert(ctx, stream);
        let root = self.store.data().root_context_id as i32;
        self.call::<(i32, i32), ()>(ctx, "proxy_on_context_create", (ctx as i32, root))?;
        self.advance_request(ctx)?;
        self.run_due()?;
        Ok(ctx)
    }

    /// Delivers request headers, body and trailers until the filter pauses, answers, or lets
    /// the request through.
    fn advance_request(&mut self, ctx: u32) -> Result<()> {
        while let Some(stage) = self.request_stage_to_deliver(ctx) {
            match stage {
                RequestStage::Headers => self.deliver_request_headers(ctx)?,
                RequestStage::Body => self.deliver_request_body(ctx)?,
                RequestStage::Trailers => self.deliver_request_trailers(ctx)?,
                RequestStage::Upstream => self.forward_upstream(ctx)?,
            }
        }
        Ok(())
    }

    /// The stage the request stands at, while the host has something to deliver: `None` once
    /// the stream is finished, forwarded, answered (in its response) or waiting for
    /// `continue_stream`.
    fn request_stage_to_deliver(&self, ctx: u32) -> Option<RequestStage> {
        let stream = self.store.data().streams.get(&ctx)?;
        let delivering =
            stream.outcome == StreamOutcome::Paused && !stream.in_response && !stream.is_waiting();
        delivering.then_some(stream.stage)
    }

    /// Calls the request callback of `stage` and carries out what the filter asked for in it.
    /// Returns the filter's action and the stream, or `None` when that already moved the
    /// stream on (answered, reset, or continued to another stage).
    fn call_request_stage<P: WasmParams>(
        &mut self,
        ctx: u32,
        stage: RequestStage,
        callback: &'static str,
        params: P,
    ) -> Result<Option<(i32, &mut Stream)>> {
        let action = self.call::<P, i32>(ctx, callback, params)?;
        self.run_deferred()?;
        let stream = self.store.data_mut().streams.get_mut(&ctx);
        Ok(stream
            .filter(|s| s.outcome == StreamOutcome::Paused && !s.in_response && s.stage == stage)
            .map(|s| (action, s)))
    }

    fn deliver_request_headers(&mut self, ctx: u32) -> Result<()> {
        let stream = self.stream(ctx)?;
        let n = stream.request_headers.len() as i32;
        let eos = stream.pending_chunks.is_empty() && stream.request_trailers.is_none();
        let params = (ctx as i32, n, eos as i32);
        let Some((action, stream)) = self.call_request_stage(
            ctx,
            RequestStage::Headers,
            "proxy_on_request_headers",
            params,
        )?
        else {
            return Ok(());
        };
        if action == ACTION_CONTINUE {
            stream.request_headers_readable = false;
            stream.stage = next_request_stage(stream);
        } else {
            stream.set_waiting(true);
        }
        Ok(())
    }

    /// One chunk per call; past the last, the stage moves on.
    fn deliver_request_body(&mut self, ctx: u32) -> Result<()> {
        let buffer_limit = self.store.data().plugin.buffer_limit;
        let stream = self.stream(ctx)?;
        if stream.pending_chunks.is_empty() {
            stream.stage = next_request_stage(stream);
            return Ok(());
        }
        let chunk = stream.pending_chunks.remove(0);
        // With trailers to come, the last chunk does not end the stream.
        let eos = stream.pending_chunks.is_empty() && stream.request_trailers.is_none();
        if stream.request_buffering {
            stream.request_body.extend_from_slice(&chunk);
        } else {
            stream.request_body = chunk;
        }
        let size = stream.request_body.len();
        if stream.request_buffering && size > buffer_limit {
            // Envoy's own 413 (requestDataTooLarge), sent through the filter chain.
            let reply = LocalReply {
                status: 413,
                headers: Vec::new(),
                body: b"Payload Too Large".to_vec(),
            };
            return self.local_reply_through_filters(ctx, reply);
        }
        let params = (ctx as i32, size as i32, eos as i32);
        let Some((action, stream)) =
            self.call_request_stage(ctx, RequestStage::Body, "proxy_on_request_body", params)?
        else {
            return Ok(());
        };
        if action == ACTION_CONTINUE {
            stream.release_held_body();
        } else {
            stream.request_buffering = true;
            if eos {
                stream.set_waiting(true);
            }
        }
        Ok(())
    }

    fn deliver_request_trailers(&mut self, ctx: u32) -> Result<()> {
        let stream = self.stream(ctx)?;
        let n = stream.request_trailers.as_ref().map_or(0, Vec::len) as i32;
        let params = (ctx as i32, n);
        let Some((action, stream)) = self.call_request_stage(
            ctx,
            RequestStage::Trailers,
            "proxy_on_request_trailers",
            params,
        )?
        else {
            return Ok(());
        };
        if action == ACTION_CONTINUE {
            // What the filter held is released with the trailers.
            stream.release_held_body();
            stream.stage = RequestStage::Upstream;
        } else {
            stream.set_waiting(true);
        }
        Ok(())
    }

    fn forward_upstream(&mut self, ctx: u32) -> Result<()> {
        let stream = self.stream(ctx)?;
        let upstream = upstream_request(stream);
        stream.outcome = StreamOutcome::Forwarded;
        self.upstream.insert(ctx, upstream);
        Ok(())
    }

    /// The filter called `continue_stream(HttpRequest)`.
    fn continue_request(&mut self, ctx: u32) -> Result<()> {
        let Ok(stream) = self.stream(ctx) else {
            return Ok(());
        };
        if !stream.is_waiting() || stream.in_response {
            return Ok(());
        }
        stream.set_waiting(false);
        match stream.stage {
            RequestStage::Headers => {
                stream.request_headers_readable = false;
                stream.stage = next_request_stage(stream);
            }
            RequestStage::Body => {
                stream.release_held_body();
            }
            RequestStage::Trailers => {
                stream.release_held_body();
                stream.stage = RequestStage::Upstream;
            }
            RequestStage::Upstream => {}
        }
        self.advance_request(ctx)
    }

    /// Sends the upstream's response through the filter; returns what the client receives.
    pub fn respond(&mut self, ctx: u32, response: &Response) -> Result<Response> {
        let stream = self.stream(ctx)?;
        if stream.outcome != StreamOutcome::Forwarded {
            return Err(HarnessError::Usage(format!(
                "the request was not forwarded upstream (outcome {:?})",
                stream.outcome
            )));
        }
        let mut headers: Pairs = vec![(
            b":status".to_vec(),
            response.status.to_string().into_bytes(),
        )];
        headers.extend(
            response
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase().into_bytes(), v.clone().into_bytes())),
        );
        let chunks = if response.body.is_empty() {
            Vec::new()
        } else {
            vec![response.body.clone()]
        };
        self.run_response(ctx, headers, chunks)?;
        let final_response = self.final_response(ctx)?;
        self.finish(ctx)?;
        Ok(final_response)
    }

    /// Response headers and body through the filter's response callbacks.
    fn run_response(&mut self, ctx: u32, headers: Pairs, chunks: Vec<Vec<u8>>) -> Result<()> {
        {
            let stream = self.stream(ctx)?;
            stream.in_response = true;
            stream.response_headers = headers;
            stream.response_headers_readable = true;
        }
        let n = self.stream(ctx)?.response_headers.len() as i32;
        let eos = chunks.is_empty();
        let action = self.call::<(i32, i32, i32), i32>(
            ctx,
            "proxy_on_response_headers",
            (ctx as i32, n, eos as i32),
        )?;
        self.run_deferred()?;
        if self.stream(ctx)?.direct_reply.is_some() {
            return Ok(());
        }
        if action != ACTION_CONTINUE {
            return Err(HarnessError::Usage(
                "the filter paused response headers; the native host does not resume responses"
                    .into(),
            ));
        }
        self.stream(ctx)?.response_headers_readable = false;
        let mut forwarded = Vec::new();
        let mut buffering = false;
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let eos = i + 1 == count;
            let stream = self.stream(ctx)?;
            if buffering {
                stream.response_body.extend_from_slice(&chunk);
            } else {
                stream.response_body = chunk;
            }
            let size = stream.response_body.len() as i32;
            let action = self.call::<(i32, i32, i32), i32>(
                ctx,
                "proxy_on_response_body",
                (ctx as i32, size, eos as i32),
            )?;
            self.run_deferred()?;
            let stream = self.stream(ctx)?;
            if stream.direct_reply.is_some() {
                return Ok(());
            }
            if action == ACTION_CONTINUE {
                forwarded.extend_from_slice(&std::mem::take(&mut stream.response_body));
                buffering = false;
            } else if eos {
                return Err(HarnessError::Usage(
                    "the filter paused the end of the response body; the native host does not resume responses".into(),
                ));
            } else {
                buffering = true;
            }
        }
        self.response_forwarded.insert(ctx, forwarded);
        Ok(())
    }

    fn final_response(&mut self, ctx: u32) -> Result<Response> {
        let forwarded = self.response_forwarded.remove(&ctx).unwrap_or_default();
        let stream = self.stream(ctx)?;
        if let Some(reply) = stream.direct_reply.clone() {
            let (headers, body) = local_reply_message(&reply);
            return Ok(to_response(&headers, body));
        }
        Ok(to_response(&stream.response_headers, forwarded))
    }

    /// A local reply sent while the request was still being decoded: Envoy sends it through
    /// the whole encoder chain, so this filter's response callbacks see it too.
    fn local_reply_through_filters(&mut self, ctx: u32, reply: LocalReply) -> Result<()> {
        let (headers, body) = local_reply_message(&reply);
        self.stream(ctx)?.local_reply_sent = true;
        let chunks = if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        };
        self.run_response(ctx, headers, chunks)?;
        let response = self.final_response(ctx)?;
        self.stream(ctx)?.outcome = StreamOutcome::LocalReply(response.clone());
        self.finish(ctx)
    }

    /// Carries out what the filter asked for during the last callback. HTTP call answers and
    /// ticks come later, from the event loop (`run_due`), as in Envoy.
    fn run_deferred(&mut self) -> Result<()> {
        self.apply_deferred()
    }

    fn apply_deferred(&mut self) -> Result<()> {
        loop {
            let actions = std::mem::take(&mut self.store.data_mut().deferred);
            if actions.is_empty() {
                return Ok(());
            }
            for action in actions {
                match action {
                    Deferred::LocalReply(ctx, reply) => {
                        let Ok(stream) = self.stream(ctx) else {
                            continue;
                        };
                        if stream.in_response {
                            // The response has started: straight to the client, bypassing
                            // the filters (Envoy's sendDirectLocalReply).
                            stream.direct_reply = Some(reply);
                        } else {
                            self.local_reply_through_filters(ctx, reply)?;
                        }
                    }
                    Deferred::Continue(ctx, abi::stream::HTTP_REQUEST) => {
                        self.continue_request(ctx)?
                    }
                    Deferred::Continue(..) => {}
                    Deferred::Close(ctx) => {
                        if let Ok(stream) = self.stream(ctx) {
                            stream.outcome = StreamOutcome::Reset;
                            self.finish(ctx)?;
                        }
                    }
                }
            }
        }
    }

    /// Fires the root context's tick now if it asked for ticks, as its timer would next (and
    /// re-arms it from now).
    pub fn tick_now(&mut self) -> Result<()> {
        let state = self.store.data_mut();
        let Some(period) = state.tick_period else {
            return Ok(());
        };
        state.next_tick_at = state.shared.clock.monotonic_nanos() + period.as_nanos() as u64;
        let root = state.root_context_id;
        self.call::<(i32,), ()>(root, "proxy_on_tick", (root as i32,))?;
        self.apply_deferred()
    }

    /// When the next tick fires or HTTP or gRPC call answer arrives (monotonic nanoseconds),
    /// if any.
    pub fn next_due(&self) -> Option<u64> {
        let state = self.store.data();
        let calls = state.callouts.iter().map(|c| c.due_at);
        let grpc_calls = state.grpc_calls.iter().map(|c| c.due_at);
        let tick = state.tick_period.map(|_| state.next_tick_at);
        calls.chain(grpc_calls).chain([tick]).flatten().min()
    }

    /// Fires ticks and delivers HTTP and gRPC call answers whose time has come.
    pub fn run_due(&mut self) -> Result<()> {
        loop {
            let now = self.store.data().shared.clock.monotonic_nanos();
            let state = self.store.data_mut();
            if let Some(index) = state
                .callouts
                .iter()
                .position(|c| c.due_at.is_some_and(|t| t <= now))
            {
                let call = state.callouts.remove(index);
                self.deliver_call(call.token, call.answer)?;
                continue;
            }
            if let Some(call) = take_due_grpc(&mut state.grpc_calls, now) {
                self.deliver_grpc(call)?;
                continue;
            }
            if let Some(period) = state.tick_period
                && state.next_tick_at <= now
            {
                // Envoy re-arms the timer after each tick.
                state.next_tick_at = now + period.as_nanos() as u64;
                let root = state.root_context_id;
                self.call::<(i32,), ()>(root, "proxy_on_tick", (root as i32,))?;
                self.apply_deferred()?;
                continue;
            }
            return Ok(());
        }
    }

    fn deliver_call(&mut self, token: u32, answer: Option<Response>) -> Result<()> {
        let root = self.store.data().root_context_id;
        let (headers, body_len) = match &answer {
            Some(response) => {
                let mut headers: Pairs = vec![(
                    b":status".to_vec(),
                    response.status.to_string().into_bytes(),
                )];
                headers.extend(
                    response
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes())),
                );
                let len = response.body.len();
                self.store.data_mut().call_response = Some(HttpCallResponse {
                    headers: headers.clone(),
                    body: response.body.clone(),
                });
                self.store.data_mut().last_status = (0, String::new());
                (headers.len(), len)
            }
            None => {
                self.store.data_mut().call_response = None;
                self.store.data_mut().last_status =
                    (abi::Status::BrokenConnection as u32, "reset".into());
                (0, 0)
            }
        };
        let result = self.call::<(i32, i32, i32, i32, i32), ()>(
            root,
            "proxy_on_http_call_response",
            (
                root as i32,
                token as i32,
                headers as i32,
                body_len as i32,
                0,
            ),
        );
        self.store.data_mut().call_response = None;
        result?;
        self.apply_deferred()
    }

    /// A gRPC call's answer, to the root context as in Envoy (the SDK finds the context that
    /// dispatched it by its token, and drops it when that context is gone). A module without
    /// the callback gets nothing.
    fn deliver_grpc(&mut self, call: PendingGrpc) -> Result<()> {
        let root = self.store.data().root_context_id;
        let result = match call.answer {
            GrpcAnswer::Message(message) => {
                if !self.has_export("proxy_on_grpc_receive") {
                    return Ok(());
                }
                let len = message.len() as i32;
                self.store.data_mut().grpc_receive = Some(message);
                let params = (root as i32, call.token as i32, len);
                let result =
                    self.call::<(i32, i32, i32), ()>(root, "proxy_on_grpc_receive", params);
                self.store.data_mut().grpc_receive = None;
                result
            }
            GrpcAnswer::Close { code, message } => {
                if !self.has_export("proxy_on_grpc_close") {
                    return Ok(());
                }
                self.store.data_mut().last_status = (code, message);
                let params = (root as i32, call.token as i32, code as i32);
                let result = self.call::<(i32, i32, i32), ()>(root, "proxy_on_grpc_close", params);
                // Envoy clears the message after the callback; the code stays.
                self.store.data_mut().last_status.1.clear();
                result
            }
        };
        result?;
        self.apply_deferred()
    }

    /// The client goes away (a reset): the stream ends where it is, the context is deleted,
    /// and the HTTP calls it dispatched are cancelled (Envoy keeps them on the root context and
    /// the SDK drops their answers: the same for the filter). Its gRPC calls are not cancelled:
    /// their answers still reach the root context, as in Envoy.
    pub fn abort(&mut self, ctx: u32) -> Result<()> {
        if self.finished.contains_key(&ctx) {
            return Ok(());
        }
        if let Ok(stream) = self.stream(ctx) {
            stream.outcome = StreamOutcome::Reset;
        }
        self.finish(ctx)?;
        self.store.data_mut().callouts.retain(|c| c.context != ctx);
        self.apply_deferred()
    }

    /// `on_log`, `on_done`, `on_delete` (Envoy's order: the access-log phase comes first).
    fn finish(&mut self, ctx: u32) -> Result<()> {
        if self.finished.contains_key(&ctx) {
            return Ok(());
        }
        self.call::<(i32,), ()>(ctx, "proxy_on_log", (ctx as i32,))?;
        self.call::<(i32,), i32>(ctx, "proxy_on_done", (ctx as i32,))?;
        self.call::<(i32,), ()>(ctx, "proxy_on_delete", (ctx as i32,))?;
        let stream = self.store.data_mut().streams.remove(&ctx);
        self.finished.insert(
            ctx,
            Finished {
                outcome: stream.map(|s| s.outcome).unwrap_or(StreamOutcome::Reset),
                upstream_request: self.upstream.remove(&ctx),
                cost: self.costs.remove(&ctx).unwrap_or_default(),
            },
        );
        self.response_chunks.remove(&ctx);
        Ok(())
    }

    /// The state of an exchange: live or finished.
    pub fn outcome(&self, ctx: u32) -> Option<StreamOutcome> {
        if let Some(f) = self.finished.get(&ctx) {
            return Some(f.outcome.clone());
        }
        self.store
            .data()
            .streams
            .get(&ctx)
            .map(|s| s.outcome.clone())
    }

    pub fn upstream_request(&self, ctx: u32) -> Option<Request> {
        self.upstream
            .get(&ctx)
            .or_else(|| {
                self.finished
                    .get(&ctx)
                    .and_then(|f| f.upstream_request.as_ref())
            })
            .cloned()
    }

    pub fn cost(&self, ctx: u32) -> Cost {
        self.finished
            .get(&ctx)
            .map(|f| f.cost.clone())
            .or_else(|| self.costs.get(&ctx).cloned())
            .unwrap_or_default()
    }

    pub fn calls_made(&self) -> Vec<super::callout::HttpCall> {
        self.store.data().calls_made.clone()
    }

    pub fn grpc_calls_made(&self) -> Vec<GrpcCall> {
        self.store.data().grpc_calls_made.clone()
    }

    /// gRPC calls dispatched and neither answered nor cancelled yet.
    pub fn pending_grpc_calls(&self) -> usize {
        self.store.data().grpc_calls.len()
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }
}

impl Stream {
    /// The filter let the body go: what it held moves on to the upstream.
    fn release_held_body(&mut self) {
        let body = std::mem::take(&mut self.request_body);
        self.forwarded_body.extend_from_slice(&body);
        self.request_buffering = false;
    }
}

/// Waiting for `continue_stream` is kept as a flag on the stream; the stage says where.
trait Waiting {
    fn is_waiting(&self) -> bool;
    fn set_waiting(&mut self, waiting: bool);
}

impl Waiting for Stream {
    fn is_waiting(&self) -> bool {
        self.direct_reply.is_none() && self.request_waiting
    }
    fn set_waiting(&mut self, waiting: bool) {
        self.request_waiting = waiting;
    }
}

/// The gRPC call due first (by time, then by dispatch order), if one is due at `now`.
fn take_due_grpc(calls: &mut Vec<PendingGrpc>, now: u64) -> Option<PendingGrpc> {
    let index = calls
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.due_at.filter(|t| *t <= now).map(|t| (t, i)))
        .min()?
        .1;
    Some(calls.remove(index))
}

fn next_request_stage(stream: &Stream) -> RequestStage {
    if !stream.pending_chunks.is_empty() {
        RequestStage::Body
    } else if stream.request_trailers.is_some() {
        RequestStage::Trailers
    } else {
        RequestStage::Upstream
    }
}

/// The request as Envoy's HTTP connection manager presents it to filters: pseudo-headers
/// first, names lowercased, `x-forwarded-proto` and a generated `x-request-id` added, and the
/// body split into the chunks it arrives in.
fn envoy_request(request: &Request, ctx: u32) -> (Pairs, Vec<Vec<u8>>) {
    let authority = request.header_value("host").unwrap_or("example.com");
    let mut headers: Pairs = vec![
        (b":authority".to_vec(), authority.as_bytes().to_vec()),
        (b":path".to_vec(), request.target.as_bytes().to_vec()),
        (b":method".to_vec(), request.method.as_bytes().to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
    ];
    for (k, v) in &request.headers {
        if !k.eq_ignore_ascii_case("host") {
            headers.push((k.to_ascii_lowercase().into_bytes(), v.as_bytes().to_vec()));
        }
    }
    for (k, v) in &request.byte_headers {
        headers.push((k.to_ascii_lowercase().into_bytes(), v.clone()));
    }
    let wants_length =
        !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
    // A request with trailers is chunked: no length.
    if wants_length
        && request.trailers.is_empty()
        && !request.has_header("content-length")
        && !request.has_header("transfer-encoding")
    {
        headers.push((
            b"content-length".to_vec(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    if !request.has_header("x-forwarded-proto") {
        headers.push((b"x-forwarded-proto".to_vec(), b"http".to_vec()));
    }
    if !request.has_header("x-request-id") {
        let id = format!("00000000-0000-4000-8000-{ctx:012x}");
        headers.push((b"x-request-id".to_vec(), id.into_bytes()));
    }
    let chunks = match request.chunk_size {
        _ if request.body.is_empty() => Vec::new(),
        None => vec![request.body.clone()],
        Some(size) => request.body.chunks(size).map(<[u8]>::to_vec).collect(),
    };
    (headers, chunks)
}

/// The request the upstream receives.
fn upstream_request(stream: &Stream) -> Request {
    let get = |name: &str| {
        stream
            .request_header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let mut request = Request::new(&get(":method"), &get(":path"));
    request.source = stream.source;
    request.headers = stream
        .request_headers
        .iter()
        .filter(|(k, _)| !k.starts_with(b":"))
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    request.body = stream.forwarded_body.clone();
    request.trailers = stream
        .request_trailers
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    request
}

/// Envoy's local reply (`Utility::prepareLocalReply`): `:status`, the filter's headers, then
/// content-length and a text/plain content-type for a non-empty body; an empty body loses
/// both.
fn local_reply_message(reply: &LocalReply) -> (Pairs, Vec<u8>) {
    let mut headers: Pairs = vec![(b":status".to_vec(), reply.status.to_string().into_bytes())];
    headers.extend(reply.headers.iter().cloned());
    if reply.body.is_empty() {
        headers.retain(|(k, _)| k != b"content-length" && k != b"content-type");
    } else {
        headers.retain(|(k, _)| k != b"content-length");
        headers.push((
            b"content-length".to_vec(),
            reply.body.len().to_string().into_bytes(),
        ));
        if !headers.iter().any(|(k, _)| k == b"content-type") {
            headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
        }
    }
    (headers, reply.body.clone())
}

fn to_response(headers: &Pairs, body: Vec<u8>) -> Response {
    let status = headers
        .iter()
        .find(|(k, _)| k == b":status")
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        headers: headers
            .iter()
            .filter(|(k, _)| !k.starts_with(b":"))
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect(),
        body,
    }
}
