//! Writing edited response headers back into Envoy's map, one header at a time (the ABI has
//! no whole-map write): the writes [`crate::header_writes`] derives.

use std::borrow::Cow;

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

/// One call with its name and value.
type CallOf<'a> = (Call, Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Applies the writes that turn `read` (Envoy's entries, lent for this hook) into `edited`
/// to the stream's response headers.
pub fn write<'a>(filter: FilterEnvoy, read: &[(&'a [u8], &'a [u8])], edited: &'a [Pair<'a>]) {
    // A set frees the entries of its name, and a later write may point into one of them (a
    // name or a kept value): every byte string lent by Envoy is copied before the first call.
    // The config's and the core's own bytes are passed as they are (most writes: no copy).
    let own = |bytes: &'a [u8]| -> Cow<'a, [u8]> {
        if lent_by_envoy(read, bytes) {
            Cow::Owned(bytes.to_vec())
        } else {
            Cow::Borrowed(bytes)
        }
    };
    let calls: Vec<CallOf<'a>> = writes(read, edited)
        .into_iter()
        .map(|write| match write {
            Write::Remove(name) => (Call::Set, own(name), Cow::Borrowed(&b""[..])),
            Write::Set(name, value) => (Call::Set, own(name), own(value)),
            Write::Add(name, value) => (Call::Add, own(name), own(value)),
        })
        .collect();
    for (call, name, value) in &calls {
        let (name, value) = (Buffer::of(name), Buffer::of(value));
        // SAFETY: a live stream in its response phase; Envoy copies the buffers, and none
        // points into its map (above).
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

/// Whether `bytes` lie in one of the names or values Envoy lent (a sub-slice of one
/// included, as a trimmed value would be).
fn lent_by_envoy(read: &[(&[u8], &[u8])], bytes: &[u8]) -> bool {
    let start = bytes.as_ptr() as usize;
    let within = |entry: &[u8]| {
        let from = entry.as_ptr() as usize;
        start >= from && start <= from.saturating_add(entry.len())
    };
    !bytes.is_empty() && read.iter().any(|(k, v)| within(k) || within(v))
}

#[cfg(test)]
mod tests {
    use super::lent_by_envoy;

    #[test]
    fn bytes_in_a_lent_entry_are_lent_and_the_configs_are_not() {
        let envoy = b"x-frame-optionsDENY".to_vec();
        let (name, value) = envoy.split_at(15);
        let read = [(name, value)];
        assert!(lent_by_envoy(&read, name));
        assert!(lent_by_envoy(&read, value));
        assert!(lent_by_envoy(&read, &value[1..3]));
        assert!(!lent_by_envoy(&read, b"SAMEORIGIN"));
        let owned = value.to_vec();
        assert!(!lent_by_envoy(&read, &owned));
        assert!(!lent_by_envoy(&read, &value[..0]));
    }
}
