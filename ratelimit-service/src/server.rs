//! Serving: the listener, the line that tells its port, the signals that stop it.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::limits::Limits;
use crate::service::RateLimiter;
use crate::storage::Backend;

/// How long a stop waits for open calls and pending commits before leaving anyway.
const GRACE: Duration = Duration::from_secs(5);

/// Serves on `listen` until SIGTERM or ctrl-c. Prints `listening on ADDR` (the bound
/// address, for a port 0) once accepting. Redis is reached in the background.
pub async fn run(listen: &str, redis: redis::Client, limits: Limits) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot read the address of {listen}: {e}"))?;

    let backend = Backend::new();
    tokio::spawn(Arc::clone(&backend).connect(redis, limits.limits().to_vec()));
    let commits = TaskTracker::new();
    let service = RateLimiter::new(backend, Arc::new(limits), commits.clone());

    announce(&format!("listening on {address}"))?;
    let served = serve(listener, service, shutdown_signal()).await;
    // Commits not yet made would leave their holds to expire, uncounted.
    commits.close();
    if tokio::time::timeout(GRACE, commits.wait()).await.is_err() {
        eprintln!("hardening-ratelimit: stopped with commits still pending");
    }
    served
}

/// The line tests and scripts wait for, flushed now: stdout may be a pipe.
fn announce(line: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Serves until `stop`, then lets open calls finish for at most [`GRACE`].
async fn serve(
    listener: TcpListener,
    service: RateLimiter,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let token = CancellationToken::new();
    let server = Server::builder().serve_with_incoming_shutdown(
        RateLimitServiceServer::new(service),
        incoming,
        token.clone().cancelled_owned(),
    );
    tokio::pin!(server);
    let finished = tokio::select! {
        result = &mut server => result,
        () = stop => {
            eprintln!("hardening-ratelimit: stopping");
            token.cancel();
            match tokio::time::timeout(GRACE, &mut server).await {
                Ok(result) => result,
                Err(_) => return Ok(()),
            }
        }
    };
    finished.map_err(|e| format!("serving failed: {e}"))
}

/// SIGTERM (how process managers stop a service) or ctrl-c. A signal that cannot be watched
/// is logged and left out.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("hardening-ratelimit: cannot watch ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate() => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(e) => {
            eprintln!("hardening-ratelimit: cannot watch SIGTERM: {e}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
