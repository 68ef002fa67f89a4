//! orcd-sampler: token sampling on logit vectors, with llama.cpp's semantics. It depends on nothing
//! of ours (orcd-engine re-exports it as `orcd_engine::sampler`); its invariants are under
//! *Determinism* and *Validation* below.
//!
//! # The chain
//!
//! [`Sampler::sample`] turns one logit vector (one entry per vocabulary token) into one token:
//!
//! 1. the logit bias (always first, as llama.cpp applies it before its chain);
//! 2. the stages of [`SamplerParams::order`], each a no-op when its parameter says "off". The
//!    default order is llama.cpp's (`common_params_sampling::samplers`):
//!    penalties → DRY → top-nσ → top-k → typical → top-p → min-p → XTC → temperature.
//!    With the default parameters DRY, top-nσ, typical and XTC are off, so the chain is
//!    **penalties → top-k → top-p → min-p → temperature**;
//! 3. the draw ([`ops::dist`]): softmax of what is left, one uniform `f64` from the seeded
//!    [`Rng`], first candidate whose running probability sum exceeds it.
//!
//! The token drawn is then accepted into the history (penalties and DRY look at the last N
//! accepted tokens); [`Sampler::accept`] adds tokens by hand (prompt tokens, as llama-server does).
//!
//! Stage semantics are in [`ops`]; in short: temperature 0 is greedy (argmax, lowest id on ties);
//! top-k 0 is off; top-p keeps the smallest prefix in probability order whose mass reaches p (p = 0
//! keeps the top token, p = 1 is off); min-p keeps tokens with probability >= min_p × the top
//! probability (0 is off); the repetition penalty divides positive logits and multiplies the others
//! for tokens seen in the window, and frequency/presence penalties subtract `count·f + p`.
//!
//! # Determinism
//!
//! Same seed + same parameters + same logits + same history ⇒ same token: the generator is
//! xoshiro256** ([`rng`], fixed by its definition), every sort and selection uses one total order
//! (logit, then id), and each [`Sampler::sample`] makes exactly one draw from the main stream (XTC,
//! when on, draws from its own stream seeded from `seed ^ XTC_STREAM`), whatever the candidates.
//! Probabilities use the C library's `expf`, as llama.cpp does, so two platforms with different
//! libms could in principle differ in the last bit of a probability and, at an exact boundary, in
//! a token; on one platform (and across processes) the stream is fixed — a unit test pins it.
//!
//! # Validation
//!
//! Nothing panics on input. Logits must be finite or -inf (a masked token) with at least one
//! finite: NaN/+inf give [`SamplerError::NonFiniteLogit`], all -inf [`SamplerError::NoFiniteLogit`].
//! Out-of-range parameters give [`SamplerError::InvalidParam`]; token ids outside the vocabulary
//! (logit bias, sequence breakers, accepted tokens) [`SamplerError::TokenOutOfVocab`]; a logit
//! vector of the wrong length [`SamplerError::VocabMismatch`]; nothing to draw from
//! [`SamplerError::EmptyCandidates`]; a logit that overflows inside the chain (a tiny temperature,
//! a huge penalty) [`SamplerError::NonFiniteAfter`].
//!
//! # Differences from llama.cpp
//!
//! - The generator is xoshiro256**, not `std::mt19937`: a seed gives the same *distribution* of
//!   tokens as in llama.cpp, not the same tokens.
//! - The draw takes the first candidate whose running sum *exceeds* `u·Σ` (llama.cpp: reaches), so
//!   a zero-probability candidate is never drawn.
//! - Ties are ordered by id everywhere (llama.cpp's sorts leave their order unspecified).
//! - Rejected instead of clamped: negative temperature (llama.cpp: greedy), top-p or typical-p
//!   outside [0, 1], a repetition penalty <= 0, duplicate logit-bias tokens, NaN/+inf logits.
//!   Accepted as in llama.cpp: min-p above 1 (keeps the top token), -inf logits and biases.
//! - Typical sampling skips zero-probability terms in the entropy (llama.cpp adds `0·ln 0 = NaN`).
//! - DRY sequence breakers are token sequences; tokenising breaker strings is the caller's job.
//! - Stages that mask candidates to -inf (greedy temperature, top-nσ) mark the list unsorted.
//!
//! # Cost
//!
//! The logit vector is never copied when the first filtering stage is top-k: the bias and the
//! penalties become a handful of overrides, and the top k are selected by one thresholded scan of
//! the logits that also validates them ([`candidates`]; vectorised, AVX2 where the CPU has it), so
//! the rest of the chain sees k candidates. Greedy decoding (temperature 0, only top-k/top-p/min-p/
//! top-nσ after the penalties) selects just the best candidate the same way. Without top-k the
//! whole vocabulary is materialised (into a reused buffer), top-p takes a softmax over all of it
//! and sorts only as far as the nucleus reaches. `engine/sampler/benches/sampler.rs` measures the
//! chain on a 262,144-entry vocabulary.
//!
//! # Log-probabilities
//!
//! [`logprobs`] reports log-softmax values of the *raw* logits (before bias, penalties, filters and
//! temperature), as OpenAI's `logprobs` and llama.cpp's `n_probs` do.

