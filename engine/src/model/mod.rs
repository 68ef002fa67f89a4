//! Model adapters: hyper-parameters and weights read from GGUF metadata and tensors with
//! llama.cpp's names, and one forward pass per architecture written against [`crate::ops::Ops`].
//!
//! Invariants:
//! - An architecture is written once (`llama.rs`, `qwen2.rs`, `gemma3.rs`, …) and runs on any
//!   backend; it only reads metadata keys and tensor names llama.cpp uses.
//! - Every named op output goes through the tap sink: `token_embd`, `blk.N.attn_norm`,
//!   `blk.N.attn_out`, `blk.N.ffn_norm`, `blk.N.ffn_out`, `blk.N.l_out`, `result_norm`, `logits`
//!   (MoE models also `blk.N.ffn_moe_logits`, the router's biased logits).
//! - The KV cache holds post-RoPE keys and values of every position fed so far, up to `n_ctx`;
//!   feeding past it is an error, never a silent wrap.

mod gemma3;
mod gpt2;
mod gpt_oss;
mod hparams;
mod llama;
mod phi3;
mod qwen2;

pub use hparams::{Arch, HParams};

use crate::gguf::GgufFile;
use crate::ops::{Ops, TapSink};
use crate::{Error, Result};

/// One decoder layer's weights (absent tensors are `None`; which are required depends on the arch).
///
/// MoE layers (gpt-oss) keep their expert stacks in `ffn_gate` / `ffn_up` / `ffn_down` (3-D,
/// `[in, out, n_expert]`) with per-expert biases `b_gate` / `b_up` / `b_down` (`[out, n_expert]`),
/// the router in `ffn_gate_inp` (+ bias), and `ffn_norm` holds the FFN's pre-norm, which
/// llama.cpp's gpt-oss names `post_attention_norm`.
#[derive(Debug)]
pub struct Layer<W> {
    pub attn_norm: W,
    pub attn_norm_b: Option<W>,
    /// Separate projections (llama, qwen2, gemma3) or one fused `attn_qkv` (phi3, gpt2).
    pub wq: Option<W>,
    pub wk: Option<W>,
    pub wv: Option<W>,
    pub wqkv: Option<W>,
    pub bqkv: Option<W>,
    pub wo: W,
    pub bo: Option<W>,
    pub bq: Option<W>,
    pub bk: Option<W>,
    pub bv: Option<W>,
    pub q_norm: Option<W>,
    pub k_norm: Option<W>,
    pub post_attn_norm: Option<W>,
    pub ffn_norm: W,
    pub ffn_norm_b: Option<W>,
    /// Absent where `ffn_up` is fused (phi3: width 2·n_ff, gate first) or there is no gate (gpt2).
    pub ffn_gate: Option<W>,
    pub ffn_up: W,
    pub b_up: Option<W>,
    pub ffn_down: W,
    pub b_down: Option<W>,
    pub post_ffn_norm: Option<W>,
    /// Per-expert gate bias (gpt-oss).
    pub b_gate: Option<W>,
    /// MoE router `[n_embd, n_expert]` and its bias (gpt-oss).
    pub ffn_gate_inp: Option<W>,
    pub ffn_gate_inp_b: Option<W>,
    /// One attention-sink logit per query head (gpt-oss).
    pub attn_sinks: Option<W>,
}

#[derive(Debug)]
pub struct Weights<W> {
    pub tok_embd: W,
    /// Learned absolute positions (gpt2).
    pub pos_embd: Option<W>,
    pub output_norm: W,
    pub output_norm_b: Option<W>,
    /// `None`: tied to `tok_embd`.
    pub output: Option<W>,
    pub layers: Vec<Layer<W>>,
}

/// Per layer: cached keys and values (row per position).
type KvCache<T> = Vec<(Option<T>, Option<T>)>;

/// A loaded model with its KV cache.
pub struct Model<B: Ops> {
    pub backend: B,
    pub hp: HParams,
    pub w: Weights<B::Weight>,
    kv: KvCache<B::Tensor>,
    kv_pos: Vec<u32>,
    pub n_ctx: usize,
    /// Set by [`Model::forward_last`]: the output head computes the last position only.
    last_only: bool,
}

impl<B: Ops> std::fmt::Debug for Model<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("hp", &self.hp).field("n_past", &self.kv_pos.len()).finish()
    }
}

pub(crate) fn tap<B: Ops>(b: &B, sink: &mut dyn TapSink, name: &str, t: &B::Tensor) {
    if sink.wants(name) {
        let (r, c) = b.shape(t);
        sink.tap(name, r, c, &b.to_host(t));
    }
}

