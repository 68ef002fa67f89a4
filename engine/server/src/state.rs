//! What the engine thread and the HTTP handlers share: the loaded model's description (published
//! once, when loading ends), the command channel, live gauges as atomics, and the metrics.
//!
//! Invariant: the engine thread is the only writer of gauges and metrics; handlers only read them
//! (and raise the `draining` flag on SIGTERM).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use orcd_engine::gguf::GgufFile;
use orcd_engine::tokenizer::Tokenizer;

use crate::engine::Command;
use crate::metrics::Metrics;

/// The loaded model as /health, /v1/models and the handlers describe it.
#[derive(Debug, Clone)]
pub(crate) struct ModelInfo {
    /// The name clients give as `model` (the file name without `.gguf`).
    pub id: String,
    pub path: String,
    /// The registry column (`cpu-fast`, `cuda-fast`, …).
    pub backend: String,
    pub arch: String,
    /// The weight type holding most tensor bytes.
    pub quant_kind: String,
    pub tokenizer_kind: String,
    /// `tokenizer.ggml.model` (`llama`, `gpt2`, …).
    pub tokenizer_model: String,
    pub vocab_size: usize,
    /// Rows of the output head (may exceed the tokenizer's vocabulary).
    pub n_vocab: usize,
    /// Positions per sequence.
    pub n_ctx: usize,
    pub n_ctx_train: usize,
    pub parallel: usize,
    pub queue: usize,
    pub kv_bytes: u64,
    pub has_chat_template: bool,
    pub prefix_cache: bool,
}

/// What handlers need of the model, once it is loaded.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub info: ModelInfo,
    pub tok: Arc<Tokenizer>,
    /// For the chat template (rendered by the renderer `generate --chat` uses).
    pub file: Arc<GgufFile>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    loaded: OnceLock<Loaded>,
    failed: OnceLock<String>,
    pub commands: Mutex<Sender<Command>>,
    pub started: Instant,
    pub draining: AtomicBool,
    /// The engine thread has ended (shutdown, failed load, or a bug).
    pub engine_stopped: AtomicBool,
    /// Requests whose events a handler still holds (SIGTERM waits for them).
    pub active: Arc<AtomicU64>,
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    /// Cached positions over every sequence, and the capacity (sequences × context).
    pub kv_used: AtomicU64,
    pub kv_capacity: AtomicU64,
    pub vram_bytes: AtomicU64,
    /// Prompt tokens taken from cached KV (prefix reuse) since the start.
    pub prefix_reused: AtomicU64,
    pub metrics: Mutex<Metrics>,
    pub api_key: Option<String>,
    pub timeout: Duration,
}

impl Shared {
    pub fn new(commands: Sender<Command>, api_key: Option<String>, timeout: Duration) -> Self {
        Shared {
            loaded: OnceLock::new(),
            failed: OnceLock::new(),
            commands: Mutex::new(commands),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            engine_stopped: AtomicBool::new(false),
            active: Arc::new(AtomicU64::new(0)),
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_used: AtomicU64::new(0),
            kv_capacity: AtomicU64::new(0),
            vram_bytes: AtomicU64::new(0),
            prefix_reused: AtomicU64::new(0),
            metrics: Mutex::new(Metrics::default()),
            api_key,
            timeout,
        }
    }

    pub fn loaded(&self) -> Option<&Loaded> {
        self.loaded.get()
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    pub fn set_loaded(&self, l: Loaded) {
        let _ = self.loaded.set(l);
    }

    pub fn set_failed(&self, msg: String) {
        let _ = self.failed.set(msg);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Send a command to the engine thread; false when it is gone.
    pub fn send(&self, c: Command) -> bool {
        match self.commands.lock() {
            Ok(tx) => tx.send(c).is_ok(),
            Err(_) => false,
        }
    }
}
