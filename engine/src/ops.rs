//! The op interface every model architecture is written against (DESIGN §2).
//!
//! Invariants:
//! - An architecture (`model/<arch>.rs`) only calls these ops; backends (`backend/<name>.rs`)
//!   implement them and never re-implement an architecture.
//! - Activations are 2-D row-major `[rows, cols]` f32 tensors owned by the backend; a weight is a
//!   GGUF tensor as the backend keeps it. `matmul(x, w)` computes `x · wᵀ` where `w` has GGUF dims
//!   `[k, n]` (ne0 = k, the contiguous axis), as ggml's `mul_mat`.
//! - Every op output the architecture names goes through a [`TapSink`], so the harness can compare
//!   `blk.3.attn_out` with a reference and name the first op that diverges.

use std::sync::Arc;

use crate::Result;

/// RoPE pairing (llama.cpp's `llama_rope_type`): normal rotates adjacent pairs (2i, 2i+1); NeoX
/// rotates (i, i + n_rot/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    Normal,
    Neox,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RopeParams {
    pub style: RopeStyle,
    /// Dimensions rotated per head (the first `n_rot` of each head).
    pub n_rot: usize,
    pub freq_base: f32,
    /// Linear position scaling (1.0 = none).
    pub freq_scale: f32,
    /// YaRN context extension (gpt-oss), `None` for plain RoPE. phi3 uses it with `ext_factor`
    /// 0 for its `rope.scaling.attn_factor` (ggml's mscale on cos and sin).
    pub yarn: Option<Yarn>,
    /// Frequency factors (phi3's LongRoPE `rope_factors_*`, one per rotated pair, ggml's
    /// `freq_factors`): pair `i`'s angle `p · base^(-2i/n_rot)` is divided by `factors[i]` before
    /// YaRN and the position scaling apply. `None` for plain RoPE.
    pub freq_factors: Option<Arc<[f32]>>,
}

impl RopeParams {
    /// The magnitude factor on cos and sin (YaRN's mscale, phi3's attn_factor), in f64 as the
    /// exact backends apply it.
    pub fn mscale_f64(&self) -> f64 {
        match self.yarn {
            Some(y) if y.ext_factor != 0.0 => y.attn_factor as f64 * (1.0 + 0.1 * (1.0 / self.freq_scale as f64).ln()),
            Some(y) => y.attn_factor as f64,
            None => 1.0,
        }
    }

    /// Check a rope call (`x` `[rows, cols]` of `n_head` heads of `head_dim`, `n_pos` positions)
    /// against these parameters: the one check every backend runs before rotating.
    pub fn check_shapes(&self, x: (usize, usize), n_head: usize, head_dim: usize, n_pos: usize) -> Result<()> {
        if x.1 != n_head * head_dim || n_pos != x.0 || self.n_rot > head_dim || !self.n_rot.is_multiple_of(2) {
            return Err(crate::Error::Invalid(format!(
                "rope: [{}, {}] with {n_head} heads of {head_dim}, n_rot {}, {n_pos} positions",
                x.0, x.1, self.n_rot
            )));
        }
        let half = self.n_rot / 2;
        match &self.freq_factors {
            Some(ff) if ff.len() != half => {
                Err(crate::Error::Invalid(format!("rope: {} frequency factors for {half} rotated pairs", ff.len())))
            }
            _ => Ok(()),
        }
    }
}

/// `f(x[r][c], w[c])` for every row `r` of `data` (`cols` wide): the row-broadcast of a 1-D
/// weight (norm scales, biases) both CPU backends use; the caller has checked `w.len() == cols`.
pub fn broadcast_row(data: &mut [f32], cols: usize, w: &[f32], f: impl Fn(&mut f32, f32)) {
    for row in data.chunks_mut(cols.max(1)) {
        for (v, &g) in row.iter_mut().zip(w) {
            f(v, g);
        }
    }
}

/// YaRN parameters as ggml's `rope_yarn` takes them (llama.cpp derives them in
/// `llama_context`'s constructor from `rope.scaling.*`).
///
/// For pair `i` with `theta_extrap = p · base^(-2i/n_rot)` and `theta_interp = freq_scale ·
/// theta_extrap`: `ramp = (1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1)) · ext_factor`,
/// `theta = theta_interp · (1 - ramp) + theta_extrap · ramp`, and cos/sin are multiplied by
/// `attn_factor · (1 + 0.1 · ln(1 / freq_scale))` when `ext_factor != 0` (else by `attn_factor`).
/// `lo`/`hi` are ggml's correction dims: `floor`/`ceil` of `n_rot · ln(n_ctx_orig / (beta · 2π))
/// / (2 ln base)` for `beta_fast`/`beta_slow`, clamped to `[0, n_rot - 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Yarn {
    pub ext_factor: f32,
    pub attn_factor: f32,
    pub beta_fast: f32,
    pub beta_slow: f32,
    /// The training context the YaRN ramp is computed for (`rope.scaling.original_context_length`).
    pub n_ctx_orig: usize,
}

impl Yarn {
    /// ggml's `ggml_rope_yarn_corr_dims`, in f32 as ggml computes them.
    pub fn corr_dims(&self, n_rot: usize, freq_base: f32) -> [f32; 2] {
        let dim = |beta: f32| {
            n_rot as f32 * (self.n_ctx_orig as f32 / (beta * 2.0 * std::f32::consts::PI)).ln() / (2.0 * freq_base.ln())
        };
        let start = dim(self.beta_fast).floor();
        let end = dim(self.beta_slow).ceil();
        [start.max(0.0), end.min(n_rot as f32 - 1.0)]
    }