fn load<B: Ops>(b: &B, f: &GgufFile, name: &str, dims: &[u64]) -> Result<B::Weight> {
    let t = f.tensor(name).map_err(|e| Error::from(e).context("loading model weights"))?;
    if t.dims != dims {
        return Err(Error::Invalid(format!(
            "tensor {name:?} has dims {:?}, the hyper-parameters need {dims:?}",
            t.dims
        )));
    }
    b.load_weight(f, t)
}

fn load_opt<B: Ops>(b: &B, f: &GgufFile, name: &str, dims: &[u64]) -> Result<Option<B::Weight>> {
    if f.tensor(name).is_err() {
        return Ok(None);
    }
    load(b, f, name, dims).map(Some)
}

/// phi3's LongRoPE factors for a context of `n_ctx`, as llama.cpp's `get_rope_factors`:
/// `rope_factors_long` when `n_ctx` exceeds `rope.scaling.original_context_length`, else
/// `rope_factors_short`; F32 `[n_rot / 2]`, one per rotated pair. A chosen tensor that the file
/// lacks means plain RoPE (llama.cpp creates both as optional). Other architectures refuse them.
fn rope_factors(f: &GgufFile, hp: &HParams, n_ctx: usize) -> Result<Option<std::sync::Arc<[f32]>>> {
    let (long, short) = ("rope_factors_long.weight", "rope_factors_short.weight");
    if f.tensor(long).is_err() && f.tensor(short).is_err() {
        return Ok(None);
    }
    if hp.arch != Arch::Phi3 {
        return Err(Error::Invalid(format!(
            "longrope factors (rope_factors_*) are only supported for phi3, not {:?}",
            hp.arch
        )));
    }
    let name = if n_ctx > hp.n_ctx_orig { long } else { short };
    let Ok(t) = f.tensor(name) else { return Ok(None) };
    let half = (hp.n_rot / 2) as u64;
    if t.ty != crate::gguf::GgmlType::F32 || t.dims != [half] {
        return Err(Error::Invalid(format!(
            "tensor {name:?} is {:?} {:?}; LongRoPE factors must be F32 [{half}] (n_rot / 2)",
            t.ty, t.dims
        )));
    }
    let v: Vec<f32> = f.tensor_data(t).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(bad) = v.iter().find(|x| !x.is_finite() || **x <= 0.0) {
        return Err(Error::Invalid(format!(
            "tensor {name:?} holds the frequency factor {bad}: not finite and positive"
        )));
    }
    Ok(Some(v.into()))
}

