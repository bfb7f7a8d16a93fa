//! The host side of proxy-wasm ABI 0.2.1 (module `env`), as Envoy implements it.
//!
//! Return statuses follow Envoy exactly where the Rust SDK reacts to them (it panics on
//! statuses it does not expect, so a difference here would hide or invent a crash).

use std::time::Duration;

use wasmtime::{Caller, Linker};

use super::abi::{self, LogLevel, Status, buffer, map, metric};
use super::callout::{CallOutcome, HttpCall, PendingCall, no_healthy_upstream, timeout_response};
use super::grpc;
use super::memory::{HostResult, read, read_string, return_bytes, write_u32, write_u64};
use super::shared::LogRecord;
use super::state::{Deferred, HostState, LocalReply, Pairs, RequestStage};

/// Calls V8 in Envoy allows during `_initialize` (cpp-host `startVm`).
const ALLOWED_WHILE_INITIALIZING: &[&str] = &[
    "proxy_log",
    "fd_write",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "clock_time_get",
    "random_get",
];

/// Counts the call and enforces the start-up restriction (a trap, as in V8).
pub fn enter(caller: &mut Caller<'_, HostState>, name: &'static str) -> wasmtime::Result<()> {
    caller.data_mut().count(name);
    if caller.data().restricted && !ALLOWED_WHILE_INITIALIZING.contains(&name) {
        wasmtime::bail!(
            "restricted_callback: {name} called during _initialize (Envoy's V8 traps here)"
        );
    }
    Ok(())
}

fn status(result: HostResult<()>) -> i32 {
    match result {
        Ok(()) => Status::Ok.code(),
        Err(s) => s.code(),
    }
}

macro_rules! hostcall {
    ($linker:ident, $name:literal, |$c:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        $linker.func_wrap(
            "env",
            $name,
            |mut $c: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                enter(&mut $c, $name)?;
                #[allow(clippy::redundant_closure_call)]
                let result: HostResult<()> = (|| $body)();
                Ok(status(result))
            },
        )?;
    };
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_logging_and_time(linker)?;
    add_buffers(linker)?;
    add_header_maps(linker)?;
    add_properties(linker)?;
    add_shared_data(linker)?;
    add_stream_control(linker)?;
    add_http_calls(linker)?;
    add_grpc_calls(linker)?;
    add_metrics(linker)?;
    Ok(())
}

/// Logging, the log level, the clock and the tick timer.
fn add_logging_and_time(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_log",
        |c, level: i32, ptr: i32, len: i32| log(&mut c, level, ptr, len)
    );
    hostcall!(linker, "proxy_get_log_level", |c, ret: i32| {
        let level = c.data().plugin.log_level as u32;
        write_u32(&mut c, ret, level)
    });
    hostcall!(
        linker,
        "proxy_get_current_time_nanoseconds",
        |c, ret: i32| {
            let now = c.data().shared.clock.wall_nanos();
            write_u64(&mut c, ret, now)
        }
    );
    hostcall!(
        linker,
        "proxy_set_tick_period_milliseconds",
        |c, period: i32| {
            let period = Duration::from_millis(u64::from(period as u32));
            let state = c.data_mut();
            if period.is_zero() {
                state.tick_period = None;
            } else {
                state.tick_period = Some(period);
                state.next_tick_at =
                    state.shared.clock.monotonic_nanos() + period.as_nanos() as u64;
            }
            Ok(())
        }
    );
    Ok(())
}

/// Bodies, configurations and HTTP call answers, read and written as buffers.
fn add_buffers(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_get_buffer_bytes",
        |c, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| {
            get_buffer(&mut c, kind, start, max, ret_ptr, ret_size)
        }
    );
    hostcall!(
        linker,
        "proxy_set_buffer_bytes",
        |c, kind: i32, start: i32, size: i32, ptr: i32, len: i32| {
            set_buffer(&mut c, kind, start, size, ptr, len)
        }
    );
    Ok(())
}

