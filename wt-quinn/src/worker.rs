//! A server worker: one quinn endpoint on its own socket (one of a `SO_REUSEPORT` group, see
//! `crate::reuseport`), driven by a single-threaded tokio runtime on a thread of its own, so that
//! a server's UDP receive and send, handshakes and connection drivers spread over the cores.
//! The application's tasks stay on its own runtime; sessions are used across runtimes as any
//! tokio-based handle is (wakers do not care where a task runs).
//!
//! The thread lives until the server lets it go ([`Worker`] dropped) and every connection of its
//! endpoint has ended, so that sessions the application still holds keep working after the
//! `Server` value is gone, as they do with one worker.

use std::future::Future;
use std::sync::Arc;

use crate::error::EndpointError;

/// The handle of a running worker; dropping it tells the worker to stop accepting.
pub(crate) struct Worker {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts worker `index`: its thread, runtime and endpoint on `socket`, and `accept` on the
/// endpoint (in the worker's runtime). Returns the endpoint handle.
pub(crate) fn spawn<F, Fut>(
    index: usize,
    config: quinn::EndpointConfig,
    server: quinn::ServerConfig,
    socket: std::net::UdpSocket,
    accept: F,
) -> Result<(quinn::Endpoint, Worker), EndpointError>
where
    F: FnOnce(quinn::Endpoint) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = socket
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let bind_err = |source| EndpointError::Bind { addr, source };
    let (started, endpoint) = std::sync::mpsc::sync_channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            let quinn_runtime = Arc::new(quinn::TokioRuntime);
            let ep = match quinn::Endpoint::new(config, Some(server), socket, quinn_runtime) {
                Ok(ep) => ep,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let _ = started.send(Ok(ep.clone()));
            let accepting = tokio::spawn(accept(ep.clone()));
            // Until the server lets go, then until its connections have ended.
            let _ = stopped.await;
            accepting.abort();
            ep.wait_idle().await;
            tracing::debug!(worker = index, "worker stopped");
        });
    };
    std::thread::Builder::new()
        .name(format!("wt-worker-{index}"))
        .spawn(run)
        .map_err(bind_err)?;
    let ep = endpoint
        .recv()
        .map_err(|_| {
            bind_err(std::io::Error::other(
                "the worker thread ended at its start",
            ))
        })?
        .map_err(bind_err)?;
    Ok((ep, Worker { _stop: stop }))
}