pub mod candidates;
mod dry;
pub mod ops;
pub mod rng;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

pub use candidates::{Candidate, Candidates};
pub use rng::Rng;

use candidates::{top_m_checked, validate_logits};
use ops::{apply_edits, bias_edits, check_finite, check_nonneg, check_unit, invalid, penalty_edits, Adjust};

/// Errors of the sampler. Every variant says which value was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    #[error("sampler: logit {index} is {value} (logits must be finite, or -inf to mask a token)")]
    NonFiniteLogit { index: usize, value: f32 },
    #[error("sampler: logit of token {token} became {value} in stage {stage}")]
    NonFiniteAfter { stage: &'static str, token: u32, value: f32 },
    #[error("sampler: no candidate has a finite logit ({n} candidates, all -inf)")]
    NoFiniteLogit { n: usize },
    #[error("sampler: empty candidate set")]
    EmptyCandidates,
    #[error("sampler: logit vector has {got} entries, the vocabulary {expected}")]
    VocabMismatch { expected: usize, got: usize },
    #[error("sampler: {what}: token {token} is outside the vocabulary (size {n_vocab})")]
    TokenOutOfVocab { what: &'static str, token: u32, n_vocab: usize },
    #[error("sampler: parameter {name} = {value} must be {constraint}")]
    InvalidParam { name: &'static str, value: String, constraint: &'static str },
    #[error("sampler: stage order lists {0} twice")]
    DuplicateStage(Stage),
    #[error("sampler: unknown stage {0:?} in order string (known: e d s k y p m x t)")]
    UnknownStage(char),
}

type Result<T, E = SamplerError> = std::result::Result<T, E>;

/// A configurable stage of the chain (the draw is always last, the logit bias always first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Penalties,
    Dry,
    TopNSigma,
    TopK,
    Typical,
    TopP,
    MinP,
    Xtc,
    Temperature,
}

impl Stage {
    /// llama.cpp's default order (`--samplers` / `--sampling-seq` default).
    pub const DEFAULT_ORDER: [Stage; 9] = [
        Stage::Penalties,
        Stage::Dry,
        Stage::TopNSigma,
        Stage::TopK,
        Stage::Typical,
        Stage::TopP,
        Stage::MinP,
        Stage::Xtc,
        Stage::Temperature,
    ];