/// Header and trailer maps of the stream and of an HTTP call's answer.
fn add_header_maps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_get_header_map_pairs",
        |c, kind: i32, ret_ptr: i32, ret_size: i32| {
            let pairs = header_map(c.data(), kind)
                .ok()
                .flatten()
                .cloned()
                .unwrap_or_default();
            return_bytes(&mut c, &abi::encode_pairs(&pairs), ret_ptr, ret_size)
        }
    );
    hostcall!(
        linker,
        "proxy_set_header_map_pairs",
        |c, kind: i32, ptr: i32, len: i32| {
            let pairs = abi::decode_pairs(&read(&mut c, ptr, len)?).ok_or(Status::BadArgument)?;
            let map = header_map_mut(c.data_mut(), kind)?;
            map.clear();
            map.extend(pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)));
            Ok(())
        }
    );
    hostcall!(
        linker,
        "proxy_get_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, ret_ptr: i32, ret_size: i32| {
            let key = read(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            let value = match header_map(c.data(), kind)? {
                None => return Err(Status::BadArgument),
                Some(map) => map.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()),
            };
            let value = value.ok_or(Status::NotFound)?;
            return_bytes(&mut c, &value, ret_ptr, ret_size)
        }
    );
    hostcall!(
        linker,
        "proxy_add_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            let value = read(&mut c, value_ptr, value_len)?;
            header_map_mut(c.data_mut(), kind)?.push((key, value));
            Ok(())
        }
    );
    hostcall!(
        linker,
        "proxy_replace_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            let key = read(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            let value = read(&mut c, value_ptr, value_len)?;
            let map = header_map_mut(c.data_mut(), kind)?;
            // Envoy's setCopy: remove every value, append one.
            map.retain(|(k, _)| *k != key);
            map.push((key, value));
            Ok(())
        }
    );
    hostcall!(
        linker,
        "proxy_remove_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32| {
            let key = read(&mut c, key_ptr, key_len)?.to_ascii_lowercase();
            header_map_mut(c.data_mut(), kind)?.retain(|(k, _)| *k != key);
            Ok(())
        }
    );
    Ok(())
}

/// Properties: the plugin's names and what the host knows of the request and connection.
fn add_properties(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_get_property",
        |c, path_ptr: i32, path_len: i32, ret_ptr: i32, ret_size: i32| {
            let path = read(&mut c, path_ptr, path_len)?;
            let value = property(c.data(), &path)?;
            return_bytes(&mut c, &value, ret_ptr, ret_size)
        }
    );
    hostcall!(
        linker,
        "proxy_set_property",
        |_c, _path_ptr: i32, _path_len: i32, _value_ptr: i32, _value_len: i32| {
            Err(Status::Unimplemented)
        }
    );
    Ok(())
}

/// Shared data, with Envoy's CAS rules (`Shared::set_shared`).
fn add_shared_data(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_get_shared_data",
        |c, key_ptr: i32, key_len: i32, ret_ptr: i32, ret_size: i32, ret_cas: i32| {
            let key = read(&mut c, key_ptr, key_len)?;
            let (value, cas) = c.data().shared.get_shared(&key).ok_or(Status::NotFound)?;
            return_bytes(&mut c, &value, ret_ptr, ret_size)?;
            write_u32(&mut c, ret_cas, cas)
        }
    );
    hostcall!(
        linker,
        "proxy_set_shared_data",
        |c, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32, cas: i32| {
            let key = read(&mut c, key_ptr, key_len)?;
            let value = read(&mut c, value_ptr, value_len)?;
            match c.data().shared.set_shared(&key, &value, cas as u32) {
                Status::Ok => Ok(()),
                other => Err(other),
            }
        }
    );
    Ok(())
}

