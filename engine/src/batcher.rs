//! Continuous batching: several generations share one model — one sequence of its KV cache each
//! ([`crate::model::LoadOpts::n_seq`] slots) — and every forward. Requests join between steps
//! when a slot is free (else they wait, first come first served) and leave as soon as they stop;
//! a step feeds every running sequence its pending rows (a new one's whole prompt, the others
//! their last token) in one batch.
//!
//! Invariants:
//! - A request's tokens never depend on its neighbours: each has its own [`SeqGen`] (sampler,
//!   seed, penalties, stop matcher), fed only its own rows' logits, and the model gives every
//!   sequence's rows the logits it would give alone (conformance/tests/multi_seq.rs). So the
//!   same request with the same seed gives the same tokens alone or beside others
//!   (conformance/tests/batcher.rs checks it).
//! - Every request ends with exactly one [`Event::Done`] or [`Event::Error`]; a slot is freed (and
//!   its cache positions forgotten) when its request ends.
//! - A prompt that cannot fit the context is refused at [`Batcher::submit`] with both counts.
//! - Prefix reuse ([`Batcher::set_prefix_reuse`], multi-turn chat): a free sequence keeps the KV of
//!   its last prompt, and a new request whose prompt starts with those tokens continues from them
//!   instead of recomputing them. It never changes a token: only positions computed by a prefill
//!   of at least [`MIN_PREFILL_ROWS`] rows are kept, and a reusing request still prefills at least
//!   that many rows, so every position is computed with the formulas a fresh prefill uses (the
//!   backends change formula only below that row count: llama.cpp's k-quant matmul at 8 rows, its
//!   attention at 2); generated tokens' positions (one row each) are never reused.

use std::collections::VecDeque;
use std::time::Instant;

use crate::generate::{GenerateParams, SeqGen, SeqStep, StopReason, Summary, TokenEvent};
use crate::model::AnyModel;
use crate::ops::{BatchRows, NoTaps};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// Rows a prefill needs for its positions to be kept for prefix reuse (and a reusing request
/// prefills at least this many): at and above it no backend changes formula with the row count.
pub const MIN_PREFILL_ROWS: usize = 8;

/// A request's id (unique per batcher).
pub type RequestId = u64;

/// What a step reports, per request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The request got a slot and its prompt is being processed; the count is the prompt tokens
    /// continued from the slot's cached KV (prefix reuse) instead of recomputed.
    Started(RequestId, usize),
    Token(RequestId, TokenEvent),
    Done(RequestId, Summary),
    Error(RequestId, String),
}

#[derive(Debug)]
struct Waiting {
    id: RequestId,
    prompt: Vec<u32>,
    params: GenerateParams,
    cancel: bool,
}

#[derive(Debug)]
struct Slot {
    id: RequestId,
    gen: SeqGen,
    /// Tokens to feed at the next step: the prompt first, then each sampled token.
    pending: Vec<u32>,
    started: Instant,
    cancel: bool,
    /// The prompt, when all its positions will have been computed by prefills of at least
    /// [`MIN_PREFILL_ROWS`] rows (kept for prefix reuse when the request ends); else empty.
    reusable: Vec<u32>,
}

/// `gens[i].step(tok, row(i))` for every sequence: on up to 4 threads when there are 8 or more
/// (a server step's sampling — a softmax over the vocabulary per sequence — is otherwise serial
/// work the backend's threads wait through), results in order. Every sequence's result is its
/// own sampler's on its own row, so the split never changes one.
fn sample_all<'r>(
    tok: &Tokenizer,
    mut gens: Vec<&mut SeqGen>,
    row: impl Fn(usize) -> &'r [f32] + Sync,
) -> Vec<Result<SeqStep>> {
    let n = gens.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(4).min(n / 4);
    if threads < 2 {
        return gens.iter_mut().enumerate().map(|(i, g)| g.step(tok, row(i))).collect();
    }
    let per = n.div_ceil(threads);
    let row = &row;
    std::thread::scope(|sc| {
        let mut parts = gens.chunks_mut(per).enumerate();
        let first = parts.next();
        let handles: Vec<_> = parts
            .map(|(c, part)| {
                let len = part.len();
                let h = sc.spawn(move || {
                    part.iter_mut().enumerate().map(|(j, g)| g.step(tok, row(c * per + j))).collect::<Vec<_>>()
                });
                (len, h)
            })
            .collect();
        let mut out: Vec<Result<SeqStep>> = first
            .map(|(_, part)| part.iter_mut().enumerate().map(|(j, g)| g.step(tok, row(j))).collect())
            .unwrap_or_default();
        for (len, h) in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // One error per sequence of the part, so the results stay aligned.
                Err(_) => {
                    out.extend((0..len).map(|_| Err(Error::Invalid("batcher: a sampling thread panicked".into()))))
                }
            }
        }
        out
    })
}