impl<B: Ops> Model<B> {
    /// Load hyper-parameters and every tensor the architecture needs, checking each shape.
    pub fn load(f: &GgufFile, backend: B, n_ctx: Option<usize>) -> Result<Self> {
        let mut hp = HParams::from_gguf(f)?;
        let (e, ff, hd, vd) = (hp.n_embd as u64, hp.n_ff as u64, hp.head_dim as u64, hp.v_head_dim as u64);
        let (nh, nkv, nv) = (hp.n_head as u64, hp.n_head_kv as u64, hp.n_vocab as u64);
        let b = &backend;
        let fused_qkv = matches!(hp.arch, Arch::Phi3 | Arch::Gpt2);
        let qkv_w = nh * hd + 2 * nkv * vd;
        let (gate, up_w) = match hp.arch {
            Arch::Phi3 => (false, 2 * ff),
            Arch::Gpt2 => (false, ff),
            _ => (true, ff),
        };
        let mut layers = Vec::with_capacity(hp.n_layer);
        if hp.arch == Arch::GptOss {
            let x = hp.n_expert as u64;
            for i in 0..hp.n_layer {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                let bias = |s: &str| format!("blk.{i}.{s}.bias");
                layers.push(Layer {
                    attn_norm: load(b, f, &n("attn_norm"), &[e])?,
                    attn_norm_b: None,
                    wq: Some(load(b, f, &n("attn_q"), &[e, nh * hd])?),
                    wk: Some(load(b, f, &n("attn_k"), &[e, nkv * hd])?),
                    wv: Some(load(b, f, &n("attn_v"), &[e, nkv * vd])?),
                    wqkv: None,
                    bqkv: None,
                    wo: load(b, f, &n("attn_output"), &[nh * vd, e])?,
                    bo: load_opt(b, f, &bias("attn_output"), &[e])?,
                    bq: load_opt(b, f, &bias("attn_q"), &[nh * hd])?,
                    bk: load_opt(b, f, &bias("attn_k"), &[nkv * hd])?,
                    bv: load_opt(b, f, &bias("attn_v"), &[nkv * vd])?,
                    q_norm: None,
                    k_norm: None,
                    post_attn_norm: None,
                    ffn_norm: load(b, f, &n("post_attention_norm"), &[e])?,
                    ffn_norm_b: None,
                    ffn_gate: Some(load(b, f, &n("ffn_gate_exps"), &[e, ff, x])?),
                    ffn_up: load(b, f, &n("ffn_up_exps"), &[e, ff, x])?,
                    b_up: load_opt(b, f, &bias("ffn_up_exps"), &[ff, x])?,
                    ffn_down: load(b, f, &n("ffn_down_exps"), &[ff, e, x])?,
                    b_down: load_opt(b, f, &bias("ffn_down_exps"), &[e, x])?,
                    post_ffn_norm: None,
                    b_gate: load_opt(b, f, &bias("ffn_gate_exps"), &[ff, x])?,
                    ffn_gate_inp: Some(load(b, f, &n("ffn_gate_inp"), &[e, x])?),
                    ffn_gate_inp_b: load_opt(b, f, &bias("ffn_gate_inp"), &[x])?,
                    attn_sinks: load_opt(b, f, &n("attn_sinks"), &[nh])?,
                });
            }
        } else {
            for i in 0..hp.n_layer {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                let bias = |s: &str| format!("blk.{i}.{s}.bias");
                let sep = |s: &str, d: &[u64]| if fused_qkv { Ok(None) } else { load(b, f, &n(s), d).map(Some) };
                layers.push(Layer {
                    attn_norm: load(b, f, &n("attn_norm"), &[e])?,
                    attn_norm_b: load_opt(b, f, &bias("attn_norm"), &[e])?,
                    wq: sep("attn_q", &[e, nh * hd])?,
                    wk: sep("attn_k", &[e, nkv * hd])?,
                    wv: sep("attn_v", &[e, nkv * vd])?,
                    wqkv: if fused_qkv { Some(load(b, f, &n("attn_qkv"), &[e, qkv_w])?) } else { None },
                    bqkv: load_opt(b, f, &bias("attn_qkv"), &[qkv_w])?,
                    wo: load(b, f, &n("attn_output"), &[nh * vd, e])?,
                    bo: load_opt(b, f, &bias("attn_output"), &[e])?,
                    bq: load_opt(b, f, &bias("attn_q"), &[nh * hd])?,
                    bk: load_opt(b, f, &bias("attn_k"), &[nkv * hd])?,
                    bv: load_opt(b, f, &bias("attn_v"), &[nkv * vd])?,
                    q_norm: load_opt(b, f, &n("attn_q_norm"), &[hd])?,
                    k_norm: load_opt(b, f, &n("attn_k_norm"), &[hd])?,
                    post_attn_norm: load_opt(b, f, &n("post_attention_norm"), &[e])?,
                    ffn_norm: load(b, f, &n("ffn_norm"), &[e])?,
                    ffn_norm_b: load_opt(b, f, &bias("ffn_norm"), &[e])?,
                    ffn_gate: if gate { Some(load(b, f, &n("ffn_gate"), &[e, ff])?) } else { None },
                    ffn_up: load(b, f, &n("ffn_up"), &[e, up_w])?,
                    b_up: load_opt(b, f, &bias("ffn_up"), &[up_w])?,
                    ffn_down: load(b, f, &n("ffn_down"), &[ff, e])?,
                    b_down: load_opt(b, f, &bias("ffn_down"), &[e])?,
                    post_ffn_norm: load_opt(b, f, &n("post_ffw_norm"), &[e])?,
                    b_gate: None,
                    ffn_gate_inp: None,
                    ffn_gate_inp_b: None,
                    attn_sinks: None,
                });
            }
        }
        let n_ctx = n_ctx.unwrap_or(hp.n_ctx_train.min(4096)).max(1);
        hp.rope_factors = rope_factors(f, &hp, n_ctx)?;
        hp.arch.check_layers(&layers)?;
        let w = Weights {
            tok_embd: load(b, f, "token_embd.weight", &[e, nv])?,
            pos_embd: if hp.arch == Arch::Gpt2 {
                Some(load(b, f, "position_embd.weight", &[e, hp.n_ctx_train as u64])?)
            } else {
                None
            },
            output_norm: load(b, f, "output_norm.weight", &[e])?,
            output_norm_b: load_opt(b, f, "output_norm.bias", &[e])?,
            output: if hp.arch == Arch::GptOss {
                // llama.cpp's gpt-oss requires `output.weight` (never tied).
                Some(load(b, f, "output.weight", &[e, nv])?)
            } else {
                load_opt(b, f, "output.weight", &[e, nv])?
            },
            layers,
        };
        let kv = (0..hp.n_layer).map(|_| (None, None)).collect();
        Ok(Model { backend, hp, w, kv, kv_pos: Vec::new(), n_ctx, last_only: false })
    }

