//! Suite `sampler`: every case of llama.cpp's `tests/test-sampling.cpp` (llama-cpp-python 0.3.36's
//! vendored llama.cpp) as goldens, recorded by `goldens/recorders/record_sampler.py`, which parses
//! the .cpp and writes each call's inputs, parameters and expected vectors (never computed by us).
//!
//! Checks (`check` in the case file):
//! - `probs`: candidates built as the C++ `sampler_tester` builds them (`logit = logf(p)`, `p` as
//!   given, list unsorted), the `steps` applied with [`orcd_engine::sampler::ops`], then the
//!   candidates' probabilities compared in list order with `expected_probs`: same length and
//!   `|Δ| < 1e-5` per entry (the metric and threshold of test-sampling.cpp's `check()`).
//! - `queue`: `test_sampler_queue` — vocabulary `logit = logf(id)`, the samplers of `sequence`
//!   (`k` top-k, `p` top-p with min_keep 1, `m` min-p with min_keep 1), each followed by a draw;
//!   after each, the candidate count and end tokens are checked with the C++ test's own formulas,
//!   transcribed in [`queue_expectation`]. Where the C++ checks the end tokens only on a sorted
//!   list, this runner checks the largest and smallest id on any list (a stronger check).
//! - `dist_singleton_rng`: a draw from a single candidate advances the generator as a draw from
//!   two does (4 later draws equal).

use orcd_engine::sampler::{ops, Candidate, Candidates, DryParams, PenaltyParams, Rng, SamplerError};
use serde::Deserialize;

use crate::case::{Backend, Outcome};

/// test-sampling.cpp's `check()`: `fabs(p - expected) < 1e-5`.
pub const PROB_TOLERANCE: f64 = 1e-5;

/// One sampler case file.
#[derive(Debug, Clone, Deserialize)]
pub struct SamplerCase {
    pub name: String,
    /// `probs`, `queue` or `dist_singleton_rng`.
    pub check: String,
    #[serde(default)]
    pub source_line: u32,
    #[serde(default)]
    pub source_call: String,
    #[serde(default)]
    pub input_probs: Vec<f32>,
    #[serde(default)]
    pub history: Vec<u32>,
    #[serde(default)]
    pub expected_probs: Vec<f32>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub n_vocab: usize,
    #[serde(default)]
    pub sequence: String,
    #[serde(default)]
    pub top_k: usize,
    #[serde(default)]
    pub top_p: f32,
    #[serde(default)]
    pub min_p: f32,
    #[serde(default)]
    pub seed: u64,
}

/// One sampler application, as the C++ test function applies it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Temp { t: f32 },
    TempExt { t: f32, delta: f32, exponent: f32 },
    TopK { k: usize },
    TopP { p: f32, min_keep: usize },
    MinP { p: f32, min_keep: usize },
    Typical { p: f32, min_keep: usize },
    Xtc { probability: f32, threshold: f32, min_keep: usize, seed: u64 },
    Penalties { last_n: usize, repeat: f32, frequency: f32, presence: f32 },
    Dry { multiplier: f32, base: f32, allowed_length: usize, last_n: usize, sequence_breakers: Vec<Vec<u32>> },
    TopNSigma { n: f32 },
    Dist { seed: u64 },
}

pub fn run(case: &SamplerCase, _backend: Backend) -> Outcome {
    let result = match case.check.as_str() {
        "probs" => check_probs(case),
        "queue" => check_queue(case),
        "dist_singleton_rng" => check_singleton_rng(case),
        other => Err(format!("unknown check {other:?}")),
    };
    match result {
        Ok(detail) => Outcome::Pass { detail },
        Err(message) => Outcome::Fail {
            message: format!("{message}\n  source: test-sampling.cpp:{} {}", case.source_line, case.source_call),
        },
    }
}

