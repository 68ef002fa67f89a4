//! The crate's one error type: what can stop the server as a whole (binding, the runtime, loading
//! the model). Per-request failures are not errors of this type: they are HTTP answers (a
//! field-level 400, a 429, an SSE `error` event) built in [`crate::http`].

use std::net::SocketAddr;

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server runtime: {0}")]
    Runtime(std::io::Error),
    /// The model could not be opened or loaded (the message names the file and the cause).
    #[error("MODEL_LOAD_FAILED: {0}")]
    ModelLoad(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The engine thread ended unexpectedly (a bug: it should only end when asked).
    #[error("the engine thread stopped: {0}")]
    EngineGone(String),
    /// [`crate::client`]: the connection failed or the answer was not well-formed HTTP / SSE.
    #[error("HTTP client: {0}")]
    Client(String),
}
