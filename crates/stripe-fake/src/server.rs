//! Serving a simulator: the async entry points for a caller's runtime, and [`FakeStripe`],
//! which runs one on its own runtime thread for plain `#[test]` functions.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::error::FakeError;
use crate::http;
use crate::simulator::Simulator;
use crate::webhook;

impl Simulator {
    /// Serves the Stripe API (and `/_fake`) on `listener` until the future is dropped or
    /// accepting fails; starts webhook delivery if configured.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<(), FakeError> {
        self.serve_until(listener, std::future::pending()).await
    }

    /// Like [`Simulator::serve`], returning when `shutdown` completes (open connections are
    /// dropped with the runtime, not drained).
    pub async fn serve_until(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), FakeError> {
        if let Some(queue) = self.take_webhook_worker() {
            tokio::spawn(webhook::deliver(self.clone(), queue));
        }
        let listener = listener.tap_io(|tcp| {
            // Small answers (errors, single objects) should not wait for Nagle.
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(listener, http::router(self));
        tokio::select! {
            result = server => result.map_err(FakeError::Io),
            () = shutdown => Ok(()),
        }
    }
}

/// A simulator serving on `127.0.0.1:<free port>` from its own runtime thread; dropping it
/// stops the server. Dereferences to [`Simulator`] for the data, mutation, fault and stats API.
pub struct FakeStripe {
    simulator: Arc<Simulator>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeStripe {
    /// Generates the data and starts serving; returns once the port accepts connections.
    pub fn start(config: Config) -> Result<FakeStripe, FakeError> {
        let workers = config.worker_threads.max(1);
        let simulator = Arc::new(Simulator::new(config)?);
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("stripe-fake")
            .enable_all()
            .build()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serving = simulator.clone();
        let thread = std::thread::Builder::new()
            .name("stripe-fake".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serving
                        .serve_until(listener, async {
                            let _ = stopped.await;
                        })
                        .await
                });
                if let Err(e) = result {
                    tracing::error!(error = %e, "stripe-fake server stopped");
                }
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(FakeStripe {
            simulator,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Deref for FakeStripe {
    type Target = Simulator;

    fn deref(&self) -> &Simulator {
        &self.simulator
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
