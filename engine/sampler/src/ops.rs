//! The sampler stages as functions on [`Candidates`], one per llama.cpp sampler, with llama.cpp's
//! semantics (learnt from `src/llama-sampler.cpp` and `tests/test-sampling.cpp` of the llama.cpp
//! vendored in llama-cpp-python 0.3.36). [`super::Sampler`] chains them; the conformance suite
//! calls them one by one as test-sampling.cpp does.
//!
//! Each function validates its own parameters ([`SamplerError::InvalidParam`]), never panics, and
//! documents where it keeps, reorders or drops candidates and whether it leaves probabilities in
//! `p`. "Disabled" values make a stage a no-op, as in llama.cpp.

use super::candidates::{max_logit, rank, softmax as softmax_impl, Candidate, Candidates};
use super::rng::Rng;
use super::{DryParams, PenaltyParams, SamplerError};

type Result<T, E = SamplerError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, constraint: &'static str) -> SamplerError {
    SamplerError::InvalidParam { name, value: value.to_string(), constraint }
}

pub(crate) fn check_unit(name: &'static str, v: f32) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(name, v, "in [0, 1]"))
    }
}

pub(crate) fn check_nonneg(name: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(name, v, "finite and >= 0"))
    }
}

pub(crate) fn check_finite(name: &'static str, v: f32) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(name, v, "finite"))
    }
}

// ---------------------------------------------------------------------------------------------
// Sparse logit edits (logit bias, penalties, DRY): a sorted list of token ids and how each one's
// logit changes. The chain also applies them to a bare logit vector without building candidates.

/// How one token's logit changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Adjust {
    /// `logit + x` (logit bias; DRY adds the negated penalty: `l - d == l + (-d)` exactly).
    Add(f32),
    /// llama.cpp's penalties for a token seen `count > 0` times in the window: divide a positive
    /// logit by `repeat`, multiply a non-positive one, then subtract `count·frequency + presence`.
    Penalty { count: u32, repeat: f32, frequency: f32, presence: f32 },
    /// Replace the logit (the chain's overrides when it materialises the candidates).
    Set(f32),
}

impl Adjust {
    pub(crate) fn apply(self, logit: f32) -> f32 {
        match self {
            Adjust::Add(x) => logit + x,
            Adjust::Penalty { count, repeat, frequency, presence } => {
                let l = if logit <= 0.0 { logit * repeat } else { logit / repeat };
                l - (count as f32 * frequency + presence)
            }
            Adjust::Set(x) => x,
        }
    }
}

/// Apply edits (sorted by id, unique) to the candidates that carry those ids.
pub(crate) fn apply_edits(c: &mut Candidates, edits: &[(u32, Adjust)]) {
    let Some(&(max_id, _)) = edits.last() else {
        return;
    };
    if c.is_identity() {
        let items = c.items_mut();
        for &(id, adj) in edits {
            if let Some(it) = items.get_mut(id as usize) {
                it.logit = adj.apply(it.logit);
            }
        }
    } else {
        // A bitset over the edited ids rejects most candidates with one load.
        let max_id = max_id as usize;
        let mut bits = vec![0u64; max_id / 64 + 1];
        for &(id, _) in edits {
            bits[id as usize / 64] |= 1 << (id % 64);
        }
        for it in c.items_mut() {
            let i = it.id as usize;
            if i <= max_id && bits[i / 64] & (1 << (i % 64)) != 0 {
                if let Ok(k) = edits.binary_search_by_key(&it.id, |e| e.0) {
                    it.logit = edits[k].1.apply(it.logit);
                }
            }
        }
    }
    c.mark_unsorted();
}

/// Logit bias edits: `biases` must have unique ids (checked by the caller).
pub(crate) fn bias_edits(biases: &[(u32, f32)]) -> Vec<(u32, Adjust)> {
    let mut e: Vec<(u32, Adjust)> = biases.iter().map(|&(id, b)| (id, Adjust::Add(b))).collect();
    e.sort_by_key(|x| x.0);
    e
}