    /// The letter llama.cpp's `--sampling-seq` uses for this stage.
    pub fn letter(self) -> char {
        match self {
            Stage::Penalties => 'e',
            Stage::Dry => 'd',
            Stage::TopNSigma => 's',
            Stage::TopK => 'k',
            Stage::Typical => 'y',
            Stage::TopP => 'p',
            Stage::MinP => 'm',
            Stage::Xtc => 'x',
            Stage::Temperature => 't',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Penalties => "penalties",
            Stage::Dry => "dry",
            Stage::TopNSigma => "top_n_sigma",
            Stage::TopK => "top_k",
            Stage::Typical => "typical",
            Stage::TopP => "top_p",
            Stage::MinP => "min_p",
            Stage::Xtc => "xtc",
            Stage::Temperature => "temperature",
        }
    }

    /// Parse an order in llama.cpp's `--sampling-seq` letters, e.g. `"ekpmt"`.
    pub fn parse_order(s: &str) -> Result<Vec<Stage>> {
        let order = s
            .chars()
            .map(|ch| {
                Stage::DEFAULT_ORDER.into_iter().find(|st| st.letter() == ch).ok_or(SamplerError::UnknownStage(ch))
            })
            .collect::<Result<Vec<_>>>()?;
        check_order(&order)?;
        Ok(order)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn check_order(order: &[Stage]) -> Result<()> {
    for (i, s) in order.iter().enumerate() {
        if order[..i].contains(s) {
            return Err(SamplerError::DuplicateStage(*s));
        }
    }
    Ok(())
}

/// Repetition / frequency / presence penalties (llama.cpp `penalties`).
#[derive(Debug, Clone, PartialEq)]
pub struct PenaltyParams {
    /// Window: the last N accepted tokens (0 = off). llama.cpp default 64.
    pub last_n: usize,
    /// Repetition penalty, > 0 (1 = off). Positive logits are divided by it, others multiplied.
    pub repeat: f32,
    /// Subtracted once per occurrence in the window (0 = off; may be negative).
    pub frequency: f32,
    /// Subtracted once for a token present in the window (0 = off; may be negative).
    pub presence: f32,
}

impl Default for PenaltyParams {
    fn default() -> Self {
        PenaltyParams { last_n: 64, repeat: 1.0, frequency: 0.0, presence: 0.0 }
    }
}

impl PenaltyParams {
    pub fn is_disabled(&self) -> bool {
        self.last_n == 0 || (self.repeat == 1.0 && self.frequency == 0.0 && self.presence == 0.0)
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.repeat.is_finite() && self.repeat > 0.0) {
            return Err(invalid("repeat_penalty", self.repeat, "finite and > 0"));
        }
        check_finite("frequency_penalty", self.frequency)?;
        check_finite("presence_penalty", self.presence)
    }
}

/// DRY parameters (llama.cpp `dry`), with sequence breakers given as token sequences (llama.cpp
/// tokenizes breaker strings; that belongs to the caller that owns the vocabulary).
#[derive(Debug, Clone, PartialEq)]
pub struct DryParams {
    /// 0 = off (llama.cpp default).
    pub multiplier: f32,
    /// >= 1 (< 1 = off). llama.cpp default 1.75.
    pub base: f32,
    /// Repetitions up to this length are free. llama.cpp default 2.
    pub allowed_length: usize,
    /// Window: the last N accepted tokens (0 = off). llama.cpp default 64.
    pub last_n: usize,
    /// Each a non-empty token sequence.
    pub sequence_breakers: Vec<Vec<u32>>,
}

impl Default for DryParams {
    fn default() -> Self {
        DryParams { multiplier: 0.0, base: 1.75, allowed_length: 2, last_n: 64, sequence_breakers: Vec::new() }
    }
}

impl DryParams {
    pub fn is_disabled(&self) -> bool {
        self.multiplier == 0.0 || self.base < 1.0 || self.last_n == 0
    }