    /// The extrapolation weight of pair `i` (ggml's `rope_yarn_ramp` times `ext_factor`).
    pub fn ramp(&self, corr: [f32; 2], i: usize) -> f32 {
        let y = (i as f32 - corr[0]) / (corr[1] - corr[0]).max(0.001);
        (1.0 - y.clamp(0.0, 1.0)) * self.ext_factor
    }

    /// The factor on cos and sin.
    pub fn mscale(&self, freq_scale: f32) -> f32 {
        if self.ext_factor != 0.0 {
            self.attn_factor * (1.0 + 0.1 * (1.0 / freq_scale).ln())
        } else {
            self.attn_factor
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnParams {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub v_head_dim: usize,
    /// Multiplier of q·k.
    pub scale: f32,
    /// Sliding window: key at position p0 is masked for query p1 when p1 - p0 >= window.
    pub window: Option<usize>,
    /// tanh soft-capping of the scores (gemma2-style), if any.
    pub softcap: Option<f32>,
}

impl AttnParams {
    /// Check the shapes an attention call gets (`(rows, cols)` of q, k, v and the position
    /// counts) against these parameters: the one check every backend runs before attending.
    pub fn check_shapes(
        &self,
        q: (usize, usize),
        k: (usize, usize),
        v: (usize, usize),
        n_q_pos: usize,
        n_kv_pos: usize,
    ) -> Result<()> {
        let ok = q.1 == self.n_head * self.head_dim
            && k.1 == self.n_head_kv * self.head_dim
            && v.1 == self.n_head_kv * self.v_head_dim
            && k.0 == v.0
            && n_q_pos == q.0
            && n_kv_pos == k.0
            && self.n_head_kv != 0
            && self.n_head.is_multiple_of(self.n_head_kv);
        if ok {
            return Ok(());
        }
        Err(crate::Error::Invalid(format!(
            "attention: q [{}, {}], k [{}, {}], v [{}, {}], {n_q_pos} query and {n_kv_pos} key positions, {self:?}",
            q.0, q.1, k.0, k.1, v.0, v.1
        )))
    }
}

/// Activation functions (GELU is the tanh approximation, as ggml_gelu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Silu,
    Gelu,
}

/// gpt-oss's clamped SwiGLU constants (llama.cpp's `LLM_FFN_SWIGLU_OAI_MOE`).
pub const SWIGLU_OAI_ALPHA: f32 = 1.702;
pub const SWIGLU_OAI_LIMIT: f32 = 7.0;

/// Receives named op outputs (`blk.3.attn_out`) as row-major `[rows, cols]` f32.
pub trait TapSink {
    /// Whether any tap may be wanted (when not, the forward pass formats no names).
    fn active(&self) -> bool {
        true
    }
    /// Whether this name is wanted (lets the forward pass skip copies nobody reads).
    fn wants(&self, name: &str) -> bool;
    fn tap(&mut self, name: &str, rows: usize, cols: usize, data: &[f32]);
}

/// A sink that keeps nothing.
#[derive(Debug, Default)]
pub struct NoTaps;

impl TapSink for NoTaps {
    fn active(&self) -> bool {
        false
    }
    fn wants(&self, _: &str) -> bool {
        false
    }
    fn tap(&mut self, _: &str, _: usize, _: usize, _: &[f32]) {}
}

/// A sink that keeps every tap it is asked for (all when `filter` is empty).
#[derive(Debug, Default)]
pub struct CollectTaps {
    pub filter: Vec<String>,
    pub taps: Vec<(String, usize, usize, Vec<f32>)>,
}

impl TapSink for CollectTaps {
    fn wants(&self, name: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| f == name)
    }
    fn tap(&mut self, name: &str, rows: usize, cols: usize, data: &[f32]) {
        self.taps.push((name.to_string(), rows, cols, data.to_vec()));
    }
}

/// A post-norm and its residual add left to the op that reads their sum, `res + rms_norm_mul(x,
/// eps, w)` ([`Ops::rms_norm_mul_add`]'s arguments): gemma-3's post-norms, folded into the next
/// block's first op ([`Ops::norm_add_norm_matmul_glu`], [`Ops::norm_add_norm_qkv_norm_rope_kv_write`]).
#[derive(Debug)]
pub struct PostNorm<'a, T, W> {
    pub x: &'a T,
    pub w: &'a W,
    pub eps: f32,
    pub res: &'a T,
}

/// Rows of a batch grouped by sequence: how many rows of the current activation belong to each
/// sequence, row by row. A backend that picks a kernel by row count (llama.cpp's CPU k-quant
/// matmul switches formula at 8 rows) decides by the rows of the row's own sequence, so a
/// sequence's numbers never depend on its neighbours in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGroups {
    /// For every row, the number of rows of its sequence in this activation.
    pub seq_rows: Vec<u32>,
}

impl RowGroups {
    /// `n` rows of one sequence.
    pub fn single(n: usize) -> Self {
        RowGroups { seq_rows: vec![n as u32; n] }
    }

    pub fn len(&self) -> usize {
        self.seq_rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq_rows.is_empty()
    }
}

/// Element type of the KV cache: F32 for numerics `exact`, F16 for `fast` (llama.cpp's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvType {
    F32,
    F16,
}

impl KvType {
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }
}

/// The shape of a KV cache, allocated once: `n_layer` × `n_seq` × `n_ctx` slots; slot `p` of
/// sequence `s` holds the key row (`k_cols` wide) and value row (`v_cols`) at position `p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvSpec {
    pub n_layer: usize,
    pub n_seq: usize,
    pub n_ctx: usize,
    pub k_cols: usize,
    pub v_cols: usize,
    pub ty: KvType,
}

impl KvSpec {
    /// Bytes the cache occupies (K and V of every slot); `None` on overflow.
    pub fn bytes(&self) -> Option<usize> {
        self.n_layer
            .checked_mul(self.n_seq)?
            .checked_mul(self.n_ctx)?
            .checked_mul(self.k_cols.checked_add(self.v_cols)?)?
            .checked_mul(self.ty.bytes())
    }
}

