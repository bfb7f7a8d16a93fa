//! The native shell: an Envoy dynamic module (`dist/libhardening.so`, the `native` feature)
//! whose hooks forward Envoy's callbacks to the same core as the proxy-wasm shell
//! ([`crate::exchange`]), with the host boundary implemented over Envoy's C ABI ([`host`]).
//! Nothing here decides anything.
//!
//! Threads: Envoy calls `config_new` on its main thread (also under `--mode validate`) and
//! every stream hook on the stream's worker thread. The compiled engine is shared by all
//! workers; each worker keeps its own plugin (the health endpoint's cache and run); rate
//! limits live in the process's atomic tables, exact across workers.
//!
//! Panics never unwind into Envoy: every hook runs under `catch_unwind`; a panic is logged,
//! and the stream is answered with a 500 problem+json (in the response phase too: Envoy sends
//! it instead of the upstream's response if that has not started, else resets the stream).

mod abi;
mod config;
mod headers_diff;
mod host;
mod stream;

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use http::StatusCode;

use abi::{Buffer, ConfigEnvoy, FilterEnvoy, Header};
use config::NativeConfig;
use stream::{HookDepth, Outbound, Phase, Replies, Stream};

use crate::exchange::Flow;
use crate::problem::Problem;
use crate::reply::LocalResponse;

/// The ABI version Envoy 1.40 matches (it loads another with a warning).
static ABI_VERSION: &[u8] = b"v0.2.0\0";

/// Runs a hook's body; a panic is logged and answered by `failed`.
fn guarded<R>(hook: &str, body: impl FnOnce() -> R, failed: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(_) => {
            host::log(
                abi::LOG_ERROR,
                &format!("hardening: {hook} panicked; the stream is answered with a 500"),
            );
            failed()
        }
    }
}

/// The answer to a stream whose hook panicked.
fn internal_error() -> LocalResponse {
    let problem = Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "The request could not be checked.",
    );
    LocalResponse::problem(&problem, None)
}

/// The stream behind the module's pointer Envoy hands back.
///
/// # Safety
/// `filter` must be a pointer `envoy_dynamic_module_on_http_filter_new` returned, not yet
/// destroyed (or destroyed while a hook of its worker runs: then still allocated), used only
/// on its worker thread, with no other reference to it alive.
unsafe fn stream<'a>(filter: *const c_void) -> Option<&'a mut Stream> {
    // SAFETY: per this function's contract.
    unsafe { filter.cast_mut().cast::<Stream>().as_mut() }
}

/// What a stream hook does when its stream is missing (`new` failed): a request hook answers
/// 500 rather than let an unchecked request through; the others have nothing to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WithoutStream {
    Refuse,
    Pass,
}

/// Runs a stream hook: the core's callback (nothing if the stream already failed), then the
/// replies it asked for, sent last. A panic answers the stream with a 500 and marks it failed.
fn stream_hook(
    name: &str,
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
    without_stream: WithoutStream,
    run: impl FnOnce(&mut Stream) -> (Flow, Replies),
) -> Flow {
    let _depth = HookDepth::enter();
    let (flow, replies) = guarded(
        name,
        || {
            // SAFETY: Envoy passes the pointer `new` returned, on the stream's thread; it is
            // freed only after the outermost hook returns (`HookDepth`).
            match unsafe { stream(filter) } {
                Some(stream) if !stream.failed => run(stream),
                Some(_) => (Flow::Continue, Replies::new()),
                None if without_stream == WithoutStream::Refuse => (
                    Flow::Pause,
                    vec![(filter_envoy, Outbound::Reply(internal_error()))],
                ),
                None => (Flow::Continue, Replies::new()),
            }
        },
        || {
            // SAFETY: as above; the unwound body no longer borrows the stream, and nothing was
            // sent yet (replies go out after the body returns).
            if let Some(stream) = unsafe { stream(filter) } {
                stream.failed = true;
            }
            (
                Flow::Pause,
                vec![(filter_envoy, Outbound::Reply(internal_error()))],
            )
        },
    );
    // Last: a send may end the stream and run its other hooks; no stream is touched after.
    guarded(name, || stream::send_all(replies), || ());
    flow
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    ABI_VERSION.as_ptr()
}