    pub fn validate(&self) -> Result<()> {
        check_nonneg("dry_multiplier", self.multiplier)?;
        check_nonneg("dry_base", self.base)?;
        if self.sequence_breakers.iter().any(Vec::is_empty) {
            return Err(invalid("dry_sequence_breakers", "an empty sequence", "non-empty token sequences"));
        }
        Ok(())
    }
}

/// Every sampling parameter. `Default` is llama.cpp's `common_params_sampling` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    /// >= 0; 0 = greedy. Default 0.8.
    pub temperature: f32,
    /// Dynamic temperature range (>= 0; 0 = off) and exponent. Defaults 0 and 1.
    pub dynatemp_range: f32,
    pub dynatemp_exponent: f32,
    /// 0 = off. Default 40.
    pub top_k: usize,
    /// In [0, 1]; 1 = off. Default 0.95.
    pub top_p: f32,
    /// >= 0 (values above 1 keep only the top token); 0 = off. Default 0.05.
    pub min_p: f32,
    /// In [0, 1]; 1 = off. Default 1.
    pub typical_p: f32,
    /// <= 0 = off. Default -1 (off).
    pub top_n_sigma: f32,
    /// XTC chance in [0, 1] (0 = off) and threshold in [0, 1] (> 0.5 = off). Defaults 0, 0.1.
    pub xtc_probability: f32,
    pub xtc_threshold: f32,
    /// Minimum candidates kept by top-p, min-p, typical and XTC. Default 0.
    pub min_keep: usize,
    pub penalties: PenaltyParams,
    pub dry: DryParams,
    /// (token, bias) pairs, unique tokens; bias finite or -inf (masks the token).
    pub logit_bias: Vec<(u32, f32)>,
    /// Seed of the draw. The caller chooses one (and reports it) when the user gives none.
    pub seed: u64,
    /// Stage order, each stage at most once; stages left out do not run.
    pub order: Vec<Stage>,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            dynatemp_range: 0.0,
            dynatemp_exponent: 1.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            top_n_sigma: -1.0,
            xtc_probability: 0.0,
            xtc_threshold: 0.1,
            min_keep: 0,
            penalties: PenaltyParams::default(),
            dry: DryParams::default(),
            logit_bias: Vec::new(),
            seed: 0,
            order: Stage::DEFAULT_ORDER.to_vec(),
        }
    }
}

impl SamplerParams {
    /// Greedy decoding: temperature 0, everything else default.
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, ..Default::default() }
    }

    /// Check every parameter against the ranges documented on the fields.
    pub fn validate(&self, n_vocab: usize) -> Result<()> {
        check_nonneg("temperature", self.temperature)?;
        check_nonneg("dynatemp_range", self.dynatemp_range)?;
        check_finite("dynatemp_exponent", self.dynatemp_exponent)?;
        check_unit("top_p", self.top_p)?;
        check_nonneg("min_p", self.min_p)?;
        check_unit("typical_p", self.typical_p)?;
        check_finite("top_n_sigma", self.top_n_sigma)?;
        check_unit("xtc_probability", self.xtc_probability)?;
        check_unit("xtc_threshold", self.xtc_threshold)?;
        self.penalties.validate()?;
        self.dry.validate()?;
        for b in &self.dry.sequence_breakers {
            for &t in b {
                check_token("dry sequence breaker", t, n_vocab)?;
            }
        }
        check_bias(&self.logit_bias, Some(n_vocab))?;
        check_order(&self.order)
    }

    /// Whether `stage` would change anything with these parameters.
    pub fn is_active(&self, stage: Stage) -> bool {
        match stage {
            Stage::Penalties => !self.penalties.is_disabled(),
            Stage::Dry => !self.dry.is_disabled(),
            Stage::TopNSigma => self.top_n_sigma > 0.0,
            Stage::TopK => self.top_k > 0,
            Stage::Typical => self.typical_p < 1.0,
            Stage::TopP => self.top_p < 1.0,
            Stage::MinP => self.min_p > 0.0,
            Stage::Xtc => self.xtc_probability > 0.0 && self.xtc_threshold <= 0.5,
            Stage::Temperature => self.temperature != 1.0 || self.dynatemp_range > 0.0,
        }
    }
}

fn check_token(what: &'static str, token: u32, n_vocab: usize) -> Result<()> {
    if (token as usize) < n_vocab {
        Ok(())
    } else {
        Err(SamplerError::TokenOutOfVocab { what, token, n_vocab })
    }
}

