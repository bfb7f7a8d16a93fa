//! Reading and writing the module's linear memory from host functions.

use wasmtime::{AsContextMut, Caller};

use super::abi::Status;
use super::state::HostState;

pub type HostResult<T> = Result<T, Status>;

fn memory(caller: &mut Caller<'_, HostState>) -> HostResult<wasmtime::Memory> {
    caller.data().memory.ok_or(Status::InvalidMemoryAccess)
}

pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> HostResult<Vec<u8>> {
    let mem = memory(caller)?;
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    mem.data(&caller)
        .get(start..start.checked_add(len).ok_or(Status::InvalidMemoryAccess)?)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

pub fn read_string(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> HostResult<String> {
    String::from_utf8(read(caller, ptr, len)?).map_err(|_| Status::BadArgument)
}

pub fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> HostResult<()> {
    let mem = memory(caller)?;
    let start = ptr as u32 as usize;
    mem.data_mut(caller.as_context_mut())
        .get_mut(start..start + bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> HostResult<()> {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> HostResult<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates (its `malloc` /
/// `proxy_on_memory_allocate`) and writes the pointer and size to the two out-pointers. An
/// empty value is pointer 0, size 0, as in Envoy.
pub fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ret_ptr: i32,
    ret_size: i32,
) -> HostResult<()> {
    if bytes.is_empty() {
        write_u32(caller, ret_ptr, 0)?;
        return write_u32(caller, ret_size, 0);
    }
    let allocate = caller
        .data()
        .allocate
        .clone()
        .ok_or(Status::InternalFailure)?;
    let size = i32::try_from(bytes.len()).map_err(|_| Status::BadArgument)?;
    let ptr = allocate
        .call(caller.as_context_mut(), size)
        .map_err(|_| Status::InternalFailure)?;
    if ptr == 0 {
        return Err(Status::InternalFailure);
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_size, bytes.len() as u32)
}
