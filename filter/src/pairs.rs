//! The proxy-wasm header-map encoding, read in place and written in one buffer: a count, then
//! (key length, value length) per pair as little-endian u32, then each key and value followed
//! by a NUL. Reading borrows from the host's buffer, so a response's headers cost one
//! allocation to read and one to write back.

/// The pairs of a serialised map, borrowed; `None` if the bytes are not a well-formed map.
pub fn decode(buf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    };
    let count = word(0)?;
    // Each pair needs at least 8 bytes of sizes and 2 NULs: refuse counts the buffer cannot hold.
    if count > buf.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = 4usize.checked_add(count.checked_mul(8)?)?;
    for i in 0..count {
        let sizes = 4 + i * 8;
        let (key_len, value_len) = (word(sizes)?, word(sizes + 4)?);
        let key = terminated(buf, at, key_len)?;
        at = at.checked_add(key_len)?.checked_add(1)?;
        let value = terminated(buf, at, value_len)?;
        at = at.checked_add(value_len)?.checked_add(1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

/// `len` bytes at `at`, which must be followed by a NUL.
fn terminated(buf: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    let end = at.checked_add(len)?;
    (buf.get(end) == Some(&0)).then_some(())?;
    buf.get(at..end)
}

/// Serialises pairs into one buffer.
pub fn encode<'p, K, V>(pairs: &'p [(K, V)]) -> Vec<u8>
where
    K: AsRef<[u8]> + 'p,
    V: AsRef<[u8]> + 'p,
{
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len32(pairs.len()));
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.as_ref().len()));
        out.extend_from_slice(&len32(v.as_ref().len()));
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn len32(n: usize) -> [u8; 4] {
    // Header maps are far below 4 GiB; saturate rather than wrap if one ever is not.
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":status", b"200"),
            (b"x-empty", b""),
            (b"x-bytes", b"\xff\x00\xfe"),
        ];
        let encoded = encode(&pairs);
        assert_eq!(decode(&encoded), Some(pairs));
        assert_eq!(decode(&[]), Some(vec![]));
    }

    #[test]
    fn known_encoding() {
        let encoded = encode(&[("a", "bc")]);
        assert_eq!(
            encoded,
            [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]
        );
    }

    #[test]
    fn malformed_buffers_are_refused_not_panicked_on() {
        let good = encode(&[("key", "value"), ("k2", "v2")]);
        for cut in 0..good.len() {
            assert_eq!(decode(&good[..cut]).is_some(), cut == 0, "cut at {cut}");
        }
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff]), None);
        let mut huge = encode(&[("k", "v")]);
        huge[4] = 0xff;
        huge[7] = 0x7f;
        assert_eq!(decode(&huge), None);
    }

    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_then_decode_is_identity(pairs in proptest::collection::vec(
            (proptest::collection::vec(proptest::num::u8::ANY, 0..20), proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..20)) {
            let encoded = encode(&pairs);
            let decoded = decode(&encoded).expect("decodes");
            let expected: Vec<(&[u8], &[u8])> = pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            proptest::prop_assert_eq!(decoded, expected);
        }
    }
}