/// Continuing, closing and answering a stream; the effective context.
fn add_stream_control(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(linker, "proxy_continue_stream", |c, stream: i32| {
        stream_control(c.data_mut(), stream, true)
    });
    hostcall!(linker, "proxy_close_stream", |c, stream: i32| {
        stream_control(c.data_mut(), stream, false)
    });
    hostcall!(
        linker,
        "proxy_send_local_response",
        |c,
         code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         _grpc: i32| {
            send_local_response(
                &mut c,
                code,
                (details_ptr, details_len),
                (body_ptr, body_len),
                (headers_ptr, headers_len),
            )
        }
    );
    hostcall!(linker, "proxy_set_effective_context", |c, context: i32| {
        let context = context as u32;
        let state = c.data_mut();
        if context == state.root_context_id || state.streams.contains_key(&context) {
            state.effective_context = context;
            Ok(())
        } else {
            Err(Status::BadArgument)
        }
    });
    hostcall!(linker, "proxy_done", |_c| Err(Status::NotFound));
    Ok(())
}

/// HTTP calls, and `proxy_get_status`: the last failed HTTP call or gRPC close.
fn add_http_calls(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_http_call",
        |c,
         up_ptr: i32,
         up_len: i32,
         h_ptr: i32,
         h_len: i32,
         b_ptr: i32,
         b_len: i32,
         t_ptr: i32,
         t_len: i32,
         timeout: i32,
         ret_token: i32| {
            http_call(
                &mut c,
                (up_ptr, up_len),
                (h_ptr, h_len),
                (b_ptr, b_len),
                (t_ptr, t_len),
                timeout,
                ret_token,
            )
        }
    );
    hostcall!(
        linker,
        "proxy_get_status",
        |c, ret_code: i32, ret_ptr: i32, ret_size: i32| {
            let (code, message) = c.data().last_status.clone();
            write_u32(&mut c, ret_code, code)?;
            return_bytes(&mut c, message.as_bytes(), ret_ptr, ret_size)
        }
    );
    Ok(())
}

/// Unary gRPC calls (grpc.rs); streams (`proxy_grpc_stream`, `proxy_grpc_send`) stay
/// Unimplemented.
fn add_grpc_calls(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_grpc_call",
        |c,
         up_ptr: i32,
         up_len: i32,
         service_ptr: i32,
         service_len: i32,
         method_ptr: i32,
         method_len: i32,
         md_ptr: i32,
         md_len: i32,
         msg_ptr: i32,
         msg_len: i32,
         timeout: i32,
         ret_token: i32| {
            let spans = [
                (up_ptr, up_len),
                (service_ptr, service_len),
                (method_ptr, method_len),
                (md_ptr, md_len),
                (msg_ptr, msg_len),
            ];
            grpc::dispatch(&mut c, spans, timeout, ret_token)
        }
    );
    hostcall!(linker, "proxy_grpc_cancel", |c, token: i32| grpc::cancel(
        c.data_mut(),
        token
    ));
    hostcall!(linker, "proxy_grpc_close", |c, token: i32| grpc::cancel(
        c.data_mut(),
        token
    ));
    Ok(())
}

