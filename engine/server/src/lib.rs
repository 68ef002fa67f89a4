//! orcd-server: the worker's HTTP server (DESIGN §7) — the worker API (`/execute`, `/cancel`,
//! `/health`, `/metrics`) and an OpenAI-compatible API (`/v1/completions`,
//! `/v1/chat/completions`, `/v1/models`, vLLM's `/tokenize` and `/detokenize`) over continuous
//! batching. It sits between the backends (orcd-backends) and the binary (`worker-orcd serve`).
//!
//! Shape: one engine thread owns the model and its [`orcd_engine::batcher::Batcher`]
//! ([`engine`]); HTTP handlers run on a current-thread tokio runtime (axum over hyper, HTTP/1)
//! and talk to the engine through channels: a command channel in, one event channel per request
//! out. A streamed response owns its request's event receiver, so a client that goes away cancels
//! its request in any state.
//!
//! Invariants:
//! - The model is touched by the engine thread only; handlers never block on a forward.
//! - Every request ends with exactly one terminal answer (a complete response, an `end`/`error`
//!   event, or `data: [DONE]`), and the engine forgets it then.
//! - Untrusted bodies are bounded ([`http::MAX_BODY`]) and parsed into typed, field-level errors;
//!   nothing input-derived is unwrapped.
//! - Draining (SIGTERM or [`Server::shutdown`]): new requests get 503, running ones finish, then
//!   the listener closes and the engine thread ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use orcd_backends::Column;

pub mod client;
mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod metrics;
mod openai;
mod state;
mod validate;
mod worker_api;

pub use error::{Result, ServerError};

use engine::{Command, EngineConfig};
use state::Shared;

/// `worker-orcd serve`'s options.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub model: PathBuf,
    pub addr: SocketAddr,
    pub column: Column,
    /// Sequences decoded together.
    pub parallel: usize,
    /// Requests that may wait for a sequence (beyond it: 429).
    pub queue: usize,
    /// Positions per sequence (default: the model's training context, at most 4096).
    pub ctx: Option<usize>,
    /// Guards every route but /health.
    pub api_key: Option<String>,
    /// A request running longer ends with INFERENCE_TIMEOUT.
    pub timeout: Duration,
    /// Continue a new request from a free sequence's cached prompt (multi-turn chat); never
    /// changes a token (orcd_engine::batcher's invariants).
    pub prefix_cache: bool,
}

impl ServeConfig {
    pub fn new(model: PathBuf, column: Column) -> Self {
        ServeConfig {
            model,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            column,
            parallel: 4,
            queue: 64,
            ctx: None,
            api_key: None,
            timeout: Duration::from_secs(600),
            prefix_cache: true,
        }
    }
}

