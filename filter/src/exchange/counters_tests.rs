//! Counters: kept in the VM while requests run, handed to the host in one batch per flush (the
//! shell's tick), one call per counter that moved.

use serde_json::json;

use super::tests::{Vm, calls, counters};

#[test]
fn counts_reach_the_host_only_when_the_vm_flushes_one_call_per_counter() {
    let vm = Vm::load(json!({
        "routes": [{"name": "users", "match": {"prefix": "/users"}}]
    }));
    for _ in 0..3 {
        vm.get("/users", &[]);
    }
    vm.get("/other", &[]);
    assert_eq!(
        vm.host.host_calls(),
        calls(&[("request_headers", 4)]),
        "no counter calls while requests run"
    );
    assert_eq!(vm.host.counters(), counters(&[]), "nothing flushed yet");

    vm.plugin.flush_counters(&vm.host);
    assert_eq!(
        vm.host.counters(),
        counters(&[
            ("hardening.requests.unmatched.forwarded", 1),
            ("hardening.requests.users.forwarded", 3),
        ])
    );
    assert_eq!(vm.host.host_calls().get("increment"), Some(&2));

    // Nothing moved since: a flush makes no call; later counts add to the host's.
    vm.plugin.flush_counters(&vm.host);
    assert_eq!(vm.host.host_calls().get("increment"), Some(&2));
    vm.get("/users", &[]);
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.unmatched.forwarded", 1),
            ("hardening.requests.users.forwarded", 4),
        ])
    );
    assert_eq!(vm.host.host_calls().get("increment"), Some(&3));
}
