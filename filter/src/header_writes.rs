//! Edited response headers as single-header writes, for hosts that set, add and remove one
//! header at a time rather than write a whole map (Envoy's dynamic modules): only the names
//! whose values changed are written: a removed name is removed, a changed one set to its
//! first value and given the others, a new one added.

use crate::response::Pair;

/// One write to Envoy's response header map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    Remove(&'a [u8]),
    Set(&'a [u8], &'a [u8]),
    Add(&'a [u8], &'a [u8]),
}

/// The writes that turn `read` into `edited` (pseudo-headers are never written): first the
/// names the map had (removed, or set again when their values changed), then the values of
/// the names it did not have, added in order.
pub fn writes<'a>(read: &[(&'a [u8], &'a [u8])], edited: &'a [Pair<'a>]) -> Vec<Write<'a>> {
    let had = |name: &[u8]| read.iter().any(|(k, _)| *k == name);
    let mut writes = Vec::new();
    for (i, (name, _)) in read.iter().enumerate() {
        let seen = read.iter().take(i).any(|(k, _)| k == name);
        if name.starts_with(b":") || seen {
            continue;
        }
        let before = read.iter().filter(|(k, _)| k == name).map(|(_, v)| *v);
        let after = edited
            .iter()
            .filter(|(k, _)| k.as_ref() == *name)
            .map(|(_, v)| v.as_ref());
        if before.eq(after.clone()) {
            continue;
        }
        let mut after = after;
        match after.next() {
            None => writes.push(Write::Remove(name)),
            Some(first) => {
                writes.push(Write::Set(name, first));
                writes.extend(after.map(|v| Write::Add(name, v)));
            }
        }
    }
    // A name the map does not have yet is only added: no lookup, nothing to replace.
    for (name, value) in edited {
        if !name.starts_with(b":") && !had(name) {
            writes.push(Write::Add(name, value));
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// Envoy's map under the writes: a set replaces every value (or the whole name, for an
    /// empty list), an add appends.
    #[cfg(not(target_family = "wasm"))]
    fn apply<'a>(map: &mut Vec<(&'a [u8], &'a [u8])>, writes: &[Write<'a>]) {
        for write in writes {
            match *write {
                Write::Remove(name) => map.retain(|(k, _)| *k != name),
                Write::Set(name, value) => {
                    map.retain(|(k, _)| *k != name);
                    map.push((name, value));
                }
                Write::Add(name, value) => map.push((name, value)),
            }
        }
    }

    #[cfg(not(target_family = "wasm"))]
    fn values<'a>(map: &[(&'a [u8], &'a [u8])], name: &[u8]) -> Vec<&'a [u8]> {
        map.iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .collect()
    }

    // Property tests run natively only (no proptest on wasm32).
    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        #[test]
        fn the_writes_give_every_name_its_edited_values(
            read in proptest::collection::vec((0u8..5, 0u8..3), 0..8),
            edited in proptest::collection::vec((0u8..6, 0u8..3), 0..10),
        ) {
            const NAMES: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];
            const VALUES: [&[u8]; 3] = [b"1", b"2", b"3"];
            let read: Vec<(&[u8], &[u8])> =
                read.iter().map(|(k, v)| (NAMES[*k as usize], VALUES[*v as usize])).collect();
            let edited: Vec<Pair<'_>> = edited
                .iter()
                .map(|(k, v)| (Cow::Borrowed(NAMES[*k as usize]), Cow::Borrowed(VALUES[*v as usize])))
                .collect();
            let mut map = read.clone();
            apply(&mut map, &writes(&read, &edited));
            for name in NAMES {
                let wanted: Vec<&[u8]> =
                    edited.iter().filter(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref()).collect();
                proptest::prop_assert_eq!(values(&map, name), wanted);
            }
        }
    }

    fn pairs<'a>(list: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        list.iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect()
    }

    fn edited<'a>(list: &[(&'a str, &'a str)]) -> Vec<Pair<'a>> {
        list.iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_bytes()), Cow::Borrowed(v.as_bytes())))
            .collect()
    }

    #[test]
    fn only_changed_names_are_written() {
        const READ: &[(&str, &str)] = &[
            (":status", "200"),
            ("server", "x"),
            ("vary", "a"),
            ("x-keep", "1"),
            ("set-cookie", "a"),
            ("set-cookie", "b"),
        ];
        let read = pairs(READ);
        let after = edited(&[
            (":status", "200"),
            ("vary", "a, origin"),
            ("x-keep", "1"),
            ("set-cookie", "a"),
            ("set-cookie", "b"),
            ("x-frame-options", "SAMEORIGIN"),
            ("link", "1"),
            ("link", "2"),
        ]);
        assert_eq!(
            writes(&read, &after),
            vec![
                Write::Remove(b"server"),
                Write::Set(b"vary", b"a, origin"),
                Write::Add(b"x-frame-options", b"SAMEORIGIN"),
                Write::Add(b"link", b"1"),
                Write::Add(b"link", b"2"),
            ]
        );
        assert!(writes(&read, &edited(READ)).is_empty());
    }
}