/// What a model needs in a backend's memory, computed before any large allocation so a device
/// backend can refuse a model that does not fit ([`Ops::reserve`]) instead of failing halfway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryNeed {
    /// Every tensor as the backend keeps it ([`Ops::weight_bytes`]).
    pub weights: u64,
    /// The KV cache ([`KvSpec::bytes`]).
    pub kv: u64,
    /// Activations and scratch of one forward of up to [`MemoryNeed::BATCH_ROWS`] rows (an
    /// estimate from the hyper-parameters: a few row-major activations of the widest layer).
    pub workspace: u64,
}

impl MemoryNeed {
    /// Rows of the largest forward the workspace estimate covers (a prefill micro-batch).
    pub const BATCH_ROWS: u64 = 512;

    pub fn total(&self) -> u64 {
        self.weights.saturating_add(self.kv).saturating_add(self.workspace)
    }
}

/// The shape of a forward that a device backend may record once and replay (a CUDA graph): the
/// row count and which rows want logits. Token ids, positions and sequence ids are the replay's
/// inputs, so they are not part of the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphKey {
    pub logits: Vec<bool>,
}

impl GraphKey {
    /// Forwards of at most this many rows are recorded (decode steps of a few sequences; a
    /// prefill's shape rarely repeats).
    pub const MAX_ROWS: usize = 8;

    pub fn of(rows: &BatchRows) -> Option<GraphKey> {
        (rows.len() <= Self::MAX_ROWS).then(|| GraphKey { logits: rows.logits.clone() })
    }
}

/// Device memory a backend holds, by category (what `bench --json` reports as `vram_bytes`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceMemory {
    pub device: String,
    pub weights: u64,
    pub kv: u64,
    /// Activations and scratch (pooled buffers included).
    pub workspace: u64,
    /// Free device memory when asked.
    pub free: u64,
    pub total: u64,
    /// With the backend's profiling on (`ORCD_CUDA_PROFILE=1`): per kernel, launches and seconds
    /// (launch + run + a synchronisation), most time first; empty otherwise.
    pub kernel_profile: Vec<(String, u64, f64)>,
}

impl DeviceMemory {
    pub fn used(&self) -> u64 {
        self.weights + self.kv + self.workspace
    }
}

/// One forward's rows as the host describes them: for row `r`, token `tokens[r]` of sequence
/// `seq[r]` at position `pos[r]`; `logits[r]` says whether its logits are wanted. Rows of one
/// sequence need not be adjacent. Validated by the engine before a backend sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRows {
    pub tokens: Vec<u32>,
    pub pos: Vec<u32>,
    pub seq: Vec<u32>,
    pub logits: Vec<bool>,
}

impl BatchRows {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every per-row list has one entry per token.
    pub fn check_lengths(&self) -> Result<()> {
        let n = self.len();
        if self.pos.len() != n || self.seq.len() != n || self.logits.len() != n {
            return Err(crate::Error::Invalid(format!(
                "batch: {n} tokens, {} positions, {} sequence ids, {} logit flags",
                self.pos.len(),
                self.seq.len(),
                self.logits.len()
            )));
        }
        Ok(())
    }

    /// Check the rows against a cache: every sequence id inside it and every position below its
    /// context (the one check every backend runs before writing or reading the cache).
    pub fn check_kv(&self, spec: &KvSpec) -> Result<()> {
        let mut last = std::collections::BTreeMap::<u32, u32>::new();
        for (&s, &p) in self.seq.iter().zip(&self.pos) {
            let e = last.entry(s).or_insert(p);
            *e = (*e).max(p);
        }
        for (&s, &p) in &last {
            if s as usize >= spec.n_seq || p as usize >= spec.n_ctx {
                return Err(crate::Error::Invalid(format!(
                    "batch: sequence {s} up to position {p} does not fit a cache of {} sequences × {} positions",
                    spec.n_seq, spec.n_ctx
                )));
            }
        }
        Ok(())
    }

    /// Per row, the number of rows of its sequence in the batch.
    pub fn groups(&self) -> RowGroups {
        let mut count = std::collections::HashMap::<u32, u32>::new();
        for &s in &self.seq {
            *count.entry(s).or_default() += 1;
        }
        RowGroups { seq_rows: self.seq.iter().map(|s| count[s]).collect() }
    }

    /// The rows whose logits are wanted, in batch order.
    pub fn output_rows(&self) -> Vec<u32> {
        (0..self.len() as u32).filter(|&r| self.logits[r as usize]).collect()
    }

    /// The row groups of the output rows.
    pub fn output_groups(&self) -> RowGroups {
        let out = BatchRows {
            tokens: self.output_rows(),
            pos: Vec::new(),
            seq: self.output_rows().iter().map(|&r| self.seq[r as usize]).collect(),
            logits: Vec::new(),
        };
        out.groups()
    }
}

/// Which index of the batch a row lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// The token ids (embeddings).
    Tokens,
    /// The positions (gpt2's learned position embeddings).
    Positions,
}

/// The ops a backend provides. Every op returns a `Result` (a device error is an error, never a
/// panic); activations, the KV cache, the batch and MoE routing ids are backend values, so a
/// device backend runs a whole forward without a host round trip until the logits (or their
/// argmax) are read.
pub trait Ops {
    /// A row-major `[rows, cols]` f32 activation.
    type Tensor;
    /// A weight as the backend keeps it.
    type Weight;
    /// The KV cache ([`KvSpec`]), written in place.
    type Kv;
    /// One forward's batch ([`BatchRows`]) as the backend keeps it (uploaded once per forward).
    type Batch;
    /// MoE routing ids (`[n, k]` expert ids), kept where the backend computes them.
    type Ids;