/// # Safety
/// Envoy passes its live configuration and buffers valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy: ConfigEnvoy,
    _name: Buffer,
    config: Buffer,
) -> *const c_void {
    guarded(
        "config_new",
        || {
            // SAFETY: Envoy's buffer, valid during the call.
            let bytes = unsafe { config.bytes() };
            match NativeConfig::load(config_envoy, bytes) {
                Ok(config) => Box::into_raw(Box::new(config)).cast_const().cast(),
                Err(error) => {
                    // A null configuration makes Envoy refuse the filter; this line says why.
                    host::log(abi::LOG_ERROR, &error);
                    std::ptr::null()
                }
            }
        },
        std::ptr::null,
    )
}

/// # Safety
/// Envoy passes a pointer `config_new` returned, once, when no stream uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guarded(
        "config_destroy",
        || {
            if !config.is_null() {
                // SAFETY: per this function's contract.
                drop(unsafe { Box::from_raw(config.cast_mut().cast::<NativeConfig>()) });
            }
        },
        || (),
    );
}

/// # Safety
/// Envoy passes a live configuration from `config_new` and the new stream's filter.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    filter_envoy: FilterEnvoy,
) -> *const c_void {
    guarded(
        "new",
        || {
            if config.is_null() {
                return std::ptr::null();
            }
            // SAFETY: Envoy keeps the configuration alive while its streams live.
            let stream = unsafe { Stream::into_raw(config.cast::<NativeConfig>(), filter_envoy) };
            stream.cast_const().cast()
        },
        std::ptr::null,
    )
}

/// # Safety
/// Envoy passes the stream's own pointers, on its thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let flow = stream_hook(
        "request_headers",
        filter_envoy,
        filter,
        WithoutStream::Refuse,
        |s| {
            let (flow, replies) = s.run(Phase::Request, |exchange, plugin, host| {
                exchange.on_request_headers(plugin, host, end_of_stream)
            });
            s.note_request_flow(flow);
            (flow, replies)
        },
    );
    match flow {
        Flow::Continue => abi::HEADERS_CONTINUE,
        // Unlike proxy-wasm, a dynamic module can stop the headers and still be handed the
        // body: the request waits here until its body has passed (no buffer filter needed).
        Flow::HoldHeaders | Flow::Pause => abi::HEADERS_STOP_ITERATION,
        // Nothing of the request, body included, comes to any filter until it resumes.
        Flow::Wait => abi::HEADERS_STOP_ALL_ITERATION_AND_BUFFER,
    }
}

/// # Safety
/// As for the request headers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let flow = stream_hook(
        "request_body",
        filter_envoy,
        filter,
        WithoutStream::Refuse,
        |s| {
            // What this filter holds and this chunk: the core counts the body so far.
            let size = s.request_body_size();
            let (flow, replies) = s.run(Phase::Request, |exchange, plugin, host| {
                exchange.on_request_body(plugin, host, size, end_of_stream)
            });
            s.note_request_flow(flow);
            (flow, replies)
        },
    );
    match flow {
        Flow::Continue | Flow::HoldHeaders => abi::BODY_CONTINUE,
        Flow::Pause | Flow::Wait => abi::BODY_STOP_ITERATION_AND_BUFFER,
    }
}

/// # Safety
/// As for the request headers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
) -> u32 {
    let flow = stream_hook(
        "request_trailers",
        filter_envoy,
        filter,
        WithoutStream::Refuse,
        |s| {
            s.run(Phase::Request, |exchange, plugin, host| {
                exchange.on_request_trailers(plugin, host)
            })
        },
    );
    match flow {
        Flow::Continue | Flow::HoldHeaders => abi::TRAILERS_CONTINUE,
        Flow::Pause | Flow::Wait => abi::TRAILERS_STOP_ITERATION,
    }
}

/// # Safety
/// As for the request headers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    let flow = stream_hook(
        "response_headers",
        filter_envoy,
        filter,
        WithoutStream::Pass,
        |s| {
            s.run(Phase::Response, |exchange, plugin, host| {
                exchange.on_response_headers(plugin, host)
            })
        },
    );
    match flow {
        Flow::Continue | Flow::HoldHeaders => abi::HEADERS_CONTINUE,
        Flow::Pause | Flow::Wait => abi::HEADERS_STOP_ITERATION,
    }
}