/// Counters, gauges and histograms, kept in the data every VM shares.
fn add_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    hostcall!(
        linker,
        "proxy_define_metric",
        |c, kind: i32, name_ptr: i32, name_len: i32, ret_id: i32| {
            let name = read_string(&mut c, name_ptr, name_len)?;
            if ![metric::COUNTER, metric::GAUGE, metric::HISTOGRAM].contains(&kind) {
                return Err(Status::BadArgument);
            }
            let state = c.data_mut();
            let id = state.next_metric_id + kind as u32;
            state.next_metric_id += 4;
            state.metric_ids.insert(id, (kind, name.clone()));
            state.shared.define_stat(kind, &name);
            write_u32(&mut c, ret_id, id)
        }
    );
    hostcall!(
        linker,
        "proxy_increment_metric",
        |c, id: i32, offset: i64| {
            update_metric(c.data(), id, |kind, stat| match (kind, stat) {
                (metric::COUNTER, super::shared::Stat::Counter(v)) if offset > 0 => {
                    *v += offset as u64;
                    Ok(())
                }
                (metric::GAUGE, super::shared::Stat::Gauge(v)) => {
                    *v += offset;
                    Ok(())
                }
                _ => Err(Status::BadArgument),
            })
        }
    );
    hostcall!(linker, "proxy_record_metric", |c, id: i32, value: i64| {
        update_metric(c.data(), id, |_, stat| {
            match stat {
                // Envoy adds to a counter rather than setting it.
                super::shared::Stat::Counter(v) => *v += value as u64,
                super::shared::Stat::Gauge(v) => *v = value,
                super::shared::Stat::Histogram(values) => values.push(value as u64),
            }
            Ok(())
        })
    });
    hostcall!(linker, "proxy_get_metric", |c, id: i32, ret: i32| {
        let (_, name) = c
            .data()
            .metric_ids
            .get(&(id as u32))
            .cloned()
            .ok_or(Status::NotFound)?;
        let value = c
            .data()
            .shared
            .with_stat(&name, |stat| match stat {
                super::shared::Stat::Counter(v) => Ok(*v),
                super::shared::Stat::Gauge(v) => Ok(*v as u64),
                super::shared::Stat::Histogram(_) => Err(Status::BadArgument),
            })
            .ok_or(Status::NotFound)??;
        write_u64(&mut c, ret, value)
    });
    Ok(())
}

fn log(caller: &mut Caller<'_, HostState>, level: i32, ptr: i32, len: i32) -> HostResult<()> {
    let level = LogLevel::from_code(level).ok_or(Status::BadArgument)?;
    let message = String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned();
    let state = caller.data();
    state.shared.log(LogRecord {
        vm: state.label,
        level,
        message,
    });
    Ok(())
}

/// The header map of a type in the current context: `Ok(None)` when Envoy has no such map
/// now (reads of single values then fail with BadArgument, pairs come back empty).
fn header_map(state: &HostState, kind: i32) -> HostResult<Option<&Pairs>> {
    match kind {
        map::HTTP_CALL_RESPONSE_HEADERS => Ok(state.call_response.as_ref().map(|r| &r.headers)),
        map::HTTP_CALL_RESPONSE_TRAILERS => Ok(None),
        map::HTTP_REQUEST_HEADERS => Ok(state
            .stream()
            .filter(|s| s.request_headers_readable)
            .map(|s| &s.request_headers)),
        map::HTTP_RESPONSE_HEADERS => Ok(state
            .stream()
            .filter(|s| s.response_headers_readable)
            .map(|s| &s.response_headers)),
        map::HTTP_REQUEST_TRAILERS => Ok(state
            .stream()
            .filter(|s| s.stage == RequestStage::Trailers)
            .and_then(|s| s.request_trailers.as_ref())),
        map::HTTP_RESPONSE_TRAILERS => Ok(None),
        _ => Err(Status::BadArgument),
    }
}

fn header_map_mut(state: &mut HostState, kind: i32) -> HostResult<&mut Pairs> {
    let stream = state.stream_mut().ok_or(Status::BadArgument)?;
    match kind {
        map::HTTP_REQUEST_HEADERS if stream.request_headers_readable => {
            Ok(&mut stream.request_headers)
        }
        map::HTTP_RESPONSE_HEADERS if stream.response_headers_readable => {
            Ok(&mut stream.response_headers)
        }
        map::HTTP_REQUEST_TRAILERS if stream.stage == RequestStage::Trailers => {
            stream.request_trailers.as_mut().ok_or(Status::BadArgument)
        }
        _ => Err(Status::BadArgument),
    }
}

