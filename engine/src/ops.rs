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
    /// Whether this name is wanted (lets the forward pass skip copies nobody reads).
    fn wants(&self, name: &str) -> bool;
    fn tap(&mut self, name: &str, rows: usize, cols: usize, data: &[f32]);
}

/// A sink that keeps nothing.
#[derive(Debug, Default)]
pub struct NoTaps;

impl TapSink for NoTaps {
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

/// The ops a backend provides.
pub trait Ops {
    type Tensor;
    type Weight;

    /// Load a tensor of a GGUF file as this backend keeps weights.
    fn load_weight(&self, f: &crate::gguf::GgufFile, t: &crate::gguf::TensorInfo) -> Result<Self::Weight>;
    /// An activation from host data.
    fn tensor_from_host(&self, rows: usize, cols: usize, data: Vec<f32>) -> Result<Self::Tensor>;
    fn shape(&self, t: &Self::Tensor) -> (usize, usize);
    fn to_host(&self, t: &Self::Tensor) -> Vec<f32>;
    /// Reinterpret `[r, c]` as `[rows, cols]` (same element count).
    fn reshape(&self, t: Self::Tensor, rows: usize, cols: usize) -> Result<Self::Tensor>;
    /// GGUF dims of a weight.
    fn weight_dims(&self, w: &Self::Weight) -> Vec<u64>;