/// Logit bias entries: unique ids (inside the vocabulary when its size is known), bias not NaN
/// and not +inf.
pub(crate) fn check_bias(biases: &[(u32, f32)], n_vocab: Option<usize>) -> Result<()> {
    for (i, &(t, b)) in biases.iter().enumerate() {
        if let Some(n) = n_vocab {
            check_token("logit bias", t, n)?;
        }
        if b.is_nan() || b == f32::INFINITY {
            return Err(invalid("logit_bias", format!("{b} for token {t}"), "finite or -inf"));
        }
        if biases[..i].iter().any(|e| e.0 == t) {
            return Err(invalid("logit_bias", format!("token {t} listed twice"), "one entry per token"));
        }
    }
    Ok(())
}

/// Stream constant for XTC's own generator (`seed ^ XTC_STREAM`): "XTC" in ASCII.
pub const XTC_STREAM: u64 = 0x0058_5443;

/// One sampled token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    pub token: u32,
    /// Its probability in the final (filtered, tempered) distribution it was drawn from.
    pub prob: f32,
    /// How many candidates that distribution had.
    pub n_candidates: usize,
}

/// The stateful sampler chain: parameters, history of accepted tokens, generators.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    n_vocab: usize,
    stages: Vec<Stage>,
    history: VecDeque<u32>,
    history_cap: usize,
    rng: Rng,
    xtc_rng: Rng,
    bias_edits: Vec<(u32, Adjust)>,
    /// The candidate allocation, reused from call to call (a whole vocabulary when top-k is off).
    scratch: Vec<Candidate>,
}

