//! The engine thread: the one place the model and its [`Batcher`] live. HTTP handlers never touch
//! the model; they send a [`Command`] and read their request's [`Out`] events from a channel of
//! their own.
//!
//! The thread loads the model (the server answers 503 meanwhile), then loops: block for a command
//! while nothing runs; otherwise take every queued command, cancel the requests whose client went
//! away (their event channel is closed) or whose deadline passed, run one [`Batcher::step`], and
//! forward its events.
//!
//! Invariants:
//! - Every accepted request gets exactly one terminal event ([`Out::Done`] or [`Out::Error`]),
//!   after which the engine forgets it; a rejected one gets exactly one [`Out::Rejected`].
//! - A request whose receiver is dropped (client disconnected, in any state: waiting, prefill,
//!   decode) is cancelled at the next loop turn, so its sequence is freed without a client.
//! - The texts of a request's [`Out::Token`] events concatenate to its whole text: an event
//!   after which text is held back ([`TokenEvent::held`]) waits for the next one, and at the end
//!   the summary's tail is appended to the held event.
//! - Metrics (counters, gauges, histograms) are written here and only here, from what the batcher
//!   reported, so /metrics counts exactly what ran.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use orcd_backends::Column;
use orcd_engine::batcher::{Batcher, Event, RequestId};
use orcd_engine::generate::{GenerateParams, StopReason, Summary, TokenEvent};
use orcd_engine::gguf::GgufFile;
use orcd_engine::model::LoadOpts;
use orcd_engine::tokenizer::{Tokenizer, VocabType};
use tokio::sync::mpsc::UnboundedSender;

use crate::state::{Loaded, ModelInfo, Shared};

/// What a handler asks of the engine.
#[derive(Debug)]
pub(crate) enum Command {
    Submit(Box<Submit>),
    /// Cancel the request submitted with this job id (unknown ids are ignored: idempotent).
    CancelJob(String),
    /// Finish: the thread returns (running requests end with an error first).
    Shutdown,
}

#[derive(Debug)]
pub(crate) struct Submit {
    pub prompt: Vec<u32>,
    pub params: GenerateParams,
    /// The worker API's job id (cancellable by POST /cancel); `None` for OpenAI requests.
    pub job_id: Option<String>,
    pub events: UnboundedSender<Out>,
}

/// Why a request was not queued.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reject {
    QueueFull {
        waiting: usize,
    },
    /// The prompt cannot fit one sequence's context (prompt and at least one generated token).
    TooLong {
        prompt_tokens: usize,
        n_ctx: usize,
    },
    DuplicateJob,
    Invalid(String),
}

