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

use crate::Result;

/// RoPE pairing (llama.cpp's `llama_rope_type`): normal rotates adjacent pairs (2i, 2i+1); NeoX
/// rotates (i, i + n_rot/2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    Normal,
    Neox,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeParams {
    pub style: RopeStyle,
    /// Dimensions rotated per head (the first `n_rot` of each head).
    pub n_rot: usize,
    pub freq_base: f32,
    /// Linear position scaling (1.0 = none).
    pub freq_scale: f32,
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

/// Activation functions (GELU is the tanh approximation, as ggml_gelu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Silu,
    Gelu,
}

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
}