impl Sampler {
    /// A sampler for a vocabulary of `n_vocab` tokens (the length of every logit vector).
    pub fn new(params: SamplerParams, n_vocab: usize) -> Result<Self> {
        if n_vocab == 0 || n_vocab > u32::MAX as usize {
            return Err(invalid("n_vocab", n_vocab, "in [1, 2^32 - 1]"));
        }
        params.validate(n_vocab)?;
        let stages: Vec<Stage> = params.order.iter().copied().filter(|&s| params.is_active(s)).collect();
        let history_cap = params.penalties.last_n.max(params.dry.last_n);
        Ok(Sampler {
            rng: Rng::new(params.seed),
            xtc_rng: Rng::new(params.seed ^ XTC_STREAM),
            bias_edits: bias_edits(&params.logit_bias),
            scratch: Vec::new(),
            n_vocab,
            stages,
            history: VecDeque::with_capacity(history_cap.min(1 << 16)),
            history_cap,
            params,
        })
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The stages that run, in order (the inactive ones of `params.order` left out).
    pub fn active_stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Add a token to the history that penalties and DRY look at.
    pub fn accept(&mut self, token: u32) -> Result<()> {
        check_token("accepted token", token, self.n_vocab)?;
        if self.history_cap == 0 {
            return Ok(());
        }
        if self.history.len() == self.history_cap {
            self.history.pop_front();
        }
        self.history.push_back(token);
        Ok(())
    }

    /// Forget the history and restart both generators from the seed.
    pub fn reset(&mut self) {
        self.history.clear();
        self.rng = Rng::new(self.params.seed);
        self.xtc_rng = Rng::new(self.params.seed ^ XTC_STREAM);
    }

    /// The history window (oldest first).
    pub fn history(&self) -> Vec<u32> {
        self.history.iter().copied().collect()
    }

    /// Run the bias and the stages (no draw, history unchanged): the candidates the draw would see.
    pub fn candidates(&mut self, logits: &[f32]) -> Result<Candidates> {
        if logits.len() != self.n_vocab {
            return Err(SamplerError::VocabMismatch { expected: self.n_vocab, got: logits.len() });
        }
        let history: Vec<u32> = self.history.iter().copied().collect();

        // Leading sparse stages (bias, penalties, DRY) as overrides of the logit vector.
        let mut overrides: Vec<(u32, f32)> = Vec::new();
        apply_dense(logits, &mut overrides, &self.bias_edits);
        let mut next = 0;
        while let Some(&stage) = self.stages.get(next) {
            let edits = match stage {
                Stage::Penalties => penalty_edits(&history, &self.params.penalties),
                Stage::Dry => dry::dry_edits(&history, &self.params.dry),
                _ => break,
            };
            apply_dense(logits, &mut overrides, &edits);
            next += 1;
        }
        // Greedy with only filters that always keep the best candidate left: the outcome is the
        // best candidate of the edited logits (what the full chain's masking and draw pick, lowest
        // id on ties), so select just that one.
        let greedy = self.params.temperature == 0.0
            && self.params.dynatemp_range <= 0.0
            && self.stages[next..]
                .iter()
                .all(|s| matches!(s, Stage::TopK | Stage::TopP | Stage::MinP | Stage::TopNSigma | Stage::Temperature));
        if greedy {
            return top_k_dense(logits, &overrides, 1);
        }
        let mut c = match self.stages.get(next) {
            Some(Stage::TopK) if self.params.top_k < self.n_vocab => {
                next += 1;
                top_k_dense(logits, &overrides, self.params.top_k)?
            }
            _ => {
                validate_logits(logits)?;
                let mut c = Candidates::from_logits_in(std::mem::take(&mut self.scratch), logits);
                let edits: Vec<(u32, Adjust)> = overrides.iter().map(|&(t, l)| (t, Adjust::Set(l))).collect();
                apply_edits(&mut c, &edits);
                c
            }
        };
        for i in next..self.stages.len() {
            self.apply_stage(self.stages[i], &mut c, &history)?;
        }
        Ok(c)
    }

    fn apply_stage(&mut self, stage: Stage, c: &mut Candidates, history: &[u32]) -> Result<()> {
        let p = &self.params;
        match stage {
            Stage::Penalties => ops::penalties(c, history, &p.penalties),
            Stage::Dry => ops::dry(c, history, &p.dry),
            Stage::TopNSigma => ops::top_n_sigma(c, p.top_n_sigma),
            Stage::TopK => ops::top_k(c, p.top_k),
            Stage::Typical => ops::typical(c, p.typical_p, p.min_keep),
            Stage::TopP => ops::top_p(c, p.top_p, p.min_keep),
            Stage::MinP => ops::min_p(c, p.min_p, p.min_keep),
            Stage::Xtc => ops::xtc(c, p.xtc_probability, p.xtc_threshold, p.min_keep, &mut self.xtc_rng),
            Stage::Temperature => ops::temperature_ext(c, p.temperature, p.dynatemp_range, p.dynatemp_exponent),
        }
    }

    /// Sample one token from `logits` and accept it into the history.
    pub fn sample(&mut self, logits: &[f32]) -> Result<Sampled> {
        let mut c = self.candidates(logits)?;
        let i = ops::dist(&mut c, &mut self.rng)?;
        let chosen = c.items()[i];
        let n_candidates = c.len();
        self.scratch = c.into_items();
        self.accept(chosen.id)?;
        Ok(Sampled { token: chosen.id, prob: chosen.p, n_candidates })
    }
}

/// Apply sparse edits to a logit vector through an override list (sorted by id).
fn apply_dense(logits: &[f32], overrides: &mut Vec<(u32, f32)>, edits: &[(u32, Adjust)]) {
    for &(t, adj) in edits {
        let Some(&raw) = logits.get(t as usize) else { continue };
        match overrides.binary_search_by_key(&t, |o| o.0) {
            Ok(k) => overrides[k].1 = adj.apply(overrides[k].1),
            Err(k) => overrides.insert(k, (t, adj.apply(raw))),
        }
    }
}

/// The top `k` of the logit vector with overrides applied, sorted: the top `k + |overrides|` raw
/// logits contain the top `k` of the tokens without override. Validates the logits on the way.
fn top_k_dense(logits: &[f32], overrides: &[(u32, f32)], k: usize) -> Result<Candidates> {
    let mut top = top_m_checked(logits, k + overrides.len())?;
    if !overrides.is_empty() {
        top.retain(|c| overrides.binary_search_by_key(&c.id, |o| o.0).is_err());
        top.extend(overrides.iter().map(|&(id, logit)| Candidate { id, logit, p: 0.0 }));
        top.sort_unstable_by(candidates::rank);
    }
    top.truncate(k);
    Ok(Candidates::from_sorted_items(top))
}

/// Log-probability of one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
}