    /// Positions already in the KV cache.
    pub fn n_past(&self) -> usize {
        self.kv_pos.len()
    }

    /// Forget the KV cache.
    pub fn reset(&mut self) {
        for l in &mut self.kv {
            *l = (None, None);
        }
        self.kv_pos.clear();
    }

    /// Feed `tokens` after the cached ones; returns the logits of every fed position, row-major
    /// `[tokens.len(), n_vocab]`.
    pub fn forward(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        self.last_only = false;
        self.feed(tokens, taps)
    }

    /// As [`Self::forward`], but returns only the last position's logits `[n_vocab]` and skips the
    /// output head (final norm, output projection) for the other positions — what generation
    /// needs after a prompt, as llama.cpp computes only the rows it is asked for. Every row-wise
    /// op is unchanged, so the last row equals `forward`'s last row exactly.
    pub fn forward_last(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        self.last_only = true;
        let r = self.feed(tokens, taps);
        self.last_only = false;
        r
    }

    fn feed(&mut self, tokens: &[u32], taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::Invalid("no tokens to feed".into()));
        }
        let start = self.kv_pos.len();
        if start + tokens.len() > self.n_ctx {
            return Err(Error::Invalid(format!(
                "context full: {start} cached + {} new tokens > n_ctx {}",
                tokens.len(),
                self.n_ctx
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.hp.n_vocab) {
            return Err(Error::Invalid(format!("token id {bad} out of range (vocab size {})", self.hp.n_vocab)));
        }
        let shift = usize::from(start > 0 && crate::faults::active(crate::faults::Fault::KvPosShift));
        let pos: Vec<u32> = (start - shift..start - shift + tokens.len()).map(|p| p as u32).collect();
        let mut kv_pos = self.kv_pos.clone();
        kv_pos.extend_from_slice(&pos);
        let logits = match self.hp.arch {
            Arch::Llama | Arch::Qwen2 => llama::forward(self, tokens, &pos, &kv_pos, taps),
            Arch::Gemma3 => gemma3::forward(self, tokens, &pos, &kv_pos, taps),
            Arch::Phi3 => phi3::forward(self, tokens, &pos, &kv_pos, taps),
            Arch::Gpt2 => gpt2::forward(self, tokens, &pos, &kv_pos, taps),
            Arch::GptOss => gpt_oss::forward(self, tokens, &pos, &kv_pos, taps),
        };
        match logits {
            Ok(l) => {
                self.kv_pos = kv_pos;
                Ok(l)
            }
            Err(e) => {
                // Some layers may have appended to their cache: start clean rather than desync.
                self.reset();
                Err(e)
            }
        }
    }

    /// Append this step's K and V to layer `il`'s cache.
    pub(crate) fn kv_append(&mut self, il: usize, k: &B::Tensor, v: &B::Tensor) -> Result<()> {
        let (ko, vo) = std::mem::take(&mut self.kv[il]);
        let k = self.backend.concat_rows(ko, k)?;
        let v = self.backend.concat_rows(vo, v)?;
        self.kv[il] = (Some(k), Some(v));
        Ok(())
    }

    /// Layer `il`'s whole cache (after [`Self::kv_append`]).
    pub(crate) fn kv_get(&self, il: usize) -> Result<(&B::Tensor, &B::Tensor)> {
        match &self.kv[il] {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(Error::Invalid(format!("kv cache of layer {il} is empty"))),
        }
    }

    /// Append this step's post-RoPE `k` and `v` to layer `il`'s cache, then attend `q` (at `pos`)
    /// over the whole cache (at `kv_pos`).
    pub(crate) fn attend(
        &mut self,
        il: usize,
        (q, k, v): (B::Tensor, B::Tensor, B::Tensor),
        pos: &[u32],
        kv_pos: &[u32],
        p: &crate::ops::AttnParams,
    ) -> Result<B::Tensor> {
        self.kv_append(il, &k, &v)?;
        let (kc, vc) = self.kv_get(il)?;
        self.backend.attention(&q, kc, vc, pos, kv_pos, p)
    }

    /// The output head shared by every architecture: final norm (LayerNorm, with its bias, for
    /// gpt2; RMSNorm otherwise), output projection, optional soft-capping;
    /// taps `result_norm` and `logits`. With [`Self::forward_last`] only the last row goes in.
    pub(crate) fn output_head(&self, x: B::Tensor, taps: &mut dyn TapSink) -> Result<Vec<f32>> {
        let (b, hp) = (&self.backend, &self.hp);
        let x = match b.shape(&x).0 {
            n if self.last_only && n > 1 => b.slice_rows(&x, n - 1, 1)?,
            _ => x,
        };
        let x = if hp.arch == Arch::Gpt2 {
            let y = b.mul_row(&b.layer_norm(&x, hp.ln_eps), &self.w.output_norm)?;
            match &self.w.output_norm_b {
                Some(bias) => b.add_row(&y, bias)?,
                None => y,
            }
        } else {
            b.mul_row(&b.rms_norm(&x, hp.rms_eps), &self.w.output_norm)?
        };
        tap(b, taps, "result_norm", &x);
        let mut logits = b.matmul(&x, self.output_weight())?;
        if let Some(c) = hp.final_softcap {
            logits = b.softcap(&logits, c);
        }
        tap(b, taps, "logits", &logits);
        Ok(b.to_host(&logits))
    }

    /// A required weight that this architecture keeps optional in [`Layer`].
    pub(crate) fn req<'a>(w: &'a Option<B::Weight>, what: &str) -> Result<&'a B::Weight> {
        w.as_ref().ok_or_else(|| Error::Invalid(format!("weight {what} is missing")))
    }

    /// The output projection (tied to the embeddings when `output.weight` is absent).
    pub(crate) fn output_weight(&self) -> &B::Weight {
        self.w.output.as_ref().unwrap_or(&self.w.tok_embd)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::gguf::{GgufValue, GgufWriter};

    /// Metadata of a small `arch` file with LongRoPE factors of `n_long` / `n_short` entries.
    fn file(arch: &str, n_long: usize, n_short: usize) -> GgufFile {
        let mut w = GgufWriter::new();
        w.set("general.architecture", GgufValue::String(arch.into()));
        for (k, v) in [
            ("block_count", 1),
            ("embedding_length", 64),
            ("feed_forward_length", 128),
            ("attention.head_count", 4),
            ("vocab_size", 32),
            ("context_length", 131_072),
            ("rope.dimension_count", 16),
            ("rope.scaling.original_context_length", 4096),
        ] {
            w.set(&format!("{arch}.{k}"), GgufValue::U32(v));
        }
        w.set(&format!("{arch}.rope.scaling.attn_factor"), GgufValue::F32(1.19));
        let long: Vec<f32> = (0..n_long).map(|i| 10.0 + i as f32).collect();
        let short: Vec<f32> = (0..n_short).map(|i| 1.0 + i as f32 / 8.0).collect();
        w.add_f32("rope_factors_long.weight", &[n_long as u64], &long).unwrap();
        w.add_f32("rope_factors_short.weight", &[n_short as u64], &short).unwrap();
        GgufFile::from_bytes(w.to_bytes().0).unwrap()
    }

    #[test]
    fn longrope_factors_follow_the_context_as_llama_cpp() {
        let f = file("phi3", 8, 8);
        let hp = HParams::from_gguf(&f).unwrap();
        assert_eq!((hp.n_ctx_orig, hp.rope_attn_factor), (4096, 1.19));
        // Up to the original context: short; past it: long (llama.cpp's get_rope_factors).
        assert_eq!(rope_factors(&f, &hp, 4096).unwrap().unwrap()[1], 1.125);
        assert_eq!(rope_factors(&f, &hp, 4097).unwrap().unwrap()[1], 11.0);
        let p = HParams { rope_factors: rope_factors(&f, &hp, 16).unwrap(), ..hp }.rope_params(10_000.0);
        assert_eq!(p.freq_factors.as_deref().map(<[f32]>::len), Some(8));
        assert_eq!(p.yarn.map(|y| (y.ext_factor, y.attn_factor)), Some((0.0, 1.19)));
    }

    #[test]
    fn longrope_factors_are_checked() {
        // Not n_rot / 2 entries: a typed error, whichever set the context picks.
        let f = file("phi3", 8, 7);
        let hp = HParams::from_gguf(&f).unwrap();
        assert!(rope_factors(&f, &hp, 4097).is_ok());
        let e = rope_factors(&f, &hp, 64).unwrap_err().to_string();
        assert!(e.contains("rope_factors_short") && e.contains("[8]"), "{e}");
        // Another architecture does not use them: refused rather than ignored.
        let f = file("llama", 8, 8);
        let hp = HParams::from_gguf(&f).unwrap();
        assert!(rope_factors(&f, &hp, 64).unwrap_err().to_string().contains("only supported for phi3"));
    }
}
