//! Security response headers: helmet's set by default, every header configurable, leaky
//! headers removed. Rendered once per config; a response only gets prepared strings.

mod compile;
mod csp;
mod permissions;
pub mod presets;
pub mod raw;

pub use compile::compile;
pub use raw::{Existing, RawSecurityHeaders};

use crate::response::ResponseHeaders;

/// The compiled policy for one route (or the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// Lowercase name and value, in helmet's order.
    pub set: Vec<(String, String)>,
    /// Lowercase names, sorted.
    pub remove: Vec<String>,
    /// What a response loses before ours are written: the removed names, and with `override`
    /// ours.
    pub dropped: Vec<String>,
    pub existing: Existing,
}

impl SecurityHeaders {
    /// Writes the headers into a response and strips the removed ones. With `override`, any
    /// value the upstream gave for one of our headers is dropped first, so there is never a
    /// duplicate; with `keep_upstream`, ours only fill gaps.
    pub fn apply<'a>(&'a self, headers: &mut ResponseHeaders<'a>) {
        // A scan, not a binary search: most names differ in length from every dropped one,
        // and a length compares in one instruction where an ordering calls memcmp.
        headers.retain(|name| !self.dropped.iter().any(|d| d.as_bytes() == name));
        for (name, value) in &self.set {
            if self.existing == Existing::KeepUpstream && headers.contains(name) {
                continue;
            }
            headers.push(name, value.as_bytes());
        }
    }
}

#[cfg(test)]
mod csp_tests;
#[cfg(test)]
mod tests;