/// The scheduler of one model's sequences.
pub struct Batcher {
    model: Box<dyn AnyModel>,
    slots: Vec<Option<Slot>>,
    queue: VecDeque<Waiting>,
    next_id: RequestId,
    max_queue: usize,
    /// Per sequence, while free: the prompt tokens whose KV it still holds (prefix reuse).
    cached: Vec<Vec<u32>>,
    prefix_reuse: bool,
    reused_tokens: u64,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("running", &self.running()).field("waiting", &self.waiting()).finish()
    }
}

impl Batcher {
    /// A scheduler over `model`'s sequences (one request per sequence at a time); at most
    /// `max_queue` requests wait for a slot.
    pub fn new(model: Box<dyn AnyModel>, max_queue: usize) -> Self {
        let n = model.n_seq();
        Batcher {
            model,
            slots: (0..n).map(|_| None).collect(),
            queue: VecDeque::new(),
            next_id: 1,
            max_queue,
            cached: vec![Vec::new(); n],
            prefix_reuse: false,
            reused_tokens: 0,
        }
    }

    /// Let new requests continue from a free sequence's cached prompt (off by default; see the
    /// module's invariants for why it never changes a token).
    pub fn set_prefix_reuse(&mut self, on: bool) {
        self.prefix_reuse = on;
        if !on {
            self.cached.iter_mut().for_each(Vec::clear);
        }
    }

    /// Prompt tokens taken from cached KV instead of being recomputed, since the start.
    pub fn reused_tokens(&self) -> u64 {
        self.reused_tokens
    }

    /// Cached positions of the sequences running requests.
    pub fn kv_positions_in_use(&self) -> usize {
        self.slots.iter().enumerate().filter(|(_, s)| s.is_some()).map(|(i, _)| self.model.n_past_of(i)).sum()
    }

    pub fn model(&self) -> &dyn AnyModel {
        self.model.as_ref()
    }

    /// Requests holding a sequence.
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Requests waiting for a sequence.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Queue a request. Refused (typed error) when the prompt is empty, when prompt + max_tokens
    /// cannot fit one sequence's context (both counts given), or when the queue is full.
    pub fn submit(&mut self, prompt: Vec<u32>, params: GenerateParams) -> Result<RequestId> {
        let n_ctx = self.model.n_ctx();
        if prompt.is_empty() {
            return Err(Error::Invalid("the prompt has no tokens".into()));
        }
        if prompt.len() >= n_ctx {
            return Err(Error::Invalid(format!(
                "the prompt has {} tokens, the context holds {n_ctx} (prompt and at least one generated token)",
                prompt.len()
            )));
        }
        if self.queue.len() >= self.max_queue {
            return Err(Error::Invalid(format!("the queue is full ({} waiting)", self.queue.len())));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(Waiting { id, prompt, params, cancel: false });
        Ok(id)
    }

    /// Ask request `id` to stop: it ends at the next step, before that step's forward (with
    /// [`StopReason::Cancelled`]; a waiting one without having run). Unknown ids are ignored
    /// (cancelling twice is harmless).
    pub fn cancel(&mut self, id: RequestId) {
        for s in self.slots.iter_mut().flatten() {
            if s.id == id {
                s.cancel = true;
            }
        }
        for q in self.queue.iter_mut() {
            if q.id == id {
                q.cancel = true;
            }
        }
    }

    /// Run one step: admit waiting requests to free sequences, feed every running sequence its
    /// pending rows in one forward, sample each, report through `out`. Returns false when there
    /// was nothing to do. An engine error ends every running request with [`Event::Error`].
    pub fn step(&mut self, tok: &Tokenizer, out: &mut dyn FnMut(Event)) -> Result<bool> {
        // A running request asked to stop ends before the forward: its slot is not fed again (a
        // cancel costs at most the step already under way: the server's 100 ms promise) and is
        // free for a waiting request at once.
        for s in 0..self.slots.len() {
            if self.slots[s].as_ref().is_some_and(|slot| slot.cancel) {
                self.end(s, Ok(StopReason::Cancelled), out);
            }
        }
        self.admit(out);
        let mut batch = BatchRows::default();
        let mut owner = Vec::new();
        for (s, slot) in self.slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            let start = self.model.n_past_of(s) as u32;
            let n = slot.pending.len();
            for (i, &t) in slot.pending.iter().enumerate() {
                batch.tokens.push(t);
                batch.pos.push(start + i as u32);
                batch.seq.push(s as u32);
                batch.logits.push(i + 1 == n);
            }
            owner.push(s);
        }
        if batch.is_empty() {
            return Ok(false);
        }
        let logits = match self.model.decode(&batch, &mut NoTaps) {
            Ok(l) => l,
            Err(e) => {
                for s in 0..self.slots.len() {
                    if let Some(slot) = self.slots[s].take() {
                        out(Event::Error(slot.id, e.to_string()));
                        self.model.reset_seq(s);
                        self.cached[s].clear();
                    }
                }
                return Err(e);
            }
        };
        // Output rows come in batch order: one per running sequence, in slot order (every
        // occupied slot fed a row). Each sequence samples from its own row with its own sampler,
        // so the sequences sample in parallel; events then go out in slot order.
        let gens: Vec<&mut SeqGen> = self.slots.iter_mut().flatten().map(|slot| &mut slot.gen).collect();
        let steps = sample_all(tok, gens, |i| logits.row(i));
        for (&s, step) in owner.iter().zip(steps) {
            let Some(slot) = self.slots[s].as_mut() else { continue };
            let ended = match step {
                Err(e) => Some(Err(e.to_string())),
                Ok(SeqStep::Done(r)) => Some(Ok(r)),
                Ok(SeqStep::Token { event, next, stopped }) => {
                    out(Event::Token(slot.id, event));
                    match (stopped, next) {
                        (Some(StopReason::StopSequence), _) => Some(Ok(StopReason::StopSequence)),
                        _ if slot.cancel => Some(Ok(StopReason::Cancelled)),
                        (Some(r), _) => Some(Ok(r)),
                        (None, Some(t)) if self.model.n_past_of(s) < self.model.n_ctx() => {
                            slot.pending = vec![t];
                            None
                        }
                        // The context is full: the request ends as if it had run out of tokens.
                        (None, _) => Some(Ok(StopReason::MaxTokens)),
                    }
                }
            };
            if let Some(end) = ended {
                self.end(s, end, out);
            }
        }
        Ok(true)
    }

