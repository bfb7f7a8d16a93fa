//! The demo stack's fixed addresses, shared by `cargo xtask demo`, docker-compose.yml (checked
//! by a test) and the docs.

/// The Envoy config both the native demo and docker compose run, relative to the root.
pub const ENVOY_CONFIG: &str = "envoy/envoy.yaml";
/// The port Envoy's public listener binds.
pub const PUBLIC_PORT: u16 = 8080;
/// Where the sample backend listens (Envoy's `backend` cluster).
pub const BACKEND_ADDR: &str = "127.0.0.1:3000";
/// Envoy's admin interface (localhost only).
pub const ADMIN_ADDR: &str = "127.0.0.1:9901";