    /// Embedding lookup: rows `ids` of `w` (dims `[n_embd, n_vocab]`). Ids out of range are an error.
    fn get_rows(&self, w: &Self::Weight, ids: &[u32]) -> Result<Self::Tensor>;
    /// `x / sqrt(mean(x²) + eps)` per row.
    fn rms_norm(&self, x: &Self::Tensor, eps: f32) -> Self::Tensor;
    /// `(x - mean) / sqrt(var + eps)` per row.
    fn layer_norm(&self, x: &Self::Tensor, eps: f32) -> Self::Tensor;
    /// Multiply every row by a 1-D weight of width `cols` (norm weights).
    fn mul_row(&self, x: &Self::Tensor, w: &Self::Weight) -> Result<Self::Tensor>;
    /// Add a 1-D weight of width `cols` to every row (biases).
    fn add_row(&self, x: &Self::Tensor, b: &Self::Weight) -> Result<Self::Tensor>;
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    fn scale(&self, x: &Self::Tensor, s: f32) -> Self::Tensor;
    /// `x · wᵀ`: x `[n, k]`, w dims `[k, m]` → `[n, m]`.
    fn matmul(&self, x: &Self::Tensor, w: &Self::Weight) -> Result<Self::Tensor>;
    /// Rotary embedding on `[n, n_head * head_dim]` at the given positions.
    fn rope(
        &self,
        x: &Self::Tensor,
        n_head: usize,
        head_dim: usize,
        pos: &[u32],
        p: &RopeParams,
    ) -> Result<Self::Tensor>;
    /// Causal multi-head attention of `q` (`[n, n_head*head_dim]`, at positions `q_pos`) over
    /// `k`, `v` (`[n_kv, n_head_kv*dim]`, at positions `kv_pos`).
    fn attention(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        q_pos: &[u32],
        kv_pos: &[u32],
        p: &AttnParams,
    ) -> Result<Self::Tensor>;
    /// `act(gate) * up`.
    fn glu(&self, gate: &Self::Tensor, up: &Self::Tensor, act: Act) -> Result<Self::Tensor>;
    /// `act(x)` elementwise. The default goes through [`Ops::glu`] with an all-ones `up` (exact:
    /// multiplying by 1.0 changes nothing); backends may override it.
    fn act(&self, x: &Self::Tensor, act: Act) -> Result<Self::Tensor> {
        let (r, c) = self.shape(x);
        let ones = self.tensor_from_host(r, c, vec![1.0; r * c])?;
        self.glu(x, &ones, act)
    }
    /// `cap * tanh(x / cap)`.
    fn softcap(&self, x: &Self::Tensor, cap: f32) -> Self::Tensor;
    /// Append rows of `b` below `a` (KV cache growth).
    fn concat_rows(&self, a: Option<Self::Tensor>, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// Columns `[start, start + len)` of every row (splitting a fused QKV).
    fn slice_cols(&self, x: &Self::Tensor, start: usize, len: usize) -> Result<Self::Tensor>;
    /// Rows `[start, start + len)` (the output head of a prefill only needs the last row). The
    /// default copies through the host; backends may override it.
    fn slice_rows(&self, x: &Self::Tensor, start: usize, len: usize) -> Result<Self::Tensor> {
        let (r, c) = self.shape(x);
        if start + len > r {
            return Err(crate::Error::Invalid(format!("slice_rows: [{start}, {}) of {r} rows", start + len)));
        }
        let host = self.to_host(x);
        self.tensor_from_host(len, c, host[start * c..(start + len) * c].to_vec())
    }

    // ----- gpt-oss (attention sinks, MoE). Defaults refuse, so a backend that lacks them
    // fails with a typed error rather than computing something else. -----

    /// [`Ops::attention`] with one learned sink logit per query head (`sinks`, width `n_head`)
    /// joining each softmax denominator: `p_j = e^(s_j - m) / (Σ e^(s_i - m) + e^(sink_h - m))`,
    /// `m` the max over the scores and the sink. The sink is not scaled and carries no value.
    #[allow(clippy::too_many_arguments)]
    fn attention_sinks(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        q_pos: &[u32],
        kv_pos: &[u32],
        p: &AttnParams,
        sinks: &Self::Weight,
    ) -> Result<Self::Tensor> {
        let _ = (q, k, v, q_pos, kv_pos, p, sinks);
        Err(crate::Error::Invalid("attention with sinks is not implemented by this backend".into()))
    }

    /// MoE routing (llama.cpp's `SOFTMAX_WEIGHT` gating): per row of `logits` (`[n, n_expert]`),
    /// the `k` largest (ties: lower expert id first), then the softmax over those `k` values.
    /// Returns the expert ids (row-major `[n, k]`, largest first) and the weights `[n, k]`.
    fn moe_route(&self, logits: &Self::Tensor, k: usize) -> Result<(Vec<u32>, Self::Tensor)> {
        let _ = (logits, k);
        Err(crate::Error::Invalid("MoE routing is not implemented by this backend".into()))
    }

    /// ggml's `mul_mat_id` (+ `add_id`): `w` is 3-D `[k_in, m, n_expert]`, `ids` is `[n, k]`;
    /// output row `t·k + j` is `x_r · W[ids[t·k + j]]ᵀ + b[ids[t·k + j]]`, where `x_r` is row `t`
    /// of `x` when `x` has `n` rows (the input is shared by the experts) or row `t·k + j` when it
    /// has `n·k` rows. `b` (if any) is `[m, n_expert]`. Result `[n·k, m]`.
    fn matmul_id(
        &self,
        x: &Self::Tensor,
        w: &Self::Weight,
        b: Option<&Self::Weight>,
        ids: &[u32],
        k: usize,
    ) -> Result<Self::Tensor> {
        let _ = (x, w, b, ids, k);
        Err(crate::Error::Invalid("matmul_id is not implemented by this backend".into()))
    }

    /// gpt-oss's clamped SwiGLU (ggml's `swiglu_oai`): `g = min(gate, limit)`,
    /// `u = clamp(up, -limit, limit)`, `g / (1 + e^(-alpha·g)) · (u + 1)`.
    fn swiglu_oai(&self, gate: &Self::Tensor, up: &Self::Tensor, alpha: f32, limit: f32) -> Result<Self::Tensor> {
        let _ = (gate, up, alpha, limit);
        Err(crate::Error::Invalid("swiglu_oai is not implemented by this backend".into()))
    }

    /// Weighted sum of each row's `k` expert outputs: `experts` `[n·k, e]`, `weights` `[n, k]`;
    /// `out[t] = ((w₀·e₀ + w₁·e₁) + w₂·e₂) + …` in slot order, as llama.cpp's chain of adds.
    fn moe_combine(&self, experts: &Self::Tensor, weights: &Self::Tensor, k: usize) -> Result<Self::Tensor> {
        let _ = (experts, weights, k);
        Err(crate::Error::Invalid("moe_combine is not implemented by this backend".into()))
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

/// The top-`k` of one router row: indices sorted by value descending, ties by lower index.
pub fn top_k_desc(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}