fn get_buffer(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    start: i32,
    max: i32,
    ret_ptr: i32,
    ret_size: i32,
) -> HostResult<()> {
    let state = caller.data();
    let bytes: Vec<u8> = match kind {
        buffer::HTTP_REQUEST_BODY => state
            .stream()
            .map(|s| s.request_body.clone())
            .unwrap_or_default(),
        buffer::HTTP_RESPONSE_BODY => state
            .stream()
            .map(|s| s.response_body.clone())
            .unwrap_or_default(),
        buffer::HTTP_CALL_RESPONSE_BODY => state
            .call_response
            .as_ref()
            .ok_or(Status::NotFound)?
            .body
            .clone(),
        // Envoy reads the root context's receive buffer, whatever the effective context.
        buffer::GRPC_RECEIVE_BUFFER => state.grpc_receive.clone().ok_or(Status::NotFound)?,
        buffer::VM_CONFIGURATION => state.plugin.vm_configuration.clone(),
        buffer::PLUGIN_CONFIGURATION if state.in_configure => state.plugin.configuration.clone(),
        buffer::PLUGIN_CONFIGURATION => return Err(Status::NotFound),
        _ => return Err(Status::NotFound),
    };
    let start = start as u32 as usize;
    let max = max as u32 as usize;
    if start.checked_add(max).is_none() {
        return Err(Status::BadArgument);
    }
    // Envoy clamps reads instead of failing them.
    let slice = bytes
        .get(start.min(bytes.len())..(start + max).min(bytes.len()))
        .unwrap_or(&[]);
    return_bytes(caller, slice, ret_ptr, ret_size)
}