/// A request's events, in order: `Accepted` or `Rejected` first; then `Started`, `Token`s and one
/// of `Done` / `Error`.
#[derive(Debug, Clone)]
pub(crate) enum Out {
    Accepted,
    Rejected(Reject),
    /// The request got a sequence (its prompt is being processed).
    Started {
        at: SystemTime,
    },
    Token(TokenEvent),
    Done(Done),
    Error {
        code: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Done {
    /// Its `tail_text` is empty unless no token event could carry it.
    pub summary: Summary,
    pub tokens_per_sec: f64,
    pub vram_bytes: u64,
    /// Prompt tokens continued from cached KV (prefix reuse).
    pub cached_tokens: usize,
}

/// What the engine thread needs to start.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub model: PathBuf,
    pub column: Column,
    pub parallel: usize,
    pub queue: usize,
    pub ctx: Option<usize>,
    pub timeout: Duration,
    pub prefix_cache: bool,
}

struct Live {
    tx: UnboundedSender<Out>,
    job: Option<String>,
    submitted: Instant,
    first_token: bool,
    last_token: Option<Instant>,
    deadline: Instant,
    timed_out: bool,
    held: Option<TokenEvent>,
    /// Prompt tokens continued from cached KV (reported as OpenAI's `cached_tokens`).
    cached_tokens: usize,
    /// Holds a sequence (counted as running, else as waiting).
    started: bool,
}

/// Load the model, publish it in `shared`, then serve commands until [`Command::Shutdown`] or
/// until every sender is gone. A load failure is published (health says why) and ends the thread.
pub(crate) fn run(cfg: EngineConfig, shared: Arc<Shared>, rx: Receiver<Command>) {
    // However the thread ends (a panic in a forward is a bug, but must not leave a server that
    // looks healthy and answers nothing), /health says so from then on.
    struct Alive<'a>(&'a Shared);
    impl Drop for Alive<'_> {
        fn drop(&mut self) {
            self.0.engine_stopped.store(true, Ordering::SeqCst);
        }
    }
    let _alive = Alive(&shared);
    let (mut batcher, tok) = match load(&cfg, &shared) {
        Ok(x) => x,
        Err(msg) => {
            shared.set_failed(msg);
            return;
        }
    };
    let mut reqs: HashMap<RequestId, Live> = HashMap::new();
    let mut jobs: HashMap<String, RequestId> = HashMap::new();
    let mut shutdown = false;
    while !shutdown {
        // Nothing runs: sleep until a command comes.
        if batcher.running() + batcher.waiting() == 0 {
            match rx.recv() {
                Ok(c) => shutdown |= handle(c, &mut batcher, &mut reqs, &mut jobs, &cfg, &shared),
                Err(_) => break,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(c) => shutdown |= handle(c, &mut batcher, &mut reqs, &mut jobs, &cfg, &shared),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    shutdown = true;
                    break;
                }
            }
        }
        let now = Instant::now();
        for (&id, r) in reqs.iter_mut() {
            if r.tx.is_closed() {
                batcher.cancel(id);
            } else if now >= r.deadline && !r.timed_out {
                r.timed_out = true;
                batcher.cancel(id);
            }
        }
        let stepped = batcher.step(&tok, &mut |e| dispatch(e, &mut reqs, &mut jobs, &shared));
        if let Err(e) = stepped {
            // Every running request already got its error event; the process stays usable.
            shared.metrics.lock().map(|mut m| m.engine_errors += 1).ok();
            eprintln!("worker-orcd serve: engine step failed: {e}");
        }
        publish_gauges(&batcher, &shared);
    }
    // Shutting down: whatever is still here ends with an error (drain already waited for it).
    for (_, r) in reqs.drain() {
        let _ = r.tx.send(Out::Error { code: "INTERNAL", message: "the server is shutting down".into() });
    }
}

fn load(cfg: &EngineConfig, shared: &Shared) -> Result<(Batcher, Arc<Tokenizer>), String> {
    let path = cfg.model.display().to_string();
    // The reader's I/O errors name the path already; its format errors do not.
    let file = GgufFile::open(&cfg.model).map_err(|e| match e {
        e @ orcd_engine::gguf::GgufError::Io { .. } => e.to_string(),
        e => format!("{path}: {e}"),
    })?;
    let tok = Tokenizer::from_gguf(&file).map_err(|e| format!("{path}: tokenizer: {e}"))?;
    let opts = LoadOpts { n_ctx: cfg.ctx, n_seq: Some(cfg.parallel), kv_type: None };
    let model = cfg.column.load(&file, &opts).map_err(|e| format!("{path}: {e}"))?;
    let quant_kind = dominant_type(&file);
    let vram_bytes = model.device_memory().map(|d| d.used()).unwrap_or(0);
    let id = cfg
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "model".into());
    let hp = model.hp();
    let info = ModelInfo {
        id,
        path,
        backend: cfg.column.to_string(),
        arch: file.architecture().unwrap_or("unknown").to_string(),
        quant_kind,
        tokenizer_kind: match tok.vocab_type() {
            VocabType::Spm => "spm",
            VocabType::Bpe => "bpe",
            VocabType::Wpm => "wpm",
        }
        .to_string(),
        tokenizer_model: tok.model_name().to_string(),
        vocab_size: tok.vocab_size(),
        n_vocab: hp.n_vocab,
        n_ctx: model.n_ctx(),
        n_ctx_train: hp.n_ctx_train,
        parallel: model.n_seq(),
        queue: cfg.queue,
        kv_bytes: model.kv_bytes() as u64,
        has_chat_template: file.get_str("tokenizer.chat_template").is_ok(),
        prefix_cache: cfg.prefix_cache,
    };
    shared.vram_bytes.store(vram_bytes, Ordering::Relaxed);
    shared.kv_capacity.store((model.n_ctx() * model.n_seq()) as u64, Ordering::Relaxed);
    let tok = Arc::new(tok);
    shared.set_loaded(Loaded { info, tok: tok.clone(), file: Arc::new(file) });
    let max_queue = cfg.queue + model.n_seq();
    let mut b = Batcher::new(model, max_queue);
    b.set_prefix_reuse(cfg.prefix_cache);
    Ok((b, tok))
}

