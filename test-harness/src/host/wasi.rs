//! The WASI calls Envoy provides to Wasm modules (cpp-host `exports.cc`), with its behaviour:
//! stdout/stderr go to the log, the environment is `vm_config.environment_variables`, the
//! clock is Envoy's, there are no files.

use wasmtime::{Caller, Linker};

use super::abi::LogLevel;
use super::hostcalls::enter;
use super::memory::{read, write, write_u32, write_u64};
use super::shared::LogRecord;
use super::state::HostState;

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;
const EFAULT: i32 = 21;

/// Every WASI function Envoy registers; a module importing any other fails to load.
pub const PROVIDED: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    // Envoy 1.40 provides it too: a module importing it loads there (tests/e2e show it).
    "sched_yield",
];

fn errno(result: Result<(), i32>) -> i32 {
    result.err().unwrap_or(ESUCCESS)
}

fn fault<T>(_: T) -> i32 {
    EFAULT
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        add_file_descriptors(linker, module)?;
        add_environment(linker, module)?;
        add_clock_and_random(linker, module)?;
        add_process_and_files(linker, module)?;
    }
    Ok(())
}

/// File descriptors: stdout and stderr write to the log.
fn add_file_descriptors(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "fd_write",
        |mut c: Caller<'_, HostState>,
         fd: i32,
         iovs: i32,
         count: i32,
         written: i32|
         -> wasmtime::Result<i32> {
            enter(&mut c, "fd_write")?;
            Ok(errno(fd_write(&mut c, fd, iovs, count, written)))
        },
    )?;
    linker.func_wrap(
        module,
        "fd_read",
        |mut c: Caller<'_, HostState>,
         _fd: i32,
         _iovs: i32,
         _count: i32,
         _read: i32|
         -> wasmtime::Result<i32> {
            enter(&mut c, "fd_read")?;
            Ok(ENOSYS)
        },
    )?;
    linker.func_wrap(
        module,
        "fd_seek",
        |mut c: Caller<'_, HostState>,
         _fd: i32,
         _offset: i64,
         _whence: i32,
         _new: i32|
         -> wasmtime::Result<i32> {
            enter(&mut c, "fd_seek")?;
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        module,
        "fd_close",
        |mut c: Caller<'_, HostState>, _fd: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "fd_close")?;
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        module,
        "fd_fdstat_get",
        |mut c: Caller<'_, HostState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "fd_fdstat_get")?;
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let mut bytes = [0u8; 24];
            bytes[8] = 64; // rights: FD_WRITE
            Ok(errno(write(&mut c, stat, &bytes).map_err(fault)))
        },
    )?;
    Ok(())
}

/// The environment (`vm_config.environment_variables`) and no arguments.
fn add_environment(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "environ_sizes_get",
        |mut c: Caller<'_, HostState>, count_ptr: i32, size_ptr: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "environ_sizes_get")?;
            let env = environment(c.data());
            let size: usize = env.iter().map(Vec::len).sum();
            Ok(errno(
                write_u32(&mut c, count_ptr, env.len() as u32)
                    .and_then(|()| write_u32(&mut c, size_ptr, size as u32))
                    .map_err(fault),
            ))
        },
    )?;
    linker.func_wrap(
        module,
        "environ_get",
        |mut c: Caller<'_, HostState>, ptrs: i32, buf: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "environ_get")?;
            let env = environment(c.data());
            let mut at = buf;
            for (i, entry) in env.iter().enumerate() {
                if write_u32(&mut c, ptrs + 4 * i as i32, at as u32)
                    .and_then(|()| write(&mut c, at, entry))
                    .is_err()
                {
                    return Ok(EFAULT);
                }
                at += entry.len() as i32;
            }
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        module,
        "args_sizes_get",
        |mut c: Caller<'_, HostState>, count_ptr: i32, size_ptr: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "args_sizes_get")?;
            Ok(errno(
                write_u32(&mut c, count_ptr, 0)
                    .and_then(|()| write_u32(&mut c, size_ptr, 0))
                    .map_err(fault),
            ))
        },
    )?;
    linker.func_wrap(
        module,
        "args_get",
        |mut c: Caller<'_, HostState>, _ptrs: i32, _buf: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "args_get")?;
            Ok(ESUCCESS)
        },
    )?;
    Ok(())
}

/// The clocks (the ones the test moves) and random bytes.
fn add_clock_and_random(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "clock_time_get",
        |mut c: Caller<'_, HostState>,
         id: i32,
         _precision: i64,
         out: i32|
         -> wasmtime::Result<i32> {
            enter(&mut c, "clock_time_get")?;
            let clock = &c.data().shared.clock;
            let now = match id {
                0 => clock.wall_nanos(),
                1 => clock.monotonic_nanos(),
                _ => return Ok(ENOTSUP),
            };
            Ok(errno(write_u64(&mut c, out, now).map_err(fault)))
        },
    )?;
    linker.func_wrap(
        module,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "random_get")?;
            let len = len as u32 as usize;
            if len > 64 * 1024 {
                return Ok(EINVAL);
            }
            let mut bytes = Vec::with_capacity(len + 8);
            while bytes.len() < len {
                let word = c.data_mut().next_random();
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.truncate(len);
            Ok(errno(write(&mut c, buf, &bytes).map_err(fault)))
        },
    )?;
    Ok(())
}

/// `proc_exit` (a trap) and a file system without files.
fn add_process_and_files(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "proc_exit",
        |mut c: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
            enter(&mut c, "proc_exit")?;
            wasmtime::bail!("proc_exit({code})")
        },
    )?;
    linker.func_wrap(
        module,
        "path_open",
        |mut c: Caller<'_, HostState>,
         _dir: i32,
         _lookup: i32,
         _path: i32,
         _path_len: i32,
         _oflags: i32,
         _rights: i64,
         _inheriting: i64,
         _fdflags: i32,
         _fd_out: i32|
         -> wasmtime::Result<i32> {
            enter(&mut c, "path_open")?;
            Ok(ENOENT)
        },
    )?;
    linker.func_wrap(
        module,
        "fd_prestat_get",
        |mut c: Caller<'_, HostState>, _fd: i32, _out: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "fd_prestat_get")?;
            Ok(EBADF)
        },
    )?;
    linker.func_wrap(
        module,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, HostState>, _fd: i32, _path: i32, _len: i32| -> wasmtime::Result<i32> {
            enter(&mut c, "fd_prestat_dir_name")?;
            Ok(ENOSYS)
        },
    )?;
    Ok(())
}

/// `KEY=VALUE\0` entries.
fn environment(state: &HostState) -> Vec<Vec<u8>> {
    state
        .plugin
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

/// stdout is logged at info, stderr at error; one trailing newline is dropped.
fn fd_write(
    caller: &mut Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    count: i32,
    written: i32,
) -> Result<(), i32> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Err(EBADF),
    };
    let mut text = Vec::new();
    for i in 0..count {
        let iov = read(caller, iovs + 8 * i, 8).map_err(fault)?;
        let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        text.extend(read(caller, ptr, len).map_err(fault)?);
    }
    write_u32(caller, written, text.len() as u32).map_err(fault)?;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() {
        let state = caller.data();
        state.shared.log(LogRecord {
            vm: state.label,
            level,
            message: String::from_utf8_lossy(&text).into_owned(),
        });
    }
    Ok(())
}