    /// The backend's name (`cpu`, `cpu-fast`, `cuda`): error messages and reports.
    fn name(&self) -> &'static str;
    /// The KV element type of this backend's numerics (F32 exact, F16 fast).
    fn kv_type(&self) -> KvType;

    /// Load a tensor of a GGUF file as this backend keeps weights.
    fn load_weight(&self, f: &crate::gguf::GgufFile, t: &crate::gguf::TensorInfo) -> Result<Self::Weight>;
    /// Bytes a tensor of the file occupies once loaded (default: its bytes in the file).
    fn weight_bytes(&self, t: &crate::gguf::TensorInfo) -> u64 {
        t.n_bytes
    }
    /// Check, before the weights and the KV cache are allocated, that `need` fits; a device
    /// backend answers [`crate::Error::InsufficientVram`] when it does not. Host backends accept.
    fn reserve(&self, need: &MemoryNeed) -> Result<()> {
        let _ = need;
        Ok(())
    }
    // ----- recorded forwards (CUDA graphs). Host backends keep the defaults: nothing recorded. -----

    /// Replay the forward recorded for `key` with `rows` as its inputs; `None` when none is
    /// recorded. The returned tensor is the recorded forward's output (valid until the next
    /// replay of `key`).
    fn graph_replay(&self, key: &GraphKey, rows: &BatchRows) -> Result<Option<Self::Tensor>> {
        let _ = (key, rows);
        Ok(None)
    }
    /// Whether to record the forward about to run on batch `b` under `key` (the backend decides:
    /// a shape seen before, no recording failed for it). When it answers true, the ops until
    /// [`Ops::graph_end`] are recorded, not executed.
    fn graph_begin(&self, key: &GraphKey, b: &Self::Batch) -> Result<bool> {
        let _ = (key, b);
        Ok(false)
    }
    /// End the recording begun for `key`: with the forward's output, keep the recording and run
    /// it once (the output is then computed) and answer true; with `None` (the forward failed),
    /// or when the recording cannot be kept, discard it, never record `key` again and answer
    /// false: nothing ran, the caller runs the forward as usual.
    fn graph_end(&self, key: &GraphKey, out: Option<&Self::Tensor>) -> Result<bool> {
        let _ = (key, out);
        Ok(false)
    }

    // ----- greedy steps fed on the device (no host round trip between steps). Host backends keep
    // the defaults: nothing kept, the caller reads each step's ids and feeds them itself. -----

    /// Each row's argmax of `x` (the ids [`Ops::argmax`] gives) left where the backend computed
    /// it, as `[rows, 1]` ids, for [`Ops::upload_batch_fed`] / [`Ops::graph_replay_fed`] to feed
    /// to the next step and [`Ops::ids_to_host`] to read later; `None` where the backend keeps
    /// no ids (the caller then reads them with `argmax`).
    fn argmax_keep(&self, x: &Self::Tensor) -> Result<Option<Self::Ids>> {
        let _ = x;
        Ok(None)
    }
    /// Ids kept by [`Ops::argmax_keep`], read back (`rows` of them).
    fn ids_to_host(&self, ids: &Self::Ids) -> Result<Vec<u32>> {
        let _ = ids;
        Err(crate::Error::Invalid(format!("{}: no kept ids to read", self.name())))
    }
    /// [`Ops::upload_batch`] of `rows` whose token ids are `tokens` (kept by
    /// [`Ops::argmax_keep`], one a row, already valid ids) instead of `rows.tokens`.
    fn upload_batch_fed(&self, rows: &BatchRows, tokens: &Self::Ids) -> Result<Self::Batch> {
        let _ = (rows, tokens);
        Err(crate::Error::Invalid(format!("{}: no kept ids to feed", self.name())))
    }
    /// [`Ops::graph_replay`] with the token ids taken from `tokens` (as
    /// [`Ops::upload_batch_fed`]).
    fn graph_replay_fed(&self, key: &GraphKey, rows: &BatchRows, tokens: &Self::Ids) -> Result<Option<Self::Tensor>> {
        let _ = (key, rows, tokens);
        Ok(None)
    }

    /// Device memory in use by category (`None`: a host backend).
    fn device_memory(&self) -> Option<DeviceMemory> {
        None
    }
    /// An activation from host data.
    fn tensor_from_host(&self, rows: usize, cols: usize, data: &[f32]) -> Result<Self::Tensor>;
    fn shape(&self, t: &Self::Tensor) -> (usize, usize);
    fn to_host(&self, t: &Self::Tensor) -> Result<Vec<f32>>;
    /// Reinterpret `[r, c]` as `[rows, cols]` (same element count).
    fn reshape(&self, t: Self::Tensor, rows: usize, cols: usize) -> Result<Self::Tensor>;
    /// GGUF dims of a weight.
    fn weight_dims(&self, w: &Self::Weight) -> Vec<u64>;

