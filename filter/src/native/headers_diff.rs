//! Writing edited response headers back into Envoy's map, one header at a time (the ABI has
//! no whole-map write): the writes [`crate::header_writes`] derives.

use super::abi::{self, Buffer, FilterEnvoy};
use crate::header_writes::{Write, writes};
use crate::response::Pair;

/// The two header callbacks: set replaces every value of a name (an empty value removes the
/// name), add appends one.
#[derive(Clone, Copy)]
enum Call {
    Set,
    Add,
}

/// Applies the writes that turn `read` into `edited` to the stream's response headers.
pub fn write(filter: FilterEnvoy, read: &[(&[u8], &[u8])], edited: &[Pair<'_>]) {
    // Names and values may point into Envoy's own header entries, which a set frees: every
    // one is copied before the first call.
    let calls: Vec<(Call, Vec<u8>, Vec<u8>)> = writes(read, edited)
        .into_iter()
        .map(|write| match write {
            Write::Remove(name) => (Call::Set, name.to_vec(), Vec::new()),
            Write::Set(name, value) => (Call::Set, name.to_vec(), value.to_vec()),
            Write::Add(name, value) => (Call::Add, name.to_vec(), value.to_vec()),
        })
        .collect();
    for (call, name, value) in &calls {
        let (name, value) = (Buffer::of(name), Buffer::of(value));
        // SAFETY: a live stream in its response phase; Envoy copies the buffers.
        unsafe {
            match call {
                Call::Set => abi::envoy_dynamic_module_callback_http_set_header(
                    filter,
                    abi::RESPONSE_HEADERS,
                    name,
                    value,
                ),
                Call::Add => abi::envoy_dynamic_module_callback_http_add_header(
                    filter,
                    abi::RESPONSE_HEADERS,
                    name,
                    value,
                ),
            };
        }
    }
}
