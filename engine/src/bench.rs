//! Throughput measurement shared by `worker-orcd bench` and the harness's `perf` suite: one
//! prefill of a deterministic prompt, then greedy decode through the argmax op (no full logits
//! copy, as a server's greedy path), on sequence 0 of a freshly reset model ([`once`]); and
//! batched decode, many sequences of their own lengths in one forward per step ([`batched`],
//! `worker-orcd bench --batch`).

use crate::model::AnyModel;
use crate::ops::BatchRows;
use crate::{Error, Result};

/// The benchmark prompt: `n` token ids spread over the vocabulary (content does not change the
/// cost; the same ids on every run).
pub fn prompt(n_vocab: usize, n: usize) -> Vec<u32> {
    let v = n_vocab.max(1) as u64;
    (0..n as u64).map(|i| ((i * 7919 + 13) % v) as u32).collect()
}

/// One measurement: `(prefill tok/s, decode tok/s)` for a `prompt_tokens` prompt in one batch
/// (logits of the last position only, as llama-bench does) and `gen_tokens` greedy steps after
/// it (decode is 0 when `gen_tokens` is 0). Resets the model first.
pub fn once(m: &mut dyn AnyModel, prompt_tokens: usize, gen_tokens: usize) -> Result<(f64, f64)> {
    if prompt_tokens == 0 {
        return Err(Error::Invalid("bench: the prompt needs at least one token".into()));
    }
    let first =
        |ids: Vec<u32>| ids.first().copied().ok_or_else(|| Error::Invalid("the forward returned no logits row".into()));
    let ids = prompt(m.hp().n_vocab, prompt_tokens);
    m.reset();
    let t = std::time::Instant::now();
    let batch = m.seq_batch(0, &ids, false);
    let mut next = first(m.decode_argmax(&batch)?)?;
    let pp = prompt_tokens as f64 / t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    if fed() && gen_tokens > 0 {
        // Each step fed the previous step's id on the device (Model::decode_greedy), the ids
        // read once at the end: what a greedy decode costs without a host round trip a step.
        let steps = m.decode_greedy(&m.seq_batch(0, &[next], false), gen_tokens)?;
        if steps.len() != gen_tokens {
            return Err(Error::Invalid(format!("decode_greedy gave {} steps of {gen_tokens}", steps.len())));
        }
    } else {
        for _ in 0..gen_tokens {
            let batch = m.seq_batch(0, &[next], false);
            next = first(m.decode_argmax(&batch)?)?;
        }
    }
    let tg = if gen_tokens > 0 { gen_tokens as f64 / t.elapsed().as_secs_f64() } else { 0.0 };
    Ok((pp, tg))
}

/// `ORCD_BENCH_FED=1`: [`once`]'s decode through [`crate::model::Model::decode_greedy`] (ids fed
/// on the device, read after the last step) instead of reading and feeding each step's id; the
/// A/B of the host round trip between steps (llama-bench's tg syncs every token, as the default
/// does). Off until a card has timed it (stop 49).
fn fed() -> bool {
    std::env::var_os("ORCD_BENCH_FED").is_some_and(|v| v == "1")
}

/// The most sequences [`batched`] (and `worker-orcd bench --batch`) accepts in one step.
pub const MAX_BATCH: usize = 256;

/// The prompt of sequence `s` of a batched run: `n` ids spread over the vocabulary, shifted per
/// sequence so that no two sequences share their tokens (sequence 0's is [`prompt`]).
pub fn seq_prompt(n_vocab: usize, n: usize, s: usize) -> Vec<u32> {
    let v = n_vocab.max(1) as u64;
    let shift = (s as u64).wrapping_mul(104_729);
    (0..n as u64).map(|i| ((i * 7919 + 13).wrapping_add(shift) % v) as u32).collect()
}

/// Positions per sequence a [`batched`] run of up to `max_b` sequences needs: the longest prompt
/// (`prompt_tokens + max_b - 1`) and `gen_tokens` decode steps.
pub fn batched_n_ctx(max_b: usize, prompt_tokens: usize, gen_tokens: usize) -> usize {
    prompt_tokens + max_b.saturating_sub(1) + gen_tokens
}

/// One batched measurement of [`batched`]: the seconds and the greedy ids of every sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Batched {
    /// Sequences decoded together.
    pub batch: usize,
    /// Prompt length of sequence 0 (sequence `s` has `prompt_tokens + s`).
    pub prompt_tokens: usize,
    /// Decode steps (each one forward of `batch` rows).
    pub gen_tokens: usize,
    /// Prompt tokens of all sequences together.
    pub prefill_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
    /// Per sequence, its greedy ids: the one after its prompt, then one per decode step
    /// (`gen_tokens + 1`; the last is computed but never fed).
    pub ids: Vec<Vec<u32>>,
}

impl Batched {
    /// Prompt tokens per second over all sequences.
    pub fn prefill_tok_s(&self) -> f64 {
        if self.prefill_s > 0.0 {
            self.prefill_tokens as f64 / self.prefill_s
        } else {
            0.0
        }
    }

