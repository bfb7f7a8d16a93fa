//! Limitador over Redis: connected in the background (the service answers `UNAVAILABLE`
//! until then), reconnected by redis' `ConnectionManager` afterwards, and one log line per
//! change between working and failing storage.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use limitador::AsyncRateLimiter;
use limitador::limit::Limit;
use limitador::storage::redis::AsyncRedisStorage;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis command may take before the request is answered `UNAVAILABLE`. Only
/// a stuck Redis (or host) waits this long: a stopped one refuses or drops the connection,
/// which fails at once. Not shorter, as a timed-out reservation may still have been made:
/// its hold then refuses hits that would fit until `HOLD_TTL`; and a busy service answers
/// slower than its Redis (a debug build took up to 140 ms for 200 concurrent calls on
/// 2 cores, where 50 ms timed out spuriously).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// How long one connection attempt may take (a dropped SYN is not a refusal).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// The pause between two first-connection attempts.
const CONNECT_RETRY: Duration = Duration::from_millis(200);

/// The rate limiter once Redis has been reached, and the storage's health.
pub struct Backend {
    limiter: OnceLock<Arc<AsyncRateLimiter>>,
    health: Health,
}

impl Backend {
    /// A backend with no storage yet: see [`Backend::connect`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            limiter: OnceLock::new(),
            health: Health::default(),
        })
    }

    /// The limiter, once connected.
    pub fn limiter(&self) -> Option<&Arc<AsyncRateLimiter>> {
        self.limiter.get()
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Connects to Redis, retrying until it answers, then installs a limiter with `limits`.
    /// Runs until connected: spawn it. After that, redis' `ConnectionManager` reconnects by
    /// itself when a command finds the connection dropped.
    pub async fn connect(self: Arc<Self>, client: redis::Client, limits: Vec<Limit>) {
        let target = client.get_connection_info().addr.to_string();
        loop {
            match open_storage(&client).await {
                Ok(storage) => {
                    let limiter = AsyncRateLimiter::new_with_storage(Box::new(storage));
                    for limit in limits {
                        limiter.add_limit(limit);
                    }
                    // Only this task sets it, once: the error case cannot happen.
                    let _ = self.limiter.set(Arc::new(limiter));
                    eprintln!("hardening-ratelimit: connected to Redis at {target}");
                    self.health.succeeded();
                    return;
                }
                Err(error) => {
                    self.health.failed(
                        &format!("cannot connect to Redis at {target} (retrying)"),
                        &error,
                    );
                    tokio::time::sleep(CONNECT_RETRY).await;
                }
            }
        }
    }
}

/// A connection manager with short timeouts and no retries of its own: a reconnection fails
/// fast and the next command starts another, so no request waits on a backoff.
async fn open_storage(client: &redis::Client) -> redis::RedisResult<AsyncRedisStorage> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_number_of_retries(0);
    let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
    // Loads Limitador's Lua scripts. A Redis restarted later has lost them: redis'
    // `invoke_async` answers NOSCRIPT by loading the script and retrying.
    AsyncRedisStorage::new_with_conn_manager(manager).await
}

/// Whether the storage is failing, to log changes rather than every failed request.
#[derive(Default)]
pub struct Health {
    failing: AtomicBool,
}

impl Health {
    /// Records a failure; the first of a run is logged.
    pub fn failed(&self, what: &str, error: &dyn Display) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            eprintln!(
                "hardening-ratelimit: storage failing: {what}: {error}; answering UNAVAILABLE until it works again"
            );
        }
    }

    /// Records a success; the first after failures is logged.
    pub fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            eprintln!("hardening-ratelimit: storage working again");
        }
    }
}
