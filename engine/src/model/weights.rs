//! A model's weights as typed variants (separate or fused QKV; gated, fused-gate, plain or MoE
//! FFN) instead of optional fields, and the [`Loader`] the per-architecture files load them with.
//!
//! Invariant: a weight the architecture uses is in a non-optional field or in an `Option` whose
//! absence the graph handles (biases, head norms); a tensor an architecture requires and the
//! file lacks is a load error naming it, and every shape is checked against the hyper-parameters.

use crate::gguf::GgufFile;
use crate::ops::{Act, Ops};
use crate::{Error, Result};

use super::HParams;

/// A projection `x · wᵀ (+ b)`.
#[derive(Debug)]
pub struct Proj<W> {
    pub w: W,
    pub b: Option<W>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `x / sqrt(mean(x²) + eps) · w`.
    Rms,
    /// `(x - mean) / sqrt(var + eps) · w + b` (gpt2).
    Layer,
}

/// A norm with its weight (and bias, for LayerNorm).
#[derive(Debug)]
pub struct Norm<W> {
    pub kind: NormKind,
    pub eps: f32,
    pub w: W,
    pub b: Option<W>,
}

/// q, k and v projections.
#[derive(Debug)]
pub enum Qkv<W> {
    /// `attn_q`, `attn_k`, `attn_v` (llama, qwen2, gemma3, gpt-oss).
    Separate { q: Proj<W>, k: Proj<W>, v: Proj<W> },
    /// One `attn_qkv` whose output holds q, k and v side by side (phi3, gpt2).
    Fused(Proj<W>),
}

/// Per-head RMSNorm of q and k before RoPE (gemma3's `attn_q_norm` / `attn_k_norm`).
#[derive(Debug)]
pub struct HeadNorm<W> {
    pub q: W,
    pub k: W,
}

/// The attention block's weights.
#[derive(Debug)]
pub struct Attn<W> {
    pub qkv: Qkv<W>,
    pub head_norm: Option<HeadNorm<W>>,
    /// `attn_output` (+ bias where the architecture uses one).
    pub out: Proj<W>,
    /// RMSNorm of the block's output before the residual add (gemma3's `post_attention_norm`).
    pub post_norm: Option<W>,
    /// One learned sink logit per query head (gpt-oss).
    pub sinks: Option<W>,
}

/// The feed-forward block's weights.
#[derive(Debug)]
pub enum Ffn<W> {
    /// `down(act(gate · x) * (up · x))` (llama, qwen2: SiLU; gemma3: GELU).
    Gated { gate: W, up: W, down: W, act: Act },
    /// One `ffn_up` of width 2·n_ff, gate first (phi3, SwiGLU).
    FusedGateUp { up: W, down: W },
    /// `down(act(up · x + b) + b)` without a gate (gpt2, GELU).
    Plain { up: Proj<W>, down: Proj<W>, act: Act },
    /// Mixture of experts (gpt-oss): router → top-k → softmax over the k → per expert clamped
    /// SwiGLU of `gate`/`up` (3-D stacks `[in, out, n_expert]`, biases `[out, n_expert]`) →
    /// `down` → weighted sum.
    Moe { router: Proj<W>, gate: Proj<W>, up: Proj<W>, down: Proj<W>, k: usize },
}

/// One decoder layer: `x + attn(norm(x))`, then `h + ffn(norm(h))`.
#[derive(Debug)]
pub struct Layer<W> {
    pub attn_norm: Norm<W>,
    pub attn: Attn<W>,
    /// The FFN's pre-norm (gpt-oss's `post_attention_norm`).
    pub ffn_norm: Norm<W>,
    pub ffn: Ffn<W>,
    /// RMSNorm of the FFN output before the residual add (gemma3's `post_ffw_norm`).
    pub post_ffn_norm: Option<W>,
}

/// Token (and position) embeddings.
#[derive(Debug)]
pub struct Embd<W> {
    pub tok: W,
    /// Learned absolute positions (gpt2).
    pub pos: Option<W>,
    /// Multiplier of the embeddings (gemma3: √n_embd).
    pub scale: Option<f32>,
}

#[derive(Debug)]
pub struct Weights<W> {
    pub embd: Embd<W>,
    pub output_norm: Norm<W>,
    /// `None`: tied to the token embeddings.
    pub output: Option<W>,
    pub layers: Vec<Layer<W>>,
}

impl<W> Weights<W> {
    /// The output projection (tied to the embeddings when `output.weight` is absent).
    pub fn output(&self) -> &W {
        self.output.as_ref().unwrap_or(&self.embd.tok)
    }
}

/// Whether a bias tensor is read: not at all (the architecture's graph has none), if present, or
/// required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    No,
    Opt,
    Req,
}