fn set_buffer(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    start: i32,
    size: i32,
    ptr: i32,
    len: i32,
) -> HostResult<()> {
    let data = read(caller, ptr, len)?;
    let stream = caller.data_mut().stream_mut().ok_or(Status::BadArgument)?;
    let body = match kind {
        buffer::HTTP_REQUEST_BODY => &mut stream.request_body,
        buffer::HTTP_RESPONSE_BODY => &mut stream.response_body,
        _ => return Err(Status::BadArgument),
    };
    let start = start as u32 as usize;
    let size = size as u32 as usize;
    // Envoy's Buffer::copyFrom: at 0, drain `size` bytes and prepend; at or past the end,
    // append; anything else is refused.
    if start == 0 {
        let drained = size.min(body.len());
        let mut replaced = data;
        replaced.extend_from_slice(&body[drained..]);
        *body = replaced;
        Ok(())
    } else if start >= body.len() {
        body.extend_from_slice(&data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

fn property(state: &HostState, path: &[u8]) -> HostResult<Vec<u8>> {
    let dotted: String = path
        .split(|b| *b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".");
    if let Some((_, value)) = state.plugin.properties.iter().find(|(p, _)| *p == dotted) {
        return Ok(value.clone());
    }
    match dotted.as_str() {
        "plugin_name" => return Ok(state.plugin.name.clone().into_bytes()),
        "plugin_root_id" => return Ok(state.plugin.root_id.clone().into_bytes()),
        "plugin_vm_id" => return Ok(state.plugin.vm_id.clone().into_bytes()),
        _ => {}
    }
    // Everything else describes a stream; the root context has none (Envoy: NotFound).
    let stream = state.stream().ok_or(Status::NotFound)?;
    let header = |name: &str| stream.request_header(name).map(<[u8]>::to_vec);
    let value = match dotted.as_str() {
        "source.address" => Some(stream.source.to_string().into_bytes()),
        "source.port" => Some(i64::from(stream.source.port()).to_le_bytes().to_vec()),
        "request.id" => header("x-request-id"),
        "request.path" => header(":path"),
        "request.url_path" => {
            header(":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or(&[]).to_vec())
        }
        "request.method" => header(":method"),
        "request.host" => header(":authority"),
        "request.scheme" => header(":scheme"),
        "request.protocol" => Some(b"HTTP/1.1".to_vec()),
        "connection.mtls" => Some(vec![0]),
        _ => None,
    };
    value.ok_or(Status::NotFound)
}

/// `continue_stream` (`resume`) or `close_stream`, carried out after the callback returns.
fn stream_control(state: &mut HostState, stream: i32, resume: bool) -> HostResult<()> {
    if stream != abi::stream::HTTP_REQUEST && stream != abi::stream::HTTP_RESPONSE {
        return Err(Status::BadArgument);
    }
    let context = state.effective_context;
    let target = state.streams.get_mut(&context).ok_or(Status::NotFound)?;
    if resume {
        // Envoy forgets the request maps once the stream continues (either direction).
        target.request_headers_readable = false;
        state.deferred.push(Deferred::Continue(context, stream));
    } else {
        state.deferred.push(Deferred::Close(context));
    }
    Ok(())
}

fn send_local_response(
    caller: &mut Caller<'_, HostState>,
    code: i32,
    details: (i32, i32),
    body: (i32, i32),
    headers: (i32, i32),
) -> HostResult<()> {
    // Envoy records the details as the response code details; nothing here reads them.
    let _details = read(caller, details.0, details.1)?;
    let body = read(caller, body.0, body.1)?;
    let headers =
        abi::decode_pairs(&read(caller, headers.0, headers.1)?).ok_or(Status::BadArgument)?;
    let state = caller.data_mut();
    let context = state.effective_context;
    let stream = state.streams.get_mut(&context).ok_or(Status::BadArgument)?;
    if stream.local_reply_sent {
        return Err(Status::BadArgument);
    }
    stream.local_reply_sent = true;
    let reply = LocalReply {
        status: code as u32,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body,
    };
    state.deferred.push(Deferred::LocalReply(context, reply));
    Ok(())
}

fn http_call(
    caller: &mut Caller<'_, HostState>,
    upstream: (i32, i32),
    headers: (i32, i32),
    body: (i32, i32),
    trailers: (i32, i32),
    timeout_ms: i32,
    ret_token: i32,
) -> HostResult<()> {
    let cluster = read_string(caller, upstream.0, upstream.1)?;
    let headers =
        abi::decode_pairs(&read(caller, headers.0, headers.1)?).ok_or(Status::BadArgument)?;
    let body = read(caller, body.0, body.1)?;
    let _trailers = read(caller, trailers.0, trailers.1)?;
    if timeout_ms < 0 {
        return Err(Status::BadArgument);
    }
    let state = caller.data_mut();
    if !state.plugin.clusters.contains(&cluster) {
        return Err(Status::BadArgument);
    }
    let headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    for required in [":path", ":method", ":authority"] {
        if !headers.iter().any(|(k, _)| k == required) {
            return Err(Status::BadArgument);
        }
    }
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    let call = HttpCall {
        cluster,
        headers,
        body,
        timeout,
    };
    let now = state.shared.clock.monotonic_nanos();
    let outcome = match &state.plugin.responder {
        Some(responder) => responder(&call),
        None => CallOutcome::now(no_healthy_upstream()),
    };
    let timeout_at = timeout.map(|t| now + t.as_nanos() as u64);
    let (due_at, answer) = match outcome {
        CallOutcome::Respond { after, response } => {
            let at = now + after.as_nanos() as u64;
            match timeout_at {
                Some(limit) if limit < at => (Some(limit), Some(timeout_response())),
                _ => (Some(at), Some(response)),
            }
        }
        CallOutcome::Reset { after } => (Some(now + after.as_nanos() as u64), None),
        CallOutcome::NoAnswer => (timeout_at, Some(timeout_response())),
    };
    let token = state.next_callout_token;
    state.next_callout_token += 4;
    let context = state.effective_context;
    state.callouts.push(PendingCall {
        token,
        context,
        due_at,
        answer,
    });
    state.calls_made.push(call);
    write_u32(caller, ret_token, token)
}

fn update_metric(
    state: &HostState,
    id: i32,
    f: impl FnOnce(i32, &mut super::shared::Stat) -> HostResult<()>,
) -> HostResult<()> {
    let (kind, name) = state.metric_ids.get(&(id as u32)).ok_or(Status::NotFound)?;
    state
        .shared
        .with_stat(name, |stat| f(*kind, stat))
        .ok_or(Status::NotFound)?
}