/// The weight type holding most of the file's tensor bytes (`Q4_1`, `Q8_0`, `F16`, …).
fn dominant_type(f: &GgufFile) -> String {
    let mut by: HashMap<&'static str, u64> = HashMap::new();
    for t in f.tensors() {
        *by.entry(t.ty.name()).or_default() += t.n_bytes;
    }
    by.into_iter().max_by_key(|&(name, n)| (n, name)).map(|(n, _)| n.to_string()).unwrap_or_default()
}

/// Returns true when the thread should stop.
fn handle(
    c: Command,
    batcher: &mut Batcher,
    reqs: &mut HashMap<RequestId, Live>,
    jobs: &mut HashMap<String, RequestId>,
    cfg: &EngineConfig,
    shared: &Shared,
) -> bool {
    match c {
        Command::Shutdown => return true,
        Command::CancelJob(job) => {
            if let Some(&id) = jobs.get(&job) {
                batcher.cancel(id);
            }
        }
        Command::Submit(s) => {
            let s = *s;
            if s.job_id.as_ref().is_some_and(|j| jobs.contains_key(j)) {
                let _ = s.events.send(Out::Rejected(Reject::DuplicateJob));
                return false;
            }
            let n_ctx = batcher.model().n_ctx();
            if s.prompt.len() >= n_ctx {
                let _ = s.events.send(Out::Rejected(Reject::TooLong { prompt_tokens: s.prompt.len(), n_ctx }));
                return false;
            }
            // Requests wait in the batcher's queue until the next step even when a sequence is
            // free: only those beyond the free sequences count against --queue.
            let free = batcher.model().n_seq().saturating_sub(batcher.running());
            if batcher.waiting() >= cfg.queue + free {
                if let Ok(mut m) = shared.metrics.lock() {
                    m.rejected_queue_full += 1;
                }
                let _ =
                    s.events.send(Out::Rejected(Reject::QueueFull { waiting: batcher.waiting().saturating_sub(free) }));
                return false;
            }
            let prompt_tokens = s.prompt.len();
            match batcher.submit(s.prompt, s.params) {
                Ok(id) => {
                    if let Ok(mut m) = shared.metrics.lock() {
                        m.prompt_tokens += prompt_tokens as u64;
                    }
                    let now = Instant::now();
                    if let Some(j) = &s.job_id {
                        jobs.insert(j.clone(), id);
                    }
                    // The running/waiting gauges move with the events (before each is sent),
                    // so a client that saw its end never reads itself as still running.
                    shared.waiting.fetch_add(1, Ordering::SeqCst);
                    let _ = s.events.send(Out::Accepted);
                    reqs.insert(
                        id,
                        Live {
                            tx: s.events,
                            job: s.job_id,
                            submitted: now,
                            first_token: false,
                            last_token: None,
                            deadline: now + cfg.timeout,
                            timed_out: false,
                            held: None,
                            cached_tokens: 0,
                            started: false,
                        },
                    );
                }
                Err(e) => {
                    let _ = s.events.send(Out::Rejected(Reject::Invalid(e.to_string())));
                }
            }
        }
    }
    false
}