/// Loads the tensors of one layer (`blk.{i}.`) or of the whole file, checking shapes.
#[derive(Debug)]
pub struct Loader<'a, B: Ops> {
    pub b: &'a B,
    pub f: &'a GgufFile,
    pub hp: &'a HParams,
    /// Layer index, `None` for the tensors outside the layers.
    pub i: Option<usize>,
}

impl<B: Ops> Loader<'_, B> {
    fn full(&self, s: &str, suffix: &str) -> String {
        match self.i {
            Some(i) => format!("blk.{i}.{s}.{suffix}"),
            None => format!("{s}.{suffix}"),
        }
    }

    fn load(&self, name: &str, dims: &[u64]) -> Result<B::Weight> {
        let t = self
            .f
            .tensor(name)
            .map_err(|e| Error::from(e).context(format!("{}: loading model weights", self.hp.arch.name())))?;
        if t.dims != dims {
            return Err(Error::Invalid(format!(
                "tensor {name:?} has dims {:?}, the hyper-parameters need {dims:?}",
                t.dims
            )));
        }
        self.b.load_weight(self.f, t)
    }

    /// `<s>.weight`, required.
    pub fn w(&self, s: &str, dims: &[u64]) -> Result<B::Weight> {
        self.load(&self.full(s, "weight"), dims)
    }

    fn bias(&self, s: &str, dims: &[u64], need: Bias) -> Result<Option<B::Weight>> {
        let name = self.full(s, "bias");
        match need {
            Bias::No => Ok(None),
            Bias::Opt if self.f.tensor(&name).is_err() => Ok(None),
            _ => self.load(&name, dims).map(Some),
        }
    }

    /// A projection `<s>.weight` of GGUF dims `[in, out, ...]` with its bias `[out, ...]`.
    pub fn proj(&self, s: &str, dims: &[u64], bias: Bias) -> Result<Proj<B::Weight>> {
        Ok(Proj { w: self.w(s, dims)?, b: self.bias(s, &dims[1..], bias)? })
    }

    /// An RMSNorm `<s>.weight` of width n_embd.
    pub fn rms(&self, s: &str) -> Result<Norm<B::Weight>> {
        let e = self.hp.n_embd as u64;
        Ok(Norm { kind: NormKind::Rms, eps: self.hp.rms_eps, w: self.w(s, &[e])?, b: None })
    }

    /// A LayerNorm `<s>.weight` with its bias, width n_embd.
    pub fn layer_norm(&self, s: &str) -> Result<Norm<B::Weight>> {
        let e = self.hp.n_embd as u64;
        Ok(Norm { kind: NormKind::Layer, eps: self.hp.ln_eps, w: self.w(s, &[e])?, b: self.bias(s, &[e], Bias::Req)? })
    }

    /// Separate q, k, v projections.
    pub fn qkv_separate(&self, bias: Bias) -> Result<Qkv<B::Weight>> {
        let d = Dims::of(self.hp);
        Ok(Qkv::Separate {
            q: self.proj("attn_q", &[d.e, d.q], bias)?,
            k: self.proj("attn_k", &[d.e, d.k], bias)?,
            v: self.proj("attn_v", &[d.e, d.v], bias)?,
        })
    }

    /// One fused `attn_qkv`.
    pub fn qkv_fused(&self, bias: Bias) -> Result<Qkv<B::Weight>> {
        let d = Dims::of(self.hp);
        Ok(Qkv::Fused(self.proj("attn_qkv", &[d.e, d.q + d.k + d.v], bias)?))
    }

    /// `attn_output` `[n_head·v_head_dim, n_embd]`.
    pub fn attn_out(&self, bias: Bias) -> Result<Proj<B::Weight>> {
        let d = Dims::of(self.hp);
        self.proj("attn_output", &[d.q_out, d.e], bias)
    }

    /// A gated FFN (`ffn_gate`, `ffn_up`, `ffn_down`).
    pub fn ffn_gated(&self, act: Act) -> Result<Ffn<B::Weight>> {
        let d = Dims::of(self.hp);
        Ok(Ffn::Gated {
            gate: self.w("ffn_gate", &[d.e, d.ff])?,
            up: self.w("ffn_up", &[d.e, d.ff])?,
            down: self.w("ffn_down", &[d.ff, d.e])?,
            act,
        })
    }
}

/// The widths the loaders check tensors against.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub e: u64,
    pub ff: u64,
    pub hd: u64,
    /// Widths of q, k and v rows.
    pub q: u64,
    pub k: u64,
    pub v: u64,
    /// Width of the attention output before `attn_output` (n_head · v_head_dim).
    pub q_out: u64,
}

impl Dims {
    pub fn of(hp: &HParams) -> Self {
        let (nh, nkv) = (hp.n_head as u64, hp.n_head_kv as u64);
        let (hd, vd) = (hp.head_dim as u64, hp.v_head_dim as u64);
        Dims { e: hp.n_embd as u64, ff: hp.n_ff as u64, hd, q: nh * hd, k: nkv * hd, v: nkv * vd, q_out: nh * vd }
    }
}
