//! Shared data, the only state Envoy's worker VMs share: the trait the rate limiter's Wasm
//! store works through (`store.rs`), and an in-memory implementation with Envoy's semantics for
//! native tests. The proxy-wasm implementation lives in the shell.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Why a write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// Another VM wrote the key since it was read.
    CasMismatch,
    /// Anything else the host reports.
    Failed,
}

/// The host could not read shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetError;

/// proxy-wasm shared data (one namespace per `vm_id`), with Envoy's semantics: `get` returns
/// the value and its CAS; `set` with `Some(cas)` fails with `CasMismatch` if the key was
/// written since; `set` with `None` writes unconditionally; a key that does not exist yet is
/// created whatever the CAS.
pub trait SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, GetError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// Shared data in memory, for tests and benchmarks, with the same rules as Envoy's.
#[derive(Debug, Default)]
pub struct MemorySharedData {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl MemorySharedData {
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// Total bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.entries
            .borrow()
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .sum()
    }
}

impl SharedData for MemorySharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, GetError> {
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        let mut entries = self.entries.borrow_mut();
        if let (Some((_, stored)), Some(cas)) = (entries.get(key), cas)
            && cas != 0
            && cas != *stored
        {
            return Err(SetError::CasMismatch);
        }
        let next = self.next_cas.get().max(1);
        self.next_cas.set(next.checked_add(1).unwrap_or(1));
        entries.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}