/// Log-probabilities from the unfiltered distribution (log-softmax of the raw logits).
#[derive(Debug, Clone, PartialEq)]
pub struct Logprobs {
    /// The requested token's.
    pub token: TokenLogprob,
    /// The `top_n` most likely tokens, most likely first (ties: lowest id first).
    pub top: Vec<TokenLogprob>,
}

/// `log_softmax(logits)[token]` and the top `top_n` entries. The log-sum-exp uses a vectorisable
/// exp (`fast_exp`, relative error below 3e-7) summed in f64 per block; max abs error of a
/// logprob is about 1e-6 for vocabularies up to 2^18.
pub fn logprobs(logits: &[f32], token: u32, top_n: usize) -> Result<Logprobs> {
    let top = top_m_checked(logits, top_n)?;
    check_token("logprob token", token, logits.len())?;
    let lse = log_sum_exp(logits);
    let lp = |l: f32| (l as f64 - lse) as f32;
    let top = top.iter().map(|c| TokenLogprob { token: c.id, logprob: lp(c.logit) }).collect();
    Ok(Logprobs { token: TokenLogprob { token, logprob: lp(logits[token as usize]) }, top })
}

/// `ln Σ exp(l)` of a validated logit vector (at least one finite entry), in f64.
pub(crate) fn log_sum_exp(logits: &[f32]) -> f64 {
    candidates::dispatch_avx2!(lse_avx2, log_sum_exp_impl, (logits: &[f32]) -> f64)
}

#[inline(always)]
fn log_sum_exp_impl(logits: &[f32]) -> f64 {
    const LANES: usize = 16;
    const BLOCK: usize = 1024;
    // Lane-wise maxima (vertical, so it vectorises; a fold over one accumulator would not).
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    let mut it = logits.chunks_exact(LANES);
    for v in &mut it {
        for j in 0..LANES {
            lane_max[j] = if v[j] > lane_max[j] { v[j] } else { lane_max[j] };
        }
    }
    let max = it.remainder().iter().chain(lane_max.iter()).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    let mut total = 0.0f64;
    for block in logits.chunks(BLOCK) {
        // f32 partial sums per lane (at most 64 terms each), then f64 across lanes and blocks.
        let mut lanes = [0.0f32; LANES];
        let mut it = block.chunks_exact(LANES);
        for v in &mut it {
            for j in 0..LANES {
                lanes[j] += fast_exp(v[j] - max);
            }
        }
        let mut s: f64 = lanes.iter().map(|&x| x as f64).sum();
        for &x in it.remainder() {
            s += fast_exp(x - max) as f64;
        }
        total += s;
    }
    max as f64 + total.ln()
}

/// `e^x` for `x <= 0` (inputs below -87.3 give about 1e-38), branch-free and without float→int
/// conversion so that it vectorises: `x = n·ln 2 + r` with `|r| <= ln2/2`, `n` rounded to nearest
/// by adding 1.5·2²³ (whose low mantissa bits then hold `n`), a degree-7 Taylor polynomial for
/// `e^r`, and `2^n` built in the exponent bits. Relative error below 3e-7 (checked against f64
/// in the tests).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23
    let x = if x > -87.3 { x } else { -87.3 };
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // n ∈ [-126, 0]: the integer sits in the low bits of `shifted`'s representation.
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    p * scale
}
