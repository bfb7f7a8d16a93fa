//! Edited response headers as single-header writes, for hosts that set, add and remove one
//! header at a time rather than write a whole map (Envoy's dynamic modules): only the names
//! whose values changed are written: a removed name is removed, a changed one set to its
//! first value and given the others, a new one added.

use std::borrow::Cow;

use crate::response::Pair;

/// One write to Envoy's response header map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    Remove(&'a [u8]),
    Set(&'a [u8], &'a [u8]),
    Add(&'a [u8], &'a [u8]),
}

/// The writes that turn `read` into `edited` (pseudo-headers are never written).
pub fn writes<'a>(read: &[(&'a [u8], &'a [u8])], edited: &'a [Pair<'a>]) -> Vec<Write<'a>> {
    let mut names: Vec<&[u8]> = Vec::new();
    for name in read
        .iter()
        .map(|(k, _)| *k)
        .chain(edited.iter().map(|(k, _)| k.as_ref()))
    {
        if !name.starts_with(b":") && !names.contains(&name) {
            names.push(name);
        }
    }
    let mut writes = Vec::new();
    for name in names {
        let before = read.iter().filter(|(k, _)| *k == name).map(|(_, v)| *v);
        let after: Vec<&[u8]> = edited
            .iter()
            .filter(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| value(v))
            .collect();
        if before.eq(after.iter().copied()) {
            continue;
        }
        let present = read.iter().any(|(k, _)| *k == name);
        match after.split_first() {
            None => writes.push(Write::Remove(name)),
            // A name the map does not have yet is only added: no lookup, nothing to replace.
            Some(_) if !present => writes.extend(after.iter().map(|v| Write::Add(name, v))),
            Some((first, rest)) => {
                writes.push(Write::Set(name, first));
                writes.extend(rest.iter().map(|v| Write::Add(name, v)));
            }
        }
    }
    writes
}

fn value<'a>(v: &'a Cow<'a, [u8]>) -> &'a [u8] {
    v.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let read = pairs(&[
            (":status", "200"),
            ("server", "x"),
            ("vary", "a"),
            ("x-keep", "1"),
            ("set-cookie", "a"),
            ("set-cookie", "b"),
        ]);
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
        assert!(
            writes(
                &read,
                &edited(&[
                    (":status", "200"),
                    ("server", "x"),
                    ("vary", "a"),
                    ("x-keep", "1"),
                    ("set-cookie", "a"),
                    ("set-cookie", "b"),
                ])
            )
            .is_empty()
        );
    }
}