    /// Run steps until every request has ended.
    pub fn run_all(&mut self, tok: &Tokenizer, out: &mut dyn FnMut(Event)) -> Result<()> {
        while self.step(tok, out)? {}
        Ok(())
    }

    fn admit(&mut self, out: &mut dyn FnMut(Event)) {
        // Requests cancelled while waiting end now, without running.
        let n_vocab = self.model.hp().n_vocab;
        for w in std::mem::take(&mut self.queue) {
            if !w.cancel {
                self.queue.push_back(w);
                continue;
            }
            match SeqGen::new(&w.prompt, &w.params, n_vocab) {
                Ok(mut g) => out(Event::Done(w.id, g.finish(StopReason::Cancelled, 0.0))),
                Err(e) => out(Event::Error(w.id, e.to_string())),
            }
        }
        let mut free: Vec<usize> = (0..self.slots.len()).filter(|&s| self.slots[s].is_none()).collect();
        while !free.is_empty() {
            let Some(Waiting { id, prompt, params, .. }) = self.queue.pop_front() else { return };
            // The free sequence whose cached prompt covers most of this one (the first on a tie).
            let (k, reuse) = free
                .iter()
                .enumerate()
                .map(|(k, &s)| (k, self.usable_prefix(s, &prompt)))
                .fold((0, 0), |best, cur| if cur.1 > best.1 { cur } else { best });
            let s = free.remove(k);
            match SeqGen::new(&prompt, &params, n_vocab) {
                Ok(gen) => {
                    self.cached[s].clear();
                    if reuse > 0 {
                        self.model.truncate_seq(s, reuse);
                        self.reused_tokens += reuse as u64;
                    } else {
                        self.model.reset_seq(s);
                    }
                    let reusable = if prompt.len() - reuse >= MIN_PREFILL_ROWS { prompt.clone() } else { Vec::new() };
                    out(Event::Started(id, reuse));
                    let pending = prompt[reuse..].to_vec();
                    self.slots[s] = Some(Slot { id, gen, pending, started: Instant::now(), cancel: false, reusable });
                }
                Err(e) => {
                    free.insert(k, s);
                    out(Event::Error(id, e.to_string()))
                }
            }
        }
    }

    /// Positions of `prompt` sequence `s` can keep from its cache: the common prefix, leaving at
    /// least [`MIN_PREFILL_ROWS`] rows to prefill (0 when reuse is off or nothing matches).
    fn usable_prefix(&self, s: usize, prompt: &[u32]) -> usize {
        if !self.prefix_reuse {
            return 0;
        }
        let common = self.cached[s].iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let n = common.min(prompt.len().saturating_sub(MIN_PREFILL_ROWS)).min(self.model.n_past_of(s));
        // Below a few positions the saving is nothing and a fresh prefill is simpler.
        if n < MIN_PREFILL_ROWS {
            0
        } else {
            n
        }
    }

    fn end(&mut self, s: usize, end: std::result::Result<StopReason, String>, out: &mut dyn FnMut(Event)) {
        let Some(mut slot) = self.slots[s].take() else { return };
        // Keep the prompt's positions for prefix reuse when the prompt went through whole (a
        // request cancelled before its prefill ran has nothing cached).
        if self.prefix_reuse && end.is_ok() && self.model.n_past_of(s) >= slot.reusable.len() {
            self.model.truncate_seq(s, slot.reusable.len());
            self.cached[s] = std::mem::take(&mut slot.reusable);
        } else {
            self.model.reset_seq(s);
        }
        match end {
            Ok(r) => out(Event::Done(slot.id, slot.gen.finish(r, slot.started.elapsed().as_secs_f64()))),
            Err(e) => out(Event::Error(slot.id, e)),
        }
    }
}
