//! Writing edited response headers back into Envoy's map, one header at a time (the ABI has
//! no whole-map write): the writes [`crate::header_writes`] derives.

use super::abi::{self, Buffer, FilterEnvoy};
use crate::header_writes::{Write, writes};
use crate::response::Pair;

/// Applies the writes that turn `read` into `edited` to the stream's response headers.
pub fn write(filter: FilterEnvoy, read: &[(&[u8], &[u8])], edited: &[Pair<'_>]) {
    for write in writes(read, edited) {
        // SAFETY: a live stream in its response phase; Envoy copies the buffers.
        unsafe {
            match write {
                // An empty value removes the header.
                Write::Remove(name) => abi::envoy_dynamic_module_callback_http_set_header(
                    filter,
                    abi::RESPONSE_HEADERS,
                    Buffer::of(name),
                    Buffer::EMPTY,
                ),
                Write::Set(name, value) => abi::envoy_dynamic_module_callback_http_set_header(
                    filter,
                    abi::RESPONSE_HEADERS,
                    Buffer::of(name),
                    Buffer::of(value),
                ),
                Write::Add(name, value) => abi::envoy_dynamic_module_callback_http_add_header(
                    filter,
                    abi::RESPONSE_HEADERS,
                    Buffer::of(name),
                    Buffer::of(value),
                ),
            };
        }
    }
}
