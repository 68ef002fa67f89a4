//! An in-process driver of the real router for the fuzz target `server` (fuzz/) and its
//! regression tests (tests/fuzz_regressions.rs): a request goes through the same middleware
//! (API key, correlation id), bounded body reading, validation and handlers as on a socket, with
//! a stand-in engine that answers on the calling thread instead of running a model.
//!
//! The stand-in applies the engine thread's admission checks (empty prompt, context length) and
//! the sampler's own validation and construction with the request's parameters, then answers an
//! accepted request with `Started`, up to three tokens (with the asked number of alternatives)
//! and `Done`, so streamed and collected responses, logprobs and usage are rendered too.
//!
//! Not part of the server's API (hidden from the docs); it exists so fuzzing needs no sockets.

use std::future::Future;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Method, Request};
use orcd_engine::generate::{StopReason, Summary, TokenEvent};
use orcd_engine::gguf::GgufFile;
use orcd_engine::sampler::{Sampler, TokenLogprob};
use orcd_engine::tokenizer::{Tokenizer, VocabType};

use crate::engine::{Command, Done, Out, Reject};
use crate::state::{Loaded, ModelInfo, Shared};
use crate::{Result, ServerError};

/// The router over a loaded vocabulary (no weights) and the stand-in engine.
#[derive(Debug)]
pub struct Harness {
    router: axum::Router,
    rt: tokio::runtime::Runtime,
    /// Behind a lock only so that a harness can live in a static (one caller at a time).
    commands: Mutex<Receiver<Command>>,
    tok: Arc<Tokenizer>,
    n_ctx: usize,
}

/// What came back: the status and the whole body (a stream collected to its end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Harness {
    /// Serve `file`'s tokenizer and chat template as a model of context `n_ctx`, guarded by
    /// `api_key` when given.
    pub fn new(file: GgufFile, n_ctx: usize, api_key: Option<String>) -> Result<Harness> {
        let tok = Arc::new(Tokenizer::from_gguf(&file).map_err(|e| ServerError::ModelLoad(e.to_string()))?);
        let (tx, commands) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::new(tx, api_key, Duration::from_secs(60)));
        let info = ModelInfo {
            id: "fuzz".into(),
            path: "fuzz.gguf".into(),
            backend: "cpu".into(),
            arch: file.architecture().unwrap_or("unknown").to_string(),
            quant_kind: "F32".into(),
            tokenizer_kind: match tok.vocab_type() {
                VocabType::Spm => "spm",
                VocabType::Bpe => "bpe",
                VocabType::Wpm => "wpm",
            }
            .into(),
            tokenizer_model: tok.model_name().to_string(),
            vocab_size: tok.vocab_size(),
            n_vocab: tok.vocab_size(),
            n_ctx,
            n_ctx_train: n_ctx,
            parallel: 1,
            queue: 4,
            kv_bytes: 0,
            has_chat_template: file.get_str("tokenizer.chat_template").is_ok(),
            prefix_cache: false,
        };
        shared.set_loaded(Loaded { info, tok: tok.clone(), file: Arc::new(file) });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ServerError::Runtime)?;
        Ok(Harness { router: crate::http::router(shared), rt, commands: Mutex::new(commands), tok, n_ctx })
    }

    /// Send one request. `None` when the method, path or a header is not valid HTTP (hyper
    /// refuses those before the router sees them).
    pub fn request(&self, method: &[u8], path: &[u8], headers: &[(&[u8], &[u8])], body: Vec<u8>) -> Option<Reply> {
        let method = Method::from_bytes(method).ok()?;
        let uri = axum::http::Uri::try_from(path).ok()?;
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            let k = axum::http::HeaderName::from_bytes(k).ok()?;
            let v = axum::http::HeaderValue::from_bytes(v).ok()?;
            b = b.header(k, v);
        }
        let req = b.body(Body::from(body)).ok()?;
        let mut svc = self.router.clone();
        let fut = tower_service::Service::call(&mut svc, req);
        let resp = self.drive(fut).ok()?;
        let status = resp.status().as_u16();
        let body = self.drive(axum::body::to_bytes(resp.into_body(), usize::MAX)).ok()?;
        Some(Reply { status, body: body.to_vec() })
    }

    /// Run `fut` to completion, answering the engine commands it sends in between.
    fn drive<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        self.rt.block_on(std::future::poll_fn(|cx| loop {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            // Pending with no command to answer: a real wait (a timer), left to the runtime.
            if !self.serve_commands() {
                return Poll::Pending;
            }
        }))
    }

    /// Answer every queued command; whether there was one.
    fn serve_commands(&self) -> bool {
        let mut any = false;
        let Ok(commands) = self.commands.lock() else { return false };
        while let Ok(c) = commands.try_recv() {
            any = true;
            if let Command::Submit(s) = c {
                let s = *s;
                let n_vocab = self.tok.vocab_size();
                if s.prompt.is_empty() {
                    let _ = s.events.send(Out::Rejected(Reject::Invalid("the prompt has no tokens".into())));
                    continue;
                }
                if s.prompt.len() >= self.n_ctx {
                    let _ = s
                        .events
                        .send(Out::Rejected(Reject::TooLong { prompt_tokens: s.prompt.len(), n_ctx: self.n_ctx }));
                    continue;
                }
                let mut sampler = match Sampler::new(s.params.sampler.clone(), n_vocab) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = s.events.send(Out::Rejected(Reject::Invalid(e.to_string())));
                        continue;
                    }
                };
                let _ = s.events.send(Out::Accepted);
                let _ = s.events.send(Out::Started { at: SystemTime::now() });
                // A fixed distribution: the prompt's tokens favoured, so sampling with the
                // request's parameters has something to filter.
                let mut logits = vec![0.0f32; n_vocab];
                for (i, &t) in s.prompt.iter().enumerate().take(64) {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l += 1.0 + i as f32 * 0.25;
                    }
                }
                let n = s.params.max_tokens.clamp(1, 3);
                let (mut out, mut failed) = (0, false);
                for i in 0..n {
                    let id = match sampler.sample(&logits) {
                        Ok(x) => x.token,
                        Err(e) => {
                            // One terminal event per request, as the engine thread sends.
                            let _ = s.events.send(Out::Error { code: "INTERNAL", message: e.to_string() });
                            failed = true;
                            break;
                        }
                    };
                    let text = self.tok.token_to_piece(id).map(|b| String::from_utf8_lossy(b).into_owned());
                    let top_logprobs = (0..s.params.top_logprobs.min(n_vocab))
                        .map(|k| TokenLogprob { token: k as u32, logprob: -1.0 })
                        .collect();
                    let ev =
                        TokenEvent { i, id, text: text.unwrap_or_default(), logprob: -0.5, top_logprobs, held: false };
                    let _ = s.events.send(Out::Token(ev));
                    out += 1;
                }
                if failed {
                    continue;
                }
                let summary = Summary {
                    stop_reason: StopReason::MaxTokens,
                    tokens_out: out,
                    prompt_tokens: s.prompt.len(),
                    seed: s.params.sampler.seed,
                    tail_text: String::new(),
                    decode_seconds: 0.0,
                };
                let _ =
                    s.events.send(Out::Done(Done { summary, tokens_per_sec: 0.0, vram_bytes: 0, cached_tokens: 0 }));
            }
        }
        any
    }
}