    /// Aggregate decode throughput: `batch · gen_tokens / decode seconds` (0 without steps).
    pub fn decode_tok_s(&self) -> f64 {
        if self.gen_tokens > 0 && self.decode_s > 0.0 {
            (self.batch * self.gen_tokens) as f64 / self.decode_s
        } else {
            0.0
        }
    }

    /// Milliseconds per decode step (each sequence's per-token latency; 0 without steps).
    pub fn step_ms(&self) -> f64 {
        if self.gen_tokens > 0 {
            1000.0 * self.decode_s / self.gen_tokens as f64
        } else {
            0.0
        }
    }
}

/// Batched decode as a server runs it (issue 13 item 5; llama.cpp's `llama-batched-bench`
/// measures the same): resets the model, prefills `b` sequences — sequence `s` gets
/// `prompt_tokens + s` tokens ([`seq_prompt`]), so each has its own KV length — **one sequence
/// per forward** (logits of its last position only; timed together as the prefill), then runs
/// `gen_tokens` decode steps, each ONE forward of `b` rows (one per sequence, each at its own
/// position, fed its own previous greedy id) through the argmax op. The model must hold `b`
/// sequences of [`batched_n_ctx`] positions.
pub fn batched(m: &mut dyn AnyModel, b: usize, prompt_tokens: usize, gen_tokens: usize) -> Result<Batched> {
    if prompt_tokens == 0 {
        return Err(Error::Invalid("bench: the prompt needs at least one token".into()));
    }
    if b == 0 || b > m.n_seq() || b > MAX_BATCH {
        return Err(Error::Invalid(format!(
            "bench: a batch of {b} sequences (the model holds {}, at most {MAX_BATCH})",
            m.n_seq()
        )));
    }
    let need = batched_n_ctx(b, prompt_tokens, gen_tokens);
    if need > m.n_ctx() {
        return Err(Error::Invalid(format!(
            "bench: {b} sequences need {need} positions each, the model has {}",
            m.n_ctx()
        )));
    }
    let n_vocab = m.hp().n_vocab;
    let mut ids: Vec<Vec<u32>> = (0..b).map(|_| Vec::with_capacity(gen_tokens + 1)).collect();
    m.reset();
    let mut prefill_tokens = 0;
    let t = std::time::Instant::now();
    for (s, out) in ids.iter_mut().enumerate() {
        let p = seq_prompt(n_vocab, prompt_tokens + s, s);
        prefill_tokens += p.len();
        let batch = m.seq_batch(s, &p, false);
        let got = m.decode_argmax(&batch)?;
        out.push(only(&got, 1)?[0]);
    }
    let prefill_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    for _ in 0..gen_tokens {
        let mut batch = BatchRows::default();
        for (s, seq_ids) in ids.iter().enumerate() {
            let next = seq_ids.last().copied().ok_or_else(|| Error::Invalid("bench: a sequence without ids".into()))?;
            batch.tokens.push(next);
            batch.pos.push(m.n_past_of(s) as u32);
            batch.seq.push(s as u32);
            batch.logits.push(true);
        }
        let got = m.decode_argmax(&batch)?;
        for (out, &id) in ids.iter_mut().zip(only(&got, b)?) {
            out.push(id);
        }
    }
    let decode_s = t.elapsed().as_secs_f64();
    Ok(Batched { batch: b, prompt_tokens, gen_tokens, prefill_tokens, prefill_s, decode_s, ids })
}

/// `got` when it holds exactly `n` ids (one per output row).
fn only(got: &[u32], n: usize) -> Result<&[u32]> {
    if got.len() == n {
        Ok(got)
    } else {
        Err(Error::Invalid(format!("the forward returned {} argmax ids for {n} output rows", got.len())))
    }
}

/// The median of `v` (the mean of the middle two for an even count; 0 for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn seq_prompts_differ_per_sequence_and_start_as_the_prompt() {
        assert_eq!(seq_prompt(1000, 50, 0), prompt(1000, 50));
        let (a, b) = (seq_prompt(1000, 50, 1), seq_prompt(1000, 50, 2));
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert!(a.iter().chain(&b).all(|&t| t < 1000));
        assert_eq!(seq_prompt(1000, 7, 3).len(), 7);
    }

    #[test]
    fn batched_rates_from_seconds() {
        let r = Batched {
            batch: 4,
            prompt_tokens: 10,
            gen_tokens: 8,
            prefill_tokens: 46,
            prefill_s: 0.5,
            decode_s: 2.0,
            ids: Vec::new(),
        };
        assert_eq!(r.prefill_tok_s(), 92.0);
        assert_eq!(r.decode_tok_s(), 16.0);
        assert_eq!(r.step_ms(), 250.0);
        assert_eq!(Batched { gen_tokens: 0, ..r }.decode_tok_s(), 0.0);
        assert_eq!(batched_n_ctx(4, 10, 8), 21);
    }

    #[test]
    fn prompt_ids_stay_in_the_vocabulary() {
        let p = prompt(100, 300);
        assert_eq!(p.len(), 300);
        assert!(p.iter().all(|&t| t < 100));
        assert_eq!(p[0], 13);
    }
}
