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
/// Where the rate limit service (`hardening-ratelimit`) listens: Envoy's `ratelimit` cluster.
pub const RATELIMIT_ADDR: &str = "127.0.0.1:8081";
/// Where Redis listens for the rate limit service (docker compose; the native demo takes a
/// free port, only the service connects to it).
pub const REDIS_ADDR: &str = "127.0.0.1:6379";
/// The service's limits (Limitador's format), relative to the root.
pub const RATELIMIT_LIMITS: &str = "ratelimit-service/demo-limits.yaml";
