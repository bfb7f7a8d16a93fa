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
    appended_only(read, edited).unwrap_or_else(|| any_edit(read, edited))
}

/// The usual edit, found in one walk: the read entries kept in place (the very same bytes,
/// in order), some whole names removed, new values appended. Then each removed name is
/// removed and each appended value added (an add after the kept values of its name keeps
/// their order). `None` for any other edit.
fn appended_only<'a>(
    read: &[(&'a [u8], &'a [u8])],
    edited: &'a [Pair<'a>],
) -> Option<Vec<Write<'a>>> {
    let same = |(k, v): &(&[u8], &[u8]), (ek, ev): &Pair<'_>| {
        std::ptr::eq(*k, ek.as_ref()) && std::ptr::eq(*v, ev.as_ref())
    };
    let mut kept = 0;
    let mut removed: Vec<&'a [u8]> = Vec::new();
    for entry in read {
        match edited.get(kept) {
            Some(pair) if same(entry, pair) => kept += 1,
            _ => removed.push(entry.0),
        }
    }
    let appended = edited.get(kept..)?;
    // A removed name must be gone whole, and come back with no appended value.
    let gone_whole =
        |name: &[u8]| !edited.iter().any(|(k, _)| k.as_ref() == name) && !name.starts_with(b":");
    if !removed.iter().all(|name| gone_whole(name))
        || appended.iter().any(|(k, _)| k.starts_with(b":"))
    {
        return None;
    }
    let mut writes = Vec::with_capacity(removed.len() + appended.len());
    for (i, name) in removed.iter().enumerate() {
        if !removed.iter().take(i).any(|earlier| earlier == name) {
            writes.push(Write::Remove(name));
        }
    }
    writes.extend(appended.iter().map(|(k, v)| Write::Add(k, v)));
    Some(writes)
}

/// Any edit: for each name the map had, its values before and after compared.
fn any_edit<'a>(read: &[(&'a [u8], &'a [u8])], edited: &'a [Pair<'a>]) -> Vec<Write<'a>> {
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

    #[cfg(not(target_family = "wasm"))]
    const NAMES: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];
    #[cfg(not(target_family = "wasm"))]
    const VALUES: [&[u8]; 3] = [b"1", b"2", b"3"];

    /// Values by name, in `NAMES`' order.
    #[cfg(not(target_family = "wasm"))]
    type Values<'a> = Vec<Vec<&'a [u8]>>;

    /// Each name's values in Envoy's map after the writes, and in the edited list.
    #[cfg(not(target_family = "wasm"))]
    fn after_writes<'a>(
        read: &[(&'a [u8], &'a [u8])],
        edited: &'a [Pair<'a>],
    ) -> (Values<'a>, Values<'a>) {
        let mut map = read.to_vec();
        apply(&mut map, &writes(read, edited));
        let got = NAMES.iter().map(|name| values(&map, name)).collect();
        let wanted = NAMES
            .iter()
            .map(|name| {
                edited
                    .iter()
                    .filter(|(k, _)| k.as_ref() == *name)
                    .map(|(_, v)| v.as_ref())
                    .collect()
            })
            .collect();
        (got, wanted)
    }

    // Property tests run natively only (no proptest on wasm32).
    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        #[test]
        fn the_writes_give_every_name_its_edited_values(
            read in proptest::collection::vec((0u8..5, 0u8..3), 0..8),
            edited in proptest::collection::vec((0u8..6, 0u8..3), 0..10),
        ) {
            let read: Vec<(&[u8], &[u8])> =
                read.iter().map(|(k, v)| (NAMES[*k as usize], VALUES[*v as usize])).collect();
            let edited: Vec<Pair<'_>> = edited
                .iter()
                .map(|(k, v)| (Cow::Borrowed(NAMES[*k as usize]), Cow::Borrowed(VALUES[*v as usize])))
                .collect();
            let (got, wanted) = after_writes(&read, &edited);
            proptest::prop_assert_eq!(got, wanted);
        }
    }

    // The edits the policies make (`retain` drops entries, `push` appends): the one-walk path
    // must find them, and give the same map as any edit.
    #[cfg(not(target_family = "wasm"))]
    proptest::proptest! {
        #[test]
        fn kept_entries_and_appended_values_are_found_in_one_walk(
            read in proptest::collection::vec((0u8..5, 0u8..3), 0..8),
            dropped in proptest::collection::vec(0u8..6, 0..3),
            appended in proptest::collection::vec((0u8..6, 0u8..3), 0..6),
        ) {
            let read: Vec<(&[u8], &[u8])> =
                read.iter().map(|(k, v)| (NAMES[*k as usize], VALUES[*v as usize])).collect();
            let dropped: Vec<&[u8]> = dropped.iter().map(|k| NAMES[*k as usize]).collect();
            let edited: Vec<Pair<'_>> = read
                .iter()
                .filter(|(k, _)| !dropped.contains(k))
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .chain(appended.iter().map(|(k, v)| {
                    (Cow::Borrowed(NAMES[*k as usize]), Cow::Owned(VALUES[*v as usize].to_vec()))
                }))
                .collect();
            let fast = appended_only(&read, &edited);
            let removed = |name: &[u8]| dropped.contains(&name) && read.iter().any(|(k, _)| *k == name);
            let appends_to_dropped = appended.iter().any(|(k, _)| removed(NAMES[*k as usize]));
            proptest::prop_assert_eq!(fast.is_some(), !appends_to_dropped);
            let (got, wanted) = after_writes(&read, &edited);
            proptest::prop_assert_eq!(got, wanted);
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
    fn removed_names_are_removed_and_appended_values_added() {
        let read = pairs(&[
            (":status", "200"),
            ("server", "x"),
            ("vary", "a"),
            ("server", "y"),
        ]);
        let mut edited: Vec<Pair<'_>> = read
            .iter()
            .filter(|(k, _)| *k != b"server")
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect();
        edited.push((Cow::Borrowed(b"x-frame-options"), Cow::Borrowed(b"DENY")));
        edited.push((Cow::Borrowed(b"vary"), Cow::Borrowed(b"origin")));
        let expected = vec![
            Write::Remove(b"server"),
            Write::Add(b"x-frame-options", b"DENY"),
            Write::Add(b"vary", b"origin"),
        ];
        assert_eq!(appended_only(&read, &edited), Some(expected.clone()));
        assert_eq!(writes(&read, &edited), expected);
        // Equal bytes elsewhere are not the entries Envoy lent: any edit decides.
        let copied: Vec<Pair<'_>> = read
            .iter()
            .map(|(k, v)| (Cow::Owned(k.to_vec()), Cow::Owned(v.to_vec())))
            .collect();
        assert_eq!(appended_only(&read, &copied), None);
        assert!(writes(&read, &copied).is_empty());
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