    /// Hand one forward's rows to the backend (validated by the caller).
    fn upload_batch(&self, rows: &BatchRows) -> Result<Self::Batch>;
    /// The row groups of a batch (for [`Ops::matmul`]).
    fn batch_groups(&self, b: &Self::Batch) -> RowGroups;
    /// The KV cache of `spec`, allocated once; a type the backend does not keep is an error.
    fn kv_alloc(&self, spec: &KvSpec) -> Result<Self::Kv>;
    /// Bytes the cache holds.
    fn kv_bytes(&self, kv: &Self::Kv) -> usize;
    /// Write row `r` of `k` and `v` (post-RoPE) into layer `il`'s slot `pos[r]` of sequence
    /// `seq[r]`, rounded to the cache's type.
    fn kv_write(&self, kv: &mut Self::Kv, il: usize, k: &Self::Tensor, v: &Self::Tensor, b: &Self::Batch)
        -> Result<()>;
    /// Causal multi-head attention of `q` (`[n, n_head*head_dim]`, row `r` at position `pos[r]`
    /// of sequence `seq[r]`) over layer `il`'s cache of the row's own sequence, slots `0..=pos[r]`
    /// (minus those outside the window). With `sinks` (width `n_head`), one learned logit per
    /// query head joins each softmax denominator: `p_j = e^(s_j - m) / (Σ e^(s_i - m) +
    /// e^(sink_h - m))`, `m` the max over the scores and the sink (no value, not scaled).
    fn attention(
        &self,
        q: &Self::Tensor,
        kv: &Self::Kv,
        il: usize,
        b: &Self::Batch,
        p: &AttnParams,
        sinks: Option<&Self::Weight>,
    ) -> Result<Self::Tensor>;