fn dispatch(e: Event, reqs: &mut HashMap<RequestId, Live>, jobs: &mut HashMap<String, RequestId>, shared: &Shared) {
    let now = Instant::now();
    match e {
        Event::Started(id, reused) => {
            let Some(r) = reqs.get_mut(&id) else { return };
            r.cached_tokens = reused;
            r.started = true;
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
            shared.running.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut m) = shared.metrics.lock() {
                m.queue_time.observe((now - r.submitted).as_secs_f64());
            }
            let _ = r.tx.send(Out::Started { at: SystemTime::now() });
        }
        Event::Token(id, ev) => {
            let Some(r) = reqs.get_mut(&id) else { return };
            if let Ok(mut m) = shared.metrics.lock() {
                m.generation_tokens += 1;
                if r.first_token {
                    if let Some(last) = r.last_token {
                        m.inter_token.observe((now - last).as_secs_f64());
                    }
                } else {
                    m.ttft.observe((now - r.submitted).as_secs_f64());
                }
            }
            r.first_token = true;
            r.last_token = Some(now);
            if let Some(prev) = r.held.take() {
                let _ = r.tx.send(Out::Token(prev));
            }
            if ev.held {
                r.held = Some(ev);
            } else {
                let _ = r.tx.send(Out::Token(ev));
            }
        }
        Event::Done(id, mut summary) => {
            let Some(mut r) = reqs.remove(&id) else { return };
            leave(&r, shared);
            if let Some(j) = &r.job {
                jobs.remove(j);
            }
            if let Some(mut prev) = r.held.take() {
                prev.text.push_str(&std::mem::take(&mut summary.tail_text));
                let _ = r.tx.send(Out::Token(prev));
            }
            let reason = if r.timed_out && summary.stop_reason == StopReason::Cancelled {
                "timeout"
            } else {
                summary.stop_reason.as_str()
            };
            if let Ok(mut m) = shared.metrics.lock() {
                m.e2e.observe((now - r.submitted).as_secs_f64());
                *m.finished.entry(reason).or_default() += 1;
            }
            if reason == "timeout" {
                let _ = r.tx.send(Out::Error {
                    code: "INFERENCE_TIMEOUT",
                    message: format!("the request ran past its {} s deadline", shared.timeout.as_secs_f64()),
                });
                return;
            }
            let tokens_per_sec =
                if summary.decode_seconds > 0.0 { summary.tokens_out as f64 / summary.decode_seconds } else { 0.0 };
            let vram_bytes = shared.vram_bytes.load(Ordering::Relaxed);
            let cached_tokens = r.cached_tokens;
            let _ = r.tx.send(Out::Done(Done { summary, tokens_per_sec, vram_bytes, cached_tokens }));
        }
        Event::Error(id, message) => {
            let Some(r) = reqs.remove(&id) else { return };
            leave(&r, shared);
            if let Some(j) = &r.job {
                jobs.remove(j);
            }
            if let Ok(mut m) = shared.metrics.lock() {
                *m.finished.entry("error").or_default() += 1;
            }
            let code = if message.contains("INSUFFICIENT_VRAM") || message.contains("out of memory") {
                "VRAM_OOM"
            } else if message.starts_with("cuda") {
                "CUDA_ERROR"
            } else {
                "INTERNAL"
            };
            let _ = r.tx.send(Out::Error { code, message });
        }
    }
}

/// A request ends: it no longer counts as running or waiting.
fn leave(r: &Live, shared: &Shared) {
    let g = if r.started { &shared.running } else { &shared.waiting };
    g.fetch_sub(1, Ordering::SeqCst);
}

fn publish_gauges(b: &Batcher, shared: &Shared) {
    let m = b.model();
    // Positions held by running requests (a free sequence's cached prompt is reusable, not load).
    let used = b.kv_positions_in_use();
    shared.prefix_reused.store(b.reused_tokens(), Ordering::Relaxed);
    shared.kv_used.store(used as u64, Ordering::Relaxed);
    if b.running() == 0 {
        // Device memory is read when idle (a driver call per step would cost decode time).
        if let Some(d) = m.device_memory() {
            shared.vram_bytes.store(d.used(), Ordering::Relaxed);
        }
    }
}
