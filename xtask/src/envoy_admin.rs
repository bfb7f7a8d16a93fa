//! Where a started Envoy listens, read from its admin interface: the benchmark's Envoys and
//! the end-to-end tests' (`test_harness::envoy`) bind port 0 and find their ports here.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

/// The admin path that lists the listeners with the addresses they are bound to.
pub const LISTENERS_PATH: &str = "/listeners?format=json";

/// The admin address Envoy wrote to its `--admin-address-path` file, once it has.
pub fn read_admin_address(path: &Path) -> Option<SocketAddr> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The first listener's bound address, from the body of [`LISTENERS_PATH`].
pub fn first_listener_address(listeners_json: &[u8]) -> Option<SocketAddr> {
    let status: serde_json::Value = serde_json::from_slice(listeners_json).ok()?;
    let address = &status["listener_statuses"][0]["local_address"]["socket_address"];
    format!(
        "{}:{}",
        address["address"].as_str()?,
        address["port_value"].as_u64()?
    )
    .parse()
    .ok()
}
