//! The proxy-wasm header-map encoding: decoding any bytes never panics and reads back exactly
//! what it decoded (`encode(decode(x))` is `x`, up to bytes after the last pair); any pairs
//! encode and decode to themselves.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use hardening::pairs::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(pairs) = decode(data) {
        let encoded = encode(&pairs);
        if data.is_empty() {
            assert!(pairs.is_empty());
        } else {
            assert!(
                data.starts_with(&encoded),
                "{pairs:?} re-encodes to {encoded:?}, not a prefix of {data:?}"
            );
        }
    }
    let mut input = Unstructured::new(data);
    if let Ok(pairs) = Vec::<(Vec<u8>, Vec<u8>)>::arbitrary(&mut input) {
        let encoded = encode(&pairs);
        let decoded = decode(&encoded).expect("an encoded map decodes");
        assert_eq!(decoded.len(), pairs.len());
        for ((k, v), (dk, dv)) in pairs.iter().zip(&decoded) {
            assert_eq!((k.as_slice(), v.as_slice()), (*dk, *dv));
        }
    }
});