fn apply(c: &mut Candidates, step: &Step, history: &[u32]) -> Result<(), SamplerError> {
    match step {
        Step::Temp { t } => ops::temperature(c, *t),
        Step::TempExt { t, delta, exponent } => ops::temperature_ext(c, *t, *delta, *exponent),
        Step::TopK { k } => ops::top_k(c, *k),
        Step::TopP { p, min_keep } => ops::top_p(c, *p, *min_keep),
        Step::MinP { p, min_keep } => ops::min_p(c, *p, *min_keep),
        Step::Typical { p, min_keep } => ops::typical(c, *p, *min_keep),
        Step::Xtc { probability, threshold, min_keep, seed } => {
            ops::xtc(c, *probability, *threshold, *min_keep, &mut Rng::new(*seed))
        }
        Step::Penalties { last_n, repeat, frequency, presence } => ops::penalties(
            c,
            history,
            &PenaltyParams { last_n: *last_n, repeat: *repeat, frequency: *frequency, presence: *presence },
        ),
        Step::Dry { multiplier, base, allowed_length, last_n, sequence_breakers } => ops::dry(
            c,
            history,
            &DryParams {
                multiplier: *multiplier,
                base: *base,
                allowed_length: *allowed_length,
                last_n: *last_n,
                sequence_breakers: sequence_breakers.clone(),
            },
        ),
        Step::TopNSigma { n } => ops::top_n_sigma(c, *n),
        Step::Dist { seed } => ops::dist(c, &mut Rng::new(*seed)).map(|_| ()),
    }
}

fn check_probs(case: &SamplerCase) -> Result<String, String> {
    if case.input_probs.is_empty() || case.steps.is_empty() {
        return Err("probs case without input_probs or steps".into());
    }
    let items =
        case.input_probs.iter().enumerate().map(|(i, &p)| Candidate { id: i as u32, logit: p.ln(), p }).collect();
    let mut c = Candidates::from_items(items);
    for (i, step) in case.steps.iter().enumerate() {
        apply(&mut c, step, &case.history).map_err(|e| format!("step {i} ({step:?}) failed: {e}"))?;
    }
    let got = c.probs();
    let want = &case.expected_probs;
    if got.len() != want.len() {
        return Err(format!(
            "metric: candidate count (then |Δp| < {PROB_TOLERANCE}): got {} candidates {:?} with p {:?}, expected {} with p {:?}",
            got.len(),
            c.ids(),
            got,
            want.len(),
            want
        ));
    }
    let deltas: Vec<f64> = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs()).collect();
    // A NaN difference fails too.
    if let Some(i) = deltas.iter().position(|d| d.is_nan() || *d >= PROB_TOLERANCE) {
        return Err(format!(
            "metric: |Δp| < {PROB_TOLERANCE} per candidate (test-sampling.cpp check()): first difference at index {i} (token {}): got {}, expected {}, |Δ| = {:e}; got {:?}, expected {:?}",
            c.items()[i].id,
            got[i],
            want[i],
            deltas[i],
            got,
            want
        ));
    }
    let max = deltas.iter().fold(0.0f64, |a, &b| a.max(b));
    Ok(format!("{} probabilities within {PROB_TOLERANCE} (max |Δ| = {max:.2e})", got.len()))
}

/// What test_sampler_queue asserts after one step, from its formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueExpectation {
    pub size: i64,
    pub max_id: i64,
    pub min_id: i64,
}

/// test_sampler_queue's expectation after sampler `s` left `size` candidates, updating its running
/// `min_token_id` (the C++ integer and float32 arithmetic kept as written; `size` is the actual
/// count, which the C++ formulas use too).
pub fn queue_expectation(
    s: char,
    n_vocab: i64,
    size: i64,
    top_k: i64,
    top_p: f32,
    min_p: f32,
    min_token_id: &mut i64,
) -> Option<QueueExpectation> {
    let max_token_id = n_vocab - 1;
    match s {
        'k' => {
            let expected_size = size.min(top_k);
            *min_token_id = (*min_token_id).max(n_vocab - top_k);
            Some(QueueExpectation { size: expected_size, max_id: max_token_id, min_id: *min_token_id })
        }
        'p' => {
            let divisor = n_vocab * (n_vocab - 1) / 2 - *min_token_id * (*min_token_id - 1) / 2;
            let target = (top_p * divisor as f32).ceil() as i64;
            *min_token_id = n_vocab;
            let mut expected_size = 0;
            let mut cumsum = 0i64;
            loop {
                *min_token_id -= 1;
                expected_size += 1;
                cumsum += *min_token_id;
                if cumsum >= target {
                    break;
                }
            }
            if *min_token_id == 1 {
                *min_token_id -= 1;
                expected_size += 1;
            }
            Some(QueueExpectation { size: expected_size, max_id: max_token_id, min_id: *min_token_id })
        }
        'm' => {
            let mut expected_size = ((1.0f32 - min_p) * n_vocab as f32).ceil() as i64;
            expected_size = expected_size.max(1).min(size);
            let mut m = (min_p * n_vocab as f32).floor() as i64;
            m = m.max(1).max(n_vocab - size).min(n_vocab - 1);
            *min_token_id = m;
            Some(QueueExpectation { size: expected_size, max_id: max_token_id, min_id: m })
        }
        _ => None,
    }
}

