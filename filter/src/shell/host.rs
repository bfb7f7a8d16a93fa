//! Header maps read and written as whole buffers, straight through the ABI: one host call and
//! one allocation each way, whatever the number of headers (the SDK's map getters allocate two
//! strings per header and panic on values that are not UTF-8).

use proxy_wasm::types::{MapType, Status};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> Status;
    fn proxy_set_header_map_pairs(map_type: MapType, data: *const u8, size: usize) -> Status;
}

/// The serialised pairs of a header map (empty if the host has no such map now).
pub fn header_map(map_type: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to `size` bytes it allocated through this module's
    // allocator (`proxy_on_memory_allocate`, a boxed slice of exactly `size` bytes), or null.
    unsafe {
        match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
            Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}

/// Replaces a header map with serialised pairs; false if the host refused.
pub fn set_header_map(map_type: MapType, pairs: &[u8]) -> bool {
    // SAFETY: the host only reads `pairs.len()` bytes from the pointer during the call.
    unsafe { proxy_set_header_map_pairs(map_type, pairs.as_ptr(), pairs.len()) == Status::Ok }
}