/// An answer to one of the stream's HTTP calls (a health check, or the rate limit service's
/// gRPC call carried over HTTP/2).
///
/// # Safety
/// As for the request headers; `headers` points to `headers_len` headers and `chunks` to
/// `chunks_len` body buffers, valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    filter_envoy: FilterEnvoy,
    filter: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const Header,
    headers_len: usize,
    chunks: *const Buffer,
    chunks_len: usize,
) {
    let answered = result == abi::CALLOUT_RESULT_SUCCESS && !headers.is_null() && headers_len > 0;
    let (headers, body) = if answered {
        // SAFETY: per this function's contract.
        let headers = unsafe { std::slice::from_raw_parts(headers, headers_len) }.to_vec();
        // SAFETY: per this function's contract; each buffer is valid for the call.
        let body = unsafe { callout_body(chunks, chunks_len) };
        (headers, body)
    } else {
        (Vec::new(), Vec::new())
    };
    let Ok(token) = u32::try_from(callout_id) else {
        return;
    };
    stream_hook(
        "http_callout_done",
        filter_envoy,
        filter,
        WithoutStream::Pass,
        |s| {
            s.run_with(Phase::Request, (headers, body), |exchange, plugin, host| {
                exchange.on_http_call_response(plugin, host, token, answered);
                Flow::Continue
            })
        },
    );
}

/// A callout answer's body, copied out of Envoy's buffers.
///
/// # Safety
/// `chunks` must be null or point to `len` buffers valid for the call.
unsafe fn callout_body(chunks: *const Buffer, len: usize) -> Vec<u8> {
    if chunks.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: per this function's contract.
    let chunks = unsafe { std::slice::from_raw_parts(chunks, len) };
    let mut body = Vec::new();
    for chunk in chunks {
        // SAFETY: each buffer points to bytes Envoy keeps valid for the call.
        body.extend_from_slice(unsafe { chunk.bytes() });
    }
    body
}

/// # Safety
/// As for the request headers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy: FilterEnvoy,
    filter: *const c_void,
) {
    let _depth = HookDepth::enter();
    // Also for a stream that failed: its health waiters must get an answer.
    let replies = guarded(
        "stream_complete",
        // SAFETY: as in `stream_hook`.
        || {
            unsafe { stream(filter) }
                .map(Stream::complete)
                .unwrap_or_default()
        },
        Replies::new,
    );
    guarded("stream_complete", || stream::send_all(replies), || ());
}

/// # Safety
/// Envoy passes a pointer `new` returned, once, on the stream's thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    guarded(
        "destroy",
        || {
            if !filter.is_null() {
                // SAFETY: per this function's contract; freed now, or when the hooks of this
                // worker that are running (a reply being sent) return.
                unsafe { stream::destroy(filter.cast_mut().cast::<Stream>()) };
            }
        },
        || (),
    );
}

/// The hooks that only let the stream go on: `(filter_envoy, filter, ...) -> status`.
macro_rules! continue_hooks {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(_filter_envoy: FilterEnvoy, _filter: *const c_void, $($arg: $ty),*) -> u32 {
            let _ = ($($arg,)*);
            0
        }
    )*};
}

continue_hooks! {
    envoy_dynamic_module_on_http_filter_response_body(end_of_stream: bool);
    envoy_dynamic_module_on_http_filter_response_trailers();
}

/// Hooks for what the filter never starts (streams, timers) or does not watch (watermarks).
macro_rules! empty_hooks {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(_filter_envoy: FilterEnvoy, _filter: *const c_void, $($arg: $ty),*) {
            let _ = ($($arg,)*);
        }
    )*};
}

empty_hooks! {
    envoy_dynamic_module_on_http_filter_http_stream_headers(
        id: u64, headers: *const c_void, headers_len: usize, end_of_stream: bool
    );
    envoy_dynamic_module_on_http_filter_http_stream_data(
        id: u64, chunks: *const Buffer, chunks_len: usize, end_of_stream: bool
    );
    envoy_dynamic_module_on_http_filter_http_stream_trailers(
        id: u64, trailers: *const c_void, trailers_len: usize
    );
    envoy_dynamic_module_on_http_filter_http_stream_complete(id: u64);
    envoy_dynamic_module_on_http_filter_http_stream_reset(id: u64, reason: u32);
    envoy_dynamic_module_on_http_filter_scheduled(event_id: u64);
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark();
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark();
}