fn check_queue(case: &SamplerCase) -> Result<String, String> {
    let n = case.n_vocab;
    if n == 0 || n > u32::MAX as usize || case.sequence.is_empty() {
        return Err("queue case without n_vocab or sequence".into());
    }
    let items = (0..n).map(|i| Candidate { id: i as u32, logit: (i as f32).ln(), p: 0.0 }).collect();
    let mut c = Candidates::from_items(items);
    let mut min_token_id = 0i64;
    let mut sizes = Vec::new();
    for (step, s) in case.sequence.chars().enumerate() {
        let r = match s {
            'k' => ops::top_k(&mut c, case.top_k),
            'p' => ops::top_p(&mut c, case.top_p, 1),
            'm' => ops::min_p(&mut c, case.min_p, 1),
            other => return Err(format!("unknown sampler {other:?} in sequence")),
        };
        r.and_then(|_| ops::dist(&mut c, &mut Rng::new(0)).map(|_| ()))
            .map_err(|e| format!("step {step} ({s}) failed: {e}"))?;
        let size = c.len() as i64;
        let Some(want) =
            queue_expectation(s, n as i64, size, case.top_k as i64, case.top_p, case.min_p, &mut min_token_id)
        else {
            return Err(format!("unknown sampler {s:?} in sequence"));
        };
        let metric = "metric: exact size and end tokens (test-sampling.cpp test_sampler_queue)";
        if size != want.size {
            return Err(format!("{metric}: step {step} ('{s}'): {size} candidates, expected {}", want.size));
        }
        let ids = c.ids();
        let (lo, hi) = (ids.iter().min().copied().unwrap_or(0) as i64, ids.iter().max().copied().unwrap_or(0) as i64);
        if hi != want.max_id || lo != want.min_id {
            return Err(format!(
                "{metric}: step {step} ('{s}'): ids span [{lo}, {hi}], expected [{}, {}]",
                want.min_id, want.max_id
            ));
        }
        if c.is_sorted() {
            let (first, last) = (ids[0] as i64, ids[ids.len() - 1] as i64);
            if first != want.max_id || last != want.min_id {
                return Err(format!(
                    "{metric}: step {step} ('{s}'): sorted list runs from token {first} to {last}, expected {} to {}",
                    want.max_id, want.min_id
                ));
            }
        }
        sizes.push(size);
    }
    Ok(format!("sequence {:?}: sizes {sizes:?} and end tokens as test_sampler_queue expects", case.sequence))
}

fn check_singleton_rng(case: &SamplerCase) -> Result<String, String> {
    let draw = |rng: &mut Rng, logits: &[f32]| -> Result<u32, String> {
        let mut c = Candidates::from_logits(logits);
        let i = ops::dist(&mut c, rng).map_err(|e| e.to_string())?;
        Ok(c.items()[i].id)
    };
    let mut singleton = Rng::new(case.seed);
    let mut control = Rng::new(case.seed);
    draw(&mut singleton, &[0.0])?;
    draw(&mut control, &[0.0, 0.0])?;
    let logits = vec![0.0f32; 256];
    for i in 0..4 {
        let (a, b) = (draw(&mut singleton, &logits)?, draw(&mut control, &logits)?);
        if a != b {
            return Err(format!(
                "metric: exact token equality: draw {i} after a single-candidate draw gave token {a}, the control {b}"
            ));
        }
    }
    Ok("4 draws equal after a single-candidate draw".into())
}
