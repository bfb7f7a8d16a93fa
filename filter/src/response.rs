//! Response headers as the core edits them: the host's pairs (`:status` included, names
//! lowercase, values as bytes since upstreams may send non-UTF-8), borrowed from the host's
//! buffer and from the compiled config where possible, with a record of whether anything
//! changed so the shell can skip writing them back.

use std::borrow::Cow;

/// A header name and value, borrowed or owned.
pub type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Headers the response policies may add to a response: helmet's 12 to 14, CORS's up to 5,
/// the RateLimit fields, `Vary`.
const ADDED_ROOM: usize = 24;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders<'a> {
    pairs: Vec<Pair<'a>>,
    changed: bool,
}

impl<'a> ResponseHeaders<'a> {
    pub fn new(pairs: Vec<(&'a [u8], &'a [u8])>) -> Self {
        // Room for what the policies add (helmet's headers, CORS, the RateLimit fields)
        // without growing the list on the way.
        let mut list = Vec::with_capacity(pairs.len() + ADDED_ROOM);
        list.extend(
            pairs
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v))),
        );
        Self {
            pairs: list,
            changed: false,
        }
    }

    pub fn pairs(&self) -> &[Pair<'a>] {
        &self.pairs
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    pub fn status(&self) -> Option<u16> {
        self.get(":status")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
    }

    /// The first value of a header (`name` lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, _)| k.as_ref() == name.as_bytes())
    }

    /// Keeps the headers whose name passes `keep` (pseudo-headers are always kept).
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let before = self.pairs.len();
        self.pairs
            .retain(|(k, _)| k.first() == Some(&b':') || keep(k));
        self.changed |= self.pairs.len() != before;
    }

    pub fn remove(&mut self, name: &str) {
        self.retain(|k| k != name.as_bytes());
    }

    /// Adds a header whose name and value outlive the response (the compiled config's).
    pub fn push(&mut self, name: &'a str, value: &'a [u8]) {
        self.pairs
            .push((Cow::Borrowed(name.as_bytes()), Cow::Borrowed(value)));
        self.changed = true;
    }

    /// Adds a header with a value computed for this response.
    pub fn push_owned(&mut self, name: &'a str, value: Vec<u8>) {
        self.pairs
            .push((Cow::Borrowed(name.as_bytes()), Cow::Owned(value)));
        self.changed = true;
    }

    /// Replaces every value of a header with one.
    pub fn set(&mut self, name: &'a str, value: &'a [u8]) {
        self.remove(name);
        self.push(name, value);
    }

    /// Adds `token` to `Vary` unless it is listed already (or `Vary: *`); several `Vary` lines
    /// become one.
    pub fn merge_vary(&mut self, token: &'static str) {
        if !self.contains("vary") {
            self.push("vary", token.as_bytes());
            return;
        }
        let lines: Vec<Vec<u8>> = self
            .get_all("vary")
            .map(<[u8]>::trim_ascii)
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let present = lines.iter().any(|line| {
            line.split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .any(|t| t == b"*" || t.eq_ignore_ascii_case(token.as_bytes()))
        });
        if present {
            return;
        }
        self.remove("vary");
        if lines.is_empty() {
            self.push("vary", token.as_bytes());
        } else {
            let mut merged = lines.join(&b", "[..]);
            merged.extend_from_slice(b", ");
            merged.extend_from_slice(token.as_bytes());
            self.push_owned("vary", merged);
        }
    }

    /// The pairs in the host's encoding, for writing back.
    pub fn encode(&self) -> Vec<u8> {
        crate::pairs::encode(&self.pairs)
    }
}