    /// Rows `index` of `w` (dims `[n_embd, n]`): embedding lookup of the batch's token ids or
    /// positions. Ids out of range are an error.
    fn get_rows(&self, w: &Self::Weight, b: &Self::Batch, index: Index) -> Result<Self::Tensor>;
    /// The rows of `x` (one per batch row) whose logits the batch wants; `x` itself when all are.
    fn output_rows(&self, x: Self::Tensor, b: &Self::Batch) -> Result<Self::Tensor>;
    /// `x / sqrt(mean(x²) + eps)` per row.
    fn rms_norm(&self, x: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
    /// `mul_row(rms_norm(x, eps), w)`; a backend may fuse the two (the same values).
    fn rms_norm_mul(&self, x: &Self::Tensor, eps: f32, w: &Self::Weight) -> Result<Self::Tensor> {
        self.mul_row(&self.rms_norm(x, eps)?, w)
    }
    /// `res + rms_norm_mul(x, eps, w)` (a post-norm and the residual add after it); a backend may
    /// fuse them (the same values: f32 addition is commutative, so `res + y` is `add(res, y)`).
    fn rms_norm_mul_add(
        &self,
        x: &Self::Tensor,
        eps: f32,
        w: &Self::Weight,
        res: &Self::Tensor,
    ) -> Result<Self::Tensor> {
        self.add(res, &self.rms_norm_mul(x, eps, w)?)
    }
    /// `(x - mean) / sqrt(var + eps)` per row.
    fn layer_norm(&self, x: &Self::Tensor, eps: f32) -> Result<Self::Tensor>;
    /// Multiply every row by a 1-D weight of width `cols` (norm weights).
    fn mul_row(&self, x: &Self::Tensor, w: &Self::Weight) -> Result<Self::Tensor>;
    /// Add a 1-D weight of width `cols` to every row (biases).
    fn add_row(&self, x: &Self::Tensor, b: &Self::Weight) -> Result<Self::Tensor>;
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    fn scale(&self, x: &Self::Tensor, s: f32) -> Result<Self::Tensor>;
    /// `x · wᵀ`: x `[n, k]`, w dims `[k, m]` → `[n, m]`; `g` groups x's rows by sequence.
    fn matmul(&self, x: &Self::Tensor, w: &Self::Weight, g: &RowGroups) -> Result<Self::Tensor>;
    /// `res + rms_norm_mul(x · wᵀ + bias, eps, nw)`: a projection, then its post-norm and the
    /// residual add (gemma-3's output and down projections). The default composes
    /// [`Ops::matmul_fused`] and [`Ops::rms_norm_mul_add`]; a backend may fuse them (the same
    /// values).
    #[allow(clippy::too_many_arguments)]
    fn matmul_norm_add(
        &self,
        x: &Self::Tensor,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        nw: &Self::Weight,
        eps: f32,
        res: &Self::Tensor,
        g: &RowGroups,
    ) -> Result<Self::Tensor> {
        self.rms_norm_mul_add(&self.matmul_fused(x, w, bias, None, g)?, eps, nw, res)
    }
    /// `res + (x · wᵀ + bias)`: a projection with its bias and the residual add after it, each
    /// optional. The default composes [`Ops::matmul`], [`Ops::add_row`] and [`Ops::add`]; a backend
    /// may fuse them, giving the same values (f32 addition is commutative, so `res + y` is
    /// `add(res, y)` whichever operand comes first).
    fn matmul_fused(
        &self,
        x: &Self::Tensor,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        res: Option<&Self::Tensor>,
        g: &RowGroups,
    ) -> Result<Self::Tensor> {
        let mut y = self.matmul(x, w, g)?;
        if let Some(b) = bias {
            y = self.add_row(&y, b)?;
        }
        if let Some(r) = res {
            y = self.add(r, &y)?;
        }
        Ok(y)
    }
    /// Rotary embedding on `[n, n_head * head_dim]`, row `r` at the batch's position `pos[r]`.
    fn rope(
        &self,
        x: &Self::Tensor,
        n_head: usize,
        head_dim: usize,
        b: &Self::Batch,
        p: &RopeParams,
    ) -> Result<Self::Tensor>;
    /// RoPE of a layer's queries (`n_head` heads) and keys (`n_head_kv` heads) at the batch's
    /// positions: two [`Ops::rope`]s, which a backend may do in one pass (the same values).
    #[allow(clippy::too_many_arguments)]
    fn rope_qk(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        b: &Self::Batch,
        p: &RopeParams,
    ) -> Result<(Self::Tensor, Self::Tensor)> {
        Ok((self.rope(q, n_head, head_dim, b, p)?, self.rope(k, n_head_kv, head_dim, b, p)?))
    }
    /// [`Ops::rope_qk`], then [`Ops::kv_write`] of the rotated keys and `v` into layer `il`:
    /// returns the rotated queries. A backend may rotate and store in one pass (the same values).
    #[allow(clippy::too_many_arguments)]
    fn rope_qk_kv_write(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        kv: &mut Self::Kv,
        il: usize,
        n_head: usize,
        n_head_kv: usize,
        head_dim: usize,
        b: &Self::Batch,
        p: &RopeParams,
    ) -> Result<Self::Tensor> {
        let (q, k) = self.rope_qk(q, k, n_head, n_head_kv, head_dim, b, p)?;
        self.kv_write(kv, il, &k, v, b)?;
        Ok(q)
    }
    /// Per-head RMS norms of q (weight `hn.0`) and k (`hn.1`; eps `hn.2`), then
    /// [`Ops::rope_qk_kv_write`], then the rotated queries times `q_scale`: gemma-3's attention
    /// input side after its projections. A backend may fuse them (the same values); the default
    /// composes them ([`norm_rope_qk_kv_write_composed`]).
    #[allow(clippy::too_many_arguments)]
    fn norm_rope_qk_kv_write(
        &self,
        q: Self::Tensor,
        k: Self::Tensor,
        v: &Self::Tensor,
        kv: &mut Self::Kv,
        il: usize,
        heads: (usize, usize, usize),
        b: &Self::Batch,
        p: &RopeParams,
        hn: (&Self::Weight, &Self::Weight, f32),
        q_scale: Option<f32>,
    ) -> Result<Self::Tensor>
    where
        Self: Sized,
    {
        norm_rope_qk_kv_write_composed(self, q, k, v, kv, il, heads, b, p, hn, q_scale)
    }
    /// [`Ops::norm_matmuls`] of `x` by q, k and v (`ws`, with their biases), then
    /// [`Ops::rope_qk_kv_write`]: an attention block's input side, from the residual stream to the
    /// rotated queries (returned) and the cache. A backend may run it as one pass (the same
    /// values): the decode step's projections, RoPE and KV store in one launch.
    #[allow(clippy::too_many_arguments)]
    fn norm_qkv_rope_kv_write(
        &self,
        x: &Self::Tensor,
        nw: &Self::Weight,
        eps: f32,
        ws: &[(&Self::Weight, Option<&Self::Weight>); 3],
        g: &RowGroups,
        kv: &mut Self::Kv,
        il: usize,
        heads: (usize, usize, usize),
        b: &Self::Batch,
        p: &RopeParams,
    ) -> Result<Self::Tensor> {
        let (n_head, n_head_kv, head_dim) = heads;
        let mut out = self.norm_matmuls(x, nw, eps, ws, g)?.into_iter();
        match (out.next(), out.next(), out.next()) {
            (Some(q), Some(k), Some(v)) => self.rope_qk_kv_write(&q, &k, &v, kv, il, n_head, n_head_kv, head_dim, b, p),
            _ => Err(crate::Error::Invalid("norm_matmuls: fewer than three outputs".into())),
        }
    }
    /// [`Ops::norm_matmuls`] of `x` by q, k and v, then [`Ops::norm_rope_qk_kv_write`] (per-head
    /// RMS norms `hn`, RoPE, the KV store, q's pre-scale): gemma-3's attention input side, from
    /// the residual stream to the rotated queries (returned) and the cache. A backend may run it
    /// as one pass (the same values); the default composes the two ops.
    #[allow(clippy::too_many_arguments)]
    fn norm_qkv_norm_rope_kv_write(
        &self,
        x: &Self::Tensor,
        nw: &Self::Weight,
        eps: f32,
        ws: &[(&Self::Weight, Option<&Self::Weight>); 3],
        g: &RowGroups,
        kv: &mut Self::Kv,
        il: usize,
        heads: (usize, usize, usize),
        b: &Self::Batch,
        p: &RopeParams,
        hn: (&Self::Weight, &Self::Weight, f32),
        q_scale: Option<f32>,
    ) -> Result<Self::Tensor>
    where
        Self: Sized,
    {
        let mut out = self.norm_matmuls(x, nw, eps, ws, g)?.into_iter();
        match (out.next(), out.next(), out.next()) {
            (Some(q), Some(k), Some(v)) => self.norm_rope_qk_kv_write(q, k, &v, kv, il, heads, b, p, hn, q_scale),
            _ => Err(crate::Error::Invalid("norm_matmuls: fewer than three outputs".into())),
        }
    }
    /// The previous layer's FFN post-norm and residual add, then
    /// [`Ops::norm_qkv_norm_rope_kv_write`] of their sum `h` (gemma-3's layer boundary), returned
    /// as `(h, q)`; `h` is the residual the attention's output is added to. A backend may compute
    /// `h` inside the projections' launches (the same values).
    #[allow(clippy::too_many_arguments)]
    fn norm_add_norm_qkv_norm_rope_kv_write(
        &self,
        pre: &PostNorm<'_, Self::Tensor, Self::Weight>,
        nw: &Self::Weight,
        eps: f32,
        ws: &[(&Self::Weight, Option<&Self::Weight>); 3],
        g: &RowGroups,
        kv: &mut Self::Kv,
        il: usize,
        heads: (usize, usize, usize),
        b: &Self::Batch,
        p: &RopeParams,
        hn: (&Self::Weight, &Self::Weight, f32),
        q_scale: Option<f32>,
    ) -> Result<(Self::Tensor, Self::Tensor)>
    where
        Self: Sized,
    {
        let h = self.rms_norm_mul_add(pre.x, pre.eps, pre.w, pre.res)?;
        let q = self.norm_qkv_norm_rope_kv_write(&h, nw, eps, ws, g, kv, il, heads, b, p, hn, q_scale)?;
        Ok((h, q))
    }
    /// `act(gate) * up`.
    fn glu(&self, gate: &Self::Tensor, up: &Self::Tensor, act: Act) -> Result<Self::Tensor>;
    /// `glu(x · gateᵀ, x · upᵀ, act)`: a gated FFN's first half; a backend may fuse the two
    /// projections and the GLU (the same values).
    fn matmul_glu(
        &self,
        x: &Self::Tensor,
        gate: &Self::Weight,
        up: &Self::Weight,
        act: Act,
        g: &RowGroups,
    ) -> Result<Self::Tensor> {
        self.glu(&self.matmul(x, gate, g)?, &self.matmul(x, up, g)?, act)
    }
    /// `[matmul_fused(rms_norm_mul(x, eps, nw), w, bias, None) for (w, bias) in ws]`: projections
    /// of one normalized input (q, k and v; the output head). A backend may normalize inside the
    /// projections and run them in one pass, giving the same values.
    fn norm_matmuls(
        &self,
        x: &Self::Tensor,
        nw: &Self::Weight,
        eps: f32,
        ws: &[(&Self::Weight, Option<&Self::Weight>)],
        g: &RowGroups,
    ) -> Result<Vec<Self::Tensor>> {
        let h = self.rms_norm_mul(x, eps, nw)?;
        ws.iter().map(|(w, b)| self.matmul_fused(&h, w, *b, None, g)).collect()
    }
    /// `matmul_glu(rms_norm_mul(x, eps, nw), gate, up, act)`; a backend may fuse the norm too
    /// (the same values).
    #[allow(clippy::too_many_arguments)]
    fn norm_matmul_glu(
        &self,
        x: &Self::Tensor,
        nw: &Self::Weight,
        eps: f32,
        gate: &Self::Weight,
        up: &Self::Weight,
        act: Act,
        g: &RowGroups,
    ) -> Result<Self::Tensor> {
        self.matmul_glu(&self.rms_norm_mul(x, eps, nw)?, gate, up, act, g)
    }
    /// A post-norm and its residual add, then the next block's norm and GLU pair (gemma-3's
    /// attention post-norm before its FFN): `h = pre`'s sum ([`PostNorm`]) and
    /// `norm_matmul_glu(h, nw, eps, gate, up, act)`, returned as `(h, glu)`; `h` is the residual
    /// the FFN's output is added to. A backend may compute `h` inside the GLU's launch (the same
    /// values).
    #[allow(clippy::too_many_arguments)]
    fn norm_add_norm_matmul_glu(
        &self,
        pre: &PostNorm<'_, Self::Tensor, Self::Weight>,
        nw: &Self::Weight,
        eps: f32,
        gate: &Self::Weight,
        up: &Self::Weight,
        act: Act,
        g: &RowGroups,
    ) -> Result<(Self::Tensor, Self::Tensor)> {
        let h = self.rms_norm_mul_add(pre.x, pre.eps, pre.w, pre.res)?;
        let y = self.norm_matmul_glu(&h, nw, eps, gate, up, act, g)?;
        Ok((h, y))
    }
    /// `act(x)` elementwise.
    fn act(&self, x: &Self::Tensor, act: Act) -> Result<Self::Tensor>;
    /// `cap * tanh(x / cap)`.
    fn softcap(&self, x: &Self::Tensor, cap: f32) -> Result<Self::Tensor>;
    /// Columns `[start, start + len)` of every row (splitting a fused QKV).
    fn slice_cols(&self, x: &Self::Tensor, start: usize, len: usize) -> Result<Self::Tensor>;
    /// Per row, the index of the largest value (the first on ties): greedy decoding reads these
    /// few ids instead of the whole logits.
    fn argmax(&self, x: &Self::Tensor) -> Result<Vec<u32>>;
    /// Per row, the `k` largest values with their indices, largest first (ties: lower index).
    fn top_k(&self, x: &Self::Tensor, k: usize) -> Result<Vec<Vec<(u32, f32)>>>;

    // ----- gpt-oss (MoE). -----

    /// MoE routing (llama.cpp's `SOFTMAX_WEIGHT` gating): per row of `logits` (`[n, n_expert]`),
    /// the `k` largest (ties: lower expert id first), then the softmax over those `k` values.
    /// Returns the expert ids (`[n, k]`, largest first) and the weights `[n, k]`.
    fn moe_route(&self, logits: &Self::Tensor, k: usize) -> Result<(Self::Ids, Self::Tensor)>;
    /// ggml's `mul_mat_id` (+ `add_id`): `w` is 3-D `[k_in, m, n_expert]`, `ids` is `[n, k]`;
    /// output row `t·k + j` is `x_r · W[ids[t·k + j]]ᵀ + b[ids[t·k + j]]`, where `x_r` is row `t`
    /// of `x` when `x` has `n` rows (the input is shared by the experts) or row `t·k + j` when it
    /// has `n·k` rows. `b` (if any) is `[m, n_expert]`. Result `[n·k, m]`.
    fn matmul_id(
        &self,
        x: &Self::Tensor,
        w: &Self::Weight,
        b: Option<&Self::Weight>,
        ids: &Self::Ids,
        k: usize,
    ) -> Result<Self::Tensor>;
    /// gpt-oss's clamped SwiGLU (ggml's `swiglu_oai`): `g = min(gate, limit)`,
    /// `u = clamp(up, -limit, limit)`, `g / (1 + e^(-alpha·g)) · (u + 1)`.
    fn swiglu_oai(&self, gate: &Self::Tensor, up: &Self::Tensor, alpha: f32, limit: f32) -> Result<Self::Tensor>;
    /// Weighted sum of each row's `k` expert outputs: `experts` `[n·k, e]`, `weights` `[n, k]`;
    /// `out[t] = ((w₀·e₀ + w₁·e₁) + w₂·e₂) + …` in slot order, as llama.cpp's chain of adds.
    fn moe_combine(&self, experts: &Self::Tensor, weights: &Self::Tensor, k: usize) -> Result<Self::Tensor>;
}

/// [`Ops::norm_rope_qk_kv_write`] as its parts: `rms_norm_mul` of every head of q and of k, then
/// [`Ops::rope_qk_kv_write`], then [`Ops::scale`] of the queries.
#[allow(clippy::too_many_arguments)]
pub fn norm_rope_qk_kv_write_composed<B: Ops>(
    be: &B,
    q: B::Tensor,
    k: B::Tensor,
    v: &B::Tensor,
    kv: &mut B::Kv,
    il: usize,
    heads: (usize, usize, usize),
    b: &B::Batch,
    p: &RopeParams,
    hn: (&B::Weight, &B::Weight, f32),
    q_scale: Option<f32>,
) -> Result<B::Tensor> {
    let (n_head, n_head_kv, head_dim) = heads;
    let head_norm = |t: B::Tensor, n_heads: usize, w: &B::Weight| -> Result<B::Tensor> {
        let n = be.shape(&t).0;
        let t = be.reshape(t, n * n_heads, head_dim)?;
        let t = be.rms_norm_mul(&t, hn.2, w)?;
        be.reshape(t, n, n_heads * head_dim)
    };
    let q = head_norm(q, n_head, hn.0)?;
    let k = head_norm(k, n_head_kv, hn.1)?;
    let q = be.rope_qk_kv_write(&q, &k, v, kv, il, n_head, n_head_kv, head_dim, b, p)?;
    match q_scale {
        Some(s) => be.scale(&q, s),
        None => Ok(q),
    }
}

/// Check the shapes of a [`Ops::matmul_id`] call; returns `(n, m, n_expert, shared_input)`.
pub fn check_matmul_id(
    x_rows: usize,
    x_cols: usize,
    dims: &[u64],
    bias_len: Option<usize>,
    ids: &[u32],
    k: usize,
) -> Result<(usize, usize, usize, bool)> {
    let err = |m: String| crate::Error::Invalid(format!("matmul_id: {m}"));
    let [k_in, m, n_exp] = match dims {
        [a, b, c] => [*a as usize, *b as usize, *c as usize],
        _ => return Err(err(format!("weight dims {dims:?} are not 3-D"))),
    };
    if k == 0 || !ids.len().is_multiple_of(k) {
        return Err(err(format!("{} ids for {k} experts per row", ids.len())));
    }
    let n = ids.len() / k;
    if x_cols != k_in || (x_rows != n && x_rows != n * k) {
        return Err(err(format!("x [{x_rows}, {x_cols}] for {n} rows × {k} experts of [{k_in}, {m}]")));
    }
    if let Some(&bad) = ids.iter().find(|&&e| e as usize >= n_exp) {
        return Err(err(format!("expert id {bad} out of range ({n_exp} experts)")));
    }
    if bias_len.is_some_and(|l| l != m * n_exp) {
        return Err(err(format!("bias of {:?} values, need {m} × {n_exp}", bias_len)));
    }
    Ok((n, m, n_exp, x_rows == n && k > 1))
}

/// Check the shapes of a [`Ops::moe_combine`] call: `experts` `[n·k, e]`, `weights` `[n, k]`.
pub fn check_moe_combine(experts: (usize, usize), weights: (usize, usize), k: usize) -> Result<()> {
    if k == 0 || weights.1 != k || experts.0 != weights.0 * k {
        return Err(crate::Error::Invalid(format!(
            "moe_combine: experts [{}, {}], weights [{}, {}], k {k}",
            experts.0, experts.1, weights.0, weights.1
        )));
    }
    Ok(())
}

/// The top-`k` of one router row: indices sorted by value descending, ties by lower index.
pub fn top_k_desc(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Attention of `q` (rows at `q_pos` of one sequence) over explicit keys and values `k`, `v`
/// (`[n_kv, ...]`, at positions `0..n_kv`): writes them to a fresh one-layer cache of the
/// backend's KV type, then attends. Op tests and the `ops` suite use it to drive
/// [`Ops::attention`] with chosen inputs.
pub fn attend_explicit<B: Ops>(
    b: &B,
    q: &B::Tensor,
    k: &B::Tensor,
    v: &B::Tensor,
    q_pos: &[u32],
    p: &AttnParams,
    sinks: Option<&B::Weight>,
) -> Result<B::Tensor> {
    let (n_kv, k_cols) = b.shape(k);
    let v_cols = b.shape(v).1;
    let n_ctx = q_pos.iter().map(|&x| x as usize + 1).max().unwrap_or(0).max(n_kv).max(1);
    let spec = KvSpec { n_layer: 1, n_seq: 1, n_ctx, k_cols, v_cols, ty: b.kv_type() };
    let mut kv = b.kv_alloc(&spec)?;
    let rows = |pos: Vec<u32>| BatchRows {
        tokens: vec![0; pos.len()],
        seq: vec![0; pos.len()],
        logits: vec![true; pos.len()],
        pos,
    };
    let kb = b.upload_batch(&rows((0..n_kv as u32).collect()))?;
    b.kv_write(&mut kv, 0, k, v, &kb)?;
    let qb = b.upload_batch(&rows(q_pos.to_vec()))?;
    b.attention(q, &kv, 0, &qb, p, sinks)
}

/// A batch of sequence 0 at `pos` (token ids 0, every row's logits wanted): op tests.
pub fn rows_at(pos: &[u32]) -> BatchRows {
    BatchRows { tokens: vec![0; pos.len()], pos: pos.to_vec(), seq: vec![0; pos.len()], logits: vec![true; pos.len()] }
}
