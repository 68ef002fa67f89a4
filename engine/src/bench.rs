//! Throughput measurement shared by `worker-orcd bench` and the harness's `perf` suite: one
//! prefill of a deterministic prompt, then greedy decode through the argmax op (no full logits
//! copy, as a server's greedy path), on sequence 0 of a freshly reset model.

use crate::model::AnyModel;
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
    for _ in 0..gen_tokens {
        let batch = m.seq_batch(0, &[next], false);
        next = first(m.decode_argmax(&batch)?)?;
    }
    let tg = if gen_tokens > 0 { gen_tokens as f64 / t.elapsed().as_secs_f64() } else { 0.0 };
    Ok((pp, tg))
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
    fn prompt_ids_stay_in_the_vocabulary() {
        let p = prompt(100, 300);
        assert_eq!(p.len(), 300);
        assert!(p.iter().all(|&t| t < 100));
        assert_eq!(p[0], 13);
    }
}