/// A running server: listening as soon as [`Server::start`] returns (answering 503 while the
/// model loads).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
    http: Option<JoinHandle<Result<()>>>,
    engine: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `cfg.addr` (port 0: an ephemeral port, see [`Server::addr`]), start the engine thread
    /// (which loads the model) and the HTTP thread. `signals`: drain on SIGTERM / SIGINT.
    pub fn start(cfg: ServeConfig, signals: bool) -> Result<Server> {
        if cfg.parallel == 0 {
            return Err(ServerError::Config("--parallel must be at least 1".into()));
        }
        let listener =
            std::net::TcpListener::bind(cfg.addr).map_err(|source| ServerError::Bind { addr: cfg.addr, source })?;
        listener.set_nonblocking(true).map_err(ServerError::Runtime)?;
        let addr = listener.local_addr().map_err(ServerError::Runtime)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::new(tx, cfg.api_key.clone(), cfg.timeout));
        let ecfg = EngineConfig {
            model: cfg.model.clone(),
            column: cfg.column,
            parallel: cfg.parallel,
            queue: cfg.queue,
            ctx: cfg.ctx,
            timeout: cfg.timeout,
            prefix_cache: cfg.prefix_cache,
        };
        let es = shared.clone();
        let engine = std::thread::Builder::new()
            .name("orcd-engine".into())
            .spawn(move || engine::run(ecfg, es, rx))
            .map_err(ServerError::Runtime)?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let (hs, hstop) = (shared.clone(), stop.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServerError::Runtime)?;
        // Signal handlers are installed before this returns: a SIGTERM right after start drains
        // instead of killing the process.
        let signals = if signals { Signals::install(&rt) } else { Signals::default() };
        let http = std::thread::Builder::new()
            .name("orcd-http".into())
            .spawn(move || run_http(rt, listener, hs, hstop, signals))
            .map_err(ServerError::Runtime)?;
        Ok(Server { addr, shared, stop, http: Some(http), engine: Some(engine) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wait until the model is loaded (or its load failed: the error).
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if self.shared.loaded().is_some() {
                return Ok(());
            }
            if let Some(m) = self.shared.failed() {
                return Err(ServerError::ModelLoad(m.to_string()));
            }
            if self.engine.as_ref().is_some_and(|h| h.is_finished()) {
                return Err(ServerError::EngineGone("it ended while loading".into()));
            }
            if Instant::now() >= end {
                return Err(ServerError::ModelLoad(format!("not loaded after {} s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Begin draining, as SIGTERM does.
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }

    /// Wait for the server to end (after [`Server::shutdown`] or a signal).
    pub fn join(mut self) -> Result<()> {
        let r = match self.http.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ServerError::EngineGone("the HTTP thread panicked".into())),
            None => Ok(()),
        };
        self.shared.send(Command::Shutdown);
        if let Some(e) = self.engine.take() {
            let _ = e.join();
        }
        r
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server dropped without join (a test that failed): stop both threads.
        if self.http.is_some() {
            self.shared.draining.store(true, Ordering::SeqCst);
            self.stop.notify_one();
            self.shared.send(Command::Shutdown);
        }
    }
}

/// `worker-orcd serve`: start, report the address through `listening`, load, serve until SIGTERM
/// or SIGINT, drain, return. A model that fails to load is an error (after /health said why).
pub fn serve(cfg: ServeConfig, listening: impl FnOnce(SocketAddr)) -> Result<()> {
    let server = Server::start(cfg, true)?;
    listening(server.addr());
    // Wait for the load, unless a signal ended the server first (then exit as a drain would).
    while server.shared.loaded().is_none() {
        if server.http.as_ref().is_none_or(|h| h.is_finished()) {
            return server.join();
        }
        if let Some(m) = server.shared.failed() {
            let e = ServerError::ModelLoad(m.to_string());
            server.shutdown();
            let _ = server.join();
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.join()
}

fn run_http(
    rt: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
    signals: Signals,
) -> Result<()> {
    rt.block_on(async move {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServerError::Runtime)?;
        // Tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds them back.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = http::router(shared.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(drain(shared, stop, signals))
            .await
            .map_err(ServerError::Runtime)
    })
}

/// Resolves when the server may close: after the stop signal, once no request is active (bounded
/// by the request timeout). Meanwhile new requests get 503.
async fn drain(shared: Arc<Shared>, stop: Arc<tokio::sync::Notify>, signals: Signals) {
    signals.wait(&stop).await;
    shared.draining.store(true, Ordering::SeqCst);
    let end = Instant::now() + shared.timeout + Duration::from_secs(5);
    while shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SIGTERM and SIGINT streams (none when the embedder handles signals itself).
#[derive(Debug, Default)]
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[cfg(unix)]
    fn install(rt: &tokio::runtime::Runtime) -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let _in_runtime = rt.enter();
        Signals { term: signal(SignalKind::terminate()).ok(), int: signal(SignalKind::interrupt()).ok() }
    }

    #[cfg(not(unix))]
    fn install(_rt: &tokio::runtime::Runtime) -> Self {
        Signals::default()
    }

    /// Until [`Server::shutdown`] or a signal.
    #[cfg(unix)]
    async fn wait(self, stop: &tokio::sync::Notify) {
        let sig = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.notified() => {}
            _ = sig(self.term) => {}
            _ = sig(self.int) => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(self, stop: &tokio::sync::Notify) {
        stop.notified().await;
    }
}