/// Penalty edits from the last `p.last_n` tokens of `history` (empty when disabled).
pub(crate) fn penalty_edits(history: &[u32], p: &PenaltyParams) -> Vec<(u32, Adjust)> {
    if p.is_disabled() {
        return Vec::new();
    }
    let window = &history[history.len().saturating_sub(p.last_n)..];
    let mut sorted = window.to_vec();
    sorted.sort_unstable();
    let mut edits: Vec<(u32, Adjust)> = Vec::new();
    for chunk in sorted.chunk_by(|a, b| a == b) {
        let count = chunk.len() as u32;
        edits.push((
            chunk[0],
            Adjust::Penalty { count, repeat: p.repeat, frequency: p.frequency, presence: p.presence },
        ));
    }
    edits
}

/// The logit bias stage: add `bias` to the logit of each listed token present in the list (ids
/// not present are ignored, as in llama.cpp; a `-inf` bias masks the token). Ids must be unique.
pub fn logit_bias(c: &mut Candidates, biases: &[(u32, f32)]) -> Result<()> {
    super::check_bias(biases, None)?;
    apply_edits(c, &bias_edits(biases));
    Ok(())
}

/// Repetition, frequency and presence penalties over the last `p.last_n` tokens of `history`
/// (llama.cpp's `penalties` sampler after accepting `history`): for each candidate seen `n > 0`
/// times, a positive logit is divided by `repeat` and a non-positive one multiplied by it, then
/// `n·frequency + presence` is subtracted. Disabled when `last_n == 0` or `repeat == 1`,
/// `frequency == 0`, `presence == 0`. Leaves the list unsorted; `p` untouched.
pub fn penalties(c: &mut Candidates, history: &[u32], p: &PenaltyParams) -> Result<()> {
    p.validate()?;
    apply_edits(c, &penalty_edits(history, p));
    Ok(())
}

/// DRY ("don't repeat yourself", llama.cpp's `dry` sampler with token-sequence breakers): a token
/// that would extend a repetition of length `L >= allowed_length` found in the last `last_n`
/// tokens gets `multiplier · base^(L - allowed_length)` subtracted from its logit (the exponent
/// clamped so the power stays below f32's maximum). A sequence breaker limits how far back a
/// repetition may reach; a single-token breaker is never penalised. Disabled when
/// `multiplier == 0`, `base < 1` or `last_n == 0`.
pub fn dry(c: &mut Candidates, history: &[u32], d: &DryParams) -> Result<()> {
    d.validate()?;
    apply_edits(c, &super::dry::dry_edits(history, d));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Filters.

/// Top-k: keep the `k` highest-ranked candidates, sorted (a partial selection, not a full sort).
/// `k == 0` is off. As llama.cpp, any `k > 0` leaves the list sorted, even `k >= len`.
pub fn top_k(c: &mut Candidates, k: usize) -> Result<()> {
    if k == 0 {
        return Ok(());
    }
    c.select_top(k);
    Ok(())
}

/// Top-p (nucleus): compute probabilities (softmax of the current logits), then keep the shortest
/// prefix in rank order whose cumulative probability (f32, in order) reaches `p`, and at least
/// `min_keep` candidates. `p == 1` is off; `p == 0` keeps the top candidate. Leaves the list sorted
/// with probabilities in `p` (not renormalised).
///
/// Large unsorted lists (over 1024) are sorted only as far as the nucleus reaches: a histogram of
/// the probability mass by distance below the top logit (512 buckets of 1/16 nat) bounds the
/// nucleus; the candidates in the buckets that hold `p + 0.002` of the mass go to the front and
/// are sorted (they outrank all others); if the exact f32 scan still runs past them, the sorted
/// prefix grows fourfold at a time by partial selection. The result is the same as a full sort's.
pub fn top_p(c: &mut Candidates, p: f32, min_keep: usize) -> Result<()> {
    check_unit("top_p", p)?;
    if p >= 1.0 || c.is_empty() {
        return Ok(());
    }
    let max = softmax_impl(c, false, "top-p")?;
    let mut prefix = c.len();
    if !c.is_sorted() && c.len() > 1024 {
        prefix = nucleus_prefix(c, max, p);
    } else {
        c.sort_all();
    }
    let mut cum = 0.0f32;
    let mut last = c.len();
    let mut i = 0;
    while i < c.len() {
        cum += c.items()[i].p;
        if cum >= p && i + 1 >= min_keep {
            last = i + 1;
            break;
        }
        if !c.is_sorted() && i + 1 == prefix {
            let next = prefix.saturating_mul(4);
            c.extend_sorted_prefix(prefix, next);
            prefix = next;
        }
        i += 1;
    }
    // The first `last` items are in rank order (inside the sorted prefix).
    c.truncate_sorted(last);
    Ok(())
}

/// Sort a prefix of a large unsorted list that most likely holds the top-p nucleus; returns its
/// length (see [`top_p`]).
fn nucleus_prefix(c: &mut Candidates, max: f32, p: f32) -> usize {
    const BUCKETS: usize = 512;
    const SCALE: f32 = 16.0; // buckets per nat
                             // Monotone in the logit: a lower bucket means a strictly higher logit.
    let bucket = |x: &Candidate| -> usize {
        let d = (max - x.logit) * SCALE;
        if d < (BUCKETS - 1) as f32 {
            d as usize
        } else {
            BUCKETS - 1
        }
    };
    let mut mass = [0.0f64; BUCKETS];
    for x in c.items() {
        mass[bucket(x)] += x.p as f64;
    }
    let target = p as f64 + 2e-3;
    let mut cum = 0.0f64;
    let mut last_bucket = None;
    for (b, m) in mass.iter().enumerate().take(BUCKETS - 1) {
        cum += m;
        if cum >= target {
            last_bucket = Some(b);
            break;
        }
    }
    if let Some(b) = last_bucket {
        let n = c.partition_sorted_prefix(|x| bucket(x) <= b);
        if n > 0 {
            return n;
        }
    }
    c.extend_sorted_prefix(0, 256);
    256
}

/// Min-p: keep the candidates whose probability is at least `p` times the top one's, i.e. whose
/// logit is `>= max_logit + ln p`, and at least `min_keep` (and always the top one). `p == 0` is
/// off; `p >= 1` keeps only the candidates tied with the top logit (llama.cpp accepts `p > 1`:
/// nothing passes, and its fallback keeps the top candidate). An unsorted list keeps its order; a
/// sorted one (or the fallback when too few pass) is cut in rank order. `p` untouched.
pub fn min_p(c: &mut Candidates, p: f32, min_keep: usize) -> Result<()> {
    check_nonneg("min_p", p)?;
    if p <= 0.0 || c.is_empty() {
        return Ok(());
    }
    let ln_p = p.ln();
    if !c.is_sorted() {
        let max = c.items().iter().fold(-f32::MAX, |m, x| if x.logit > m { x.logit } else { m });
        let min_logit = max + ln_p;
        let n_pass = c.items().iter().filter(|x| x.logit >= min_logit).count();
        if n_pass > 0 && n_pass >= min_keep {
            c.retain(|x| x.logit >= min_logit);
            return Ok(());
        }
        c.sort_all();
    }
    let min_logit = c.items()[0].logit + ln_p;
    let items = c.items();
    let mut i = 1;
    while i < items.len() {
        if items[i].logit < min_logit && i >= min_keep {
            break;
        }
        i += 1;
    }
    c.truncate(i);
    Ok(())
}

/// Locally typical sampling: softmax (sorting the list), entropy `H`, then keep candidates in
/// increasing order of `|−ln p − H|` until their cumulative probability exceeds `p` (and at least
/// `min_keep`). `p == 1` is off. Leaves the list unsorted (typicality order) with the softmax
/// probabilities in `p` (not renormalised). Zero-probability candidates add nothing to `H`
/// (llama.cpp would add `0·ln 0 = NaN`).
pub fn typical(c: &mut Candidates, p: f32, min_keep: usize) -> Result<()> {
    check_unit("typical_p", p)?;
    if p >= 1.0 || c.is_empty() {
        return Ok(());
    }
    softmax_impl(c, true, "typical")?;
    let items = c.items();
    let mut entropy = 0.0f32;
    for x in items {
        if x.p > 0.0 {
            entropy += -x.p * x.p.ln();
        }
    }
    let scores: Vec<f32> = items.iter().map(|x| (-x.p.ln() - entropy).abs()).collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut cum = 0.0f32;
    let mut last = order.len();
    for (i, &idx) in order.iter().enumerate() {
        cum += items[idx].p;
        if cum > p && (min_keep == 0 || i + 1 >= min_keep) {
            last = i + 1;
            break;
        }
    }
    let kept: Vec<Candidate> = order[..last].iter().map(|&i| items[i]).collect();
    c.replace_unsorted(kept);
    Ok(())
}

/// Top-nσ: mask (logit = -inf) every candidate whose logit is below `max − n·σ`, where `max`, the
/// mean and the standard deviation σ are taken over the candidates whose logit is not -inf.
/// `n <= 0` is off (as llama.cpp since PR 13345). Keeps every candidate; order unchanged.
pub fn top_n_sigma(c: &mut Candidates, n: f32) -> Result<()> {
    check_finite("top_n_sigma", n)?;
    if n <= 0.0 || c.len() <= 1 {
        return Ok(());
    }
    let items = c.items();
    let mut max = items[0].logit;
    let mut sum = 0.0f32;
    let mut count = 0usize;
    for x in items.iter().filter(|x| x.logit != f32::NEG_INFINITY) {
        max = max.max(x.logit);
        sum += x.logit;
        count += 1;
    }
    let mean = if count > 0 { sum / count as f32 } else { 0.0 };
    let mut acc = 0.0f32;
    for x in items.iter().filter(|x| x.logit != f32::NEG_INFINITY) {
        // llama.cpp: `acc += pow(logit - mean, 2)` — the square in double, the sum stored in float.
        acc = (acc as f64 + ((x.logit - mean) as f64).powi(2)) as f32;
    }
    let std = if count > 0 { ((acc / count as f32) as f64).sqrt() as f32 } else { 0.0 };
    let cut = max - n * std;
    let mut masked = false;
    for x in c.items_mut() {
        if x.logit < cut {
            x.logit = f32::NEG_INFINITY;
            masked = true;
        }
    }
    if masked {
        // Masked candidates tie at -inf out of id order: no longer in rank order.
        c.mark_unsorted();
    }
    Ok(())
}

/// XTC ("exclude top choices"): with chance `probability` (one `f32` draw from `rng` per call when
/// enabled and at least 2 candidates), softmax (sorting), then drop every top candidate whose
/// probability is `>= threshold` except the last of them, if at least `min_keep` remain.
/// Off when `probability <= 0` or `threshold > 0.5`. Leaves softmax probabilities in `p`.
pub fn xtc(c: &mut Candidates, probability: f32, threshold: f32, min_keep: usize, rng: &mut Rng) -> Result<()> {
    check_unit("xtc_probability", probability)?;
    check_unit("xtc_threshold", threshold)?;
    if probability <= 0.0 || threshold > 0.5 || c.len() < 2 {
        return Ok(());
    }
    let chance = rng.next_f32();
    if chance > probability {
        return Ok(());
    }
    softmax_impl(c, true, "xtc")?;
    let mut pos_last = 0;
    for (i, x) in c.items().iter().enumerate() {
        if x.p >= threshold {
            pos_last = i;
        } else {
            break;
        }
    }
    if c.len() - pos_last >= min_keep && pos_last > 0 {
        c.drop_front(pos_last);
    }
    Ok(())
}

/// Temperature: `t > 0` divides every logit by `t` (order unchanged); `t == 0` is greedy: every
/// logit but the first maximal one (lowest index in list order on ties) becomes -inf, so the draw
/// can only pick it. Negative or non-finite `t` is an error (llama.cpp treats `t < 0` as 0).
pub fn temperature(c: &mut Candidates, t: f32) -> Result<()> {
    check_nonneg("temperature", t)?;
    temperature_impl(c, t);
    Ok(())
}

pub(crate) fn temperature_impl(c: &mut Candidates, t: f32) {
    if c.is_empty() {
        return;
    }
    if t <= 0.0 {
        let items = c.items_mut();
        let mut best = 0;
        for i in 1..items.len() {
            if items[i].logit > items[best].logit {
                items[best].logit = f32::NEG_INFINITY;
                best = i;
            } else {
                items[i].logit = f32::NEG_INFINITY;
            }
        }
        if items.len() > 2 {
            // The masked candidates tie at -inf out of id order.
            c.mark_unsorted();
        }
        return;
    }
    if t != 1.0 {
        for x in c.items_mut() {
            x.logit /= t;
        }
    }
}

/// Dynamic temperature (llama.cpp's `temp_ext`): with `delta > 0` and at least 2 candidates, the
/// temperature is `max(0, t−delta) + 2·delta·(H/ln n)^exponent` from the softmax entropy `H`
/// (sorting the list), then probabilities are recomputed in f64; otherwise plain [`temperature`].
pub fn temperature_ext(c: &mut Candidates, t: f32, delta: f32, exponent: f32) -> Result<()> {
    check_nonneg("temperature", t)?;
    check_nonneg("dynatemp_range", delta)?;
    check_finite("dynatemp_exponent", exponent)?;
    if delta <= 0.0 {
        temperature_impl(c, t);
        return Ok(());
    }
    if c.len() <= 1 {
        return Ok(());
    }
    let min_temp = (t - delta).max(0.0);
    let max_temp = t + delta;
    let max_entropy = -(1.0f32 / c.len() as f32).ln();
    softmax_impl(c, true, "temperature-ext")?;
    let mut entropy = 0.0f32;
    for x in c.items() {
        if x.p > 0.0 {
            entropy -= x.p * x.p.ln();
        }
    }
    let normalized = entropy / max_entropy;
    let dyn_temp = min_temp + (max_temp - min_temp) * normalized.powf(exponent);
    temperature_impl(c, dyn_temp);
    let max = c.items()[0].logit as f64;
    let mut sum = 0.0f64;
    for x in c.items_mut() {
        let p = (x.logit as f64 - max).exp();
        x.p = p as f32;
        sum += p;
    }
    for x in c.items_mut() {
        x.p = (x.p as f64 / sum) as f32;
    }
    Ok(())
}

/// Softmax over the candidates (llama.cpp's: `p = expf(logit − max) / Σ`, f32 sum), optionally
/// sorting first.
pub fn softmax(c: &mut Candidates, sort: bool) -> Result<()> {
    softmax_impl(c, sort, "softmax").map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Draws.

/// Draw one candidate from the softmax of the current logits with one `f64` draw `u ∈ [0, 1)`
/// from `rng` — always exactly one, even for a single candidate, so the stream position depends
/// only on the number of draws. Probabilities are left normalised in `p` (`expf` per candidate,
/// the sum in f64, as llama.cpp's `dist`). The chosen index is the first whose running sum exceeds
/// `u·Σ`: a zero-probability candidate is never chosen. Returns the index in the list.
pub fn dist(c: &mut Candidates, rng: &mut Rng) -> Result<usize> {
    if c.is_empty() {
        return Err(SamplerError::EmptyCandidates);
    }
    let u = rng.next_f64();
    let max = max_logit(c, "dist")?;
    if c.len() == 1 {
        c.items_mut()[0].p = 1.0;
        return Ok(0);
    }
    let mut sum = 0.0f64;
    for x in c.items_mut() {
        let p = (x.logit - max).exp();
        x.p = p;
        sum += p as f64;
    }
    let target = sum * u;
    let mut run = 0.0f64;
    let mut chosen = None;
    let mut last_nonzero = 0;
    for (i, x) in c.items_mut().iter_mut().enumerate() {
        if x.p > 0.0 {
            last_nonzero = i;
        }
        if chosen.is_none() {
            run += x.p as f64;
            if run > target {
                chosen = Some(i);
            }
        }
        x.p = (x.p as f64 / sum) as f32;
    }
    Ok(chosen.unwrap_or(last_nonzero))
}

/// Greedy: the index of the highest-ranked candidate (highest logit, lowest id on ties). Sets
/// probabilities to one-hot.
pub fn greedy(c: &mut Candidates) -> Result<usize> {
    max_logit(c, "greedy")?;
    let best = c
        .items()
        .iter()
        .enumerate()
        .min_by(|a, b| rank(a.1, b.1))
        .map(|(i, _)| i)
        .ok_or(SamplerError::EmptyCandidates)?;
    for (i, x) in c.items_mut().iter_mut().enumerate() {
        x.p = if i == best { 1.0 } else { 0.0 };
    }
    Ok(best)
}
